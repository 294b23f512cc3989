"""Therapy simulator: a therapist agent against a scripted interpersonal client (spec therapy.md, RL era).

One agent, the therapist; the client is part of the env. Both act in the 8 circumplex octants
``D WD W WS S CS C CD`` (0..7). Every episode samples a client: a utility matrix U[c, t] drawn cell
by cell in [U_MIN, U_MAX] (width 20), and a 50-pair memory of past (client, partner) exchanges
from one interpersonal pattern. One step = one session: the client's pending octant (chosen
before the therapist acts, visible in the observation) meets the therapist's action.

**Client model.** Memory weights w_k ∝ 1 + sqrt(k/49) (oldest k = 0; newest weighs 2×).
RS = Σ_k w_k·U[c_k, t_k]; bond = σ(2α(x − offset)) with x = (RS − min U)/(max U − min U).
Expected payoff of client octant i: E[i] = Q(a_i, bond), the bond-percentile of the adjusted row
(sorted ascending, position 7·bond, linear interpolation), with ``mechanism``:

    bond_only                            a_ij = U_ij
    frequency_amplifier (default)        a_ij = U_ij·(1 + P(j)·k)
    conditional_amplifier                a_ij = U_ij·(1 + P(j|i)·k)
    bond_weighted_frequency_amplifier    a_ij = U_ij·(1 + P(j)·bond·k)
    bond_weighted_conditional_amplifier  a_ij = U_ij·(1 + P(j|i)·bond·k)

P(j) = Σ_k w_k[t_k = j]; P(j|i) = (C_ij + 0.1)/(Σ_j C_ij + 0.8), C_ij = Σ_k w_k[c_k = i, t_k = j];
k = ``history_weight``. The client plays softmax(E/``entropy``). With ``enable_perception`` the
client stores the therapist's action correctly with probability ``baseline_accuracy`` and
otherwise the modal action of its last 15 stored partner actions (ties: the most recent).

**Episode.** ``terminated`` on success (RS ≥ min U + threshold·(max U − min U)) or dropout (checked
once, after session 10: RS < initial RS); ``truncated`` at ``max_sessions``. Terminal rewards
only: dropout −150 (wins over success), success 100 + 2·(max_sessions − n), else 0. The first
client octant is drawn at reset (the client acts first). A jitted step cannot raise, so an
out-of-range therapist action is clipped to 0..7. ``potential_shaping`` = λ > 0 adds the
training-only, policy-invariant term λ(γΦ(s′)·[not terminated] − Φ(s)) with Φ = 100·(RS − min U)/
(max U − min U); success and dropout are unaffected (evaluate with λ = 0 for the original's returns).

**Observation** f32[1, 52] (the original's dict, flattened)::

    [0]      client_action   pending client octant 0..7
    [1]      session_number  n / max_sessions
    [2:52]   history         this episode's last ≤ 25 exchanges [c0, t0, c1, t1, ...], oldest
                             first, actual therapist actions, unused slots = 8

``omniscient=True`` appends 72 entries: U min-max scaled to [−1, 1] (64), RS scaled to [−1, 1],
bond, entropy clipped to [1.5, 5] and scaled to [−1, 1], mechanism id, last actual and last
perceived therapist action (8 = none), running misperception rate, perception flag.

Numbers that may vary between runs of one compiled program (mechanism, threshold, entropy,
history weight, bond α/offset, perception, pattern probabilities) live in ``params``.
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

OCTANTS = ("D", "WD", "W", "WS", "S", "CS", "C", "CD")
COMPLEMENT = np.array([4, 3, 2, 1, 0, 7, 6, 5], np.int32)
MECHANISMS = ("bond_only", "frequency_amplifier", "conditional_amplifier", "bond_weighted_frequency_amplifier",
              "bond_weighted_conditional_amplifier")
PATTERNS = ("cold_stuck", "dominant_stuck", "submissive_stuck", "mixed_random", "cold_warm", "conflictual",
            "complementary_perfect")
DEFAULT_PATTERNS = ("cold_stuck", "dominant_stuck", "submissive_stuck", "mixed_random", "cold_warm")
MEMORY_SIZE, PERCEPTION_WINDOW, HISTORY_PAIRS, PAD = 50, 15, 25, 8
CONDITIONAL_SMOOTHING = 0.1
DROPOUT_SESSION = 10

U_MIN = np.array([
    [-40, -50, -10, 20, 30, 20, -10, -50],
    [-30, 0, 30, 50, 10, -30, -50, -70],
    [-10, 30, 40, 30, -10, -70, -60, -70],
    [10, 50, 30, 0, -30, -70, -50, -30],
    [30, 20, -10, -50, -40, -50, -10, 20],
    [10, -10, -30, -40, -20, -10, 10, 20],
    [-10, -40, -30, -40, -10, 10, 20, 10],
    [-30, -40, -20, -10, 10, 20, 10, -10],
], np.float32)
U_MAX = U_MIN + 20.0
U_MID = (U_MIN + U_MAX) / 2

#: memory weights, oldest first (constant: the memory is always full)
_RAW = 1.0 + np.sqrt(np.arange(MEMORY_SIZE) / (MEMORY_SIZE - 1))
MEMORY_WEIGHTS = (_RAW / _RAW.sum()).astype(np.float32)

#: stuck patterns: problem octants, RL-era partner responses (uniform over 3), final-generator map
_STUCK = {
    "cold_stuck": ((5, 6, 7), (1, 2, 3), {5: 3, 6: 2, 7: 1}),
    "dominant_stuck": ((0, 1, 7), (0, 1, 7), {0: 0, 1: 7, 7: 1}),
    "submissive_stuck": ((3, 4, 5), (3, 4, 5), {3: 5, 4: 4, 5: 3}),
}


def memory_weights() -> jax.Array:
    return jnp.asarray(MEMORY_WEIGHTS)


def relationship_satisfaction(u: jax.Array, mem_c: jax.Array, mem_t: jax.Array) -> jax.Array:
    """RS = Σ_k w_k·U[c_k, t_k]."""
    return (memory_weights() * u[mem_c, mem_t]).sum()


def bond_of(rs, rs_min, rs_max, alpha, offset) -> jax.Array:
    x = (rs - rs_min) / (rs_max - rs_min)
    return jax.nn.sigmoid(alpha * 2.0 * (x - offset))


def bond_percentile(rows: jax.Array, bond) -> jax.Array:
    """Q(v, bond) of every row: the sorted row read at position 7·bond, linearly interpolated."""
    s = jnp.sort(rows, axis=-1)
    pos = 7.0 * bond
    lo = jnp.clip(jnp.floor(pos), 0, 7).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, 7)
    f = pos - lo
    return (1 - f) * s[..., lo] + f * s[..., hi]


def expected_payoffs(u, mem_c, mem_t, bond, mechanism, history_weight) -> jax.Array:
    """E[0..7] under ``mechanism`` (index into MECHANISMS; may be traced)."""
    w = memory_weights()
    marginal = (w[:, None] * jax.nn.one_hot(mem_t, 8)).sum(0)  # P(j)
    counts = (w[:, None, None] * jax.nn.one_hot(mem_c, 8)[:, :, None] * jax.nn.one_hot(mem_t, 8)[:, None, :]).sum(0)
    conditional = (counts + CONDITIONAL_SMOOTHING) / (counts.sum(1, keepdims=True) + 8 * CONDITIONAL_SMOOTHING)
    k, k_eff = history_weight, bond * history_weight
    adjusted = jnp.stack([u, u * (1 + marginal[None, :] * k), u * (1 + conditional * k),
                          u * (1 + marginal[None, :] * k_eff), u * (1 + conditional * k_eff)])
    return bond_percentile(adjusted[mechanism], bond)


def perceive(action, mem_t, u_draw, accuracy, enabled):
    """What the client stores: the actual action, or the modal one of its last 15 stored partner
    actions (ties broken by the most recent occurrence). Returns (perceived, misperceived)."""
    window = mem_t[-PERCEPTION_WINDOW:]
    counts = jax.nn.one_hot(window, 8).sum(0)
    last_pos = jnp.max(jnp.where(window[:, None] == jnp.arange(8)[None, :],
                                 jnp.arange(PERCEPTION_WINDOW)[:, None], -1), axis=0)
    modal = jnp.argmax(counts * 16 + last_pos).astype(jnp.int32)
    correct = ~jnp.asarray(enabled, bool) | (u_draw < accuracy)
    perceived = jnp.where(correct, action, modal)
    return perceived, perceived != action


def initial_memory(key, pattern, rl_era: bool = True) -> tuple[jax.Array, jax.Array]:
    """(client octants, partner octants) [50] of a pattern index (PATTERNS order)."""
    keys = jax.random.split(key, 6)
    uniform_c = jax.random.randint(keys[0], (MEMORY_SIZE,), 0, 8)
    uniform_t = jax.random.randint(keys[1], (MEMORY_SIZE,), 0, 8)
    pick3 = jax.random.randint(keys[2], (MEMORY_SIZE,), 0, 3)
    from_problem = jax.random.uniform(keys[3], (MEMORY_SIZE,)) < 0.8
    response3 = jax.random.randint(keys[4], (MEMORY_SIZE,), 0, 3)
    options_c, options_t = [], []
    for name in PATTERNS[:3]:
        problem, responses, final_map = _STUCK[name]
        problem_arr = jnp.asarray(problem)
        c = jnp.where(from_problem, problem_arr[pick3], uniform_c)
        is_problem = jnp.isin(c, problem_arr)
        if rl_era:
            anti = jnp.asarray(responses)[response3]
        else:
            anti = jnp.asarray([final_map.get(i, 0) for i in range(8)])[c]
        options_c.append(c)
        options_t.append(jnp.where(is_problem, anti, uniform_t))
    options_c.append(uniform_c)  # mixed_random
    options_t.append(uniform_t)
    for c_fixed, t_fixed in ((6, 2), (0, 0)):  # cold_warm, conflictual
        options_c.append(jnp.full((MEMORY_SIZE,), c_fixed, jnp.int32))
        options_t.append(jnp.full((MEMORY_SIZE,), t_fixed, jnp.int32))
    group = jax.random.uniform(keys[5], (MEMORY_SIZE,))
    warm, mixed, cold = jnp.asarray([1, 2, 3]), jnp.asarray([0, 4]), jnp.asarray([5, 6, 7])
    c = jnp.where(group < 0.7, warm[pick3], jnp.where(group < 0.9, mixed[pick3 % 2], cold[pick3]))
    options_c.append(c)  # complementary_perfect
    options_t.append(jnp.asarray(COMPLEMENT)[c])
    return jnp.stack(options_c)[pattern].astype(jnp.int32), jnp.stack(options_t)[pattern].astype(jnp.int32)


@struct.dataclass
class TherapyParams:
    mechanism: jax.Array  # i32 index into MECHANISMS
    threshold: jax.Array  # success at RS >= min U + threshold·(max U − min U)
    entropy: jax.Array  # client softmax temperature
    history_weight: jax.Array  # k of the amplifier mechanisms
    bond_alpha: jax.Array
    bond_offset: jax.Array
    enable_perception: jax.Array  # bool
    baseline_accuracy: jax.Array
    pattern_probs: jax.Array  # f32[7] over PATTERNS (a pattern per episode)
    potential_coef: jax.Array  # training-only shaping λ (0: the original's rewards)
    potential_gamma: jax.Array  # γ of the shaping (use the learner's discount)


@struct.dataclass
class TherapyState:
    u: jax.Array  # f32[8, 8] this client's utilities
    rs_min: jax.Array
    rs_max: jax.Array
    rs_threshold: jax.Array
    mem_c: jax.Array  # i32[50] client octants, oldest first
    mem_t: jax.Array  # i32[50] perceived partner octants
    rs: jax.Array
    bond: jax.Array
    initial_rs: jax.Array
    session: jax.Array  # i32 sessions played
    pending: jax.Array  # i32 the client's next octant
    history: jax.Array  # i32[50] observation history (8 = empty)
    pattern: jax.Array  # i32 index into PATTERNS
    last_action: jax.Array  # i32 last actual therapist action (8 = none)
    last_perceived: jax.Array  # i32 (8 = none)
    misperceptions: jax.Array  # i32 count this episode
    success: jax.Array  # bool
    dropped: jax.Array  # bool


class Therapy(Env):
    """The therapy simulator (see the module docstring)."""

    name = "therapy"
    evaluation_report = "team"

    def __init__(self, mechanism: str = "frequency_amplifier",
                 pattern: str | tuple[str, ...] | list[str] = DEFAULT_PATTERNS,
                 threshold: float = 0.9, max_sessions: int = 100, entropy: float = 0.5, history_weight: float = 1.0,
                 bond_alpha: float | None = None, bond_offset: float = 0.7, enable_perception: bool = True,
                 baseline_accuracy: float = 0.5, memory_generator: str = "rl_era", omniscient: bool = False,
                 potential_shaping: float = 0.0, shaping_gamma: float = 0.99):
        if mechanism not in MECHANISMS:
            raise ValueError(f"unknown mechanism {mechanism!r}; valid: {', '.join(MECHANISMS)}")
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        unknown = [p for p in patterns if p not in PATTERNS]
        if unknown or not patterns:
            raise ValueError(f"unknown pattern(s) {unknown or patterns}; valid: {', '.join(PATTERNS)}")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if int(max_sessions) <= 0 or entropy <= 0:
            raise ValueError("max_sessions and entropy must be positive")
        if memory_generator not in ("rl_era", "final"):
            raise ValueError(f"memory_generator must be 'rl_era' or 'final', got {memory_generator!r}")
        self.mechanism, self.patterns = mechanism, patterns
        self.threshold, self.entropy, self.history_weight = float(threshold), float(entropy), float(history_weight)
        self.bond_alpha = 5.0 if bond_alpha is None else float(bond_alpha)
        self.bond_offset, self.enable_perception = float(bond_offset), bool(enable_perception)
        self.baseline_accuracy = float(baseline_accuracy)
        self.max_sessions = self.max_steps = int(max_sessions)
        self.memory_generator, self.omniscient = memory_generator, bool(omniscient)
        self.potential_shaping, self.shaping_gamma = float(potential_shaping), float(shaping_gamma)
        self.num_agents, self.agents = 1, ("therapist",)
        self._config = (mechanism, patterns, self.threshold, self.max_sessions, self.entropy, self.history_weight,
                        self.bond_alpha, self.bond_offset, self.enable_perception, self.baseline_accuracy,
                        memory_generator, self.omniscient, self.potential_shaping, self.shaping_gamma)

    @property
    def default_params(self) -> TherapyParams:
        probs = np.zeros(len(PATTERNS), np.float32)
        for p in self.patterns:
            probs[PATTERNS.index(p)] += 1.0
        f = lambda v: jnp.asarray(v, jnp.float32)
        return TherapyParams(jnp.asarray(MECHANISMS.index(self.mechanism), jnp.int32), f(self.threshold),
                             f(self.entropy), f(self.history_weight), f(self.bond_alpha), f(self.bond_offset),
                             jnp.asarray(self.enable_perception), f(self.baseline_accuracy), f(probs / probs.sum()),
                             f(self.potential_shaping), f(self.shaping_gamma))

    @property
    def evaluation_params(self) -> TherapyParams:
        """The params trained policies are evaluated under: the original's rewards (no shaping)."""
        return self.default_params.replace(potential_coef=jnp.zeros((), jnp.float32))

    @property
    def obs_dim(self) -> int:
        return 2 + 2 * HISTORY_PAIRS + (72 if self.omniscient else 0)

    def observation_space(self, params=None) -> Box:
        return Box(0.0 if not self.omniscient else -1.0, 8.0, (self.obs_dim,))

    def action_space(self, params=None) -> Discrete:
        return Discrete(8)

    # ---- dynamics ------------------------------------------------------------------------
    def _client_action(self, key, state: TherapyState, p: TherapyParams) -> jax.Array:
        payoffs = expected_payoffs(state.u, state.mem_c, state.mem_t, state.bond, p.mechanism, p.history_weight)
        return jax.random.categorical(key, payoffs / p.entropy).astype(jnp.int32)

    def reset_env(self, key, params: TherapyParams):
        k_pattern, k_u, k_mem, k_act = jax.random.split(key, 4)
        pattern = jax.random.choice(k_pattern, len(PATTERNS), p=params.pattern_probs).astype(jnp.int32)
        u = jax.random.uniform(k_u, (8, 8), minval=jnp.asarray(U_MIN), maxval=jnp.asarray(U_MAX))
        mem_c, mem_t = initial_memory(k_mem, pattern, self.memory_generator == "rl_era")
        state = self.client_state(u, mem_c, mem_t, params, pattern)
        state = state.replace(pending=self._client_action(k_act, state, params))
        return self._observation(state, params), state

    def client_state(self, u, mem_c, mem_t, params: TherapyParams, pattern=0) -> TherapyState:
        """A fresh client from its utilities and memory (no pending action yet)."""
        rs_min, rs_max = u.min(), u.max()
        rs = relationship_satisfaction(u, mem_c, mem_t)
        none = jnp.asarray(PAD, jnp.int32)
        return TherapyState(
            u=u, rs_min=rs_min, rs_max=rs_max, rs_threshold=rs_min + params.threshold * (rs_max - rs_min),
            mem_c=mem_c, mem_t=mem_t, rs=rs, bond=bond_of(rs, rs_min, rs_max, params.bond_alpha, params.bond_offset),
            initial_rs=rs, session=jnp.zeros((), jnp.int32), pending=jnp.zeros((), jnp.int32),
            history=jnp.full((2 * HISTORY_PAIRS,), PAD, jnp.int32), pattern=jnp.asarray(pattern, jnp.int32),
            last_action=none, last_perceived=none, misperceptions=jnp.zeros((), jnp.int32),
            success=jnp.asarray(False), dropped=jnp.asarray(False))

    def step_env(self, key, state: TherapyState, action, params: TherapyParams):
        k_perceive, k_next = jax.random.split(key)
        therapist = jnp.clip(action[0], 0, 7).astype(jnp.int32)
        client = state.pending
        perceived, wrong = perceive(therapist, state.mem_t, jax.random.uniform(k_perceive), params.baseline_accuracy,
                                    params.enable_perception)
        mem_c = jnp.roll(state.mem_c, -1).at[-1].set(client)
        mem_t = jnp.roll(state.mem_t, -1).at[-1].set(perceived)
        rs = relationship_satisfaction(state.u, mem_c, mem_t)
        bond = bond_of(rs, state.rs_min, state.rs_max, params.bond_alpha, params.bond_offset)
        n = state.session + 1
        full = state.session >= HISTORY_PAIRS
        history = jnp.where(full, jnp.roll(state.history, -2), state.history)
        slot = jnp.minimum(state.session, HISTORY_PAIRS - 1) * 2
        history = history.at[slot].set(client).at[slot + 1].set(therapist)
        success = rs >= state.rs_threshold
        dropped = (n == DROPOUT_SESSION) & (rs < state.initial_rs)
        terminated = success | dropped
        truncated = (n >= self.max_sessions) & ~terminated
        reward = jnp.where(dropped, -150.0, jnp.where(success, 100.0 + 2.0 * (self.max_sessions - n), 0.0))
        span = state.rs_max - state.rs_min
        potential = lambda rs: 100.0 * (rs - state.rs_min) / span  # Φ: RS as a percentage of its range
        reward = reward + params.potential_coef * (params.potential_gamma * potential(rs) * ~terminated
                                                   - potential(state.rs))
        new_state = state.replace(mem_c=mem_c, mem_t=mem_t, rs=rs, bond=bond, session=n, history=history,
                                  last_action=therapist, last_perceived=perceived,
                                  misperceptions=state.misperceptions + wrong.astype(jnp.int32),
                                  success=success & ~dropped, dropped=dropped)
        next_client = self._client_action(k_next, new_state, params)
        new_state = new_state.replace(pending=jnp.where(terminated | truncated, client, next_client))
        obs = self._observation(new_state, params)
        info = {"terminated": terminated, "truncated": truncated}
        return obs, new_state, reward[None].astype(jnp.float32), terminated | truncated, info

    # ---- observations --------------------------------------------------------------------
    def _observation(self, state: TherapyState, p: TherapyParams) -> jax.Array:
        session = (state.session / self.max_sessions).astype(jnp.float32)
        parts = [state.pending.astype(jnp.float32)[None], session[None], state.history.astype(jnp.float32)]
        if self.omniscient:
            span = jnp.maximum(state.rs_max - state.rs_min, 1e-6)
            scale = lambda x: 2 * (x - state.rs_min) / span - 1
            entropy = 2 * (jnp.clip(p.entropy, 1.5, 5.0) - 1.5) / 3.5 - 1
            rate = state.misperceptions / jnp.maximum(state.session, 1)
            parts += [scale(state.u).reshape(-1), scale(state.rs)[None], state.bond[None], entropy[None],
                      p.mechanism.astype(jnp.float32)[None], state.last_action.astype(jnp.float32)[None],
                      state.last_perceived.astype(jnp.float32)[None], rate.astype(jnp.float32)[None],
                      p.enable_perception.astype(jnp.float32)[None]]
        return jnp.concatenate([x.astype(jnp.float32) for x in parts])[None]

    def global_state(self, state: TherapyState, params=None) -> jax.Array:
        """The therapist's observation plus the client's hidden RS, bond and threshold (scaled)."""
        p = self.default_params if params is None else params
        span = jnp.maximum(state.rs_max - state.rs_min, 1e-6)
        hidden = jnp.stack([(state.rs - state.rs_min) / span, state.bond, (state.rs_threshold - state.rs_min) / span])
        return jnp.concatenate([self._observation(state, p)[0], hidden.astype(jnp.float32)])

    def outcome_statistics(self, state: TherapyState, params=None) -> dict[str, jax.Array]:
        return {"success": state.success.astype(jnp.float32), "dropout": state.dropped.astype(jnp.float32),
                "sessions": state.session.astype(jnp.float32), "final_rs": state.rs}

    def describe(self, state: TherapyState, params=None) -> str:
        s = jax.tree_util.tree_map(np.asarray, state)
        last = "none" if int(s.last_action) == PAD else OCTANTS[int(s.last_action)]
        return (f"session {int(s.session)} pattern {PATTERNS[int(s.pattern)]}: client will play "
                f"{OCTANTS[int(s.pending)]}; therapist last played {last}; RS {float(s.rs):.2f} "
                f"(threshold {float(s.rs_threshold):.2f}, initial {float(s.initial_rs):.2f}), bond {float(s.bond):.3f}")

    def render(self, state: TherapyState, params=None, size: int = 200) -> jax.Array:
        """The circumplex (dominant up, warm right) with the client's pending octant (blue) and the
        therapist's last action (orange), and bars for RS (threshold marked) and bond."""
        img = draw.canvas(size + 40, size)
        ys, xs = jnp.mgrid[0:size, 0:size]
        c, r = size / 2, size * 0.38
        d2 = (ys - c) ** 2 + (xs - c) ** 2
        ring = (d2 <= (r + 1) ** 2) & (d2 >= (r - 1) ** 2)
        board = jnp.where(ring[..., None], jnp.asarray((150, 150, 150), jnp.uint8), img[:size])
        angles = jnp.pi / 2 - jnp.arange(8) * jnp.pi / 4  # D at the top, then clockwise to warm (right)
        for who, octant, colour in (("client", state.pending, (40, 90, 210)), ("therapist", state.last_action,
                                                                            (230, 130, 20))):
            a = angles[jnp.clip(octant, 0, 7)]
            y, x = c - r * jnp.sin(a), c + r * jnp.cos(a)
            dot = ((ys - y) ** 2 + (xs - x) ** 2 <= (36 if who == "client" else 16)) & (octant < 8)
            board = jnp.where(dot[..., None], jnp.asarray(colour, jnp.uint8), board)
        img = img.at[:size].set(board)
        span = jnp.maximum(state.rs_max - state.rs_min, 1e-6)
        rs_x = jnp.clip((state.rs - state.rs_min) / span, 0, 1) * (size - 20)
        img = draw.fill_rect(img, size + 6, 10, 10, rs_x, (60, 160, 60))
        img = draw.fill_rect(img, size + 4, 10 + (state.rs_threshold - state.rs_min) / span * (size - 20), 14, 2,
                             (200, 30, 30))
        img = draw.fill_rect(img, size + 24, 10, 10, jnp.clip(state.bond, 0, 1) * (size - 20), (140, 60, 160))
        return draw.draw_number(img, state.session, 2, 2, 3)


# ---- baselines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComplementaryAct:
    """Answer the client's pending octant with its complement (same warmth, reciprocal dominance)."""

    def __call__(self, params, obs, mask, key):
        return jnp.asarray(COMPLEMENT)[jnp.clip(obs[0].astype(jnp.int32), 0, 7)]

    def action_probs(self, params, obs, mask):
        return jax.nn.one_hot(self(params, obs, mask, None), 8)


@dataclass(frozen=True)
class ConstantAct:
    """Always the same octant."""

    octant: int

    def __call__(self, params, obs, mask, key):
        return jnp.asarray(self.octant, jnp.int32)


def complementary_policy(env: Therapy) -> Policy:
    return Policy(None, ComplementaryAct(), "complementary")


def always_warm_policy(env: Therapy) -> Policy:
    """Always Warm (W): the octant whose complement pays the client most on the midpoint matrix."""
    return Policy(None, ConstantAct(OCTANTS.index("W")), "always_warm")


Therapy.baseline_policies = {"complementary": complementary_policy, "random": random_policy,
                             "always_warm": always_warm_policy}
