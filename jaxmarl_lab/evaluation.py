"""Jitted, vmapped evaluation: ``evaluate`` (a team of policies) and ``crossplay`` (all ordered pairs).

Both play whole episodes inside one XLA program: ``lax.scan`` over ``env.max_steps`` steps,
``vmap`` over games (and, for cross-play, over matchups, with ``lax.switch`` picking each seat's
policy), so the n x n round-robin of a two-player game is a single compiled program. Steps after
an episode ends are frozen and contribute nothing. Large runs are split into equal chunks (one
compilation) so a progress bar can report on them.

Cross-play uses common random numbers: game g deals the same private information in every
matchup, which makes differences between cells far less noisy than independent deals would.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxmarl_lab.env import tree_select
from jaxmarl_lab.policies import Policy, act_in_episode, initial_memory

#: folded into a game's key to get the key that stays fixed for the whole game: a policy mixture
#: (PSRO's meta-strategy) draws its component from it once per game, not once per decision
_EPISODE_SALT = 0x5EED


def _play_episode(env, joint_act, key, env_params, record: bool = False, memory=()):
    """One episode to the end (at most ``env.max_steps`` steps): returns, length, outcome indicators
    (and, with ``record``, the rendered frame of every state: [max_steps + 1, H, W, 3]).

    ``joint_act(obs, mask, key, episode_key, memory) -> (actions, memory)``; ``memory`` is the
    policies' per-game memory at the start (``()`` when no policy keeps one)."""
    key_reset, key_steps = jax.random.split(key)
    episode_key = jax.random.fold_in(key, _EPISODE_SALT)  # constant for the whole game (policy mixtures)
    obs, state = env.reset(key_reset, env_params)
    zero_returns = jnp.zeros((env.num_agents,), jnp.float32)

    def body(carry, step_key):
        obs, state, done, returns, length, memory = carry
        key_act, key_step = jax.random.split(step_key)
        mask = env.action_mask(state, env_params) & ~done   # a finished game has no legal move
        action, memory = joint_act(obs, mask, key_act, episode_key, memory)
        next_obs, next_state, reward, step_done, _ = env.step(key_step, state, action, env_params)
        alive = ~done
        returns = returns + jnp.where(alive, reward, 0.0)
        length = length + alive.astype(jnp.int32)
        state = tree_select(done, state, next_state)
        obs = tree_select(done, obs, next_obs)
        frame = env.render(state, env_params) if record else None
        return (obs, state, done | step_done, returns, length, memory), frame

    first_frame = env.render(state, env_params) if record else None
    carry = (obs, state, jnp.zeros((), bool), zero_returns, jnp.zeros((), jnp.int32), memory)
    (obs, state, done, returns, length, _), frames = jax.lax.scan(
        body, carry, jax.random.split(key_steps, env.max_steps)
    )
    outcomes = {k: jnp.asarray(v, jnp.float32) for k, v in env.outcome_statistics(state, env_params).items()}
    if record:
        return returns, length, outcomes, jnp.concatenate([first_frame[None], frames])
    return returns, length, outcomes


def _seat_actions(env, policies: Sequence[Policy], obs, mask, key, episode_key, memory):
    """Every seat's action and memory. Seats played by one host-call policy (an LLM) are vmapped
    together so that a step makes one host call for all of them."""
    dtype = env.action_space().dtype
    keys = jax.random.split(key, len(policies))
    actions: list = [None] * len(policies)
    memory = list(memory)
    groups: dict = {}
    for i, p in enumerate(policies):
        if getattr(p.act_fn, "batch_over_seats", False):
            groups.setdefault(id(p.act_fn), []).append(i)
        else:
            action, memory[i] = act_in_episode(p, obs[i], mask[i], keys[i], episode_key, memory[i])
            actions[i] = jnp.asarray(action, dtype)
    for seats in groups.values():
        index = jnp.asarray(seats)
        act_fn = policies[seats[0]].act_fn
        params = jnp.stack([jnp.asarray(policies[i].params) for i in seats])
        batch = jax.vmap(act_fn)(params, obs[index], mask[index], keys[index])
        for j, i in enumerate(seats):
            actions[i] = jnp.asarray(batch[j], dtype)
    return jnp.stack(actions), tuple(memory)


@partial(jax.jit, static_argnames=("env", "num_episodes"))
def _evaluate_chunk(env, policies: tuple, num_episodes: int, key, env_params):
    joint_act = partial(_seat_actions, env, policies)
    memory = tuple(initial_memory(p) for p in policies)
    keys = jax.random.split(key, num_episodes)
    return jax.vmap(lambda k: _play_episode(env, joint_act, k, env_params, memory=memory))(keys)


@partial(jax.jit, static_argnames=("env",))
def _record_episode(env, policies: tuple, key, env_params):
    return _play_episode(env, partial(_seat_actions, env, policies), key, env_params, record=True,
                         memory=tuple(initial_memory(p) for p in policies))


def record_episode(env, policies, key: jax.Array, params=None) -> tuple[np.ndarray, EvalResult]:
    """Play one episode and render it: (frames uint8[length + 1, H, W, 3], its EvalResult).

    ``jaxmarl_lab.render.save_gif(frames, path)`` turns the frames into a GIF.
    """
    seats = _as_seat_policies(env, policies)
    env_params = env.default_params if params is None else params
    returns, length, outcomes, frames = jax.device_get(_record_episode(env, seats, key, env_params))
    result = EvalResult(tuple(env.agents), returns[None], np.asarray(length)[None],
                        {k: np.asarray(v)[None] for k, v in outcomes.items()})
    return frames[: int(length) + 1], result


def _host_call(policy: Policy) -> bool:
    """A policy that calls out to the host (an LLM): it must see only the rows it really plays."""
    return bool(getattr(policy.act_fn, "batch_over_seats", False))


@partial(jax.jit, static_argnames=("env", "num_games"))
def _crossplay_chunk(env, policies: tuple, num_games: int, key, env_params):
    n = len(policies)
    dtype = env.action_space().dtype

    def branches(seat: int, pair):
        # a batched switch runs every branch; host-call policies get an empty mask where they do not
        # play this seat, so they send no request for those games. Every branch carries the memory
        # of every policy (a tuple) and updates only its own entry.
        out = []
        for b, policy in enumerate(policies):
            p = _for_seat(policy, seat)
            plays = (pair[seat] == b) if _host_call(p) else True
            out.append(partial(_switch_branch, p, b, plays, dtype))
        return out

    def joint_act(pair, obs, mask, key, episode_key, memory):
        keys = jax.random.split(key, 2)
        acted = [jax.lax.switch(pair[s], branches(s, pair), obs[s], mask[s], keys[s], episode_key, memory[s])
                 for s in range(2)]
        return jnp.stack([a for a, _ in acted]), tuple(m for _, m in acted)

    rows, cols = jnp.meshgrid(jnp.arange(n), jnp.arange(n), indexing="ij")
    pairs = jnp.stack([rows.ravel(), cols.ravel()], axis=-1)  # [n*n, 2]
    keys = jax.random.split(key, num_games)  # shared by all matchups: common random numbers

    memory = tuple(tuple(initial_memory(_for_seat(p, s)) for p in policies) for s in range(2))

    def games_for_pair(pair):
        return jax.vmap(lambda k: _play_episode(env, partial(joint_act, pair), k, env_params, memory=memory))(keys)

    returns, lengths, outcomes = jax.vmap(games_for_pair)(pairs)
    reshape = lambda x: x.reshape((n, n) + x.shape[1:])
    return jax.tree_util.tree_map(reshape, (returns, lengths, outcomes))


def _switch_branch(policy: Policy, index: int, plays, dtype, obs, mask, key, episode_key, memories: tuple):
    """One ``lax.switch`` branch: ``policy`` (entry ``index`` of ``memories``) acts."""
    action, memory = act_in_episode(policy, obs, mask & plays, key, episode_key, memories[index])
    return jnp.asarray(action, dtype), memories[:index] + (memory,) + memories[index + 1:]


def _chunks(total: int, target: int) -> tuple[int, int]:
    """(number of chunks, chunk size) with equal sizes so one compilation serves all chunks."""
    num = max(1, math.ceil(total / max(1, target)))
    return num, math.ceil(total / num)


def _run_chunks(run_chunk, total: int, target: int, key, axis: int, progress: bool, desc: str):
    num, size = _chunks(total, target)
    parts = []
    bar = tqdm(total=total, desc=desc, unit="game", disable=not progress, leave=False)
    start = time.perf_counter()
    for c in range(num):
        out = jax.device_get(run_chunk(size, jax.random.fold_in(key, c)))
        parts.append(out)
        if c == 0:
            bar.set_postfix_str(f"compiled+ran first chunk in {time.perf_counter() - start:.1f}s")
        bar.update(min(size, total - c * size))
    bar.close()
    joined = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=axis), *parts)
    return jax.tree_util.tree_map(lambda x: np.take(x, np.arange(total), axis=axis), joined)


def _stderr(x: np.ndarray, axis: int) -> np.ndarray:
    n = x.shape[axis]
    return x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(x.mean(axis=axis))


@dataclass
class EvalResult:
    """Per-episode outcomes of :func:`evaluate`; ``<outcome>_rate`` attributes average the indicators."""

    agents: tuple[str, ...]
    returns: np.ndarray  # f32[E, num_agents]
    lengths: np.ndarray  # i32[E]
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)  # name -> f32[E] indicators

    @property
    def num_episodes(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def mean_returns(self) -> np.ndarray:
        return self.returns.mean(axis=0)

    @property
    def stderr_returns(self) -> np.ndarray:
        return _stderr(self.returns, 0)

    @property
    def welfare(self) -> np.ndarray:
        """Per-episode sum of all agents' returns."""
        return self.returns.sum(axis=1)

    def __getattr__(self, name: str):
        outcomes = self.__dict__.get("outcomes", {})
        if name.endswith("_rate") and name[: -len("_rate")] in outcomes:
            return float(outcomes[name[: -len("_rate")]].mean())
        raise AttributeError(name)

    def summary(self) -> dict:
        out = {
            "num_episodes": self.num_episodes,
            "mean_length": float(self.lengths.mean()),
            "mean_welfare": float(self.welfare.mean()),
            "stderr_welfare": float(_stderr(self.welfare, 0)),
        }
        for i, agent in enumerate(self.agents):
            out[f"mean_return_{agent}"] = float(self.mean_returns[i])
            out[f"stderr_return_{agent}"] = float(self.stderr_returns[i])
        for k, v in self.outcomes.items():
            out[f"{k}_rate"] = float(v.mean())
        return out


def _for_seat(policy: Policy, seat: int) -> Policy:
    """A policy bound to its seat when it needs to know it (LLM policies: ``act_fn.for_seat``)."""
    bind = getattr(policy.act_fn, "for_seat", None)
    return policy if bind is None else bind(policy, seat)


def _as_seat_policies(env, policies) -> tuple[Policy, ...]:
    if isinstance(policies, Policy):
        policies = (policies,) * env.num_agents
    policies = tuple(policies)
    if len(policies) != env.num_agents or not all(isinstance(p, Policy) for p in policies):
        raise ValueError(
            f"policies must be one Policy for every seat or a sequence of {env.num_agents} Policies "
            f"(one per seat of {env.name!r}), got {len(policies)} item(s)"
        )
    return tuple(_for_seat(p, i) for i, p in enumerate(policies))


def evaluate(env, policies, num_episodes: int, key: jax.Array, params=None, *,
             batch_size: int = 16384, progress: bool = False) -> EvalResult:
    """Play ``num_episodes`` games with one Policy per seat (or one for all seats).

    Returns per-episode ``returns`` [E, num_agents], ``lengths`` [E] and the env's outcome
    indicators (for bargaining ``accept_rate`` and ``walk_rate``).
    """
    seats = _as_seat_policies(env, policies)
    env_params = env.default_params if params is None else params
    run = lambda size, k: _evaluate_chunk(env, seats, size, k, env_params)
    returns, lengths, outcomes = _run_chunks(run, int(num_episodes), batch_size, key, 0, progress, "evaluate")
    return EvalResult(tuple(env.agents), returns, lengths, outcomes)


def evaluate_params(env, policies, num_episodes: int, key: jax.Array, stacked_params) -> list[EvalResult]:
    """:func:`evaluate` under each of several env params stacked on a leading axis (e.g. scenarios),
    in one vmapped program; the same keys serve every entry (common random numbers)."""
    seats = _as_seat_policies(env, policies)
    size = int(jax.tree_util.tree_leaves(stacked_params)[0].shape[0])
    run = jax.vmap(lambda p: _evaluate_chunk(env, seats, int(num_episodes), key, p))
    returns, lengths, outcomes = jax.device_get(run(stacked_params))
    return [EvalResult(tuple(env.agents), np.asarray(returns[i]), np.asarray(lengths[i]),
                       {k: np.asarray(v[i]) for k, v in outcomes.items()}) for i in range(size)]


@dataclass
class CrossplayResult:
    """All ordered matchups: row policy in seat 0, column policy in seat 1."""

    names: list[str]
    num_games: int
    payoffs: np.ndarray  # f32[n, n, 2] mean return of seat 0 and seat 1
    payoff_stderr: np.ndarray  # f32[n, n, 2]
    welfare: np.ndarray  # f32[n, n] mean of r0 + r1
    welfare_stderr: np.ndarray  # f32[n, n]
    mean_length: np.ndarray  # f32[n, n]
    outcome_rates: dict[str, np.ndarray]  # name -> f32[n, n]
    payoff_std: np.ndarray  # f32[n, n, 2] per-game standard deviation
    game_returns: np.ndarray | None = None  # f32[n, n, G, 2] every game (for bootstrap confidence intervals)
    game_outcomes: dict[str, np.ndarray] | None = None  # name -> f32[n, n, G] indicators

    def save_games(self, path) -> None:
        """Per-game returns and outcome indicators as a compressed .npz (read by ``jaxmarl-lab metagame``)."""
        if self.game_returns is None:
            raise ValueError("this result has no per-game data")
        np.savez_compressed(path, names=np.array(self.names), returns=self.game_returns,
                            **{f"outcome_{k}": v for k, v in (self.game_outcomes or {}).items()})

    def __getattr__(self, name: str):
        rates = self.__dict__.get("outcome_rates", {})
        if name.endswith("_rate") and name[: -len("_rate")] in rates:
            return rates[name[: -len("_rate")]]
        raise AttributeError(name)

    def to_dict(self) -> dict:
        """JSON-ready; ``payoff_matrix``/``detailed_results`` follow the original cross-play files."""
        detailed = {}
        for i, row in enumerate(self.names):
            for j, col in enumerate(self.names):
                cell = {
                    "row": row, "column": col,
                    "mean_reward_p0": float(self.payoffs[i, j, 0]), "mean_reward_p1": float(self.payoffs[i, j, 1]),
                    "std_reward_p0": float(self.payoff_std[i, j, 0]), "std_reward_p1": float(self.payoff_std[i, j, 1]),
                    "stderr_reward_p0": float(self.payoff_stderr[i, j, 0]),
                    "stderr_reward_p1": float(self.payoff_stderr[i, j, 1]),
                    "mean_welfare": float(self.welfare[i, j]), "stderr_welfare": float(self.welfare_stderr[i, j]),
                    "mean_length": float(self.mean_length[i, j]), "num_games": self.num_games,
                }
                cell.update({f"{k}_rate": float(v[i, j]) for k, v in self.outcome_rates.items()})
                detailed[f"{i}_vs_{j}"] = cell
        return {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "policy_names": list(self.names),
            "num_games": self.num_games,
            "payoff_matrix": self.payoffs.tolist(),
            "welfare_matrix": self.welfare.tolist(),
            "outcome_rates": {k: v.tolist() for k, v in self.outcome_rates.items()},
            "detailed_results": detailed,
        }

    def save_json(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    def save_csv(self, path) -> None:
        """One row per ordered matchup (long format)."""
        rows = list(self.to_dict()["detailed_results"].values())
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def table(self, rate: str | None = None) -> str:
        """Round-robin table: rows = seat-0 policy, columns = seat-1 policy.

        Each cell reads ``r0/r1 W=welfare rate%`` where ``rate`` is one outcome (default: the first).
        """
        rate = rate or next(iter(self.outcome_rates), None)
        cells = [[f"{self.payoffs[i, j, 0]:.3f}/{self.payoffs[i, j, 1]:.3f} W={self.welfare[i, j]:.3f}"
                  + (f" {100 * self.outcome_rates[rate][i, j]:3.0f}%" if rate else "")
                  for j in range(len(self.names))] for i in range(len(self.names))]
        corner = "P1 \\ P2"
        row_w = max(len(corner), *(len(n) for n in self.names))
        col_w = max(max(len(c) for r in cells for c in r), *(len(n) for n in self.names))
        lines = [f"{corner:<{row_w}} | " + " | ".join(f"{n:^{col_w}}" for n in self.names)]
        lines.append("-" * len(lines[0]))
        for name, row in zip(self.names, cells, strict=True):
            lines.append(f"{name:<{row_w}} | " + " | ".join(f"{c:^{col_w}}" for c in row))
        legend = f"cell: mean reward P1/P2, W = welfare (r1+r2){', ' + rate + ' rate' if rate else ''}; "
        legend += f"{self.num_games} games per cell"
        return "\n".join(lines + [legend])


def crossplay(env, policies: dict[str, Policy], num_games: int, key: jax.Array, params=None, *,
              batch_size: int = 65536, progress: bool = False) -> CrossplayResult:
    """Every ordered pair of ``policies`` (row = seat 0, column = seat 1) in one compiled program."""
    if env.num_agents != 2:
        raise ValueError(f"crossplay needs a two-player env, {env.name!r} has {env.num_agents} agents")
    if not policies or not all(isinstance(p, Policy) for p in policies.values()):
        raise ValueError("policies must be a non-empty dict name -> Policy")
    names = list(policies)
    n = len(names)
    env_params = env.default_params if params is None else params
    run = lambda size, k: _crossplay_chunk(env, tuple(policies.values()), size, k, env_params)
    target = max(1, batch_size // (n * n))
    returns, lengths, outcomes = _run_chunks(run, int(num_games), target, key, 2, progress, "crossplay")
    welfare = returns.sum(axis=-1)
    return CrossplayResult(
        names=names, num_games=int(num_games),
        payoffs=returns.mean(axis=2), payoff_stderr=_stderr(returns, 2),
        payoff_std=returns.std(axis=2, ddof=1) if num_games > 1 else np.zeros_like(returns.mean(axis=2)),
        welfare=welfare.mean(axis=2), welfare_stderr=_stderr(welfare, 2),
        mean_length=lengths.mean(axis=2), outcome_rates={k: v.mean(axis=2) for k, v in outcomes.items()},
        game_returns=returns, game_outcomes=outcomes,
    )


@partial(jax.jit, static_argnames=("env", "num_games"))
def _versus_chunk(env, policy: Policy, opponents: tuple, num_games: int, key, env_params):
    """``policy`` in seat s against opponent o, for every (o, s): returns [n_opponents, 2, G, ...]."""
    dtype = env.action_space().dtype
    branches = [partial(_switch_branch, p, b, True, dtype) for b, p in enumerate(opponents)]

    def joint_act(opponent, seat, obs, mask, key, episode_key, memory):
        own_memory, other_memory = memory
        key_self, key_other = jax.random.split(key)
        own, own_memory = act_in_episode(policy, obs[seat], mask[seat], key_self, episode_key, own_memory)
        other, other_memory = jax.lax.switch(opponent, branches, obs[1 - seat], mask[1 - seat], key_other,
                                             episode_key, other_memory)
        return jnp.where(jnp.arange(2) == seat, jnp.asarray(own, dtype), other), (own_memory, other_memory)

    keys = jax.random.split(key, num_games)
    memory = (initial_memory(policy), tuple(initial_memory(p) for p in opponents))

    def games(opponent, seat):
        act = partial(joint_act, opponent, seat)
        return jax.vmap(lambda k: _play_episode(env, act, k, env_params, memory=memory))(keys)

    grid = jnp.arange(len(opponents))
    return jax.vmap(lambda o: jax.vmap(lambda s: games(o, s))(jnp.arange(2)))(grid)


def evaluate_against(env, policy: Policy, opponents: dict[str, Policy], num_games: int, key: jax.Array,
                     params=None, *, batch_size: int = 65536, progress: bool = False) -> dict[str, list[EvalResult]]:
    """``policy`` against every opponent in both seats of a two-player game, one compiled program
    (``batch_size`` games per chunk over all opponents and seats).

    Returns ``{opponent: [result with policy as P1, result with policy as P2]}``; each result's
    ``returns`` keep the seat order of the game (seat 0 first).
    """
    if env.num_agents != 2:
        raise ValueError(f"evaluate_against needs a two-player env, {env.name!r} has {env.num_agents} agents")
    env_params = env.default_params if params is None else params
    names = list(opponents)
    run = lambda size, k: _versus_chunk(env, policy, tuple(opponents.values()), size, k, env_params)
    target = max(1, batch_size // (2 * len(names)))
    returns, lengths, outcomes = _run_chunks(run, int(num_games), target, key, 2, progress, "versus")
    return {
        name: [EvalResult(tuple(env.agents), returns[i, s], lengths[i, s], {k: v[i, s] for k, v in outcomes.items()})
               for s in range(2)]
        for i, name in enumerate(names)
    }


_BASELINE_TABLES: dict = {}
_REFERENCE_KEY = lambda: jax.random.key(0)  # deals of the baseline reference table


def _baseline_table(env, baselines: dict[str, Policy], num_games: int, params=None) -> CrossplayResult:
    """The baselines' round-robin (fixed key), computed once per env and size: the reference that
    every evaluation of a training run compares against."""
    if params is not None:
        return crossplay(env, baselines, num_games, _REFERENCE_KEY(), params)
    cache_key = (env, tuple(baselines), num_games)
    if cache_key not in _BASELINE_TABLES:
        _BASELINE_TABLES[cache_key] = crossplay(env, baselines, num_games, _REFERENCE_KEY())
    return _BASELINE_TABLES[cache_key]


def two_player_report(env, policy: Policy, num_games: int, key: jax.Array, params=None) -> dict:
    """Self-play plus both seats against every baseline, next to the best baseline in the same place.

    ``summary`` holds flat numbers (``selfplay_welfare``, ``vs_<b>_as_p1_reward``, ...);
    ``versus`` compares, for each baseline opponent and seat, the policy's mean reward with the
    best any baseline earns in that place (from the baseline round-robin on the same deals).
    """
    from jaxmarl_lab.policies import baseline, list_baselines

    selfplay = evaluate(env, policy, num_games, key, params)
    summary = {f"selfplay_{k.replace('mean_return_player_', 'reward_p').replace('mean_', '')}": v
               for k, v in selfplay.summary().items() if not k.startswith("stderr") and k != "num_episodes"}
    summary["selfplay_welfare_stderr"] = selfplay.summary()["stderr_welfare"]
    baselines = {name: baseline(env, name) for name in list_baselines(env)}
    versus = {}
    if baselines:
        # the same deals as the baseline table (common random numbers: a paired comparison)
        results = evaluate_against(env, policy, baselines, num_games, _REFERENCE_KEY(), params)
        table = _baseline_table(env, baselines, num_games, params)
        for j, name in enumerate(baselines):
            versus[name] = {}
            for seat in range(2):
                result = results[name][seat]
                mine = result.returns[:, seat]
                in_place = table.payoffs[:, j, 0] if seat == 0 else table.payoffs[j, :, 1]
                best = int(np.argmax(in_place))
                stderr = float(_stderr(mine, 0))
                cell = {
                    "reward": float(mine.mean()), "stderr": stderr,
                    "opponent_reward": float(result.returns[:, 1 - seat].mean()),
                    "welfare": float(result.welfare.mean()), "length": float(result.lengths.mean()),
                    "best_baseline": list(baselines)[best], "best_baseline_reward": float(in_place[best]),
                }
                cell.update({f"{k}_rate": float(v.mean()) for k, v in result.outcomes.items()})
                cell["margin"] = cell["reward"] - cell["best_baseline_reward"]
                cell["at_least_best_baseline"] = bool(cell["margin"] >= -2 * stderr)
                versus[name][f"as_p{seat + 1}"] = cell
                summary[f"vs_{name}_as_p{seat + 1}_reward"] = cell["reward"]
        cells = [c for v in versus.values() for c in v.values()]
        summary["vs_baselines_mean_reward"] = float(np.mean([c["reward"] for c in cells]))
        summary["vs_baselines_cells_at_least_best"] = int(sum(c["at_least_best_baseline"] for c in cells))
        summary["vs_baselines_cells"] = len(cells)
    report = {"num_games": int(num_games), "summary": summary, "selfplay": selfplay.summary(), "versus": versus}
    from jaxmarl_lab.game_theory import nash_conv, supports_exact_evaluation

    if supports_exact_evaluation(env) and hasattr(policy.act_fn, "action_probs"):
        exact = nash_conv(env, policy, params)  # small variants (bargain_tiny): the exact NashConv too
        summary["nash_conv"] = exact.nash_conv
        report["exact"] = exact.to_dict()
    return report


def exact_report(env, policy: Policy, num_games: int, key: jax.Array, params=None) -> dict:
    """Exact evaluation for small games (``jaxmarl_lab.game_theory``): NashConv, the profile's
    expected returns and each player's best-response value. ``num_games`` and ``key`` are unused:
    nothing is sampled."""
    from jaxmarl_lab.game_theory import nash_conv

    exact = nash_conv(env, policy, params)
    summary = {**exact.to_dict(), "welfare": float(exact.values.sum())}
    return {"summary": summary, "exact": exact.to_dict()}


def format_exact_report(report: dict) -> str:
    s = report["summary"]
    return (f"exact evaluation: NashConv {s['nash_conv']:.5f}\n"
            f"  value of the profile  P0 {s['value_p0']:+.4f}  P1 {s['value_p1']:+.4f}\n"
            f"  best-response value   P0 {s['best_response_p0']:+.4f}  P1 {s['best_response_p1']:+.4f}")


def format_report(report: dict) -> str:
    """The report of :func:`two_player_report` as a console table."""
    s = report["summary"]
    lines = [f"self-play ({report['num_games']} games): welfare {s['selfplay_welfare']:.3f} "
             f"± {s['selfplay_welfare_stderr']:.3f}, P1 {s['selfplay_reward_p0']:.3f}, "
             f"P2 {s['selfplay_reward_p1']:.3f}, "
             + ", ".join(f"{k.removeprefix('selfplay_')} {v:.3f}" for k, v in s.items()
                         if k.endswith("_rate") and k.startswith("selfplay_"))
             + f", mean length {s['selfplay_length']:.2f}"]
    if report["versus"]:
        header = f"{'opponent':<12} {'seat':<5} {'reward':>14} {'opp.':>6} {'welfare':>8} {'accept':>7} " \
                 f"{'length':>6}   best baseline in this place"
        lines += ["", header, "-" * len(header)]
        for name, seats in report["versus"].items():
            for seat, c in seats.items():
                flag = "ok" if c["at_least_best_baseline"] else "below"
                lines.append(
                    f"{name:<12} {seat.replace('as_', ''):<5} {c['reward']:>7.3f} ± {c['stderr']:.3f} "
                    f"{c['opponent_reward']:>6.3f} {c['welfare']:>8.3f} {100 * c.get('accept_rate', 0):>6.1f}% "
                    f"{c['length']:>6.2f}   {c['best_baseline']:<11} {c['best_baseline_reward']:.3f} "
                    f"({c['margin']:+.3f}, {flag})")
        good, cells = s["vs_baselines_cells_at_least_best"], s["vs_baselines_cells"]
        mean_over_seeds = "per_seed" in report  # a multi-seed report averages the count over seeds
        good_text = f"{good:.1f}" if mean_over_seeds else f"{int(good)}"
        lines.append(f"{good_text}/{int(cells)} cells at least as good as the best baseline in the same place "
                     f"(within 2 standard errors{', mean over seeds' if mean_over_seeds else ''})")
    return "\n".join(lines)


def team_report(env, policies, num_episodes: int, key: jax.Array, params=None) -> dict:
    """Self-play of a team (one Policy for all agents, or one per agent) in a cooperative or mixed env.

    ``summary``: ``mean_return`` (undiscounted episode return averaged over agents) with its
    standard error over episodes, ``return_<agent>``, ``mean_length`` and ``mean_<outcome>`` with
    ``stderr_<outcome>`` for each of the env's outcome statistics (e.g. MPE ``mean_success``,
    ``mean_final_distance``).
    """
    result = evaluate(env, policies, num_episodes, key, params)
    per_episode = result.returns.mean(axis=1)
    summary = {"mean_return": float(per_episode.mean()), "mean_return_stderr": float(_stderr(per_episode, 0)),
               "std_return": float(per_episode.std()), "mean_length": float(result.lengths.mean())}
    summary.update({f"return_{agent}": float(result.mean_returns[i]) for i, agent in enumerate(result.agents)})
    summary.update({f"mean_{k}": float(v.mean()) for k, v in result.outcomes.items()})
    summary.update({f"stderr_{k}": float(_stderr(np.asarray(v, np.float64).reshape(num_episodes, -1).mean(1), 0))
                    for k, v in result.outcomes.items()})
    return {"kind": "team", "num_games": int(num_episodes), "summary": summary}


def format_team_report(report: dict) -> str:
    s = report["summary"]
    per_agent = {k.removeprefix("return_"): v for k, v in s.items() if k.startswith("return_")}
    if len(per_agent) > 2 and len({round(v, 6) for v in per_agent.values()}) == 1:
        agents = f"all {len(per_agent)} agents share it"  # one team reward (e.g. pistonball)
    else:
        agents = ", ".join(f"{name} {v:.3f}" for name, v in per_agent.items())
    def outcome(key: str, value: float) -> str:
        name = key.removeprefix("mean_")
        stderr = s.get(f"stderr_{name}")
        return f"{name} {value:.3f}" + ("" if stderr is None else f" ± {stderr:.3f}")

    extras = ", ".join(outcome(k, v) for k, v in s.items()
                       if k.startswith("mean_") and k not in ("mean_return", "mean_return_stderr", "mean_length"))
    return (f"self-play ({report['num_games']} episodes): mean return per agent {s['mean_return']:.3f} "
            f"± {s['mean_return_stderr']:.3f} ({agents}); mean length {s['mean_length']:.2f}"
            + (f"; {extras}" if extras else ""))


def report_for(env) -> tuple:
    """(report function, formatter, headline metric) for evaluating trained policies on ``env``:
    the baseline-comparison report for envs that ask for it (``evaluation_report = "two_player"``:
    two-player games with scripted baselines), else the team report."""
    kind = getattr(env, "evaluation_report", "team")
    if kind == "exact":
        return exact_report, format_exact_report, "nash_conv"
    if kind == "two_player":
        return two_player_report, format_report, "selfplay_welfare"
    return team_report, format_team_report, "mean_return"
