"""Decision-time search throughput: IS-MCTS decisions per second on bargaining, next to mctx.

    python bench/search_throughput.py [--checkpoint RUN_DIR] [--simulations 100] [--batches 1 64 1024]

Each IS-MCTS decision samples ``--worlds`` deals, replays the game so far and runs
``--simulations`` simulations (algos/is_mcts.py). The prior is a trained run or a freshly
initialised PPO network of the default size (92 → 256 → 256, one network per seat); the cost does
not depend on its weights. Compilation is excluded (one warm-up call per batch size).

Peer (same process, same network, same env ``step``, same number of simulations): mctx's
``gumbel_muzero_policy`` searching one determinised world per decision with the env as its
model. It is a cost reference only: mctx keeps one value negated between alternating players
(zero-sum), which does not fit this general-sum game with private values (anchors §5, §10.10),
and it samples no worlds. Install it with ``pip install mctx`` (the ``bench`` extra); without it
the column is skipped. Decisions here are at the first move of fresh games (nothing to replay).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from algos.is_mcts import _Models, _mover, model_outputs, sample_worlds, search_policy
from jaxmarl_lab.networks import actor_critic_policy
from jaxmarl_lab.registry import make


def _mctx_decide(env, prior, num_simulations: int, num_worlds: int):
    """Batched decisions with mctx's Gumbel MuZero over one sampled world per game."""
    import mctx

    act_fn, params = prior.act_fn, prior.params
    env_params = env.default_params

    def evaluate(obs, state):
        mover = _mover(env, state, env_params)
        mask = env.action_mask(state, env_params)[mover]
        log_probs, value = model_outputs(act_fn, params, obs[mover], mask)
        return log_probs, value, mover

    def recurrent_fn(_, key, action, embedding):
        obs, state = embedding

        def step(obs, state, action):
            nobs, nstate, reward, done, _ = env.step(key, state, jnp.full((env.num_agents,), action), env_params)
            mover = _mover(env, state, env_params)
            log_probs, value, _ = evaluate(nobs, nstate)
            discount = jnp.where(done, 0.0, -1.0)  # mctx's alternating zero-sum convention
            return (nobs, nstate), reward[mover], discount, log_probs, jnp.where(done, 0.0, value)

        (nobs, nstate), reward, discount, logits, value = jax.vmap(step)(obs, state, action)
        output = mctx.RecurrentFnOutput(reward=reward, discount=discount, prior_logits=logits, value=value)
        return output, (nobs, nstate)

    def decide(obs, keys):
        def root_of(o, k):
            memory = {"history": jnp.zeros((env.max_steps + 1, o.shape[-1])).at[0].set(o),
                      "count": jnp.ones((), jnp.int32)}
            worlds = sample_worlds(env, _Models(act_fn), {"prior": params}, memory["history"], memory["count"], k,
                                   num_worlds)
            pick = jnp.argmax(worlds.log_weight)
            return worlds.obs[pick], jax.tree_util.tree_map(lambda x: x[pick], worlds.state)

        obs_w, state_w = jax.vmap(root_of)(obs, keys)
        logits, value, _ = jax.vmap(evaluate)(obs_w, state_w)
        root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=(obs_w, state_w))
        out = mctx.gumbel_muzero_policy(params=None, rng_key=keys[0], root=root, recurrent_fn=recurrent_fn,
                                        num_simulations=num_simulations, max_depth=env.max_steps,
                                        max_num_considered_actions=16)
        return out.action

    return jax.jit(decide)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--simulations", type=int, default=100)
    parser.add_argument("--worlds", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip the mctx column")
    args = parser.parse_args()
    env = make("bargain")
    if args.checkpoint:
        from jaxmarl_lab.training import load_policy

        prior = load_policy(args.checkpoint)
    else:
        prior = actor_critic_policy({"name": "mlp", "num_actions": 82, "hidden_size": 256}, None, share_seats=False)
        prior = prior.replace(params=prior.act_fn.init_params(jax.random.key(0), env.obs_dim))
    searched = search_policy(env, prior, args.simulations, num_worlds=args.worlds)
    act = searched.act_fn
    memory = act.initial_memory(searched.params)

    @jax.jit
    def decide(obs, mask, keys):
        return jax.vmap(lambda o, m, k: act(searched.params, o, m, k, memory=memory)[0])(obs, mask, keys)

    peer = None
    if not args.no_peer:
        try:
            peer = _mctx_decide(env, prior, args.simulations, args.worlds)
        except ImportError:
            print("(mctx not installed: no peer column; pip install mctx)")

    def timed(fn, *inputs_for_repeat):
        jax.block_until_ready(fn(*inputs_for_repeat[0]))
        start = time.perf_counter()
        for inputs in inputs_for_repeat[1:]:
            jax.block_until_ready(fn(*inputs))
        return (time.perf_counter() - start) / (len(inputs_for_repeat) - 1)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.simulations} simulations, "
          f"{args.worlds} worlds per IS-MCTS decision")
    print("| parallel games | IS-MCTS decisions/s | ms per batch | mctx gumbel_muzero decisions/s | ratio |")
    print("|---|---|---|---|---|")
    for batch in args.batches:
        obs, state = jax.vmap(env.reset)(jax.random.split(jax.random.key(1), batch))
        mask = jax.vmap(env.action_mask)(state)[:, 0]
        keys = [jax.random.split(jax.random.key(2 + r), batch) for r in range(args.repeats + 1)]
        seconds = timed(decide, *[(obs[:, 0], mask, k) for k in keys])
        ours = batch / seconds
        row = f"| {batch} | {ours:,.1f} | {1000 * seconds:,.1f} |"
        if peer is not None:
            theirs = batch / timed(peer, *[(obs[:, 0], k) for k in keys])
            row += f" {theirs:,.1f} | {ours / theirs:.2f}× |"
        else:
            row += " – | – |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
