"""How much better than the complementary therapist can a therapist be on RL_vs_Complementary?

    python bench/therapy_headroom.py [--episodes 1000] [--maps]

Settings: cold_stuck, frequency_amplifier, threshold 0.8, client entropy 0.1, alpha 5, offset 0.7,
perception accuracy 0.5. Prints success/dropout of

* complementary (the baseline the learning bar names) and uniform random;
* ``greedy_u``: an *omniscient* rule that answers each client octant with the therapist octant of
  highest utility in this client's own sampled U row (complementary answers with the row argmax of
  the midpoint matrix), with its success difference to complementary on the same clients (paired
  standard error: both run on the same episode keys);
* with ``--maps``: every response map that keeps the complementary answers to the five non-cold
  octants and tries all 8³ answers to CS, C and CD (512 memoryless policies, ~5 min on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from envs.therapy import COMPLEMENT, Therapy  # noqa: E402

ENV = Therapy(pattern="cold_stuck", threshold=0.8, entropy=0.1, bond_alpha=5.0, bond_offset=0.7,
              baseline_accuracy=0.5)


def play(choose, key: jax.Array, episodes: int):
    """success, dropout [episodes] of ``choose(state) -> octant`` (it may read the hidden state)."""
    params = ENV.evaluation_params

    def episode(k):
        k_reset, k_steps = jax.random.split(k)
        _, state = ENV.reset_env(k_reset, params)

        def body(carry, k_step):
            state, done = carry
            _, nxt, _, ended, _ = ENV.step_env(k_step, state, choose(state)[None], params)
            state = jax.tree_util.tree_map(lambda old, new: jnp.where(done, old, new), state, nxt)
            return (state, done | ended), None

        (state, _), _ = jax.lax.scan(body, (state, jnp.asarray(False)), jax.random.split(k_steps, ENV.max_sessions))
        return state.success, state.dropped

    return jax.vmap(episode)(jax.random.split(key, episodes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--maps", action="store_true", help="also search the 512 cold-octant response maps")
    args = parser.parse_args()
    key = jax.random.key(args.seed)
    complement = jnp.asarray(COMPLEMENT)
    rules = {"complementary": lambda s: complement[s.pending],
             # uniform random: a key per client (its sampled U) and session
             "random": lambda s: jax.random.randint(jax.random.fold_in(jax.random.key(
                 jax.lax.bitcast_convert_type(s.u[0, 0], jnp.int32)), s.session), (), 0, 8),
             "greedy_u (omniscient)": lambda s: jnp.argmax(s.u[s.pending]).astype(jnp.int32)}
    outcomes = {}
    for name, rule in rules.items():
        success, dropout = (np.asarray(x, float) for x in jax.jit(lambda k, r=rule: play(r, k, args.episodes))(key))
        outcomes[name] = success
        line = f"{name:<24} success {100 * success.mean():5.1f}%  dropout {100 * dropout.mean():4.1f}%"
        if name != "complementary":
            diff = success - outcomes["complementary"]
            paired = diff.std(ddof=1) / np.sqrt(len(diff))
            unpaired = np.sqrt(success.var(ddof=1) / len(success)
                               + outcomes["complementary"].var(ddof=1) / len(success))
            line += (f"  vs complementary {100 * diff.mean():+5.1f} pts = {diff.mean() / paired:+.1f} paired SE, "
                     f"{diff.mean() / unpaired:+.1f} unpaired SE")
        print(line)
    if args.maps:
        tables = []
        for answers in itertools.product(range(8), repeat=3):
            table = np.array(COMPLEMENT)
            table[5:] = answers
            tables.append(table)
        run = jax.jit(jax.vmap(lambda t: play(lambda s: t[s.pending], key, args.episodes)[0].mean()))
        start, rates = time.perf_counter(), []
        for i in range(0, len(tables), 64):
            rates.append(np.asarray(run(jnp.asarray(np.stack(tables[i:i + 64])))))
        rates = np.concatenate(rates)
        order = np.argsort(-rates)
        print(f"\n512 maps in {time.perf_counter() - start:.0f} s; best answers to (CS, C, CD):")
        for i in order[:5]:
            print(f"  {tuple(int(a) for a in tables[i][5:])}: success {100 * rates[i]:.1f}%")
        print(f"  complementary (7, 6, 5) ranks {int(np.where(order == 7 * 64 + 6 * 8 + 5)[0][0]) + 1} of 512")


if __name__ == "__main__":
    main()
