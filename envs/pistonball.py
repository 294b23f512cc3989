"""Pistonball (PettingZoo ``pistonball_v6``) with a pure-JAX rigid-body contact solver.

A row of ``n_pistons`` vertical pistons must roll a heavy ball to the left wall. Every quantity is
in pixels with pygame's convention (x right, y *down*); spec: ``shared/specs/pistonball_textgrad.md``
part A.

Geometry (A1–A2): screen W = 80 + 40·n by H = 560. Piston i is a kinematic capsule from
(x_i, y_i) to (x_i + 30, y_i) with radius 5, x_i = 45 + 40·i, so it covers its 40 px column
exactly; y_i ∈ [427, 491] (491 lowest), height h_i = 491 − y_i ∈ [0, 64]. Walls are capsules of
radius 1 on the rectangle (40, 40)–(W − 40, 520). The ball is a disc of radius 40, mass 0.75,
moment 600.

Step (A4): action 0 = down 4 px, 1 = stay, 2 = up 4 px (continuous: v ∈ [−1, 1] moves 4·v px up).
One environment cycle runs, for i = 0 … n − 1, "teleport piston i, then one 0.05 s physics
sub-step" — the interleaving of PettingZoo's parallel wrapper over its AEC env.

Physics (A5): Chipmunk's sequential-impulse scheme, re-derived for one dynamic disc against
static/kinematic capsules: integrate position with velocity plus the previous step's bias
(pseudo-)velocity; detect circle–capsule contacts; gravity 750 px/s²; warm-start from the
impulses cached on contacts that persisted from the previous sub-step; 10 Gauss–Seidel
iterations of (bias impulse for penetration with bias coefficient 1 − 1e-4^dt and slop 0.1,
normal impulse with restitution 0, Coulomb friction 0.3·0.64 = 0.192). Teleported pistons
have zero velocity, so they push the ball only through penetration correction, as in pymunk.
Only the three piston columns under the ball can touch it, so each sub-step gathers those three
plus the left, right and top walls (the bottom wall is unreachable: piston tops are at y ≤ 486).

Reward (A6), identical for every piston, computed once per cycle: with p = max(40, ⌊x_ball − 40⌋)
and D = p_start − 40, ``r = −(p − p_prev)·100 / D + time_penalty·[not terminated]``;
terminated when ``p + vx·0.05 ≤ 41``; truncated after ``max_cycles`` cycles. A successful
episode of T cycles therefore returns ≈ 100 − 0.1·(T − 1).

Observation of piston i (``obs_type="vector"``, f32[10]) — the actor's local view:

====  =================================================================================
slot  content
====  =================================================================================
0     own height h_i / 64
1     left neighbour's height / 64 (own height at the left edge)
2     right neighbour's height / 64 (own height at the right edge)
3     1 if a left neighbour exists
4     1 if a right neighbour exists
5     1 if the ball overlaps the piston's 3-column window [40·i, 40·i + 120) px, else 0
6–7   (x_ball − x_i) / 100, (y_ball − y_i) / 100 when visible, else 0
8–9   ball vx / 100, vy / 100 (px/s) when visible, else 0
====  =================================================================================

``obs_type="pixels"`` gives PettingZoo's uint8 crop of shape (457, 120, 3) per piston: rows
[40, 497) and columns [40·i, 40·i + 120) of :meth:`Pistonball.render`.

``global_state`` (f32[7 + n]): x/W, y/H, vx/100, vy/100, sin θ, cos θ, ω/20 of the ball, then
every piston's height / 64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_lab import render as draw
from jaxmarl_lab.env import Env
from jaxmarl_lab.policies import Policy, random_policy
from jaxmarl_lab.spaces import Box, Discrete

# ---- constants of pistonball_v6 (spec A1-A2) -------------------------------------------------
DT = 0.05                       # one physics sub-step (FPS 20)
WALL = 40                       # wall width = piston width
PISTON_WIDTH = 40
PISTON_RADIUS = 5.0             # capsule radius of a piston's collision segment
PISTON_LENGTH = 30.0            # its segment runs from (x_i, y_i) to (x_i + 30, y_i)
SCREEN_HEIGHT = 560
PISTON_LOWEST = 491.0           # maximum y (lowest position)
PIXELS_PER_POSITION = 4.0
PISTON_HIGHEST = PISTON_LOWEST - 16 * PIXELS_PER_POSITION   # 427
BALL_RADIUS = 40.0
BALL_MASS = 0.75
BALL_MOMENT = BALL_MASS * BALL_RADIUS ** 2 / 2              # 600
WALL_RADIUS = 1.0
MAX_TOUCHING = 4                # ball-shape contacts at once: <= 3 piston heads + 1 side wall (n = 2: 2 + 2)
TOUCH_CLOCK = 2 ** 20          # sub-step counter period (sub-step indices stay exact in the f32 contact cache)
CONTACT_PERSISTENCE = 3         # Chipmunk keeps a vanished contact's impulses this many steps
MAX_SPIN = 6 * math.pi          # random_rotate: angular velocity uniform in (-6π, 6π)
OBS_SIZE = 10
CROP_SHAPE = (457, 120, 3)

# colours of PettingZoo's drawing code (A7)
OUTER_WALL = (58, 64, 65)
INNER_WALL = (68, 76, 77)
BLUE = (65, 159, 221)
PISTON_HEAD = (120, 128, 130)
PISTON_BASE = (90, 96, 98)


@struct.dataclass
class PistonballParams:
    """Dynamic parameters (vmappable); the defaults are pistonball_v6's."""

    time_penalty: float = -0.1
    gravity: float = 750.0          # px/s², downward (+y)
    friction: float = 0.3 * 0.64    # ball x wall/piston friction product
    collision_bias: float = 1e-4    # fraction of overlap left after 1 s
    collision_slop: float = 0.1     # px of overlap tolerated


@struct.dataclass
class PistonballState:
    ball_pos: jax.Array         # f32[2] centre (px)
    ball_vel: jax.Array         # f32[2] (px/s)
    ball_angle: jax.Array       # f32[] (rad)
    ball_spin: jax.Array        # f32[] angular velocity (rad/s)
    bias_vel: jax.Array         # f32[2] penetration-correction velocity, used once by the next sub-step
                                # (its angular part is always 0 for a disc)
    piston_y: jax.Array         # f32[n]
    contact_cache: jax.Array    # f32[n + 3, 3] per shape (pistons; right, left, top wall): the normal and
                                # friction impulses of its last contact with the ball, and the sub-step
                                # (index since reset) of that contact
    substep: jax.Array          # i32[] physics sub-steps since reset, modulo TOUCH_CLOCK
    ball_prev_x: jax.Array      # i32[] p_prev = max(40, ⌊x − 40⌋)
    start_distance: jax.Array   # f32[] D = p_start − 40
    cycle: jax.Array            # i32[] cycles played


def _opaque(value: float, like: jax.Array) -> jax.Array:
    """``value`` as a traced array XLA cannot constant-fold (``0·x`` is not folded for floats).

    Dividing by it keeps each Gauss-Seidel update a kernel of its own: XLA's CPU fusion re-computes
    cheap producers inside every consumer but never duplicates a divide."""
    return value + 0.0 * like


class Pistonball(Env):
    """``n_pistons`` pistons, one ball, shared reward (see the module docstring)."""

    name = "pistonball"

    def __init__(self, n_pistons: int = 20, continuous: bool = False, max_cycles: int = 125,
                 random_drop: bool = True, random_rotate: bool = True, pistons_start_low: bool = False,
                 obs_type: str = "vector", solver_iterations: int = 10):
        if int(n_pistons) < 2:
            raise ValueError(f"pistonball needs at least 2 pistons, got n_pistons={n_pistons}")
        if obs_type not in ("vector", "pixels"):
            raise ValueError(f"obs_type must be 'vector' or 'pixels', got {obs_type!r}")
        if int(max_cycles) < 1 or int(solver_iterations) < 1:
            raise ValueError("max_cycles and solver_iterations must be positive")
        self.n_pistons = int(n_pistons)
        self.num_agents = self.n_pistons
        self.agents = tuple(f"piston_{i}" for i in range(self.n_pistons))
        self.continuous = bool(continuous)
        self.max_cycles = self.max_steps = int(max_cycles)
        self.random_drop = bool(random_drop)
        self.random_rotate = bool(random_rotate)
        self.pistons_start_low = bool(pistons_start_low)
        self.obs_type = obs_type
        self.solver_iterations = int(solver_iterations)
        self.screen_width = 2 * WALL + PISTON_WIDTH * self.n_pistons
        self._config = (self.n_pistons, self.continuous, self.max_cycles, self.random_drop, self.random_rotate,
                        self.pistons_start_low, obs_type, self.solver_iterations)
        #: x of each piston body (the left end of its segment)
        self.piston_x = WALL + PISTON_RADIUS + PISTON_WIDTH * np.arange(self.n_pistons, dtype=np.float32)
        w, top, bottom = float(self.screen_width), float(WALL), float(SCREEN_HEIGHT - WALL)
        # right, left, top walls (the bottom wall, 4th shape id, can never be reached)
        self._wall_a = np.array([[w - top, top], [top, top], [top, top]], np.float32)
        self._wall_b = np.array([[w - top, bottom], [top, bottom], [w - top, top]], np.float32)
        self._num_candidates = min(3, self.n_pistons)

    # ---- spaces -----------------------------------------------------------------------------
    @property
    def default_params(self) -> PistonballParams:
        return PistonballParams()

    def observation_space(self, params=None) -> Box:
        if self.obs_type == "pixels":
            return Box(0, 255, CROP_SHAPE, jnp.uint8)
        return Box(-np.inf, np.inf, (OBS_SIZE,))

    def action_space(self, params=None) -> Discrete | Box:
        return Box(-1.0, 1.0, (1,)) if self.continuous else Discrete(3)

    def action_mask(self, state, params=None) -> jax.Array:
        return jnp.ones((self.n_pistons, 1 if self.continuous else 3), bool)

    # ---- reset ------------------------------------------------------------------------------
    def reset_env(self, key, params):
        n = self.n_pistons
        key_pistons, key_v, key_h, key_spin = jax.random.split(key, 4)
        drop = 4.0 * jax.random.randint(key_pistons, (n,), 0, 8).astype(jnp.float32)
        piston_y = jnp.full((n,), PISTON_LOWEST) if self.pistons_start_low else PISTON_LOWEST - drop
        if self.random_drop:
            v_off = jax.random.randint(key_v, (), -15, 16).astype(jnp.float32)
            h_off = jax.random.randint(key_h, (), -30, 31).astype(jnp.float32)
        else:
            v_off = h_off = jnp.zeros(())
        x = jnp.maximum(self.screen_width - 110.0 + h_off, 2 * WALL + 1.0)
        y = 410.0 + v_off
        spin = jax.random.uniform(key_spin, (), minval=-MAX_SPIN, maxval=MAX_SPIN) if self.random_rotate else 0.0
        p0 = self._ball_progress(x)
        state = PistonballState(
            ball_pos=jnp.stack([x, y]), ball_vel=jnp.zeros(2), ball_angle=jnp.zeros(()),
            ball_spin=jnp.asarray(spin, jnp.float32), bias_vel=jnp.zeros(2),
            piston_y=piston_y.astype(jnp.float32), substep=jnp.zeros((), jnp.int32),
            contact_cache=jnp.zeros((n + 3, 3)).at[:, 2].set(-CONTACT_PERSISTENCE - 2),   # never touched
            ball_prev_x=p0, start_distance=(p0 - WALL).astype(jnp.float32), cycle=jnp.zeros((), jnp.int32))
        return self._observations(state), state

    @staticmethod
    def _ball_progress(x: jax.Array) -> jax.Array:
        """PettingZoo's _get_ball_position: the ball's left edge, truncated, clipped at the wall."""
        return jnp.maximum(WALL, jnp.floor(x - BALL_RADIUS)).astype(jnp.int32)

    # ---- physics ----------------------------------------------------------------------------
    def piston_moves(self, action: jax.Array) -> jax.Array:
        """Signed piston velocity command v ∈ [−1, 1] (positive = up) from the action array."""
        if self.continuous:
            return jnp.clip(action[:, 0], -1.0, 1.0)
        return action.astype(jnp.float32) - 1.0

    def candidate_contacts(self, x: jax.Array, y: jax.Array, piston_y: jax.Array) -> tuple[jax.Array, list]:
        """The shapes that can touch a ball centred at (x, y), in the order Chipmunk solves them.

        Returns the first piston column under the ball and, per shape, ``(ox, oy, radius)``: the
        offset from the ball's centre to the closest point of the shape's segment and the shape's
        capsule radius. Only the <= 3 piston columns under the ball can touch it; Chipmunk visits
        them right to left, then the right, left and top walls (reverse insertion order) and, with
        this order, our trajectories stay within 0.35 px of pymunk's over 10 cycles in 44 of
        45 short-horizon checks (2.2 px in the last)."""
        count = self._num_candidates
        column = jnp.floor((x - WALL) / PISTON_WIDTH).astype(jnp.int32)
        first = jnp.clip(column - 1, 0, self.n_pistons - count)
        heights = jax.lax.dynamic_slice(piston_y, (first,), (count,))
        contacts = []
        for k in reversed(range(count)):
            left_end = WALL + PISTON_RADIUS + PISTON_WIDTH * (first + k).astype(jnp.float32)
            along = jnp.clip((x - left_end) / PISTON_LENGTH, 0.0, 1.0)     # horizontal segment
            contacts.append((left_end + PISTON_LENGTH * along - x, heights[k] - y, PISTON_RADIUS))
        right, top, bottom = self.screen_width - WALL, float(WALL), float(SCREEN_HEIGHT - WALL)
        wall_y = jnp.clip(y, top, bottom) - y
        contacts.append((right - x, wall_y, WALL_RADIUS))
        contacts.append((WALL - x, wall_y, WALL_RADIUS))
        contacts.append((jnp.clip(x, top, right) - x, top - y, WALL_RADIUS))
        return first, contacts

    def physics_substep(self, state: PistonballState, params: PistonballParams) -> PistonballState:
        """One 0.05 s ``space.step``: integrate, collide, warm start, iterate the impulse solver.

        Written in scalar components per contact for a disc: every contact point sits at r = 40·n
        from the centre, so normal impulses never spin the ball (r × n = 0), a tangential impulse
        j_t changes the spin by −40·j_t / I, and the contact's tangential velocity is v·t + 40·ω.

        Why it is shaped this way (speed under ``vmap`` on CPU, measured with the XLA profiler):
        scalars rather than [contacts, 2] arrays, because XLA sends reductions over tiny axes to a
        slow library path; the solver visits only the touching contacts, packed in order into
        MAX_TOUCHING slots; impulses are divided by an opaque mass so that each Gauss-Seidel
        update stays one kernel (XLA re-computes cheap producers in every consumer, but never a
        divide); one gather and one scatter move the piston columns' contact cache."""
        n, count = self.n_pistons, self._num_candidates
        normal_mass = BALL_MASS
        tangent_mass = 1.0 / (1.0 / BALL_MASS + BALL_RADIUS ** 2 / BALL_MOMENT)
        x = state.ball_pos[0] + (state.ball_vel[0] + state.bias_vel[0]) * DT
        y = state.ball_pos[1] + (state.ball_vel[1] + state.bias_vel[1]) * DT
        angle = state.ball_angle + state.ball_spin * DT
        bias_coef = 1.0 - params.collision_bias ** DT
        mass, spin_mass = _opaque(BALL_MASS, state.ball_angle), _opaque(BALL_MOMENT / BALL_RADIUS, state.ball_angle)

        first, shapes = self.candidate_contacts(x, y, state.piston_y)
        window = jax.lax.dynamic_slice(state.contact_cache, (first, 0), (count, 3))
        cached = [window[k] for k in reversed(range(count))] + [state.contact_cache[n + w] for w in range(3)]
        normals, touching, target_bias = [], [], []
        for ox, oy, radius in shapes:
            distance = jnp.maximum(jnp.sqrt(ox * ox + oy * oy), 1e-6)
            gap = distance - BALL_RADIUS - radius                 # negative = penetration
            normals.append((ox / distance, oy / distance))
            touching.append(gap < 0.0)
            target_bias.append(-bias_coef * jnp.minimum(0.0, gap + params.collision_slop) / DT)

        # warm start: a contact present in the previous sub-step re-applies its impulses; one that
        # vanished for <= 2 sub-steps keeps its accumulators without re-applying them (Chipmunk)
        vx, vy = state.ball_vel[0], state.ball_vel[1] + params.gravity * DT
        spin = state.ball_spin
        start_n, start_t = [], []
        now = state.substep
        for (nx, ny), on, (cached_n, cached_t, last_touch) in zip(normals, touching, cached, strict=True):
            age = (now - last_touch.astype(jnp.int32) - 1) % TOUCH_CLOCK   # 0: touched in the previous sub-step
            kept = on & (age < CONTACT_PERSISTENCE)
            acc_n, acc_t = jnp.where(kept, cached_n, 0.0), jnp.where(kept, cached_t, 0.0)
            warm = on & (age == 0)
            warm_n, warm_t = jnp.where(warm, acc_n, 0.0), jnp.where(warm, acc_t, 0.0)
            vx = vx - (nx * warm_n - ny * warm_t) / mass         # tangent = perp(n) = (−ny, nx)
            vy = vy - (ny * warm_n + nx * warm_t) / mass
            spin = spin - warm_t / spin_mass
            start_n.append(acc_n)
            start_t.append(acc_t)

        # non-touching contacts receive no impulse, so the solver visits only the touching ones,
        # packed in their original order into MAX_TOUCHING slots (same result, a third less work)
        rank, before = [], jnp.zeros((), jnp.int32)
        for on in touching:
            rank.append(before)
            before = before + on.astype(jnp.int32)
        num_slots = min(MAX_TOUCHING, len(shapes))

        def pack(values: list, slot: int, empty) -> jax.Array:
            out = jnp.full_like(x, empty, dtype=jnp.asarray(empty).dtype)
            for c in reversed(range(slot, len(shapes))):
                out = jnp.where(touching[c] & (rank[c] == slot), values[c], out)
            return out

        solved = [(pack([nx for nx, _ in normals], j, 0.0), pack([ny for _, ny in normals], j, 0.0),
                   pack(touching, j, False), pack(target_bias, j, 0.0)) for j in range(num_slots)]

        def sweep(carry, _):                      # one Gauss-Seidel pass over the contacts (unrolled)
            vx, vy, spin, bx, by, acc_n, acc_t, acc_b = carry
            acc_n, acc_t, acc_b = list(acc_n), list(acc_t), list(acc_b)
            for j, (cx, cy, on, bias) in enumerate(solved):
                new_b = jnp.maximum(acc_b[j] + (bias + (bx * cx + by * cy)) * normal_mass, 0.0)
                db = jnp.where(on, new_b - acc_b[j], 0.0)
                bx, by = bx - cx * db / mass, by - cy * db / mass
                vrn = -(vx * cx + vy * cy)                        # shape relative to the contact point
                vrt = -(vy * cx - vx * cy + BALL_RADIUS * spin)
                new_n = jnp.maximum(acc_n[j] - vrn * normal_mass, 0.0)
                limit = params.friction * new_n
                new_t = jnp.clip(acc_t[j] - vrt * tangent_mass, -limit, limit)
                dn = jnp.where(on, new_n - acc_n[j], 0.0)
                dt_ = jnp.where(on, new_t - acc_t[j], 0.0)
                vx = vx - (cx * dn - cy * dt_) / mass
                vy = vy - (cy * dn + cx * dt_) / mass
                spin = spin - dt_ / spin_mass
                acc_b[j], acc_n[j], acc_t[j] = acc_b[j] + db, acc_n[j] + dn, acc_t[j] + dt_
            return (vx, vy, spin, bx, by, tuple(acc_n), tuple(acc_t), tuple(acc_b)), None

        zero = jnp.zeros_like(x)
        carry = (vx, vy, spin, zero, zero, tuple(pack(start_n, j, 0.0) for j in range(num_slots)),
                 tuple(pack(start_t, j, 0.0) for j in range(num_slots)), (zero,) * num_slots)
        (vx, vy, spin, bx, by, acc_n, acc_t, _), _ = jax.lax.scan(sweep, carry, None, self.solver_iterations)

        # unpack: touching shapes store their final impulses and this sub-step's index
        rows = []
        for c, row in enumerate(cached):
            final_n, final_t = acc_n[0], acc_t[0]
            for j in range(1, min(c + 1, num_slots)):
                final_n = jnp.where(rank[c] == j, acc_n[j], final_n)
                final_t = jnp.where(rank[c] == j, acc_t[j], final_t)
            rows.append(jnp.stack([jnp.where(touching[c], final_n, row[0]), jnp.where(touching[c], final_t, row[1]),
                                   jnp.where(touching[c], now.astype(jnp.float32), row[2])]))
        cache = jax.lax.dynamic_update_slice(state.contact_cache, jnp.stack(rows[:count][::-1]), (first, 0))
        cache = cache.at[n:].set(jnp.stack(rows[count:]))
        return state.replace(ball_pos=jnp.stack([x, y]), ball_vel=jnp.stack([vx, vy]), ball_angle=angle,
                             ball_spin=spin, bias_vel=jnp.stack([bx, by]), contact_cache=cache,
                             substep=(state.substep + 1) % TOUCH_CLOCK)

    @staticmethod
    def move_piston(state: PistonballState, i: jax.Array, v: jax.Array) -> PistonballState:
        """Teleport piston i by 4·v px upwards, clamped to [427, 491]."""
        y = jnp.clip(state.piston_y[i] - PIXELS_PER_POSITION * v, PISTON_HIGHEST, PISTON_LOWEST)
        return state.replace(piston_y=state.piston_y.at[i].set(y))

    def move_pistons_and_simulate(self, state: PistonballState, moves: jax.Array,
                                  params: PistonballParams) -> PistonballState:
        """One cycle of the AEC order: piston i moves by 4·v_i px, then one physics sub-step."""

        def agent_turn(state, inputs):
            return self.physics_substep(self.move_piston(state, *inputs), params), None

        state, _ = jax.lax.scan(agent_turn, state, (jnp.arange(self.n_pistons), moves))
        return state

    def step_env(self, key, state: PistonballState, action, params):
        state = self.move_pistons_and_simulate(state, self.piston_moves(action), params)
        progress = self._ball_progress(state.ball_pos[0])
        terminated = progress + state.ball_vel[0] * DT <= WALL + 1
        moved = (progress - state.ball_prev_x).astype(jnp.float32)
        reward = -moved * 100.0 / state.start_distance + jnp.where(terminated, 0.0, params.time_penalty)
        state = state.replace(ball_prev_x=progress, cycle=state.cycle + 1)
        truncated = (state.cycle >= self.max_cycles) & ~terminated
        info = {"terminated": terminated, "truncated": truncated}
        rewards = jnp.full((self.n_pistons,), reward, jnp.float32)
        return self._observations(state), state, rewards, terminated | truncated, info

    # ---- observations -----------------------------------------------------------------------
    def heights(self, state: PistonballState) -> jax.Array:
        return PISTON_LOWEST - state.piston_y

    def ball_visible(self, state: PistonballState) -> jax.Array:
        """bool[n]: the ball overlaps piston i's 3-column window [40·i, 40·i + 120)."""
        left = PISTON_WIDTH * jnp.arange(self.n_pistons)
        x = state.ball_pos[0]
        return (x + BALL_RADIUS > left) & (x - BALL_RADIUS < left + 3 * PISTON_WIDTH)

    def _observations(self, state: PistonballState) -> jax.Array:
        if self.obs_type == "pixels":
            return self.pixel_observations(state)
        h = self.heights(state) / 64.0
        left = jnp.concatenate([h[:1], h[:-1]])
        right = jnp.concatenate([h[1:], h[-1:]])
        index = jnp.arange(self.n_pistons)
        visible = self.ball_visible(state)
        rel = jnp.stack([state.ball_pos[0] - jnp.asarray(self.piston_x), state.ball_pos[1] - state.piston_y], -1)
        ball = jnp.concatenate([rel, jnp.broadcast_to(state.ball_vel, rel.shape)], -1) / 100.0
        ball = jnp.where(visible[:, None], ball, 0.0)
        return jnp.concatenate([
            jnp.stack([h, left, right, (index > 0).astype(jnp.float32),
                       (index < self.n_pistons - 1).astype(jnp.float32), visible.astype(jnp.float32)], -1),
            ball], -1).astype(jnp.float32)

    def pixel_observations(self, state: PistonballState) -> jax.Array:
        """uint8[n, 457, 120, 3]: each piston's crop of the rendered screen (PettingZoo's observe)."""
        frame = self.render(state)
        starts = PISTON_WIDTH * jnp.arange(self.n_pistons)
        crop = lambda x0: jax.lax.dynamic_slice(frame, (WALL, x0, 0), CROP_SHAPE)
        return jax.vmap(crop)(starts)

    def global_state(self, state: PistonballState, params=None) -> jax.Array:
        ball = jnp.stack([state.ball_pos[0] / self.screen_width, state.ball_pos[1] / SCREEN_HEIGHT,
                          state.ball_vel[0] / 100.0, state.ball_vel[1] / 100.0, jnp.sin(state.ball_angle),
                          jnp.cos(state.ball_angle), state.ball_spin / 20.0])
        return jnp.concatenate([ball, self.heights(state) / 64.0]).astype(jnp.float32)

    def outcome_statistics(self, state: PistonballState, params=None) -> dict[str, jax.Array]:
        progress = self._ball_progress(state.ball_pos[0])
        success = progress + state.ball_vel[0] * DT <= WALL + 1
        return {"success": success.astype(jnp.float32), "ball_x": state.ball_pos[0]}

    def describe(self, state: PistonballState, params=None) -> str:
        s = jax.tree_util.tree_map(np.asarray, state)
        heights = " ".join(f"{h:.0f}" for h in PISTON_LOWEST - s.piston_y)
        return (f"cycle {int(s.cycle)}: ball at ({s.ball_pos[0]:.1f}, {s.ball_pos[1]:.1f}) px, velocity "
                f"({s.ball_vel[0]:.1f}, {s.ball_vel[1]:.1f}) px/s, spin {s.ball_spin:.2f} rad/s; "
                f"piston heights [{heights}]")

    # ---- drawing ----------------------------------------------------------------------------
    def render(self, state: PistonballState, params=None) -> jax.Array:
        """uint8[560, W, 3]: walls, white play area, ball with its orientation line, pistons."""
        width = self.screen_width
        ys, xs = jnp.mgrid[0:SCREEN_HEIGHT, 0:width]
        img = draw.canvas(SCREEN_HEIGHT, width, OUTER_WALL)
        img = draw.fill_rect(img, WALL // 2, WALL // 2, SCREEN_HEIGHT - WALL, width - WALL, INNER_WALL)
        img = draw.fill_rect(img, WALL, WALL, SCREEN_HEIGHT - 2 * WALL, width - 2 * WALL, (255, 255, 255))
        # pistons: a grey head on top of a blue body down to the floor, a grey base at the bottom
        column = jnp.clip((xs - WALL) // PISTON_WIDTH, 0, self.n_pistons - 1)
        in_row = (xs >= WALL) & (xs < width - WALL)
        top = state.piston_y[column] - PISTON_RADIUS
        head = in_row & (ys >= top) & (ys < top + 2 * PISTON_RADIUS + 1)
        local_x = (xs - WALL) % PISTON_WIDTH
        body = in_row & (ys >= top + 2 * PISTON_RADIUS + 1) & (ys < SCREEN_HEIGHT - WALL) & (local_x >= 11) & (
            local_x < 29)
        base = in_row & (ys >= SCREEN_HEIGHT - WALL - 6) & (ys < SCREEN_HEIGHT - WALL)
        img = jnp.where(body[..., None], jnp.asarray(BLUE, jnp.uint8), img)
        img = jnp.where(base[..., None], jnp.asarray(PISTON_BASE, jnp.uint8), img)
        img = jnp.where(head[..., None], jnp.asarray(PISTON_HEAD, jnp.uint8), img)
        # ball and its orientation line (3 px wide)
        bx, by = jnp.floor(state.ball_pos[0]), jnp.floor(state.ball_pos[1])
        disc = (xs - bx) ** 2 + (ys - by) ** 2 <= BALL_RADIUS ** 2
        img = jnp.where(disc[..., None], jnp.asarray(BLUE, jnp.uint8), img)
        direction = jnp.stack([jnp.cos(state.ball_angle), jnp.sin(state.ball_angle)])
        along = (xs - bx) * direction[0] + (ys - by) * direction[1]
        across = -(xs - bx) * direction[1] + (ys - by) * direction[0]
        line = (along >= 0) & (along <= BALL_RADIUS - 1) & (jnp.abs(across) <= 1.5)
        return jnp.where(line[..., None], jnp.asarray(OUTER_WALL, jnp.uint8), img)


# ---- scripted policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class RuleAct:
    """LangMARL's rule (spec B4) on the local observation: right of the ball rise, left of it fall.

    S_i = δ_i·k·(x_i − x_ball) − (h_i − mean neighbour height), with δ_i = 1 when the ball is
    within 60 px of the piston body's x; up if S_i > τ, down if S_i < −τ, else stay (continuous
    actions: ±0.7 or 0). ``params`` may be ``{"k": ..., "tau": ...}`` (arrays, e.g. one pair per
    piston under ``vmap``); otherwise the fields are used.
    """

    k: float = 1.0
    tau: float = 4.0
    continuous: bool = False

    def direction(self, obs: jax.Array, params=None) -> jax.Array:
        k, tau = (params["k"], params["tau"]) if isinstance(params, dict) else (self.k, self.tau)
        heights = obs[:3] * 64.0
        relative_x = obs[6] * 100.0
        near = (obs[5] > 0) & (jnp.abs(relative_x) <= 1.5 * PISTON_WIDTH)
        score = jnp.where(near, k * -relative_x, 0.0) - (heights[0] - 0.5 * (heights[1] + heights[2]))
        return jnp.where(score > tau, 1, jnp.where(score < -tau, -1, 0))

    def __call__(self, params, obs, mask, key):
        u = self.direction(obs, params)
        if self.continuous:
            return (0.7 * u).astype(jnp.float32)[None]
        return (u + 1).astype(jnp.int32)

    def action_probs(self, params, obs, mask):
        return jax.nn.one_hot(self.direction(obs, params) + 1, 3)


@dataclass(frozen=True)
class ConstantAct:
    """The same action every cycle (e.g. always up = 2)."""

    action: int = 2

    def __call__(self, params, obs, mask, key):
        return jnp.asarray(self.action, jnp.int32)

    def action_probs(self, params, obs, mask):
        return jax.nn.one_hot(self.action, 3)


def _require_vector(env: Pistonball, name: str) -> None:
    if env.obs_type != "vector":
        raise ValueError(f"the {name!r} baseline reads vector observations; build the env with obs_type='vector'")


@dataclass(frozen=True)
class UniformContinuousAct:
    """Uniform in [−1, 1] (the continuous counterpart of the random baseline)."""

    def __call__(self, params, obs, mask, key):
        return jax.random.uniform(key, (1,), minval=-1.0, maxval=1.0)


def uniform_random_policy(env: Pistonball) -> Policy:
    """Uniform random actions: one of 0/1/2, or a value in [−1, 1] with continuous actions."""
    return Policy(None, UniformContinuousAct(), "random") if env.continuous else random_policy(env)


def rule_policy(env: Pistonball, k: float = 1.0, tau: float = 4.0) -> Policy:
    """The rule policy of spec B4 (defaults k = 1.0, τ = 4 as in LangMARL's CLI)."""
    _require_vector(env, "rule")
    return Policy(None, RuleAct(float(k), float(tau), env.continuous), f"rule_k{k:g}")


def always_up_policy(env: Pistonball) -> Policy:
    if env.continuous:
        raise ValueError("always_up is a discrete baseline")
    return Policy(None, ConstantAct(2), "always_up")


Pistonball.baseline_policies = {"random": uniform_random_policy, "rule": rule_policy, "always_up": always_up_policy}
