"""PPO self-play on the bargaining game, with correct turn-based credit assignment.

    python algos/ppo_bargain.py --config configs/ppo.yaml [--num-envs 512 --lr 1e-4 ...]

Both seats are played by the learner: one network (``share_seats: true``, the seat is read from
obs[9]) or one network per seat. Each env step has exactly one mover; the rollout stores only
the mover's decision. Credit assignment, per player p:

* the reward of p's decision at step t is everything p receives from t up to (not including) p's
  next decision, so p's terminal reward lands on p's own last decision even when the *opponent*
  ended the game;
* GAE runs over p's own decisions only: the next value of a decision is p's value at p's next
  decision (zero if the game ended in between), never the opponent's value;
* at the end of a rollout window the player to move bootstraps from its own current value; the
  other player's last decision, whose outcome is not yet known and whose next decision is not
  yet observed, is left out of the loss (a valid-mask) instead of being given a wrong target.

The original trainer credited only the player whose action ended the game and ran GAE along the
env time axis across both players (shared/specs/bargain.md §4.1); both are fixed here.

Optionally (``baseline_mix > 0``) a share of episodes seats a scripted baseline opposite the
learner (drawn per episode, in a random seat); the baseline's decisions are left out of the
loss, so the learner trains on its own decisions only. Self-play metrics count self-play games.

Shape: Config → networks (jaxmarl_lab.networks) → Transition → make_train → main (the shared
driver in jaxmarl_lab.training does progress, logging, checkpoints, evaluation and results).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

import jaxmarl_lab as jl
from jaxmarl_lab.config import RolloutBudget
from jaxmarl_lab.networks import actor_critic_policy, apply_seats, init_seat_params, make_network
from jaxmarl_lab.policies import Policy, masked_logits


@dataclass(frozen=True)
class Config(RolloutBudget):
    """PPO self-play hyperparameters (names and defaults of the original, §4.1, where sensible).

    Defaults equal configs/ppo.yaml (configs/ppo_bargain.yaml links to it): a run of about five
    minutes on a 2-core CPU. The original's own scale is configs/ppo_gpu.yaml.
    """

    env: str = "bargain"  # registered env name (a two-player turn-based game)
    network: str = "mlp"  # mlp | transformer
    share_seats: bool = False  # one network for both seats (seat = obs[9]) or one per seat
    hidden_size: int = 256  # mlp width
    num_layers: int = 2  # mlp hidden layers / transformer encoder layers
    d_model: int = 128  # transformer width
    num_heads: int = 4  # transformer attention heads
    ff_dim: int = 256  # transformer feed-forward width
    dropout: float = 0.1  # transformer dropout (update only, never in rollouts)
    num_envs: int = 256  # parallel games
    rollout: int = 64  # env steps per env per update
    total_timesteps: int = 5_000_000  # env steps (decisions) over the whole run
    lr: float = 3e-4
    anneal_lr: bool = True  # linear decay to 0 over the run
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 4
    minibatch_size: int = 512
    baseline_mix: float = 0.0  # probability that an episode pits the learner against a scripted baseline
    baseline_pool: tuple[str, ...] = ()  # baselines to draw from (empty: all of the env's baselines)
    seed: int = 0
    num_seeds: int = 1  # independent runs vmapped into one program
    updates_per_chunk: int = 10  # updates per jitted train_chunk call (logging/checkpoint granularity)
    eval_interval: int = 2_000_000  # env steps between evaluations (0: only at the end)
    eval_games: int = 10_000  # games per evaluation matchup
    checkpoint_interval: int = 2_000_000  # env steps between periodic checkpoints (0: only final/best)


def network_kwargs(config: Config, env) -> dict:
    """Arguments of jaxmarl_lab.networks.make_network for this config (also stored with the run)."""
    if config.network not in ("mlp", "transformer"):
        raise ValueError(f"unknown network {config.network!r}; valid networks: mlp, transformer")
    kwargs = {"name": config.network, "num_actions": env.num_actions}
    if config.network == "mlp":
        kwargs.update(hidden_size=config.hidden_size, num_layers=config.num_layers)
    else:
        kwargs.update(num_items=getattr(env, "num_items", 3), d_model=config.d_model, num_heads=config.num_heads,
                      num_layers=config.num_layers, ff_dim=config.ff_dim, dropout=config.dropout)
    return kwargs


class Transition(NamedTuple):
    obs: jax.Array  # [N, obs] the mover's observation
    mask: jax.Array  # [N, A] the mover's legal actions
    seat: jax.Array  # [N] who moved
    action: jax.Array  # [N]
    log_prob: jax.Array  # [N]
    value: jax.Array  # [N] the mover's value
    reward: jax.Array  # [N, 2] every player's reward at this step
    done: jax.Array  # [N]
    # episode statistics of games that ended at this step (for logging)
    episode_returns: jax.Array  # [N, 2]
    episode_length: jax.Array  # [N]
    accepted: jax.Array  # [N]
    learner_move: jax.Array  # [N] False where a scripted opponent moved (not trained on)
    selfplay: jax.Array  # [N] the episode is a self-play game (not against a baseline)
    learner_seat: jax.Array  # [N] the learner's seat when it plays a baseline


@struct.dataclass
class RunnerState:
    params: dict
    opt_state: optax.OptState
    env_state: object
    obs: jax.Array
    key: jax.Array
    update: jax.Array  # updates done so far
    opponent: jax.Array  # [N] index into the baseline pool, -1 for self-play (per episode)
    learner_seat: jax.Array  # [N] the learner's seat in games against a baseline


def turn_based_gae(traj: Transition, last_value, last_seat, gamma: float, lam: float):
    """Per-player GAE over a [T, N] window of turn-based decisions (see the module docstring).

    Returns (advantages [T, N], targets [T, N], valid [T, N]) for the mover of every step.
    """
    num_envs = last_value.shape[0]
    seats = jnp.arange(2)
    is_last_mover = last_seat[:, None] == seats  # [N, 2]
    init = (
        jnp.where(is_last_mover, last_value[:, None], 0.0),  # value of p's next decision
        jnp.zeros((num_envs, 2)),  # advantage of p's next decision
        jnp.zeros((num_envs, 2)),  # p's reward since its next decision... accumulated backwards
        jnp.zeros((num_envs, 2), bool),  # an episode end lies between this point and p's next decision
        is_last_mover,  # p's next decision is known (inside the window or bootstrapped)
    )

    def backward(carry, t: Transition):
        next_value, next_adv, reward_sum, ended, known = carry
        done = t.done[:, None]
        reward_sum = t.reward + jnp.where(done, 0.0, reward_sum)
        ended = done | ended
        is_mover = t.seat[:, None] == seats  # [N, 2]
        valid = ended | known
        continuing = 1.0 - ended.astype(jnp.float32)
        delta = reward_sum + gamma * next_value * continuing - t.value[:, None]
        adv = jnp.where(valid, delta + gamma * lam * continuing * next_adv, 0.0)
        out_adv = (adv * is_mover).sum(1)
        out_valid = (valid & is_mover).any(1)
        carry = (
            jnp.where(is_mover, t.value[:, None], next_value),
            jnp.where(is_mover, adv, next_adv),
            jnp.where(is_mover, 0.0, reward_sum),
            jnp.where(is_mover, False, ended),
            known | is_mover,
        )
        return carry, (out_adv, out_valid)

    _, (advantages, valid) = jax.lax.scan(backward, init, traj, reverse=True)
    return advantages, advantages + traj.value, valid


def make_train(config: Config, env):
    """Pure ``init(key) -> RunnerState`` and jitted ``train_chunk(runner) -> (runner, metrics[K])``."""
    network = make_network(**network_kwargs(config, env))
    venv = jl.VmapEnv(jl.EpisodeStats(jl.AutoReset(env)), config.num_envs)
    env_params = env.default_params
    batch = config.steps_per_update
    if batch % config.minibatch_size:
        raise ValueError(f"num_envs * rollout = {batch} must be a multiple of minibatch_size = {config.minibatch_size}")
    num_minibatches = batch // config.minibatch_size
    num_updates = config.num_updates

    def schedule(count):
        frac = 1.0 - (count // (num_minibatches * config.update_epochs)) / num_updates
        return config.lr * jnp.maximum(frac, 0.0)

    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                            optax.adam(schedule if config.anneal_lr else config.lr, eps=1e-5))

    pool_names = list(config.baseline_pool) or jl.list_baselines(env)
    pool = [jl.baseline(env, name) for name in pool_names] if config.baseline_mix > 0 else []
    branches = [lambda o, m, k, p=p: jnp.asarray(p.act(p.params, o, m, k), jnp.int32) for p in pool]

    def draw_opponents(key, shape):
        """Per episode: -1 (self-play) or a baseline index with probability baseline_mix, and a learner seat."""
        key_mix, key_which, key_seat = jax.random.split(key, 3)
        against = jax.random.uniform(key_mix, shape) < config.baseline_mix
        which = jax.random.randint(key_which, shape, 0, max(1, len(pool)))
        return jnp.where(against, which, -1), jax.random.randint(key_seat, shape, 0, 2)

    def init(key) -> RunnerState:
        key_params, key_env, key_run, key_opp = jax.random.split(key, 4)
        params = init_seat_params(network, key_params, jnp.zeros(env.obs_shape), config.share_seats)
        obs, env_state = venv.reset(key_env, env_params)
        opponent, learner_seat = draw_opponents(key_opp, (config.num_envs,))
        return RunnerState(params, optimizer.init(params), env_state, obs, key_run, jnp.zeros((), jnp.int32),
                           opponent, learner_seat)

    def mover_view(obs, env_state):
        seat = jnp.argmax(venv.acting(env_state, env_params), axis=1)  # [N]
        rows = jnp.arange(config.num_envs)
        return obs[rows, seat], venv.action_mask(env_state, env_params)[rows, seat], seat

    def env_step(runner: RunnerState, _):
        key, key_act, key_step, key_base, key_opp = jax.random.split(runner.key, 5)
        obs, mask, seat = mover_view(runner.obs, runner.env_state)
        logits, value = apply_seats(network, runner.params, obs, seat, config.share_seats)
        dist = distrax.Categorical(logits=masked_logits(logits, mask))
        action = dist.sample(seed=key_act)
        learner_move = jnp.ones((config.num_envs,), bool)
        if pool:  # scripted opponents move in their seat of baseline games
            scripted = jax.vmap(lambda i, o, m, k: jax.lax.switch(jnp.maximum(i, 0), branches, o, m, k))(
                runner.opponent, obs, mask, jax.random.split(key_base, config.num_envs))
            learner_move = (runner.opponent < 0) | (seat == runner.learner_seat)
            action = jnp.where(learner_move, action, scripted)
        joint = jnp.broadcast_to(action[:, None], (config.num_envs, env.num_agents)).astype(jnp.int32)
        next_obs, env_state, reward, done, info = venv.step(key_step, runner.env_state, joint, env_params)
        transition = Transition(obs, mask, seat, action, dist.log_prob(action), value, reward, done,
                                info["returned_episode_returns"], info["returned_episode_length"],
                                info["final_outcome"]["accept"], learner_move, runner.opponent < 0,
                                runner.learner_seat)
        opponent, learner_seat = runner.opponent, runner.learner_seat
        if pool:  # a finished game's successor draws its own opponent
            new_opponent, new_seat = draw_opponents(key_opp, (config.num_envs,))
            opponent, learner_seat = jnp.where(done, new_opponent, opponent), jnp.where(done, new_seat, learner_seat)
        runner = runner.replace(env_state=env_state, obs=next_obs, key=key, opponent=opponent,
                                learner_seat=learner_seat)
        return runner, transition

    def loss_fn(params, mb: Transition, advantages, targets, valid, key):
        rngs = None if config.network == "mlp" else {"dropout": key}
        logits, value = apply_seats(network, params, mb.obs, mb.seat, config.share_seats,
                                    deterministic=config.network == "mlp", rngs=rngs)
        dist = distrax.Categorical(logits=masked_logits(logits, mb.mask))
        log_prob = dist.log_prob(mb.action)
        weight = valid.astype(jnp.float32)
        count = jnp.maximum(weight.sum(), 1.0)
        mean = lambda x: (x * weight).sum() / count
        adv_mean = mean(advantages)
        adv_std = jnp.sqrt(mean((advantages - adv_mean) ** 2)) + 1e-8
        adv = (advantages - adv_mean) / adv_std
        ratio = jnp.exp(log_prob - mb.log_prob)
        policy_loss = -mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv))
        value_clipped = mb.value + jnp.clip(value - mb.value, -config.clip, config.clip)
        value_loss = 0.5 * mean(jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2))
        entropy = mean(dist.entropy())
        loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        approx_kl = mean((ratio - 1) - jnp.log(ratio))
        clip_frac = mean((jnp.abs(ratio - 1) > config.clip).astype(jnp.float32))
        return loss, (policy_loss, value_loss, entropy, approx_kl, clip_frac)

    def update(runner: RunnerState, _):
        runner, traj = jax.lax.scan(env_step, runner, None, config.rollout)
        obs, _, seat = mover_view(runner.obs, runner.env_state)
        _, last_value = apply_seats(network, runner.params, obs, seat, config.share_seats)
        advantages, targets, valid = turn_based_gae(traj, last_value, seat, config.gamma, config.gae_lambda)
        valid = valid & traj.learner_move

        flat = lambda x: x.reshape((batch,) + x.shape[2:])
        data = (jax.tree_util.tree_map(flat, traj), flat(advantages), flat(targets), flat(valid))

        def epoch(carry, _):
            params, opt_state, key = carry
            key, key_perm, key_drop = jax.random.split(key, 3)
            perm = jax.random.permutation(key_perm, batch)
            shuffled = jax.tree_util.tree_map(
                lambda x: x[perm].reshape((num_minibatches, config.minibatch_size) + x.shape[1:]), data)

            def minibatch(carry, xs):
                params, opt_state = carry
                mb, adv, tgt, val, k = xs
                (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb, adv, tgt, val, k)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), (loss, *aux)

            keys = jax.random.split(key_drop, num_minibatches)
            (params, opt_state), stats = jax.lax.scan(minibatch, (params, opt_state), (*shuffled, keys))
            return (params, opt_state, key), stats

        key, key_epochs = jax.random.split(runner.key)
        (params, opt_state, _), stats = jax.lax.scan(
            epoch, (runner.params, runner.opt_state, key_epochs), None, config.update_epochs)
        loss, policy_loss, value_loss, entropy, approx_kl, clip_frac = (x.mean() for x in stats)

        finished = (traj.done & traj.selfplay).astype(jnp.float32)  # self-play games only
        episodes = jnp.maximum(finished.sum(), 1.0)
        per_seat = (traj.episode_returns * finished[..., None]).sum((0, 1)) / episodes
        metrics = {
            "episode_welfare": per_seat.sum(), "episode_reward_p0": per_seat[0], "episode_reward_p1": per_seat[1],
            "accept_rate": (traj.accepted * finished).sum() / episodes,
            "episode_length": (traj.episode_length * finished).sum() / episodes,
            "episodes": finished.sum(), "loss": loss, "policy_loss": policy_loss, "value_loss": value_loss,
            "entropy": entropy, "approx_kl": approx_kl, "clip_frac": clip_frac,
            "valid_fraction": valid.mean(),
        }
        if pool:  # the learner's own return in games against baselines
            against = (traj.done & ~traj.selfplay).astype(jnp.float32)
            own = jnp.take_along_axis(traj.episode_returns, traj.learner_seat[..., None], axis=-1)[..., 0]
            metrics["vs_baselines_reward"] = (own * against).sum() / jnp.maximum(against.sum(), 1.0)
        runner = runner.replace(params=params, opt_state=opt_state, key=key, update=runner.update + 1)
        return runner, metrics

    def train_chunk(runner: RunnerState):
        return jax.lax.scan(update, runner, None, config.updates_per_chunk)

    return init, train_chunk


# ---- the trained policy as a Policy -------------------------------------------------------------


def make_policy(config: Config, env, params, sample: bool = True) -> Policy:
    """The learner as a :class:`Policy` for evaluate/crossplay (both seats; the seat comes from obs[9])."""
    return actor_critic_policy(network_kwargs(config, env), params, share_seats=config.share_seats,
                               seat_slot=env.seat_slot, sample=sample, name="ppo")


#: how the shared driver runs this file (also used by jaxmarl_lab.train_wrapper)
DRIVER_KWARGS = {"progress_metric": "episode_welfare"}


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm("ppo_bargain", Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
