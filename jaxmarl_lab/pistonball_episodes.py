"""Pistonball episode generator: many episodes in one vmapped rollout, written out as LangMARL does.

``EpisodeGenerator`` re-creates the original trainer's rollout tool (spec B3) on our JAX env. The
whole batch of episodes is one jitted ``vmap`` over episodes of a ``lax.scan`` over cycles; only
the writing (GIFs, logs, JSON, pickles) happens on the host afterwards. Per episode::

    <experiments_dir>/<exp_name>/iteration_<k>/episode_<j>/
        episode_<j>.gif      rendered frames (before each action, plus the final state)
        episode_log.txt      per cycle: global-state text, joint action, step and cumulative reward
        episode.json         episode_id, iteration, total_reward, num_pistons, max_cycles, agent_type,
                             action_mode, transitions[], gif_path, token_stats
        trajectory.pkl       {trajectory: [(obs_dict, actions, step_reward, done, infos)], transitions,
                             total_reward, num_steps}

Each transition holds ``timestep``, ``global_state`` (``text``, ``ball_position``, ``ball_velocity``,
``pistons`` with index/position/velocity), ``agents`` (per piston: ``action``, ``action_name``,
``local_observation`` text, ``observation_to_gpt`` and ``gpt_query_response``, empty unless an LLM
acts), ``instant_reward``, ``cumulative_reward`` and ``done``.

Agent types: ``"rule"`` (spec B4; the original's default k = 0.1, τ = 4), ``"policy"`` (any
:class:`jaxmarl_lab.Policy` — a trained checkpoint via ``load_policy`` — shared by all pistons) and
``"llm"`` (each piston asks a chat model through :func:`jaxmarl_lab.llm_policy`; one host call per
cycle for all episodes and pistons; the prompt and answer of every decision go to episode.json).
Unlike the original, rule pistons read their policy text: a text containing ``k = <number>``
and/or ``tau = <number>`` sets that piston's rule parameters, so textual gradients can change a
rule team's behaviour.
Not reproduced: the original's per-``save_interval`` checkpoint files, which exist to survive a
crash in the middle of a slow sequential LLM episode; here a batch takes seconds.
"""

from __future__ import annotations

import json
import pickle
import re
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.policies import Policy
from jaxmarl_lab.registry import make
from jaxmarl_lab.render import save_gif

DISCRETE_ACTION_NAMES = ("retract_down", "stay", "push_up")
AGENT_TYPES = ("rule", "policy", "llm")
ACTION_MODES = ("discrete", "continuous")
RENDER_CHUNK = 16  # frames rendered per call of the compiled renderer


def action_name(action, continuous: bool) -> str:
    """The original's log names: discrete 0/1/2, or five bands of a continuous action."""
    if not continuous:
        return DISCRETE_ACTION_NAMES[int(action)]
    a = float(np.asarray(action).reshape(-1)[0])
    if a > 0.5:
        return "push_up_strong"
    if a > 0.1:
        return "push_up_light"
    if a > -0.1:
        return "stay"
    return "retract_light" if a > -0.5 else "retract_strong"


# ---- text views of a state (spec B4 local observation, B5 global state) ------------------------

def _motion(value: float, positive: str, negative: str) -> str:
    if abs(value) < 5:
        return "nearly stationary"
    return f"moving {positive if value > 0 else negative} at {abs(value):.1f} px/s"


def global_state_text(ball_xy, ball_v, piston_x, piston_y, screen_width: int) -> str:
    """The critic's view of the whole board (spec B5)."""
    bx, by = float(ball_xy[0]), float(ball_xy[1])
    vx, vy = float(ball_v[0]), float(ball_v[1])
    n = len(piston_x)
    progress = 1.0 - bx / screen_width
    where = ("very close to the left wall" if progress > 0.8 else "past halfway" if progress > 0.5
             else "in the right half" if progress > 0.2 else "far from the goal")
    movement = ("moving LEFT (good)" if vx < -10 else "moving RIGHT (bad)" if vx > 10 else "roughly still")
    contact = [i for i in range(n) if abs(piston_x[i] - bx) < 80]
    lines = [f"Pistonball with {n} pistons. Objective: move the ball to the LEFT wall (x = 40).",
             f"Ball: x = {bx:.1f}, height = {491 - by:.1f}, progress = {progress:.2f} ({where}), "
             f"velocity = ({vx:.1f}, {vy:.1f}) px/s, {movement}.",
             f"Pistons that can contact the ball: {', '.join(map(str, contact)) or 'none'}"]
    for i in range(n):
        offset = piston_x[i] - bx
        tag = ""
        if abs(offset) < 80:
            tag = " NEAR BALL (left of ball)" if offset < 0 else " NEAR BALL (right of ball)"
        lines.append(f"  piston_{i}: x = {piston_x[i]:.0f}, height = {491 - piston_y[i]:.0f}, "
                     f"offset to ball = {offset:+.0f}{tag}")
    return "\n".join(lines)


def local_observation_text(i: int, ball_xy, ball_v, piston_x, piston_y) -> str:
    """What the original sends an LLM piston (spec B4, including its leak of far-away ball data)."""
    n = len(piston_x)
    region = ("left third, near the goal" if i < 0.33 * n else "middle" if i < 0.67 * n
              else "right third, far from the goal")
    gap = float(ball_xy[0]) - float(piston_x[i])
    closeness = "VERY CLOSE" if abs(gap) < 60 else "NEARBY" if abs(gap) < 120 else "FAR"
    side = ("ABOVE you" if abs(gap) < 20 else "to your LEFT (it has passed you)" if gap < 0
            else "to your RIGHT (it has not reached you yet)")
    return (f"You are piston_{i} of {n} ({region}); x = {piston_x[i]:.0f}, height = {491 - piston_y[i]:.0f}.\n"
            f"Ball: {closeness}, {abs(gap):.0f} px {side}.\n"
            f"Ball horizontal motion: {_motion(float(ball_v[0]), 'RIGHT', 'LEFT')}; "
            f"vertical motion: {_motion(float(ball_v[1]), 'DOWN', 'UP')}.")


# ---- the batched rollout ---------------------------------------------------------------------

RULE_PARAMETER = r"(?<![A-Za-z_]){name}\s*[=:]\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def rule_parameters(text: str, k: float, tau: float) -> tuple[float, float]:
    """``(k, tau)`` from a policy text's ``k = ...`` / ``tau = ...`` (or ``τ``), else the defaults."""
    found_k = re.search(RULE_PARAMETER.format(name="k"), text or "")
    found_tau = re.search(RULE_PARAMETER.format(name="(?:tau|τ)"), text or "")
    return (float(found_k.group(1)) if found_k else k), (float(found_tau.group(1)) if found_tau else tau)


@partial(jax.jit, static_argnames=("env", "num_episodes", "per_seat"))
def _rollout(env, policy: Policy, seat_params, num_episodes: int, key, params, per_seat: bool):
    """[E, T] states (before acting), actions, rewards, done flags and the final states. With
    ``per_seat`` the policy params have a leading piston axis (rule parameters, LLM seats)."""

    def episode(key):
        key_reset, key_steps = jax.random.split(key)
        obs, state = env.reset(key_reset, params)

        def body(carry, step_key):
            obs, state, done = carry
            key_act, key_step = jax.random.split(step_key)
            mask = env.action_mask(state, params) & ~done         # a finished episode asks nobody
            keys = jax.random.split(key_act, env.num_agents)
            action = jax.vmap(policy.act, (0 if per_seat else None, 0, 0, 0))(seat_params, obs, mask, keys)
            action = action.astype(env.action_space().dtype)
            next_obs, next_state, reward, step_done, _ = env.step(key_step, state, action, params)
            record = (state, action, reward[0], step_done, ~done)
            keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(done, b, a), new, old)
            return (keep(next_obs, obs), keep(next_state, state), done | step_done), record

        (_, final, _), records = jax.lax.scan(body, (obs, state, jnp.zeros((), bool)),
                                             jax.random.split(key_steps, env.max_steps))
        return records, final

    return jax.vmap(episode)(jax.random.split(key, num_episodes))


class EpisodeGenerator:
    """Rollouts of Pistonball with rule-based, trained or LLM pistons, saved as in LangMARL."""

    def __init__(self, num_pistons: int = 20, max_cycles: int = 125, action_mode: str = "discrete",
                 agent_type: str = "rule", experiments_dir: str | Path = "./experiments",
                 exp_name: str = "pistonball_exp", random_drop: bool = True, pistons_start_low: bool = False,
                 rule_k: float = 0.1, rule_tau: float = 4.0, policy: Policy | None = None, seed: int = 0,
                 llm_config: Any = None, continuous: bool = False, gpt_model: str = "gpt-4o-mini",
                 llm_cache_dir: str | Path | None | bool = None, max_concurrency: int = 8):
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}"
                             + (" (the 'fine' mode of the original's README was never implemented)"
                                if action_mode == "fine" else ""))
        if agent_type not in AGENT_TYPES:
            raise ValueError(f"agent_type must be one of {AGENT_TYPES}, got {agent_type!r}")
        if agent_type == "policy" and policy is None:
            raise ValueError("agent_type='policy' needs policy=<jaxmarl_lab.Policy> (e.g. load_policy(run_dir))")
        self.continuous = bool(continuous) or action_mode == "continuous"
        self.action_mode = "continuous" if self.continuous else "discrete"
        self.env = make("pistonball", n_pistons=num_pistons, max_cycles=max_cycles, continuous=self.continuous,
                        random_drop=random_drop, pistons_start_low=pistons_start_low)
        self.num_pistons, self.max_cycles = int(num_pistons), int(max_cycles)
        self.agent_type = agent_type
        self.exp_dir = Path(experiments_dir) / exp_name
        self.rule_k, self.rule_tau = float(rule_k), float(rule_tau)
        self.llm_config = llm_config if llm_config is not None else gpt_model
        from jaxmarl_lab.policies import baseline

        self.session = None
        if agent_type == "llm":
            from jaxmarl_lab.llm import llm_policy, llm_session

            self.policy = llm_policy(self.env, self.llm_config, cache_dir=llm_cache_dir,
                                     max_concurrency=max_concurrency, keep_transcript=True)
            self.session = llm_session(self.policy)
        else:
            self.policy = policy if agent_type == "policy" else baseline(self.env, "rule", k=rule_k, tau=rule_tau)
        self._key = jax.random.key(seed)
        self._batches = 0
        self._render_chunk = jax.jit(jax.vmap(self.env.render))  # compiled once per generator

    # ---- public API ------------------------------------------------------------------------
    def generate_episodes(self, num_episodes: int, iteration: int, agent_policies: dict | None = None,
                          save_gif: bool = True, gif_fps: int = 30, out_dir: str | Path | None = None,
                          **_ignored) -> list[dict]:  # the original's num_workers/parallel/... do not apply
        """Play ``num_episodes`` episodes in one vmapped rollout and write them to
        ``iteration_<iteration>/episode_<j>/`` (``agent_policies`` texts matter only to LLM pistons)."""
        episodes = self._generate(num_episodes, iteration, save_gif, gif_fps, out_dir, agent_policies)
        return [{k: v for k, v in e.items() if k != "_states"} for e in episodes]

    def policy_texts(self, agent_policies: dict | None) -> list[str]:
        """One text per piston from ``{"piston_i": "text" | {"policy": "text"}}`` ("" when missing)."""
        texts = []
        for name in self.env.agents:
            entry = (agent_policies or {}).get(name, "")
            texts.append(entry.get("policy", "") if isinstance(entry, dict) else str(entry or ""))
        return texts

    def _seat_params(self, texts: list[str]):
        if self.agent_type == "rule":
            pairs = np.array([rule_parameters(t, self.rule_k, self.rule_tau) for t in texts], np.float32)
            return {"k": jnp.asarray(pairs[:, 0]), "tau": jnp.asarray(pairs[:, 1])}, True
        if self.agent_type == "llm":
            self.session.policy_texts = dict(enumerate(texts))
            return jnp.arange(self.num_pistons, dtype=jnp.int32), True
        return self.policy.params, False

    def _generate(self, num_episodes, iteration, save_gif, gif_fps, out_dir, agent_policies=None) -> list[dict]:
        if num_episodes < 1:
            raise ValueError("num_episodes must be at least 1")
        self._batches += 1
        key = jax.random.fold_in(self._key, self._batches)
        seat_params, per_seat = self._seat_params(self.policy_texts(agent_policies))
        first_call = 0
        if self.session is not None:
            self.session.transcript.clear()
            first_call = self.session.host_calls
        records, finals = jax.device_get(_rollout(self.env, self.policy, seat_params, int(num_episodes), key,
                                                  self.env.default_params, per_seat))
        queries = self._queries_by_episode(first_call)
        base = Path(out_dir) if out_dir is not None else self.exp_dir / f"iteration_{iteration}"
        return [self._write_episode(j, iteration, records, finals, base / f"episode_{j}", save_gif, gif_fps,
                                    queries.get(j, {}))
                for j in range(num_episodes)]

    def _queries_by_episode(self, first_call: int) -> dict:
        """{episode: {(timestep, piston): transcript entry}} of the LLM decisions of the last rollout."""
        out: dict = {}
        if self.session is None:
            return out
        for entry in self.session.transcript:
            episode, piston = entry["row"][0], entry["row"][-1]
            out.setdefault(episode, {})[(entry["call"] - first_call, piston)] = entry
        return out

    def evaluate_policy(self, agent_policies: dict | None = None, num_episodes: int = 1,
                        save_dir: str | Path | None = None, gif_fps: int = 30, save_gif: bool = True) -> dict:
        """Episodes as iteration −1 plus ``evaluation_summary.json`` (mean/std/min/max reward, lengths)."""
        save_dir = Path(save_dir) if save_dir is not None else self.exp_dir / "evaluation"
        episodes = self.generate_episodes(num_episodes, -1, agent_policies, save_gif, gif_fps, out_dir=save_dir)
        rewards = np.array([e["total_reward"] for e in episodes])
        lengths = np.array([len(e["transitions"]) for e in episodes])
        summary = {"num_episodes": int(num_episodes), "agent_type": self.agent_type,
                   "mean_reward": float(rewards.mean()), "std_reward": float(rewards.std()),
                   "min_reward": float(rewards.min()), "max_reward": float(rewards.max()),
                   "mean_length": float(lengths.mean()), "std_length": float(lengths.std()),
                   "success_rate": float(np.mean([e["success"] for e in episodes])),
                   "all_rewards": rewards.tolist(), "all_lengths": lengths.tolist(),
                   "gif_paths": [e["gif_path"] for e in episodes]}
        save_dir.mkdir(parents=True, exist_ok=True)
        (save_dir / "evaluation_summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def render_single_episode(self, agent_policies: dict | None = None, save_path: str | Path | None = None,
                              fps: int = 30) -> tuple[float, int, str]:
        """One episode (iteration −1) rendered to ``save_path`` (default ``<exp>/render.gif``)."""
        save_path = Path(save_path) if save_path is not None else self.exp_dir / "render.gif"
        episode = self._generate(1, -1, False, fps, save_path.parent / "episode_single")[0]
        frames = self._frames(episode["_states"], len(episode["transitions"]))
        gif = save_gif(frames, save_path, fps=fps)
        return episode["total_reward"], len(episode["transitions"]), gif

    # ---- writing ---------------------------------------------------------------------------
    def _frames(self, states, length: int) -> np.ndarray:
        """Frames of the first ``length + 1`` states, rendered in fixed chunks so that one compiled
        renderer serves every episode length."""
        count = length + 1
        padded = -(-count // RENDER_CHUNK) * RENDER_CHUNK
        states = jax.tree_util.tree_map(
            lambda x: np.concatenate([x[:count], np.repeat(x[count - 1:count], padded - count, 0)]), states)
        chunks = [self._render_chunk(jax.tree_util.tree_map(lambda x, i=i: x[i:i + RENDER_CHUNK], states))
                  for i in range(0, padded, RENDER_CHUNK)]
        return np.concatenate([np.asarray(c) for c in chunks])[:count]

    def _write_episode(self, j: int, iteration: int, records, finals, directory: Path, save_gif_file: bool,
                       gif_fps: int, queries: dict | None = None) -> dict:
        states, actions, rewards, dones, alive = jax.tree_util.tree_map(lambda x: x[j], records)
        final = jax.tree_util.tree_map(lambda x: x[j], finals)
        length = int(alive.sum())
        directory.mkdir(parents=True, exist_ok=True)
        piston_x = np.asarray(self.env.piston_x, float)
        names = self.env.agents
        transitions, trajectory, log_lines, cumulative = [], [], [], 0.0
        for t in range(length):
            ball_xy, ball_v = states.ball_pos[t], states.ball_vel[t]
            piston_y = np.asarray(states.piston_y[t], float)
            text = global_state_text(ball_xy, ball_v, piston_x, piston_y, self.env.screen_width)
            cumulative += float(rewards[t])
            agents = {}
            for i, name in enumerate(names):
                act = actions[t][i]
                query = (queries or {}).get((t, i), {})
                agents[name] = {
                    "action": act.tolist() if self.continuous else int(act),
                    "action_name": action_name(act, self.continuous),
                    "local_observation": local_observation_text(i, ball_xy, ball_v, piston_x, piston_y),
                    "observation_to_gpt": query.get("prompt", ""), "gpt_query_response": query.get("response", "")}
            transitions.append({
                "timestep": t,
                "global_state": {"text": text, "ball_position": [float(ball_xy[0]), float(ball_xy[1])],
                                 "ball_velocity": [float(ball_v[0]), float(ball_v[1])],
                                 "pistons": [{"index": i, "position": [float(piston_x[i]), float(piston_y[i])],
                                              "velocity": [0.0, 0.0]} for i in range(len(names))]},
                "agents": agents, "instant_reward": float(rewards[t]), "cumulative_reward": cumulative,
                "done": bool(dones[t])})
            joint = " ".join(f"{name}={agents[name]['action_name']}" for name in names)
            log_lines += [f"=== timestep {t} ===", text, f"actions: {joint}",
                          f"reward: {float(rewards[t]):.3f}  cumulative: {cumulative:.3f}", ""]
            obs_dict = {name: local_observation_text(i, ball_xy, ball_v, piston_x, piston_y)
                        for i, name in enumerate(names)}
            trajectory.append((obs_dict, {n: agents[n]["action"] for n in names}, float(rewards[t]),
                               bool(dones[t]), {}))
        success = bool(self.env.outcome_statistics(final)["success"] > 0)
        log_lines.append(f"=== episode {j} finished: {length} cycles, total reward {cumulative:.3f}, "
                         f"{'success' if success else 'no success'} ===")
        (directory / "episode_log.txt").write_text("\n".join(log_lines))
        gif_path = None
        if save_gif_file:
            frames = self._frames(_with_final(states, final, length), length)
            gif_path = save_gif(frames, directory / f"episode_{j}.gif", fps=gif_fps)
        episode = {"episode_id": j, "iteration": iteration, "total_reward": cumulative,
                   "num_pistons": self.num_pistons, "max_cycles": self.max_cycles, "agent_type": self.agent_type,
                   "action_mode": self.action_mode, "success": success, "transitions": transitions,
                   "gif_path": gif_path,
                   "token_stats": {"total_gpt_queries": len(queries or {}), "estimated_tokens_simulation": {
                       "input": sum(q["input_tokens"] for q in (queries or {}).values()),
                       "output": sum(q["output_tokens"] for q in (queries or {}).values())}}}
        (directory / "episode.json").write_text(json.dumps(episode, indent=1))
        with open(directory / "trajectory.pkl", "wb") as fh:
            pickle.dump({"trajectory": trajectory, "transitions": transitions, "total_reward": cumulative,
                         "num_steps": length}, fh)
        return {**episode, "_states": _with_final(states, final, length)}


def _with_final(states, final, length: int):
    """The states before each action followed by the final state (for rendering every frame)."""
    return jax.tree_util.tree_map(lambda s, f: np.concatenate([np.asarray(s)[:length], np.asarray(f)[None]]),
                                  states, final)
