"""Multi-agent particle environments (MPE) as pure JAX functions, identical to PettingZoo's ``mpe2`` v3.

Three scenarios, registered as ``mpe_simple_reference`` (the communication task),
``mpe_simple_speaker_listener`` and ``mpe_simple_spread``. Facts from shared/specs/mpe.md.

Core (every scenario)
---------------------
Entities are the agents then the landmarks (``p_pos``/``p_vel`` [entities, 2]). One env step:

1. action force of each movable agent: u · 5 (sensitivity; mass 1);
2. contact forces between pairs of colliding entities (only ``simple_spread``'s agents collide):
   F = 100 · Δp/|Δp| · k · log(1 + exp(−(|Δp| − (size_a + size_b))/k)), k = 0.001;
3. integration in the v3 order: p ← p + v·dt (old velocity); v ← v·(1 − 0.25); v ← v + F·dt; dt 0.1;
4. communication state c ← the message action (zeros for silent agents);
5. rewards and observations from the post-step state. After 25 steps the episode is truncated
   (``info["truncated"]``; never terminated).

Actions. Discrete (default): agent a's action is ``5·message + move`` for a movable, speaking
agent (move 0 no-op, 1 left, 2 right, 3 down, 4 up; message one-hot of ``dim_c``), ``move`` for a
silent one, ``message`` for an immobile one. Continuous (``continuous_actions=True``):
[no-op, left, right, down, up, message...] in [0, 1] (clipped, as mpe2's wrapper does);
u = 5·(a[2] − a[1], a[4] − a[3]). Agents with fewer actions than the largest one get a padded
action space: ``action_mask`` marks their real actions, padded discrete actions are clipped to
the last real one, padded continuous entries are ignored.

Observations (padded with zeros to the longest agent's; ``obs_sizes`` gives each true size)
* simple_reference (2 agents, 3 landmarks, dim_c 10), 21 floats: own velocity [2], landmark
  positions relative to self [3×2], colour of the landmark the *other* agent must reach
  (0.75 at its index, 0.25 elsewhere) [3], the other agent's message [10].
  Reward: r_i = −|p_other − landmark[goal[other]]|; R_i = 0.5·(r_0 + r_1)/2 + 0.5·r_i.
* simple_speaker_listener (speaker_0 immobile, listener_0 silent, dim_c 3): speaker [3] = colour
  of the goal landmark (rows (0.65, 0.15, 0.15), (0.15, 0.65, 0.15), (0.15, 0.15, 0.65));
  listener [11] = velocity [2], landmark positions relative to self [3×2], speaker's message [3].
  Reward, both agents: −|p_listener − landmark[goal]|² (squared distance).
* simple_spread (3 agents, 3 landmarks, silent, agents collide with size 0.15), 18 floats:
  velocity [2], position [2], landmarks relative [3×2], other agents relative [2×2], their
  (always zero) messages [2×2]. Reward: R_i = 0.5·g + 0.5·(−1 per other agent overlapping i),
  g = −Σ_landmarks min_agents |p_agent − p_landmark|.

``goal[i]`` is the landmark agent i must reach (simple_reference: drawn per agent; speaker_listener:
the listener's target, stored for both agents; simple_spread: unused, 0). ``global_state`` is
the concatenation of the agents' true-size observations.

``mute=True`` (registered as ``mpe_simple_reference_muted``) zeroes every received message in
the observations: the control condition for "does the channel matter" experiments.
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

DT, DAMPING, SENSITIVITY = 0.1, 0.25, 5.0
CONTACT_FORCE, CONTACT_MARGIN = 100.0, 0.001
MAX_STEPS = 25
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], np.float32)


@dataclass(frozen=True)
class Scenario:
    """Static description of one MPE scenario."""

    name: str
    agents: tuple[str, ...]
    num_landmarks: int
    dim_c: int
    movable: tuple[bool, ...]
    silent: tuple[bool, ...]
    collide: tuple[bool, ...]
    size: tuple[float, ...]
    obs_sizes: tuple[int, ...]
    local_ratio: float | None

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    def num_discrete(self, i: int) -> int:
        return (5 if self.movable[i] else 1) * (1 if self.silent[i] else self.dim_c)

    def num_continuous(self, i: int) -> int:
        return (5 if self.movable[i] else 0) + (0 if self.silent[i] else self.dim_c)


SCENARIOS = {
    "simple_reference": Scenario("simple_reference", ("agent_0", "agent_1"), 3, 10, (True, True), (False, False),
                                 (False, False), (0.05, 0.05), (21, 21), 0.5),
    "simple_speaker_listener": Scenario("simple_speaker_listener", ("speaker_0", "listener_0"), 3, 3,
                                        (False, True), (False, True), (False, False), (0.075, 0.075), (3, 11), None),
    "simple_spread": Scenario("simple_spread", ("agent_0", "agent_1", "agent_2"), 3, 2, (True,) * 3, (True,) * 3,
                              (True,) * 3, (0.15,) * 3, (18,) * 3, 0.5),
}
SPEAKER_LISTENER_COLOURS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]], np.float32)


@dataclass(frozen=True)
class CommChannel:
    """One speaker → listener link: the listener sees the speaker's message in ``obs[start:stop]``."""

    speaker: int
    listener: int
    start: int
    stop: int

    @property
    def vocabulary(self) -> int:
        return self.stop - self.start


#: the message links of each scenario (simple_reference: each agent speaks to the other)
CHANNELS = {
    "simple_reference": (CommChannel(0, 1, 11, 21), CommChannel(1, 0, 11, 21)),
    "simple_speaker_listener": (CommChannel(0, 1, 8, 11),),
    "simple_spread": (),
}


@struct.dataclass
class MPEState:
    p_pos: jax.Array  # f32[entities, 2], agents first
    p_vel: jax.Array  # f32[entities, 2]
    c: jax.Array  # f32[agents, dim_c] communication state (last message)
    goal: jax.Array  # i32[agents] landmark each agent must reach
    step: jax.Array  # i32[]


@struct.dataclass
class MPEParams:
    """No dynamic parameters yet (all constants are the v3 ones)."""


class MPE(Env):
    """One MPE scenario (see the module docstring)."""

    def __init__(self, scenario: str = "simple_reference", continuous_actions: bool = False,
                 max_steps: int = MAX_STEPS, mute: bool = False):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown MPE scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
        self.scenario = SCENARIOS[scenario]
        self.name = f"mpe_{scenario}"
        self.continuous_actions = bool(continuous_actions)
        self.num_agents = self.scenario.num_agents
        self.agents = self.scenario.agents
        self.max_steps = int(max_steps)
        self.obs_sizes = self.scenario.obs_sizes
        self.obs_dim = max(self.obs_sizes)
        sc = self.scenario
        #: each agent's true number of discrete actions (or continuous action entries)
        self.action_sizes = tuple(sc.num_continuous(i) if self.continuous_actions else sc.num_discrete(i)
                                  for i in range(self.num_agents))
        self._num_actions = max(self.action_sizes)
        #: control condition for communication experiments: every received message reads as zeros
        self.mute = bool(mute)
        self.name = f"mpe_{scenario}{'_muted' if self.mute else ''}"
        self._config = (scenario, self.continuous_actions, self.max_steps, self.mute)
        #: speaker → listener links (used by jaxmarl_lab.comm); agents that can move
        self.comm_channels = CHANNELS[scenario]
        self.movers = tuple(i for i in range(self.num_agents) if sc.movable[i])
        #: discrete action = 5·message + move for every agent: (messages, moves), else None.
        #: Lets a policy predict the two parts independently (networks.factored_log_probs).
        talk_and_move = all(sc.movable[i] and not sc.silent[i] for i in range(self.num_agents))
        self.action_factors = None if self.continuous_actions or not talk_and_move else (sc.dim_c, len(MOVES))

    @property
    def default_params(self) -> MPEParams:
        return MPEParams()

    def observation_space(self, params=None) -> Box:
        return Box(-np.inf, np.inf, (self.obs_dim,))

    def action_space(self, params=None) -> Discrete | Box:
        if self.continuous_actions:
            return Box(0.0, 1.0, (self._num_actions,))
        return Discrete(self._num_actions)

    # ---- dynamics -------------------------------------------------------------------
    def reset_env(self, key, params):
        sc = self.scenario
        key_goal, key_agents, key_landmarks = jax.random.split(key, 3)
        if sc.name == "simple_reference":
            goal = jax.random.randint(key_goal, (2,), 0, sc.num_landmarks)
        elif sc.name == "simple_speaker_listener":
            goal = jnp.broadcast_to(jax.random.randint(key_goal, (), 0, sc.num_landmarks), (2,))
        else:
            goal = jnp.zeros((sc.num_agents,), jnp.int32)
        p_pos = jnp.concatenate([jax.random.uniform(key_agents, (sc.num_agents, 2), minval=-1.0, maxval=1.0),
                                 jax.random.uniform(key_landmarks, (sc.num_landmarks, 2), minval=-1.0, maxval=1.0)])
        state = MPEState(p_pos=p_pos, p_vel=jnp.zeros_like(p_pos), c=jnp.zeros((sc.num_agents, sc.dim_c)),
                         goal=goal.astype(jnp.int32), step=jnp.zeros((), jnp.int32))
        return self._observations(state), state

    def decode_actions(self, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(force u [agents, 2] before sensitivity, message c [agents, dim_c]) of a joint action."""
        sc = self.scenario
        forces, messages = [], []
        for i in range(sc.num_agents):
            a = action[i]
            if self.continuous_actions:
                a = jnp.clip(a, 0.0, 1.0)
                move, rest = (a[:5], a[5:]) if sc.movable[i] else (jnp.zeros(5), a)
                u = jnp.stack([move[2] - move[1], move[4] - move[3]])
                msg = rest[:sc.dim_c] if not sc.silent[i] else jnp.zeros(sc.dim_c)
            else:
                a = jnp.clip(a, 0, sc.num_discrete(i) - 1)
                move_index, msg_index = (a % 5, a // 5) if sc.movable[i] else (0, a)
                u = jnp.asarray(MOVES)[move_index]
                msg = jax.nn.one_hot(msg_index, sc.dim_c) if not sc.silent[i] else jnp.zeros(sc.dim_c)
            forces.append(u if sc.movable[i] else jnp.zeros(2))
            messages.append(msg)
        return jnp.stack(forces), jnp.stack(messages)

    def message_and_move(self, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Per agent: (message symbol, move index 0..4) of a joint action; −1 where the agent is
        silent or immobile. Continuous actions: the argmax of the message part / of the move part."""
        sc = self.scenario
        symbols, moves = [], []
        for i in range(sc.num_agents):
            a = action[i]
            if self.continuous_actions:
                move = a[:5] if sc.movable[i] else None
                msg = a[5 if sc.movable[i] else 0:][:sc.dim_c] if not sc.silent[i] else None
                symbols.append(jnp.argmax(msg) if msg is not None else -1)
                moves.append(jnp.argmax(move) if move is not None else -1)
            else:
                a = jnp.clip(a, 0, sc.num_discrete(i) - 1)
                move, msg = (a % 5, a // 5) if sc.movable[i] else (-1, a)
                symbols.append(-1 if sc.silent[i] else msg)
                moves.append(move)
        return jnp.stack([jnp.asarray(x, jnp.int32) for x in symbols]), jnp.stack(
            [jnp.asarray(x, jnp.int32) for x in moves])

    def move_of_action(self, agent: int) -> np.ndarray:
        """i32[num_actions]: the move index of each discrete action of ``agent`` (padded actions
        repeat the last real one's; all 0 for an immobile agent)."""
        sc = self.scenario
        actions = np.minimum(np.arange(self._num_actions), sc.num_discrete(agent) - 1)
        return (actions % 5 if sc.movable[agent] else np.zeros_like(actions)).astype(np.int32)

    def speaker_goal(self, state: MPEState) -> jax.Array:
        """i32[agents]: the landmark each agent privately knows as a speaker (its listener's target)."""
        goal = state.goal
        for link in self.comm_channels:
            goal = goal.at[link.speaker].set(state.goal[link.listener])
        return goal

    def target_distances(self, state: MPEState) -> jax.Array:
        """f32[movers]: each movable agent's distance to its target landmark (``goal``)."""
        landmarks = state.p_pos[self.scenario.num_agents:]
        return jnp.stack([jnp.linalg.norm(state.p_pos[i] - landmarks[state.goal[i]]) for i in self.movers])

    def _contact_forces(self, p_pos: jax.Array) -> jax.Array:
        """Pairwise soft contact forces on the agents that collide (landmarks never collide here)."""
        sc = self.scenario
        n = sc.num_agents
        collide = jnp.asarray(sc.collide)
        if not any(sc.collide):
            return jnp.zeros((n, 2))
        pos = p_pos[:n]
        delta = pos[:, None, :] - pos[None, :, :]  # [a, b, 2] = p_a - p_b
        dist = jnp.sqrt((delta ** 2).sum(-1))
        size = jnp.asarray(sc.size)
        dist_min = size[:, None] + size[None, :]
        penetration = jnp.logaddexp(0.0, -(dist - dist_min) / CONTACT_MARGIN) * CONTACT_MARGIN
        pair = collide[:, None] & collide[None, :] & ~jnp.eye(n, dtype=bool)
        safe = jnp.where(pair, dist, 1.0)
        force = CONTACT_FORCE * delta / safe[..., None] * penetration[..., None]
        return jnp.where(pair[..., None], force, 0.0).sum(axis=1)

    def step_env(self, key, state: MPEState, action, params):
        sc = self.scenario
        n = sc.num_agents
        u, message = self.decode_actions(action)
        movable = jnp.asarray(sc.movable)[:, None]
        force = u * SENSITIVITY + self._contact_forces(state.p_pos)
        agent_pos = state.p_pos[:n] + jnp.where(movable, state.p_vel[:n] * DT, 0.0)
        agent_vel = jnp.where(movable, state.p_vel[:n] * (1 - DAMPING) + force * DT, state.p_vel[:n])
        new_state = state.replace(
            p_pos=state.p_pos.at[:n].set(agent_pos), p_vel=state.p_vel.at[:n].set(agent_vel),
            c=jnp.where(jnp.asarray(sc.silent)[:, None], 0.0, message), step=state.step + 1)
        reward = self._rewards(new_state)
        truncated = new_state.step >= self.max_steps
        info = {"terminated": jnp.zeros((), bool), "truncated": truncated}
        return self._observations(new_state), new_state, reward, truncated, info

    def _rewards(self, state: MPEState) -> jax.Array:
        sc = self.scenario
        n = sc.num_agents
        landmarks = state.p_pos[n:]
        if sc.name == "simple_reference":
            other = jnp.array([1, 0])
            local = -jnp.linalg.norm(state.p_pos[other] - landmarks[state.goal[other]], axis=-1)
            global_reward = local.mean()
        elif sc.name == "simple_speaker_listener":
            dist2 = ((state.p_pos[1] - landmarks[state.goal[1]]) ** 2).sum()
            return jnp.full((n,), -dist2)
        else:
            dist = jnp.linalg.norm(state.p_pos[:n, None, :] - landmarks[None, :, :], axis=-1)  # [agents, landmarks]
            global_reward = -dist.min(axis=0).sum()
            gap = jnp.linalg.norm(state.p_pos[:n, None, :] - state.p_pos[None, :n, :], axis=-1)
            size = jnp.asarray(sc.size)
            overlap = (gap < size[:, None] + size[None, :]) & ~jnp.eye(n, dtype=bool)
            local = -overlap.sum(axis=1).astype(jnp.float32)
        return (1 - sc.local_ratio) * global_reward + sc.local_ratio * local

    # ---- views ----------------------------------------------------------------------
    def _true_observations(self, state: MPEState) -> list[jax.Array]:
        sc = self.scenario
        n = sc.num_agents
        landmarks = state.p_pos[n:]
        if sc.name == "simple_reference":
            out = []
            for i in range(2):
                colour = jnp.where(jnp.arange(3) == state.goal[1 - i], 0.75, 0.25)
                out.append(jnp.concatenate([state.p_vel[i], (landmarks - state.p_pos[i]).ravel(), colour,
                                            state.c[1 - i]]))
            return out
        if sc.name == "simple_speaker_listener":
            speaker = jnp.asarray(SPEAKER_LISTENER_COLOURS)[state.goal[1]]
            listener = jnp.concatenate([state.p_vel[1], (landmarks - state.p_pos[1]).ravel(), state.c[0]])
            return [speaker, listener]
        out = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            out.append(jnp.concatenate([state.p_vel[i], state.p_pos[i], (landmarks - state.p_pos[i]).ravel(),
                                        (state.p_pos[jnp.asarray(others)] - state.p_pos[i]).ravel(),
                                        state.c[jnp.asarray(others)].ravel()]))
        return out

    def _observations(self, state: MPEState) -> jax.Array:
        if self.mute:
            state = state.replace(c=jnp.zeros_like(state.c))
        return jnp.stack([jnp.pad(o, (0, self.obs_dim - o.shape[0]))
                          for o in self._true_observations(state)]).astype(jnp.float32)

    def global_state(self, state: MPEState, params=None) -> jax.Array:
        return jnp.concatenate(self._true_observations(state)).astype(jnp.float32)

    def action_mask(self, state: MPEState, params=None) -> jax.Array:
        return jnp.asarray(np.arange(self._num_actions)[None, :] < np.asarray(self.action_sizes)[:, None])

    def outcome_statistics(self, state: MPEState, params=None) -> dict[str, jax.Array]:
        sc = self.scenario
        landmarks = state.p_pos[sc.num_agents:]
        if sc.name == "simple_spread":
            dist = jnp.linalg.norm(state.p_pos[:sc.num_agents, None] - landmarks[None], axis=-1).min(axis=0)
            return {"landmarks_covered": (dist < 0.1).mean()}
        movers = [i for i in range(sc.num_agents) if sc.movable[i]]
        dist = jnp.stack([jnp.linalg.norm(state.p_pos[i] - landmarks[state.goal[i]]) for i in movers])
        return {"final_distance": dist.mean(), "success": (dist < 0.1).all()}

    def render(self, state: MPEState, params=None, size: int = 200) -> jax.Array:
        """Top-down view of [-2, 2]²: landmarks (coloured squares), agents (dark circles, a ring in
        the colour of their goal landmark), and each speaking agent's message as a bar strip."""
        sc = self.scenario
        img = draw.canvas(size + 14 * sc.num_agents, size)
        colours = [(190, 60, 60), (60, 190, 60), (60, 60, 190)]
        ys, xs = jnp.mgrid[0:size, 0:size]
        world = lambda p: ((p[0] + 2) / 4 * size, (2 - p[1]) / 4 * size)
        for k in range(sc.num_landmarks):
            x, y = world(state.p_pos[sc.num_agents + k])
            img = draw.fill_rect(img, y - 4, x - 4, 8, 8, colours[k % 3])
        for i in range(sc.num_agents):
            x, y = world(state.p_pos[i])
            radius = max(3.0, sc.size[i] / 4 * size)
            d2 = (xs - x) ** 2 + (ys - y) ** 2
            ring = (d2 <= (radius + 2) ** 2) & (d2 > radius ** 2)
            goal_colour = jnp.asarray(colours)[state.goal[i] % 3].astype(jnp.uint8)
            board = img[:size]
            board = jnp.where(ring[..., None], goal_colour, board)
            board = jnp.where((d2 <= radius ** 2)[..., None], jnp.asarray((60, 60, 60), jnp.uint8), board)
            img = img.at[:size].set(board)
            y0 = size + 2 + 14 * i
            img = draw.draw_text(img, f"{i}", y0, 2, 2)
            width = (size - 20) // max(1, sc.dim_c)
            for m in range(sc.dim_c):
                level = jnp.clip(state.c[i, m], 0.0, 1.0)
                img = draw.fill_rect(img, y0 + 10 - jnp.round(level * 10), 14 + m * width, jnp.round(level * 10),
                                     width - 2, (40, 40, 40))
        return img



# ---- scripted policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class OracleCommunicatorAct:
    """simple_reference: say the goal you see, go where you are told.

    Message = the landmark whose colour the agent sees (its partner's target); move = towards the
    landmark named by the partner's last message, aiming at where the agent would coast to
    (p + 0.4·v: with damping 0.25 and dt 0.1 a velocity v carries the agent 0.4·v further); no-op
    within 0.05 of it or before any message arrived. A reference point for learned communication.
    """

    def __call__(self, params, obs, mask, key):
        told = obs[11:21]
        target = jnp.argmax(told)
        offset = obs[2:8].reshape(3, 2)[jnp.clip(target, 0, 2)] - 0.4 * obs[0:2]
        horizontal = jnp.abs(offset[0]) >= jnp.abs(offset[1])
        move = jnp.where(horizontal, jnp.where(offset[0] > 0, 2, 1), jnp.where(offset[1] > 0, 4, 3))
        move = jnp.where((told.max() <= 0) | (target > 2) | (jnp.linalg.norm(offset) < 0.05), 0, move)
        message = jnp.argmax(obs[8:11])
        return (5 * message + move).astype(jnp.int32)

    def action_probs(self, params, obs, mask):
        return jax.nn.one_hot(self(params, obs, mask, None), mask.shape[-1])


def oracle_communicator_policy(env: MPE) -> Policy:
    if env.scenario.name != "simple_reference" or env.continuous_actions:
        raise ValueError("the oracle_communicator baseline is written for discrete mpe_simple_reference")
    return Policy(None, OracleCommunicatorAct(), "oracle_communicator")


MPE.baseline_policies = {"random": random_policy, "oracle_communicator": oracle_communicator_policy}
