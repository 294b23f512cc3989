"""Bucket Brigade: a firefighting commons dilemma on a ring of houses (spec bucket_brigade.md, era C).

H houses on a ring (default 10), N agents (default 4); agent i owns every house h with h mod N = i.
Each night every agent picks ``(house, mode, signal)``: mode REST (paid ``c_rest``) or WORK (costs
``c`` plus ``α·ringdist(home, house)``) on a house, and a free cheap-talk bit. The discrete action
is ``a = 4·house + 2·mode + signal`` (``Discrete(4H)``, ``env.action_factors = (H, 2, 2)``);
``step`` also accepts ``[N, 3]`` (house, mode, signal) and the legacy ``[N, 2]`` (house, mode) with
signal := mode (use :meth:`BucketBrigade.encode_action` to build flat actions).

**One night** (bernoulli mode): signals and positions are recorded; every burning house is saved
with probability ``1 − (1 − κ)^k`` (k = agents WORKing on it); every house still burning is RUINED
(a fire lives exactly one night); spread (β) therefore never fires; every SAFE house ignites with
probability ρ. Continuous mode instead adds ``k·σ`` to the house's fire progress (saved at ≥ 1),
has no burn-out (fires persist, nothing is ever ruined) and spreads: each SAFE neighbour of each
burning house ignites with probability β (one draw per source-neighbour pair, snapshot semantics).

**Rewards** (every agent, every night, on the post-ignition houses; ``prev`` = start of the night)::

    r_i = W_i + Σ_h O_ih + T (+ shaping)
    W_i = −(c + α·ringdist(home_i, target_i)) if WORK else +c_rest
    O_ih = [prev_h ≠ SAFE ∧ h SAFE]·(r_own_i if i owns h else r_other_i)
         − [h RUINED]·(p_own_i if i owns h else p_other_i)          (charged every night it stays ruined)
    T    = R_team·S/H − P_team·R/H                                    (S, R: safe / ruined houses)
    shaping: each WORKer on h gets α_a/#workers(h) if h went BURNING→SAFE, β_a if h stayed SAFE;
             T += coef·(S − S_prev); everyone += λ(γΦ(s′)·[not terminal] − Φ(s)),
             Φ = R_team·S/H − P_team·R/H − 0.5·P_team·B/H.

The first night's saves count (``prev`` = the reset houses, the Rust engine's reading).

**Termination** after night t (0-based) with t ≥ T_min: ``"python"`` (default, the gym/PPO/parity
engine): every house SAFE, or every house RUINED, or no house BURNING; ``"rust"`` (Nash/evolution
numbers): every house SAFE or every house RUINED. ``max_nights`` (default 100) truncates.

**Observation** (``obs_layout="flat"``, default; identical for all agents but the id), floats::

    houses[H] (0 safe, 1 burning, 2 ruined) | signals[N] | locations[N] | last_actions[2N]
    ([house, mode] agent-major) | scenario_info[12] = [β, κ, ρ, R_team, P_team, mean r_own,
    mean r_other, mean p_own, mean p_other, c, T_min, N] | (two-phase: round1_signals[N], phase)
    | identity one-hot[N]                                          → H + 5N + 12 (42 at H=10, N=4)

``obs_layout="legacy"`` (the PufferLib wrapper): houses[H] | signals[N] | locations[N] |
last_actions[2N] | [β, κ, ρ, R_team, P_team, c, T_min, N, 0, 0] → H + 10 + 4N (36 at N=4), no id.
Values are raw like the original; ``normalize_obs=True`` divides them by fixed scales (houses by
2, house indices by H−1, rewards by 100, T_min by 20, N by 10) for learning.

**Two-phase commitment** (``two_phase=True``): a night takes two env steps; in the first only the
signal bits count (stored as round1_signals, reward 0), the second is an ordinary night.

**Scenarios** (§3 of the spec) are named parameter sets in :data:`SCENARIOS`; their numbers live in
``params`` (:class:`BucketBrigadeParams`), so one compiled step serves all scenarios with the same
house count and extinguish mode (vmap over stacked params, :func:`scenario_params`).
``scenario_pool=("default", "hard", ...)`` samples a scenario per episode (generalisation training);
the episode's parameters then travel in the state.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_lab import render as draw
from jaxmarl_lab.env import Env
from jaxmarl_lab.policies import Policy, random_policy
from jaxmarl_lab.spaces import Box, Discrete

SAFE, BURNING, RUINED = 0, 1, 2
REST, WORK = 0, 1
MAX_NIGHTS = 100

# ---- scenarios --------------------------------------------------------------------------------

_COMMON = dict(rest_reward=0.5, team_reward=100.0, team_penalty=100.0, reward_own=1.0, reward_other=0.0,
               penalty_own=2.0, penalty_other=0.0, num_houses=10, extinguish="bernoulli", homes=None,
               distance_cost=0.0, suppression=0.0)


def _scenario(beta, kappa, rho, work_cost, min_nights, **changes) -> dict:
    return {**_COMMON, "beta": beta, "kappa": kappa, "rho": rho, "work_cost": work_cost,
            "min_nights": min_nights, **changes}


_SPECIALISATION = dict(team_reward=10.0, team_penalty=10.0, reward_own=50.0, penalty_own=100.0)
_DEFAULT_OWNERSHIP = dict(reward_own=20.0, penalty_own=40.0)

#: the 18 named scenarios of the spec (§3): β, κ, ρ, c, T_min plus changes to the common values
SCENARIOS: dict[str, dict] = {
    "default": _scenario(0.25, 0.5, 0.02, 0.5, 12, **_DEFAULT_OWNERSHIP),
    "easy": _scenario(0.10, 0.8, 0.01, 0.5, 10),
    "hard": _scenario(0.40, 0.3, 0.05, 0.5, 15),
    "trivial_cooperation": _scenario(0.15, 0.9, 0.0, 0.5, 12),
    "early_containment": _scenario(0.35, 0.6, 0.02, 0.5, 12),
    "greedy_neighbor": _scenario(0.15, 0.4, 0.02, 1.0, 12),
    "sparse_heroics": _scenario(0.10, 0.5, 0.02, 0.8, 20),
    "rest_trap": _scenario(0.05, 0.95, 0.02, 0.2, 12),
    "chain_reaction": _scenario(0.45, 0.6, 0.03, 0.7, 15),
    "deceptive_calm": _scenario(0.25, 0.6, 0.05, 0.4, 20),
    "overcrowding": _scenario(0.20, 0.3, 0.02, 0.6, 12, team_reward=50.0),
    "mixed_motivation": _scenario(0.30, 0.5, 0.03, 0.6, 15),
    "minimal_specialization": _scenario(0.25, 0.5, 0.02, 0.5, 12, **_SPECIALISATION),
    "positional_default": _scenario(0.25, 0.5, 0.02, 0.5, 12, homes=(0, 3, 5, 8), distance_cost=0.1,
                                    **_DEFAULT_OWNERSHIP),
    "v2_minimal": _scenario(0.25, 0.5, 0.05, 0.5, 8, num_houses=2, **_SPECIALISATION),
    "default_continuous": _scenario(0.25, 0.5, 0.02, 0.5, 12, extinguish="continuous", suppression=0.5,
                                    **_DEFAULT_OWNERSHIP),
    "asym_b05_k09_c05": _scenario(0.50, 0.9, 0.02, 0.5, 12, **_SPECIALISATION),
    "asym_b09_k09_c05": _scenario(0.90, 0.9, 0.02, 0.5, 12, **_SPECIALISATION),
}
_STATIC_KEYS = ("num_houses", "extinguish")


@struct.dataclass
class BucketBrigadeParams:
    """One scenario's numbers (per-agent vectors have length N). Shaping terms default to off."""

    beta: jax.Array  # spread probability (dynamics-inert in bernoulli mode; an observation feature)
    kappa: jax.Array  # one worker's extinguish probability
    rho: jax.Array  # ignition probability of a SAFE house (also at reset)
    team_reward: jax.Array  # R_team
    team_penalty: jax.Array  # P_team
    work_cost: jax.Array  # c
    rest_reward: jax.Array  # c_rest
    min_nights: jax.Array  # T_min
    reward_own: jax.Array  # f32[N]
    reward_other: jax.Array  # f32[N]
    penalty_own: jax.Array  # f32[N]
    penalty_other: jax.Array  # f32[N]
    homes: jax.Array  # i32[N] home house (distance cost, adjacent_only)
    distance_cost: jax.Array  # α per unit of ring distance from home
    suppression: jax.Array  # σ, continuous mode
    adjacent_only: jax.Array  # bool: targets farther than 1 from home are replaced by home
    work_bonus_saved: jax.Array  # α_a action shaping
    work_bonus_safe: jax.Array  # β_a action shaping
    progress_coef: jax.Array  # progress shaping
    potential_coef: jax.Array  # λ, team-welfare potential shaping
    potential_gamma: jax.Array  # γ of the potential shaping


def scenario_params(name: str, num_agents: int = 4, **overrides) -> BucketBrigadeParams:
    """The params of a named scenario (``overrides`` replace any field, e.g. ``kappa=0.9``)."""
    if name not in SCENARIOS:
        import difflib

        close = difflib.get_close_matches(name, list(SCENARIOS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown Bucket Brigade scenario {name!r}.{hint} Valid: {', '.join(SCENARIOS)}")
    s = SCENARIOS[name]
    houses = s["num_houses"]
    homes = s["homes"] if s["homes"] is not None else tuple(i % houses for i in range(num_agents))
    if len(homes) != num_agents:
        raise ValueError(f"scenario {name!r} fixes homes for {len(homes)} agents, not {num_agents}")
    vector = lambda v: jnp.full((num_agents,), v, jnp.float32)
    f = lambda v: jnp.asarray(v, jnp.float32)
    values = dict(beta=f(s["beta"]), kappa=f(s["kappa"]), rho=f(s["rho"]), team_reward=f(s["team_reward"]),
                  team_penalty=f(s["team_penalty"]), work_cost=f(s["work_cost"]), rest_reward=f(s["rest_reward"]),
                  min_nights=f(s["min_nights"]), reward_own=vector(s["reward_own"]),
                  reward_other=vector(s["reward_other"]), penalty_own=vector(s["penalty_own"]),
                  penalty_other=vector(s["penalty_other"]), homes=jnp.asarray(homes, jnp.int32),
                  distance_cost=f(s["distance_cost"]), suppression=f(s["suppression"]),
                  adjacent_only=jnp.asarray(False), work_bonus_saved=f(0.0), work_bonus_safe=f(0.0),
                  progress_coef=f(0.0), potential_coef=f(0.0), potential_gamma=f(1.0))
    unknown = [k for k in overrides if k not in values]
    if unknown:
        raise TypeError(f"unknown scenario field(s) {unknown}; valid: {', '.join(values)}")
    for key, value in overrides.items():
        values[key] = jnp.broadcast_to(jnp.asarray(value, values[key].dtype), values[key].shape)
    return BucketBrigadeParams(**values)


def stack_params(params: list[BucketBrigadeParams]) -> BucketBrigadeParams:
    """Stack scenarios along a leading axis (vmap a compiled step over them)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *params)


@struct.dataclass
class BucketBrigadeState:
    houses: jax.Array  # i32[H] SAFE/BURNING/RUINED
    positions: jax.Array  # i32[N] last target house
    signals: jax.Array  # i32[N] last broadcast bit
    last_actions: jax.Array  # i32[N, 3] house, mode, signal
    round1_signals: jax.Array  # i32[N] (two-phase only)
    fire_progress: jax.Array  # f32[H] (continuous mode only)
    night: jax.Array  # i32[] nights played
    phase: jax.Array  # i32[] 0 = round 1 of a two-phase night, 1 = an ordinary night
    team_return: jax.Array  # f32[] sum of all agents' rewards this episode
    scenario: BucketBrigadeParams  # the episode's scenario with a scenario pool (else the reset's params, unused)


class BucketBrigade(Env):
    """Bucket Brigade (see the module docstring)."""

    name = "bucket_brigade"
    evaluation_report = "team"
    #: the original trainer's scripted opponents, in seat order (``opponents: 3`` takes the first three)
    default_opponents = ("random_genome", "random_genome", "firefighter", "coordinator")

    def __init__(self, scenario: str = "default", num_agents: int = 4, termination: str = "python",
                 max_nights: int = MAX_NIGHTS, obs_layout: str = "flat", normalize_obs: bool = False,
                 two_phase: bool = False, adjacent_only: bool = False,
                 scenario_pool: tuple[str, ...] | None = None):
        if termination not in ("python", "rust"):
            raise ValueError(f"termination must be 'python' or 'rust', got {termination!r}")
        if obs_layout not in ("flat", "legacy"):
            raise ValueError(f"obs_layout must be 'flat' or 'legacy', got {obs_layout!r}")
        if int(num_agents) < 1 or int(max_nights) < 1:
            raise ValueError("num_agents and max_nights must be positive")
        scenario_params(scenario, int(num_agents))  # validates the name and the homes
        pool = tuple(scenario_pool) if scenario_pool else None
        for name in pool or ():
            scenario_params(name, int(num_agents))
            if any(SCENARIOS[name][k] != SCENARIOS[scenario][k] for k in _STATIC_KEYS):
                raise ValueError(f"scenario_pool: {name!r} differs from {scenario!r} in house count or "
                                 "extinguish mode, which are static; pool scenarios must share them")
        self.scenario = scenario
        self.num_agents = int(num_agents)
        self.agents = tuple(f"agent_{i}" for i in range(self.num_agents))
        self.num_houses = SCENARIOS[scenario]["num_houses"]
        self.continuous = SCENARIOS[scenario]["extinguish"] == "continuous"
        self.termination = termination
        self.max_nights = int(max_nights)
        self.two_phase = bool(two_phase)
        self.max_steps = self.max_nights * (2 if self.two_phase else 1)
        self.obs_layout = obs_layout
        self.normalize_obs = bool(normalize_obs)
        self.adjacent_only = bool(adjacent_only)
        self.scenario_pool = pool
        self._config = (scenario, self.num_agents, termination, self.max_nights, obs_layout, self.normalize_obs,
                        self.two_phase, self.adjacent_only, pool)
        h = self.num_houses
        #: discrete action = 4·house + 2·mode + signal (networks may predict the three parts apart)
        self.action_factors = (h, 2, 2)
        idx = np.arange(h)
        gap = np.abs(idx[:, None] - idx[None, :])
        self.ring_distance = np.minimum(gap, h - gap).astype(np.int32)  # [H, H]
        #: ownership[i, h] = agent i owns house h (h mod N == i)
        self.ownership = (idx[None, :] % self.num_agents == np.arange(self.num_agents)[:, None])
        self._pool_params = (stack_params([scenario_params(n, self.num_agents) for n in pool]) if pool else None)

    # ---- spaces and parameters -----------------------------------------------------------
    @property
    def default_params(self) -> BucketBrigadeParams:
        params = scenario_params(self.scenario, self.num_agents)
        return params.replace(adjacent_only=jnp.asarray(self.adjacent_only))

    @property
    def obs_dim(self) -> int:
        h, n = self.num_houses, self.num_agents
        if self.obs_layout == "legacy":
            return h + 10 + 4 * n
        return h + 5 * n + 12 + ((n + 1) if self.two_phase else 0)

    def observation_space(self, params=None) -> Box:
        return Box(-np.inf, np.inf, (self.obs_dim,))

    def action_space(self, params=None) -> Discrete:
        return Discrete(4 * self.num_houses)

    def encode_action(self, house, mode, signal=None) -> jax.Array:
        """Flat action(s) from (house, mode[, signal]); signal defaults to mode (the legacy form)."""
        house, mode = jnp.asarray(house, jnp.int32), jnp.asarray(mode, jnp.int32)
        signal = mode if signal is None else jnp.asarray(signal, jnp.int32)
        return 4 * house + 2 * mode + signal

    @staticmethod
    def decode_action(action) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(house, mode, signal) of flat action(s)."""
        action = jnp.asarray(action, jnp.int32)
        return action // 4, (action // 2) % 2, action % 2

    def check_action(self, action, params=None) -> jax.Array:
        """Flat ``[N]`` ints, or ``[N, 3]`` (house, mode, signal), or legacy ``[N, 2]`` (house, mode)."""
        action = jnp.asarray(action)
        if action.ndim == 2 and action.shape[0] == self.num_agents and action.shape[1] in (2, 3):
            if not jnp.issubdtype(action.dtype, jnp.integer):
                raise TypeError(f"{self.name}: actions must be integers, got dtype {action.dtype}")
            signal = action[:, 2] if action.shape[1] == 3 else None
            return self.encode_action(action[:, 0], action[:, 1], signal)
        return super().check_action(action, params)

    # ---- dynamics ------------------------------------------------------------------------
    def _scenario_of(self, state: BucketBrigadeState, params: BucketBrigadeParams) -> BucketBrigadeParams:
        """The step's params, or with a scenario pool the episode's sample (kept in the state)."""
        return state.scenario if self.scenario_pool else params

    def reset_env(self, key, params: BucketBrigadeParams):
        key_pool, key_fire = jax.random.split(key)
        if self.scenario_pool:
            pick = jax.random.randint(key_pool, (), 0, len(self.scenario_pool))
            scenario = jax.tree_util.tree_map(lambda x: x[pick], self._pool_params)
            scenario = scenario.replace(adjacent_only=params.adjacent_only)
        else:
            scenario = params
        h, n = self.num_houses, self.num_agents
        houses = jnp.where(jax.random.uniform(key_fire, (h,)) < scenario.rho, BURNING, SAFE).astype(jnp.int32)
        zeros = jnp.zeros((n,), jnp.int32)
        state = BucketBrigadeState(
            houses=houses, positions=zeros, signals=zeros, last_actions=jnp.zeros((n, 3), jnp.int32),
            round1_signals=zeros, fire_progress=jnp.zeros((h,), jnp.float32), night=jnp.zeros((), jnp.int32),
            phase=jnp.asarray(0 if self.two_phase else 1, jnp.int32), team_return=jnp.zeros((), jnp.float32),
            scenario=scenario)  # without a pool: the reset's params, a placeholder of the same structure
        return self._observations(state, scenario), state

    def step_env(self, key, state: BucketBrigadeState, action, params: BucketBrigadeParams):
        scenario = self._scenario_of(state, params)
        house, mode, signal = self.decode_action(action)
        new_state, reward, terminated, truncated = self._night(key, state, house, mode, signal, scenario)
        if self.two_phase:
            first_round = state.phase == 0
            round1 = state.replace(round1_signals=signal, phase=jnp.asarray(1, jnp.int32))
            night = new_state.replace(phase=jnp.asarray(0, jnp.int32))  # the next step is a round 1
            new_state = jax.tree_util.tree_map(lambda x, y: jnp.where(first_round, x, y), round1, night)
            reward = jnp.where(first_round, 0.0, reward)
            terminated, truncated = terminated & ~first_round, truncated & ~first_round
        obs = self._observations(new_state, scenario)
        return obs, new_state, reward, terminated | truncated, {"terminated": terminated, "truncated": truncated}

    def _night(self, key, state: BucketBrigadeState, house, mode, signal, p: BucketBrigadeParams):
        h = self.num_houses
        key_fire, key_spread, key_ignite = jax.random.split(key, 3)
        ring = jnp.asarray(self.ring_distance)
        house = jnp.clip(house, 0, h - 1)
        far = ring[p.homes, house] > 1
        house = jnp.where(p.adjacent_only & far, p.homes, house)
        work = mode == WORK
        prev = state.houses
        burning = prev == BURNING
        workers = (jax.nn.one_hot(house, h, dtype=jnp.float32) * work[:, None]).sum(0)  # k per house
        progress = state.fire_progress
        if self.continuous:
            progress = jnp.where(burning & (workers > 0), progress + workers * p.suppression, progress)
            saved = burning & (progress >= 1.0)
            progress = jnp.where(saved, 0.0, progress)
            houses = jnp.where(saved, SAFE, prev)
            # spread with snapshot semantics: one draw per (burning source, SAFE neighbour) pair
            src = houses == BURNING
            draws = jax.random.uniform(key_spread, (2, h))  # [from left neighbour, from right neighbour]
            from_left = jnp.roll(src, 1) & (draws[0] < p.beta)
            from_right = jnp.roll(src, -1) & (draws[1] < p.beta)
            houses = jnp.where((houses == SAFE) & (from_left | from_right), BURNING, houses)
        else:
            saved = burning & (jax.random.uniform(key_fire, (h,)) < 1.0 - (1.0 - p.kappa) ** workers)
            houses = jnp.where(saved, SAFE, jnp.where(burning, RUINED, prev))
        ignite = (houses == SAFE) & (jax.random.uniform(key_ignite, (h,)) < p.rho)
        houses = jnp.where(ignite, BURNING, houses).astype(jnp.int32)
        progress = jnp.where(houses == BURNING, progress, 0.0) if self.continuous else progress

        safe_now, ruined_now = houses == SAFE, houses == RUINED
        t = state.night
        all_safe, all_ruined = safe_now.all(), ruined_now.all()
        finished = all_safe | all_ruined
        if self.termination == "python":
            finished = finished | ~(houses == BURNING).any()
        terminated = (t.astype(jnp.float32) >= p.min_nights) & finished
        truncated = ~terminated & (t + 1 >= self.max_nights)

        reward = self._rewards(prev, houses, house, work, terminated, p)
        new_state = state.replace(
            houses=houses, positions=house, signals=signal, last_actions=jnp.stack([house, mode, signal], -1),
            fire_progress=progress, night=t + 1, team_return=state.team_return + reward.sum())
        return new_state, reward, terminated, truncated

    def _rewards(self, prev, houses, target, work, terminated, p: BucketBrigadeParams) -> jax.Array:
        h = self.num_houses
        ring = jnp.asarray(self.ring_distance)
        own = jnp.asarray(self.ownership)  # [N, H]
        work_f = work.astype(jnp.float32)
        labour = jnp.where(work, -(p.work_cost + p.distance_cost * ring[p.homes, target]), p.rest_reward)
        safe_now, ruined_now = houses == SAFE, houses == RUINED
        save = (prev != SAFE) & safe_now
        ownership = (save[None, :] * jnp.where(own, p.reward_own[:, None], p.reward_other[:, None])
                     - ruined_now[None, :] * jnp.where(own, p.penalty_own[:, None], p.penalty_other[:, None])).sum(1)
        safe_count, ruined_count = safe_now.sum(), ruined_now.sum()
        team = p.team_reward * safe_count / h - p.team_penalty * ruined_count / h
        team = team + p.progress_coef * (safe_count - (prev == SAFE).sum())

        def potential(hs):
            return (p.team_reward * (hs == SAFE).sum() - p.team_penalty * (hs == RUINED).sum()
                    - 0.5 * p.team_penalty * (hs == BURNING).sum()) / h

        team = team + p.potential_coef * (p.potential_gamma * potential(houses) * ~terminated - potential(prev))
        on_target = jax.nn.one_hot(target, h, dtype=jnp.float32) * work_f[:, None]  # [N, H]
        workers = jnp.maximum(on_target.sum(0), 1.0)
        went_safe = (prev == BURNING) & safe_now
        stayed_safe = (prev == SAFE) & safe_now
        shaping = (on_target * (p.work_bonus_saved * went_safe / workers + p.work_bonus_safe * stayed_safe)).sum(1)
        return (labour + ownership + team + shaping).astype(jnp.float32)

    # ---- observations --------------------------------------------------------------------
    def _scenario_info(self, p: BucketBrigadeParams) -> jax.Array:
        n = jnp.asarray(float(self.num_agents))
        if self.obs_layout == "legacy":
            parts = [p.beta, p.kappa, p.rho, p.team_reward, p.team_penalty, p.work_cost, p.min_nights, n,
                     jnp.zeros(()), jnp.zeros(())]
            scale = [1, 1, 1, 100, 100, 1, 20, 10, 1, 1]
        else:
            parts = [p.beta, p.kappa, p.rho, p.team_reward, p.team_penalty, p.reward_own.mean(),
                     p.reward_other.mean(), p.penalty_own.mean(), p.penalty_other.mean(), p.work_cost,
                     p.min_nights, n]
            scale = [1, 1, 1, 100, 100, 100, 100, 100, 100, 1, 20, 10]
        info = jnp.stack([jnp.asarray(x, jnp.float32) for x in parts])
        return info / jnp.asarray(scale, jnp.float32) if self.normalize_obs else info

    def _shared_observation(self, state: BucketBrigadeState, p: BucketBrigadeParams) -> jax.Array:
        h = self.num_houses
        f = lambda x: x.astype(jnp.float32)
        house_scale = max(h - 1, 1) if self.normalize_obs else 1
        houses = f(state.houses) / (2.0 if self.normalize_obs else 1.0)
        last = state.last_actions[:, :2].astype(jnp.float32) / jnp.asarray([house_scale, 1.0])
        parts = [houses, f(state.signals), f(state.positions) / house_scale, last.reshape(-1), self._scenario_info(p)]
        if self.two_phase and self.obs_layout == "flat":
            parts += [f(state.round1_signals), f(state.phase)[None]]
        return jnp.concatenate(parts)

    def _observations(self, state: BucketBrigadeState, p: BucketBrigadeParams) -> jax.Array:
        shared = jnp.broadcast_to(self._shared_observation(state, p), (self.num_agents, self.obs_dim - (
            0 if self.obs_layout == "legacy" else self.num_agents)))
        if self.obs_layout == "legacy":
            return shared
        return jnp.concatenate([shared, jnp.eye(self.num_agents, dtype=jnp.float32)], axis=1)

    def global_state(self, state: BucketBrigadeState, params=None) -> jax.Array:
        """The shared observation (no identity) plus the night as a fraction of ``max_nights``."""
        p = self._scenario_of(state, self.default_params if params is None else params)
        return jnp.concatenate([self._shared_observation(state, p),
                                (state.night / self.max_nights).astype(jnp.float32)[None]])

    def outcome_statistics(self, state: BucketBrigadeState, params=None) -> dict[str, jax.Array]:
        """Per episode: team reward per night (all agents' rewards summed, divided by the nights
        played: the spec's parity metric), nights, and the fractions of houses safe / ruined at the end."""
        nights = jnp.maximum(state.night, 1).astype(jnp.float32)
        return {"team_reward_per_step": state.team_return / nights, "nights": state.night.astype(jnp.float32),
                "houses_safe": (state.houses == SAFE).mean(), "houses_ruined": (state.houses == RUINED).mean()}

    # ---- display -------------------------------------------------------------------------
    def describe(self, state: BucketBrigadeState, params=None) -> str:
        s = jax.tree_util.tree_map(np.asarray, state)
        marks = "".join(".*#"[int(x)] for x in s.houses)
        acts = ", ".join(f"{a}:{'work' if m else 'rest'}@{hs}{' !' if sg else ''}"
                         for a, (hs, m, sg) in zip(self.agents, s.last_actions, strict=True))
        return f"night {int(s.night)} houses [{marks}] (. safe, * burning, # ruined); last actions {acts}"

    def render(self, state: BucketBrigadeState, params=None, size: int = 220) -> jax.Array:
        """The ring of houses (green safe, red burning, black ruined, owner number inside) and each
        agent as a dot beside its last target: filled when it worked, hollow when it rested, with a
        yellow ring when it signalled."""
        h, n = self.num_houses, self.num_agents
        img = draw.canvas(size, size)
        ys, xs = jnp.mgrid[0:size, 0:size]
        centre, radius = size / 2, size * 0.36
        colours = jnp.asarray([(60, 170, 60), (220, 50, 40), (30, 30, 30)], jnp.uint8)
        for k in range(h):
            angle = 2 * np.pi * k / h - np.pi / 2
            cy, cx = centre + radius * np.sin(angle), centre + radius * np.cos(angle)
            img = draw.fill_rect(img, int(cy) - 9, int(cx) - 9, 18, 18, (0, 0, 0))
            inside = (jnp.abs(ys - cy) < 8) & (jnp.abs(xs - cx) < 8)
            img = jnp.where(inside[..., None], colours[state.houses[k]], img)
            img = draw.draw_text(img, str(k % n), int(cy) - 2, int(cx) - 1, 1, (255, 255, 255))
        for i in range(n):
            target = state.positions[i]
            angle = 2 * jnp.pi * target / h - jnp.pi / 2
            spread = (i - (n - 1) / 2) * 0.12
            cy = centre + (radius - 26) * jnp.sin(angle + spread)
            cx = centre + (radius - 26) * jnp.cos(angle + spread)
            d2 = (ys - cy) ** 2 + (xs - cx) ** 2
            worked = state.last_actions[i, 1] == WORK
            body = (d2 <= 16) & (worked | (d2 > 6))
            halo = (state.signals[i] == 1) & (d2 <= 36) & (d2 > 20)
            img = jnp.where(halo[..., None], jnp.asarray((230, 200, 0), jnp.uint8), img)
            img = jnp.where(body[..., None], jnp.asarray((40, 80, 200), jnp.uint8), img)
        img = draw.draw_text(img, "NIGHT", 4, 4, 1)
        return draw.draw_number(img, state.night, 4, 26, 3)


# ---- scripted agents ---------------------------------------------------------------------------

GENES = ("honesty_bias", "work_tendency", "neighbor_help_bias", "own_house_priority", "risk_aversion",
         "coordination_weight", "exploration_rate", "fatigue_memory", "rest_reward_bias", "altruism_factor")

#: the five archetypes (spec §5.1)
ARCHETYPES: dict[str, tuple[float, ...]] = {
    "firefighter": (1.0, 0.9, 0.5, 0.8, 0.5, 0.7, 0.1, 0.0, 0.0, 0.8),
    "free_rider": (0.7, 0.2, 0.0, 0.9, 0.0, 0.0, 0.1, 0.0, 0.9, 0.0),
    "hero": (1.0, 1.0, 1.0, 0.5, 0.1, 0.5, 0.0, 0.9, 0.0, 1.0),
    "coordinator": (0.9, 0.6, 0.7, 0.6, 0.8, 1.0, 0.05, 0.0, 0.2, 0.6),
    "liar": (0.1, 0.7, 0.0, 0.9, 0.2, 0.8, 0.3, 0.0, 0.4, 0.2),
}

#: V7 evolved genomes (spec §5.5; simplified heuristic, Rust rule, 100-night cap)
EVOLVED_V7: dict[str, tuple[float, ...]] = {
    "chain_reaction": (.419, .000, 1.00, .420, .904, .866, .233, .157, 1.00, .040),
    "deceptive_calm": (.649, .211, .742, 1.00, .106, .032, .053, .779, 1.00, .463),
    "default": (.372, .074, .000, .219, .983, .197, .917, .685, 1.00, .807),
    "early_containment": (.154, .000, .059, .048, .269, .556, 1.00, .795, .980, .618),
    "easy": (.457, .000, .746, .000, .598, .427, .867, .530, 1.00, .067),
    "greedy_neighbor": (.902, .000, .116, .115, .005, 1.00, .001, .498, 1.00, .000),
    "hard": (.644, .047, .000, .265, .877, .441, .066, .079, 1.00, .344),
    "mixed_motivation": (.702, .132, .101, .533, .070, 1.00, .258, .039, 1.00, .908),
    "overcrowding": (.170, .020, .266, .140, .698, .812, .182, .168, .912, .954),
    "rest_trap": (.573, .173, .024, .000, .770, .613, .819, .630, 1.00, .475),
    "sparse_heroics": (.320, .038, .494, .627, .091, .920, .670, .569, 1.00, .165),
    "trivial_cooperation": (.488, .000, .613, .931, .683, .342, .284, .271, .711, .978),
}


@dataclass(frozen=True)
class ObsReader:
    """Decodes one agent's flat observation (either scaling) back into game quantities.

    Scripted agents read their id from the identity one-hot, so they need ``obs_layout="flat"``.
    """

    num_houses: int
    num_agents: int
    normalized: bool
    two_phase: bool

    @classmethod
    def of(cls, env: BucketBrigade) -> ObsReader:
        if env.obs_layout != "flat":
            raise ValueError("Bucket Brigade scripted agents read their id from the identity one-hot; "
                             "use obs_layout='flat'")
        return cls(env.num_houses, env.num_agents, env.normalize_obs, env.two_phase)

    def read(self, obs: jax.Array) -> dict[str, jax.Array]:
        h, n = self.num_houses, self.num_agents
        house_scale = max(h - 1, 1) if self.normalized else 1
        houses = jnp.round(obs[:h] * (2.0 if self.normalized else 1.0)).astype(jnp.int32)
        locations = jnp.round(obs[h + n:h + 2 * n] * house_scale).astype(jnp.int32)
        last = obs[h + 2 * n:h + 4 * n].reshape(n, 2)
        agent = jnp.argmax(obs[-n:]).astype(jnp.int32)
        last_house = jnp.round(last[agent, 0] * house_scale).astype(jnp.int32)
        last_mode = jnp.round(last[agent, 1]).astype(jnp.int32)
        fresh = (jnp.abs(obs[h:h + 4 * n]).sum() == 0)  # nothing has happened yet (the first night)
        return {"houses": houses, "locations": locations, "agent": agent, "last_house": last_house,
                "last_mode": last_mode, "fresh": fresh}


def _uniform_choice(key, allowed: jax.Array, fallback: jax.Array) -> jax.Array:
    """A uniformly random index among the True entries of ``allowed`` (``fallback`` if none)."""
    scores = jnp.where(allowed, jax.random.uniform(key, allowed.shape), -1.0)
    return jnp.where(allowed.any(), jnp.argmax(scores), fallback).astype(jnp.int32)


def _flat(house, mode, signal) -> jax.Array:
    return (4 * house + 2 * mode + signal).astype(jnp.int32)


@dataclass(frozen=True)
class SimplifiedHeuristicAct:
    """The Rust engine's heuristic (spec §5.2; params = the 10-gene genome, only genes 0, 1, 3, 8 act).

    WORK with probability work_tendency·(1 − rest_reward_bias): on the own house (agent_id mod 10,
    then mod H) if it burns and a draw < own_house_priority, else on a uniformly random burning
    house, else on the own house. Otherwise REST at the own house. Signal = mode with probability
    honesty_bias, else the flipped bit.
    """

    reader: ObsReader

    def __call__(self, genome, obs, mask, key):
        o = self.reader.read(obs)
        k_work, k_own, k_pick, k_honest = jax.random.split(key, 4)
        own = (o["agent"] % 10) % self.reader.num_houses
        burning = o["houses"] == BURNING
        work = jax.random.uniform(k_work) < genome[1] * (1.0 - genome[8])
        go_own = burning[own] & (jax.random.uniform(k_own) < genome[3])
        target = jnp.where(go_own, own, _uniform_choice(k_pick, burning, own))
        house = jnp.where(work, target, own)
        mode = work.astype(jnp.int32)
        signal = jnp.where(jax.random.uniform(k_honest) < genome[0], mode, 1 - mode)
        return _flat(house, mode, signal)


@dataclass(frozen=True)
class FullHeuristicAct:
    """The Python ``HeuristicAgent`` (spec §5.3; params = the 10-gene genome, all genes act).

    intent = clip((work_tendency + risk_aversion·burning fraction + 0.5·own_house_priority·[own
    burns])·(1 − rest_reward_bias), 0, 1); signal = [intent > 0.5] w.p. honesty_bias, else flipped;
    house ∝ max(score, 0.01) with score(h) = 0.1/(1 + ringdist(h, own)) + own_priority·[h = own]
    + 0.5·[h burns] + 0.3·neighbor_help·[a neighbour burns] + 0.1·coordination·#agents last at h
    − 0.2·risk_aversion·#burning neighbours; mode: WORK w.p. honesty_bias after signal 1, w.p.
    intent·altruism after signal 0; w.p. exploration_rate (house, mode) uniform; then w.p.
    fatigue_memory repeat the previous (house, mode), except on the first night (read as "no
    agent field set yet"). Own house = agent_id mod H.
    """

    reader: ObsReader

    def __call__(self, genome, obs, mask, key):
        h = self.reader.num_houses
        o = self.reader.read(obs)
        keys = jax.random.split(key, 8)
        own = o["agent"] % h
        burning = (o["houses"] == BURNING).astype(jnp.float32)
        own_burning = burning[own]
        intent = jnp.clip((genome[1] + genome[4] * burning.mean() + 0.5 * genome[3] * own_burning)
                          * (1.0 - genome[8]), 0.0, 1.0)
        honest = jax.random.uniform(keys[0]) < genome[0]
        signal = jnp.where(honest, intent > 0.5, intent <= 0.5).astype(jnp.int32)
        idx = jnp.arange(h)
        gap = jnp.abs(idx - own)
        ring = jnp.minimum(gap, h - gap)
        neighbours_burning = jnp.roll(burning, 1) + jnp.roll(burning, -1)  # H = 2: the other house twice
        crowd = jax.nn.one_hot(o["locations"], h).sum(0)
        score = (0.1 / (1.0 + ring) + genome[3] * (idx == own) + 0.5 * burning
                 + 0.3 * genome[2] * (neighbours_burning > 0) + 0.1 * genome[5] * crowd
                 - 0.2 * genome[4] * neighbours_burning)
        house = jax.random.categorical(keys[1], jnp.log(jnp.maximum(score, 0.01)))
        work_prob = jnp.where(signal == 1, genome[0], intent * genome[9])
        mode = (jax.random.uniform(keys[2]) < work_prob).astype(jnp.int32)
        explore = jax.random.uniform(keys[3]) < genome[6]
        house = jnp.where(explore, jax.random.randint(keys[4], (), 0, h), house)
        mode = jnp.where(explore, jax.random.randint(keys[5], (), 0, 2), mode)
        repeat = (jax.random.uniform(keys[6]) < genome[7]) & ~o["fresh"]
        house = jnp.where(repeat, o["last_house"], house)
        mode = jnp.where(repeat, o["last_mode"], mode)
        return _flat(house, mode, signal)


HEURISTICS = {"simplified": SimplifiedHeuristicAct, "full": FullHeuristicAct}


@dataclass(frozen=True)
class SpecialistAct:
    """If an owned house (h mod N = id) burns, WORK the lowest-index one (honest signal 1); else REST
    at the lowest owned house (signal 0). An agent that owns nothing rests at house id mod H."""

    reader: ObsReader

    def __call__(self, params, obs, mask, key):
        h, n = self.reader.num_houses, self.reader.num_agents
        o = self.reader.read(obs)
        owned = (jnp.arange(h) % n) == o["agent"]
        fire = owned & (o["houses"] == BURNING)
        home = jnp.where(owned.any(), jnp.argmax(owned), o["agent"] % h)
        work = fire.any()
        house = jnp.where(work, jnp.argmax(fire), home)
        return _flat(house, work.astype(jnp.int32), work.astype(jnp.int32))


@dataclass(frozen=True)
class AlwaysRestAct:
    """REST at the home house (id mod H), signal 0, every night."""

    reader: ObsReader

    def __call__(self, params, obs, mask, key):
        o = self.reader.read(obs)
        return _flat(o["agent"] % self.reader.num_houses, 0, 0)


@dataclass(frozen=True)
class BatteryFirefighterAct:
    """The scripted battery's firefighter: w.p. ``work_prob`` WORK a uniformly random burning house
    in scope (``owned`` houses or ``any``), honest signal; otherwise (or when none burns) REST at home."""

    reader: ObsReader
    scope: str = "any"

    def __call__(self, work_prob, obs, mask, key):
        h, n = self.reader.num_houses, self.reader.num_agents
        o = self.reader.read(obs)
        k_work, k_pick = jax.random.split(key)
        in_scope = (jnp.arange(h) % n) == o["agent"] if self.scope == "owned" else jnp.ones((h,), bool)
        fire = in_scope & (o["houses"] == BURNING)
        home = o["agent"] % h
        work = fire.any() & (jax.random.uniform(k_work) < work_prob)
        house = jnp.where(work, _uniform_choice(k_pick, fire, home), home)
        return _flat(house, work.astype(jnp.int32), work.astype(jnp.int32))


def _genome(values) -> jax.Array:
    genome = jnp.asarray(values, jnp.float32)
    if genome.shape != (len(GENES),):
        raise ValueError(f"a genome has {len(GENES)} genes ({', '.join(GENES)}), got shape {genome.shape}")
    return genome


def heuristic_policy(env: BucketBrigade, genome=ARCHETYPES["firefighter"], variant: str = "simplified",
                     name: str = "heuristic") -> Policy:
    """The 10-gene heuristic agent; ``variant`` "simplified" (Rust, spec §5.2) or "full" (Python, §5.3).
    The genome is the Policy's params, so populations of genomes vmap without recompiling."""
    if variant not in HEURISTICS:
        raise ValueError(f"variant must be one of {', '.join(HEURISTICS)}, got {variant!r}")
    return Policy(_genome(genome), HEURISTICS[variant](ObsReader.of(env)), name)


def _archetype(name: str):
    def factory(env: BucketBrigade, variant: str = "simplified") -> Policy:
        return heuristic_policy(env, ARCHETYPES[name], variant, name)

    factory.__name__ = f"{name}_policy"
    return factory


def evolved_policy(env: BucketBrigade, scenario: str | None = None, variant: str = "simplified") -> Policy:
    """The V7 evolved genome of ``scenario`` (default: the env's)."""
    scenario = scenario or env.scenario
    if scenario not in EVOLVED_V7:
        raise ValueError(f"no evolved V7 genome for scenario {scenario!r}; available: {', '.join(EVOLVED_V7)}")
    return heuristic_policy(env, EVOLVED_V7[scenario], variant, f"evolved_{scenario}")


def random_genome_policy(env: BucketBrigade, variant: str = "full", seed: int = 0) -> Policy:
    """A heuristic with genes drawn U(0, 1) (the original's "random" opponent). Its ``act_fn`` has
    ``sample_params``: :class:`jaxmarl_lab.wrappers.ScriptedSeats` redraws the genome every episode."""
    act = RandomGenomeAct(ObsReader.of(env), variant)
    return Policy(act.sample_params(jax.random.key(seed)), act, "random_genome")


@dataclass(frozen=True)
class RandomGenomeAct:
    """A heuristic whose genome is resampled per episode by seat wrappers (``sample_params``)."""

    reader: ObsReader
    variant: str = "full"

    def sample_params(self, key: jax.Array) -> jax.Array:
        return jax.random.uniform(key, (len(GENES),))

    def __call__(self, genome, obs, mask, key):
        return HEURISTICS[self.variant](self.reader)(genome, obs, mask, key)


def specialist_policy(env: BucketBrigade) -> Policy:
    return Policy(None, SpecialistAct(ObsReader.of(env)), "specialist")


def always_rest_policy(env: BucketBrigade) -> Policy:
    return Policy(None, AlwaysRestAct(ObsReader.of(env)), "always_rest")


def battery_firefighter_policy(env: BucketBrigade, scope: str = "any", work_prob: float = 1.0) -> Policy:
    if scope not in ("any", "owned"):
        raise ValueError(f"scope must be 'any' or 'owned', got {scope!r}")
    return Policy(jnp.asarray(work_prob, jnp.float32), BatteryFirefighterAct(ObsReader.of(env), scope),
                  f"battery_firefighter_{scope}")


BucketBrigade.baseline_policies = {
    "random": random_policy,
    "always_rest": always_rest_policy,
    "specialist": specialist_policy,
    "heuristic": heuristic_policy,
    **{name: _archetype(name) for name in ARCHETYPES},
    "evolved": evolved_policy,
    "random_genome": random_genome_policy,
    "battery_firefighter": battery_firefighter_policy,
}
