"""A PPO best response to a population mixture: the oracle of PSRO, Ex²PSRO and FCP.

    train = make_best_response(env, network_kwargs, BestResponseConfig(...))
    params, metrics, kl_state = train(key, seat, opponents, weights)

The learner plays ``seat`` of a two-player turn-based game; the other seat is played by the
population ``opponents`` (params stacked [K, ...], one architecture), with component k drawn
with probability ``weights[k]`` **once per game** (the original re-drew it at every decision, a
different strategy). The whole training, ``num_updates`` x (rollout of ``num_envs`` x ``rollout``
env steps, then PPO epochs), is one ``lax.scan`` inside one jitted program; a population of
another size compiles once more (pass stacks padded with :func:`jaxmarl_lab.population.take_components`).

Credit assignment is per player over its own decisions (:func:`jaxmarl_lab.ppo.agent_gae`): the
learner's reward is everything it receives up to its next decision, so a game the opponent ends
still pays the learner's last move; opponent moves are never trained on.

Optional regulariser (Ex²PSRO): with ``explore`` params the loss adds
kappa * mean_s KL(pi_explore(.|s) || pi(.|s)) over the learner's states, on legal actions;
``kappa`` lives in ``kl_state`` and a ``kl_update(kl_state, mean_kl) -> kl_state`` given to
:func:`make_best_response` may adapt it after every update (the algorithm file owns that rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmarl_lab.networks import _logits, make_network
from jaxmarl_lab.policies import masked_logits
from jaxmarl_lab.ppo import (
    agent_gae,
    clipped_policy_loss,
    clipped_value_loss,
    make_optimizer,
    masked_mean,
    minibatch_epochs,
)
from jaxmarl_lab.wrappers import AutoReset, EpisodeStats, VmapEnv


@dataclass(frozen=True)
class BestResponseConfig:
    """PPO settings of one best-response training (algorithm files expose them as ``br_*`` fields)."""

    num_envs: int = 256
    rollout: int = 32
    num_updates: int = 50
    lr: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 4
    num_minibatches: int = 4

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout

    @property
    def total_steps(self) -> int:
        return self.num_updates * self.steps_per_update


class _Step(NamedTuple):
    obs: jax.Array  # [N, D] the learner's observation where it moves
    mask: jax.Array  # [N, A]
    action: jax.Array  # [N]
    log_prob: jax.Array  # [N]
    value: jax.Array  # [N]
    reward: jax.Array  # [N] the learner's reward at this step
    done: jax.Array  # [N]
    learner_moves: jax.Array  # [N]
    episode_return: jax.Array  # [N] the learner's return of a game that ended at this step
    episode_welfare: jax.Array  # [N]


def initial_kl_state(kl_coef: float, window: int = 10) -> dict:
    """``kappa`` plus a window of recent per-update KL values (for adaptive rules)."""
    return {"kappa": jnp.asarray(kl_coef, jnp.float32), "history": jnp.zeros((window,), jnp.float32),
            "count": jnp.zeros((), jnp.int32)}


def kl_to_exploration(explore_probs: jax.Array, log_probs: jax.Array, mask: jax.Array,
                      weight: jax.Array) -> jax.Array:
    """Mean over states (``weight`` 1) of KL(pi_explore || pi) on the legal actions ([B, A] inputs)."""
    log_explore = jnp.log(jnp.maximum(explore_probs, 1e-30))
    per_state = jnp.where(mask & (explore_probs > 0), explore_probs * (log_explore - log_probs), 0.0).sum(axis=1)
    return masked_mean(per_state, weight)


def make_best_response(env, network_kwargs: dict, config: BestResponseConfig,
                       kl_update: Callable[[dict, jax.Array], dict] | None = None):
    """A jitted ``train(key, seat, opponents, weights, explore=None, kl_state=None, init_params=None)``.

    Returns ``(params, metrics, kl_state)``: the response's network params, per-update metrics
    ([num_updates] arrays: ``br_return`` — the learner's mean return over games finished in the
    update — ``br_welfare``, ``loss``, ``entropy``, ``kl``, ``kappa``) and the final ``kl_state``.
    """
    if env.num_agents != 2:
        raise ValueError(f"best responses are for two-player games; {env.name!r} has {env.num_agents} agents")
    network = make_network(**network_kwargs)
    venv = VmapEnv(EpisodeStats(AutoReset(env)), config.num_envs)
    env_params = env.default_params
    batch = config.steps_per_update
    if batch % config.num_minibatches:
        raise ValueError(f"br num_envs * rollout = {batch} does not split into {config.num_minibatches} minibatches")
    optimizer = make_optimizer(config.lr, config.anneal_lr, config.max_grad_norm, config.num_updates,
                               config.update_epochs * config.num_minibatches)
    rows = jnp.arange(config.num_envs)

    def forward(params, obs):
        logits, value = network.apply(params, obs)
        return logits, value

    def draw(key, weights, shape):
        return jax.random.categorical(key, jnp.log(jnp.maximum(weights, 1e-30)), shape=shape)

    def train(key, seat, opponents, weights, explore=None, kl_state=None, init_params=None):
        seat = jnp.asarray(seat, jnp.int32)
        kl_state = initial_kl_state(0.0) if kl_state is None else kl_state
        key_init, key_env, key_comp, key_run = jax.random.split(key, 4)
        params = network.init(key_init, jnp.zeros(env.obs_shape)) if init_params is None else init_params
        opt_state = optimizer.init(params)
        obs, env_state = venv.reset(key_env, env_params)
        component = draw(key_comp, weights, (config.num_envs,))

        def env_step(carry, step_key):
            params, env_state, obs, component = carry
            key_act, key_opp, key_step, key_draw = jax.random.split(step_key, 4)
            mask2 = venv.action_mask(env_state, env_params)
            mover = jnp.argmax(venv.acting(env_state, env_params), axis=1)
            obs_m, mask_m = obs[rows, mover], mask2[rows, mover]
            logits, value = forward(params, obs_m)
            logits = masked_logits(logits, mask_m)
            opp_logits = jax.vmap(lambda p: _logits(network.apply(p, obs_m)))(opponents)  # [K, N, A]
            opp_logits = masked_logits(opp_logits[component, rows], mask_m)
            learner_moves = mover == seat
            own = jax.random.categorical(key_act, logits)
            other = jax.random.categorical(key_opp, opp_logits)
            action = jnp.where(learner_moves, own, other).astype(jnp.int32)
            log_prob = jax.nn.log_softmax(logits)[rows, action]
            joint = jnp.broadcast_to(action[:, None], (config.num_envs, 2))
            next_obs, env_state, reward, done, info = venv.step(key_step, env_state, joint, env_params)
            component = jnp.where(done, draw(key_draw, weights, (config.num_envs,)), component)
            returns = info["returned_episode_returns"]
            step = _Step(obs_m, mask_m, action, log_prob, value, reward[rows, seat], done, learner_moves,
                         returns[rows, seat], returns.sum(axis=1))
            return (params, env_state, next_obs, component), step

        def loss_fn(params, kappa, mb):
            step, advantages, targets, valid, explore_probs = mb
            logits, value = forward(params, step.obs)
            log_probs = jax.nn.log_softmax(masked_logits(logits, step.mask))
            log_prob = jnp.take_along_axis(log_probs, step.action[:, None], axis=1)[:, 0]
            weight = valid.astype(jnp.float32)
            policy_loss, approx_kl, _ = clipped_policy_loss(log_prob, step.log_prob, advantages, weight, config.clip)
            value_loss = clipped_value_loss(value, step.value, targets, weight, config.clip)
            probs = jnp.exp(log_probs)
            entropy = masked_mean(-(jnp.where(step.mask, probs * log_probs, 0.0)).sum(axis=1), weight)
            loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
            kl = jnp.zeros(())
            if explore is not None:
                kl = kl_to_exploration(explore_probs, log_probs, step.mask, step.learner_moves.astype(jnp.float32))
                loss = loss + kappa * kl
            return loss, (entropy, kl, approx_kl)

        def update(carry, update_key):
            params, opt_state, env_state, obs, component, kl_state = carry
            key_roll, key_epochs = jax.random.split(update_key)
            (params, env_state, obs, component), traj = jax.lax.scan(
                env_step, (params, env_state, obs, component), jax.random.split(key_roll, config.rollout))
            mover = jnp.argmax(venv.acting(env_state, env_params), axis=1)
            _, last_value = forward(params, obs[rows, seat])
            col = lambda x: x[..., None]
            advantages, targets, valid = agent_gae(
                col(traj.reward), col(traj.value), col(traj.learner_moves), traj.done, jnp.zeros_like(traj.done),
                col(jnp.zeros_like(traj.value)), col(last_value), col(mover == seat), config.gamma, config.gae_lambda)
            advantages, targets, valid = advantages[..., 0], targets[..., 0], valid[..., 0]
            explore_probs = jnp.zeros(traj.mask.shape)
            if explore is not None:
                explore_logits, _ = forward(explore, traj.obs)
                explore_probs = jax.nn.softmax(masked_logits(explore_logits, traj.mask))
            flat = lambda x: x.reshape((batch,) + x.shape[2:])
            data = jax.tree_util.tree_map(flat, (traj, advantages, targets, valid, explore_probs))
            kappa = kl_state["kappa"]
            params, opt_state, (loss, entropy, kl, approx_kl) = minibatch_epochs(
                lambda p, mb: loss_fn(p, kappa, mb), optimizer, params, opt_state, data, key_epochs,
                config.update_epochs, config.num_minibatches)
            if explore is not None and kl_update is not None:
                kl_state = kl_update(kl_state, kl)
            finished = traj.done.astype(jnp.float32)
            games = jnp.maximum(finished.sum(), 1.0)
            metrics = {"br_return": (traj.episode_return * finished).sum() / games,
                       "br_welfare": (traj.episode_welfare * finished).sum() / games,
                       "loss": loss, "entropy": entropy, "kl": kl, "kappa": kappa, "approx_kl": approx_kl}
            return (params, opt_state, env_state, obs, component, kl_state), metrics

        carry = (params, opt_state, env_state, obs, component, kl_state)
        carry, metrics = jax.lax.scan(update, carry, jax.random.split(key_run, config.num_updates))
        return carry[0], metrics, carry[5]

    return jax.jit(train)
