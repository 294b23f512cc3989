"""Measuring emergent communication: task success, signalling, listening and message ablation.

``evaluate_comm(run_or_policy, episodes=1000)`` plays jitted, vmapped episodes of an env whose
agents talk (MPE ``simple_reference``, ``simple_speaker_listener``: any env with
``comm_channels``, ``message_and_move``, ``speaker_goal``, ``move_of_action``,
``target_distances``) and returns a :class:`CommReport`. Conventions (shared/specs/mpe.md §10):

* Notation: speaker i sends symbol m_t ∈ {0..V−1} at step t (the argmax of its message); it
  privately sees G, the landmark its listener j must reach; a_t^i is i's *move* (0..4; the
  message part of a joint action is ignored). Pairs are pooled over all steps of all episodes;
  every information quantity is a plug-in estimate from counts, in bits, averaged over the links.
* **Task success**: each movable agent's distance to its target at the end of the episode;
  success = within ``radius`` (default 0.1) of it; ``success_all`` = every agent within it.
* **Message entropy** H(m).
* **Positive signalling** I(m_t ; G) (max log2 3 ≈ 1.585 bits for 3 uniform goals).
* **Speaker consistency** I(m_t ; a_t^i): message vs the speaker's *own* move at the same step
  (only for speakers that move).
* **Instantaneous coordination** I(m_t ; a_{t+1}^j): the message vs the listener's move at the
  *next* step, the first one that can see it (correlational, not causal).
* **Causal influence of communication** CIC = Σ_m′ p(m′)·KL(π_j(·|s, m′) ‖ Σ_m″ p(m″)π_j(·|s, m″)):
  for listener states s visited at steps t ≥ 1, the message slots of the observation are replaced
  by each one-hot symbol m′ and the listener's move distribution is read from the policy; p is
  uniform over the V symbols; averaged over up to ``cic_states`` visited states. This is the
  mutual information between an intervened message and the move. Exact when the policy exposes
  ``act_fn.action_probs``; otherwise estimated from ``cic_samples`` sampled actions per symbol.
* **Message ablation**: the same episodes (common random numbers) replayed with every received
  message zeroed, or shuffled across episodes at each step (the marginal message distribution is
  kept, its link to this episode is broken). Reported as the drop of the mean per-agent return
  with the standard error of the paired per-episode differences.
* **Channel value** (:func:`compare_channel`): a team trained talking against one trained on the
  muted env, both replayed on the same games; the gap in mean per-agent return with its paired
  standard error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.policies import Policy

INTERVENTIONS = ("none", "zero", "shuffle")


# ---- information measures on integer samples -------------------------------------------------


def entropy_bits(x: np.ndarray, size: int | None = None) -> float:
    """Plug-in entropy (bits) of integer samples in [0, size)."""
    x = np.asarray(x).ravel()
    if x.size == 0:
        return float("nan")
    p = np.bincount(x, minlength=size or 0) / x.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def mutual_information_bits(x: np.ndarray, y: np.ndarray) -> float:
    """Plug-in I(X; Y) in bits from paired integer samples (H(X) + H(Y) − H(X, Y))."""
    x, y = np.asarray(x).ravel(), np.asarray(y).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have equal shapes, got {x.shape} and {y.shape}")
    if x.size == 0:
        return float("nan")
    joint = x.astype(np.int64) * (int(y.max()) + 1) + y
    return max(0.0, entropy_bits(x) + entropy_bits(y) - entropy_bits(joint))


def causal_influence_bits(move_probs: np.ndarray) -> float:
    """CIC of listener move distributions under interventions, ``move_probs`` [S, V, M]
    (state, intervened symbol, move), with a uniform p(m′): mean over states of I(m′; move)."""
    p = np.asarray(move_probs, np.float64)
    marginal = p.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * (np.log2(p) - np.log2(np.maximum(marginal, 1e-300))), 0.0).sum(-1)
    return float(kl.mean(axis=1).mean())


# ---- jitted rollouts --------------------------------------------------------------------------


def _check_env(env) -> None:
    needed = ("comm_channels", "message_and_move", "speaker_goal", "move_of_action", "target_distances")
    missing = [n for n in needed if not hasattr(env, n)]
    if missing or not env.comm_channels:
        raise ValueError(f"{env.name} has no communication channel to analyse "
                         f"(needs {', '.join(needed)} and at least one link); try mpe_simple_reference")


def _intervene(env, obs: jax.Array, intervention: str, key: jax.Array) -> jax.Array:
    """obs [E, A, O] as the policies see them: received messages zeroed or shuffled across episodes."""
    if intervention == "none":
        return obs
    for link in env.comm_channels:
        part = obs[:, link.listener, link.start:link.stop]
        if intervention == "zero":
            part = jnp.zeros_like(part)
        else:
            part = part[jax.random.permutation(jax.random.fold_in(key, link.listener), part.shape[0])]
        obs = obs.at[:, link.listener, link.start:link.stop].set(part)
    return obs


@partial(jax.jit, static_argnames=("env", "num_episodes", "intervention"))
def _rollout(env, policies: tuple, num_episodes: int, key: jax.Array, env_params, intervention: str):
    dtype = env.action_space().dtype
    key_reset, key_steps = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_reset, num_episodes), env_params)
    goals = jax.vmap(env.speaker_goal)(state)

    def joint_act(obs, mask, key):
        keys = jax.random.split(key, len(policies))
        return jnp.stack([jnp.asarray(p.act(p.params, obs[i], mask[i], keys[i]), dtype)
                          for i, p in enumerate(policies)])

    def body(carry, step_key):
        obs, state, done, returns = carry
        key_shuffle, key_act, key_step = jax.random.split(step_key, 3)
        seen = _intervene(env, obs, intervention, key_shuffle)
        mask = jax.vmap(env.action_mask, in_axes=(0, None))(state, env_params)
        action = jax.vmap(joint_act)(seen, mask, jax.random.split(key_act, num_episodes))
        next_obs, next_state, reward, step_done, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key_step, num_episodes), state, action, env_params)
        alive = ~done
        symbols, moves = jax.vmap(env.message_and_move)(action)
        returns = returns + jnp.where(alive[:, None], reward, 0.0)
        keep = lambda new, old: jax.tree_util.tree_map(
            lambda a, b: jnp.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), b, a), new, old)
        carry = (keep(next_obs, obs), keep(next_state, state), done | step_done, returns)
        return carry, (seen, symbols, moves, alive)

    carry = (obs, state, jnp.zeros((num_episodes,), bool), jnp.zeros((num_episodes, env.num_agents)))
    (_, state, _, returns), (seen, symbols, moves, alive) = jax.lax.scan(
        body, carry, jax.random.split(key_steps, env.max_steps))
    to_episode_major = lambda x: jnp.swapaxes(x, 0, 1)
    return {"returns": returns, "distances": jax.vmap(env.target_distances)(state), "goals": goals,
            "obs": to_episode_major(seen), "symbols": to_episode_major(symbols), "moves": to_episode_major(moves),
            "alive": to_episode_major(alive)}


@partial(jax.jit, static_argnames=("env", "link_index", "samples"))
def _listener_move_probs(env, policy: Policy, obs: jax.Array, mask: jax.Array, key: jax.Array, link_index: int,
                         samples: int):
    """[S, V, 5] move distributions of the listener of link ``link_index`` for each intervened symbol."""
    link = env.comm_channels[link_index]
    moves = jnp.asarray(env.move_of_action(link.listener))
    vocabulary = jnp.eye(link.vocabulary, dtype=obs.dtype)

    def for_state(o, m, k):
        def for_symbol(symbol, ks):
            o2 = o.at[link.start:link.stop].set(symbol)
            if hasattr(policy.act_fn, "action_probs"):
                probs = policy.act_fn.action_probs(policy.params, o2, m)
            else:  # Monte-Carlo estimate from sampled actions
                acts = jax.vmap(lambda kk: policy.act(policy.params, o2, m, kk))(jax.random.split(ks, samples))
                probs = jnp.bincount(acts, length=m.shape[0]) / samples
            return jax.ops.segment_sum(probs, moves, num_segments=5)

        return jax.vmap(for_symbol)(vocabulary, jax.random.split(k, link.vocabulary))

    return jax.vmap(for_state)(obs, mask, jax.random.split(key, obs.shape[0]))


# ---- the report -------------------------------------------------------------------------------


@dataclass
class CommReport:
    """Success and communication statistics (see the module docstring for every convention)."""

    env_name: str
    episodes: int
    summary: dict
    links: list[dict]
    ablation: dict
    symbol_given_goal: list[np.ndarray] = field(repr=False)  # per link: counts [goals, V]

    def __str__(self) -> str:
        s = self.summary
        lines = [f"communication on {self.env_name} ({self.episodes} episodes):",
                 f"  mean return per agent {s['mean_return']:.3f} ± {s['mean_return_stderr']:.3f}; "
                 f"final distance {s['final_distance']:.3f}; success (r<{s['radius']}) per agent "
                 f"{s['success_rate']:.3f}, all agents {s['success_all_rate']:.3f}",
                 f"  message entropy {s['message_entropy']:.3f} bits; positive signalling I(m;G) "
                 f"{s['positive_signalling']:.3f} bits (max {np.log2(3):.3f}); speaker consistency "
                 f"{s['speaker_consistency']:.3f}; instantaneous coordination {s['instantaneous_coordination']:.3f}; "
                 f"causal influence {s['causal_influence']:.3f} bits"]
        for name, a in self.ablation.items():
            lines.append(f"  messages {name}: return {a['mean_return']:.3f}, drop {a['drop']:.3f} ± "
                         f"{a['drop_stderr']:.3f} ({a['drop_z']:.1f} SE)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"env": self.env_name, "episodes": self.episodes, "summary": self.summary, "links": self.links,
                "ablation": self.ablation,
                "symbol_given_goal": [m.tolist() for m in self.symbol_given_goal]}

    def plot(self, path: str | Path | None = None):
        """Per-goal symbol distributions of each speaker and the ablation drops (returns the figure;
        with ``path`` it is saved there instead of being opened in pyplot)."""
        n = len(self.symbol_given_goal)
        size = (4.2 * (n + 1), 3.3)
        if path is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=size)
        else:
            from matplotlib.figure import Figure

            fig = Figure(figsize=size)
        axes = fig.subplots(1, n + 1, squeeze=False)
        for ax, counts, link in zip(axes[0], self.symbol_given_goal, self.links, strict=False):
            freq = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
            ax.imshow(freq, aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_xlabel("symbol")
            ax.set_ylabel("speaker's goal landmark")
            ax.set_title(f"{link['speaker']} → {link['listener']}: I(m;G)={link['positive_signalling']:.2f} bits")
        ax = axes[0][-1]
        names = list(self.ablation)
        ax.bar(names, [self.ablation[k]["drop"] for k in names],
               yerr=[3 * self.ablation[k]["drop_stderr"] for k in names], capsize=4)
        ax.set_title("return drop when messages are ablated (±3 SE)")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig


def _resolve(run_or_policy, env):
    """(env, team of policies) from a run directory, a Policy or a tuple of Policies."""
    from jaxmarl_lab.registry import make

    if isinstance(run_or_policy, str | Path) or hasattr(run_or_policy, "load_config"):
        from jaxmarl_lab.results import Run
        from jaxmarl_lab.training import load_policy

        run = run_or_policy if hasattr(run_or_policy, "load_config") else Run(run_or_policy)
        env = env if env is not None else make(run.load_config()["env"])
        run_or_policy = load_policy(run.path)
    if env is None:
        env = make("mpe_simple_reference")
    elif isinstance(env, str):
        env = make(env)
    team = run_or_policy if isinstance(run_or_policy, tuple) else (run_or_policy,) * env.num_agents
    if len(team) != env.num_agents or not all(isinstance(p, Policy) for p in team):
        raise ValueError(f"expected a run directory, a Policy or {env.num_agents} Policies for {env.name}")
    return env, team


def evaluate_comm(run_or_policy, episodes: int = 1000, *, env=None, key: jax.Array | None = None,
                  radius: float = 0.1, cic_states: int = 10_000, cic_samples: int = 64) -> CommReport:
    """Success and communication statistics of a trained team (see the module docstring).

    ``run_or_policy``: a run directory (its env comes from the run's config), a Policy shared by
    all agents, or a tuple with one Policy per agent (then ``env`` names the env; default
    ``mpe_simple_reference``). Agent order is ``env.agents``.
    """
    env, team = _resolve(run_or_policy, env)
    _check_env(env)
    key = jax.random.key(0) if key is None else key
    key_roll, key_cic = jax.random.split(key)
    params = env.default_params
    rollouts = {name: jax.device_get(_rollout(env, team, int(episodes), key_roll, params, name))
                for name in INTERVENTIONS}
    base = rollouts["none"]
    per_episode = base["returns"].mean(axis=1)
    distances = base["distances"]
    summary = {"mean_return": float(per_episode.mean()),
               "mean_return_stderr": float(per_episode.std(ddof=1) / np.sqrt(len(per_episode))),
               "radius": radius, "final_distance": float(distances.mean()),
               "success_rate": float((distances < radius).mean()),
               "success_all_rate": float((distances < radius).all(axis=1).mean())}
    for k, i in enumerate(env.movers):
        summary[f"final_distance_{env.agents[i]}"] = float(distances[:, k].mean())
        summary[f"success_rate_{env.agents[i]}"] = float((distances[:, k] < radius).mean())

    alive = base["alive"]  # [E, T]
    links, symbol_given_goal = [], []
    reference_masks = np.asarray(env.action_mask(env.reset(jax.random.key(0), params)[1], params))
    for index, link in enumerate(env.comm_channels):
        symbols = base["symbols"][:, :, link.speaker]  # [E, T]
        goal = np.broadcast_to(base["goals"][:, link.speaker][:, None], symbols.shape)
        listener_moves = base["moves"][:, :, link.listener]
        own_moves = base["moves"][:, :, link.speaker]
        live = alive.astype(bool)
        pair_live = live[:, :-1] & live[:, 1:]
        stats = {"speaker": env.agents[link.speaker], "listener": env.agents[link.listener],
                 "message_entropy": entropy_bits(symbols[live], link.vocabulary),
                 "positive_signalling": mutual_information_bits(symbols[live], goal[live]),
                 "speaker_consistency": (mutual_information_bits(symbols[live], own_moves[live])
                                         if link.speaker in env.movers else float("nan")),
                 "instantaneous_coordination": mutual_information_bits(symbols[:, :-1][pair_live],
                                                                       listener_moves[:, 1:][pair_live])}
        # causal influence: listener states at steps t >= 1 (they carry a message), up to cic_states
        states = base["obs"][:, 1:, link.listener][live[:, 1:]]
        pick = np.random.default_rng(0).permutation(len(states))[:cic_states]
        states = states[pick]
        masks = np.broadcast_to(reference_masks[link.listener], (len(states), env.num_actions))
        probs = _listener_move_probs(env, team[link.listener], jnp.asarray(states), jnp.asarray(masks),
                                     jax.random.fold_in(key_cic, index), index, cic_samples)
        stats["causal_influence"] = causal_influence_bits(jax.device_get(probs))
        counts = np.zeros((int(goal.max()) + 1 if goal.size else 1, link.vocabulary), np.int64)
        np.add.at(counts, (goal[live], symbols[live]), 1)
        symbol_given_goal.append(counts)
        links.append(stats)
    for name in ("message_entropy", "positive_signalling", "speaker_consistency", "instantaneous_coordination",
                 "causal_influence"):
        values = [link[name] for link in links if not np.isnan(link[name])]
        summary[name] = float(np.mean(values)) if values else float("nan")

    ablation = {}
    for name in INTERVENTIONS[1:]:
        ablated = rollouts[name]["returns"].mean(axis=1)
        diff = per_episode - ablated
        stderr = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        ablation[name] = {"mean_return": float(ablated.mean()), "drop": float(diff.mean()), "drop_stderr": stderr,
                          "drop_z": float(diff.mean() / max(stderr, 1e-12))}
        summary[f"ablation_{name}_drop"] = float(diff.mean())
        summary[f"ablation_{name}_drop_stderr"] = stderr
    return CommReport(env.name, int(episodes), summary, links, ablation, symbol_given_goal)


def compare_channel(talking, muted, episodes: int = 1000, *, env: str = "mpe_simple_reference",
                    muted_env: str | None = None, key: jax.Array | None = None) -> dict:
    """Is the channel worth something? A team trained with working messages against one trained
    with messages zeroed (``mpe_simple_reference_muted``), each on its own env, on the *same*
    ``episodes`` games (common random numbers: same start states, goals and sampling keys).

    ``talking``/``muted``: run directories (their envs come from their configs) or Policies.
    Returns both mean per-agent returns, the gap, and its standard error from the paired
    per-episode differences (``gap_z`` = gap / that SE) next to the unpaired standard error.
    """
    from jaxmarl_lab.evaluation import evaluate
    from jaxmarl_lab.registry import make

    key = jax.random.key(0) if key is None else key
    muted_env = muted_env or f"{env}_muted"
    env_talk, team_talk = _resolve(talking, make(env) if not isinstance(talking, str | Path) else None)
    env_mute, team_mute = _resolve(muted, make(muted_env) if not isinstance(muted, str | Path) else None)
    if env_talk.num_agents != env_mute.num_agents:
        raise ValueError(f"{env_talk.name} and {env_mute.name} have different numbers of agents")
    talk = evaluate(env_talk, team_talk, int(episodes), key).returns.mean(axis=1)
    mute = evaluate(env_mute, team_mute, int(episodes), key).returns.mean(axis=1)
    diff = talk - mute
    n = len(diff)
    paired = float(diff.std(ddof=1) / np.sqrt(n))
    unpaired = float(np.sqrt(talk.var(ddof=1) / n + mute.var(ddof=1) / n))
    return {"episodes": n, "env": env_talk.name, "muted_env": env_mute.name,
            "talking_return": float(talk.mean()), "muted_return": float(mute.mean()), "gap": float(diff.mean()),
            "gap_stderr": paired, "gap_z": float(diff.mean() / max(paired, 1e-12)), "unpaired_stderr": unpaired,
            "unpaired_z": float(diff.mean() / max(unpaired, 1e-12))}
