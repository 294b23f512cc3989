"""Pieces shared by the PPO-family algorithms (``algos/ippo.py``, ``algos/mappo.py``).

* :func:`agent_gae`: generalised advantage estimation per agent that respects *who acted*
  (``env.acting``) and *how* an episode ended (terminated: no bootstrap; truncated by a time
  limit: bootstrap from the value of the true final observation).
* :func:`clipped_policy_loss`, :func:`clipped_value_loss`, :func:`masked_mean`: the PPO losses
  over a batch with per-sample weights (samples of agents that did not act weigh 0).
* :func:`make_optimizer` and :func:`minibatch_epochs`: Adam with global-norm clipping and an
  optional linear learning-rate decay; epochs of shuffled minibatch steps as one ``lax.scan``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax


def agent_gae(rewards: jax.Array, values: jax.Array, acting: jax.Array, done: jax.Array, truncated: jax.Array,
              final_values: jax.Array, last_values: jax.Array, last_acting: jax.Array, gamma: float,
              lam: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """GAE over a window of T steps, for every agent over its *own* decisions.

    Shapes: ``rewards``, ``values``, ``acting``, ``final_values`` [T, N, A] (N envs, A agents);
    ``done``, ``truncated`` [T, N]; ``last_values``, ``last_acting`` [N, A] (the state after the
    window). Returns (advantages, value targets, valid) [T, N, A].

    Conventions, per agent:

    * the reward of a decision is everything the agent receives from that step up to (not
      including) its next decision, so in turn-based games the reward caused by the opponent's
      reply lands on the agent's own decision; in simultaneous games this is the step's reward;
    * the next value of a decision is the agent's value at its next decision, never another
      agent's; at an episode end it is 0 after termination and V(final observation) after
      truncation (time limits are not part of the task);
    * a decision is ``valid`` when its continuation is known: a later decision of the same agent
      inside the window, an episode end, or the agent acting right after the window. Invalid
      decisions (and non-acting steps) get advantage 0 and should be left out of the loss.
    """
    init = (last_values, jnp.zeros_like(last_values), jnp.zeros_like(last_values), last_acting.astype(bool))

    def backward(carry, step):
        next_value, next_adv, reward_sum, known = carry
        reward, value, is_acting, is_done, is_truncated, final_value = step
        ended = is_done[:, None]
        # an episode end between this step and the agent's next decision replaces what follows
        next_value = jnp.where(ended, jnp.where(is_truncated[:, None], final_value, 0.0), next_value)
        next_adv = jnp.where(ended, 0.0, next_adv)
        reward_sum = reward + jnp.where(ended, 0.0, reward_sum)
        known = known | ended
        delta = reward_sum + gamma * next_value - value
        adv = delta + gamma * lam * next_adv
        valid = is_acting & known
        adv = jnp.where(valid, adv, 0.0)
        carry = (jnp.where(is_acting, value, next_value), jnp.where(is_acting, adv, next_adv),
                 jnp.where(is_acting, 0.0, reward_sum), known | is_acting)
        return carry, (adv, valid)

    steps = (rewards, values, acting.astype(bool), done.astype(bool), truncated.astype(bool), final_values)
    _, (advantages, valid) = jax.lax.scan(backward, init, steps, reverse=True)
    return advantages, advantages + values, valid


def check_discrete_flat_env(env, algorithm: str) -> None:
    """Clear errors for envs the MLP PPO-family files cannot train."""
    from jaxmarl_lab.spaces import Discrete

    if not isinstance(env.action_space(), Discrete):
        raise ValueError(f"{algorithm} trains discrete-action envs; {env.name} has {env.action_space()} actions "
                         "(use the discrete variant, e.g. continuous_actions=False)")
    if len(env.obs_shape) != 1:
        raise ValueError(f"{algorithm} uses MLPs on flat observations; {env.name} has obs shape {env.obs_shape}")


def episode_metrics(done: jax.Array, episode_returns: jax.Array, episode_length: jax.Array, outcome: dict,
                    agents: tuple[str, ...]) -> dict:
    """Means over the episodes that ended in a rollout ([T, N] ``done``, [T, N, A] returns):
    ``episode_return`` (mean over agents) and its spread over episodes, ``episode_return_<agent>``, length
    and ``episode_<outcome>``."""
    finished = done.astype(jnp.float32)
    episodes = jnp.maximum(finished.sum(), 1.0)
    per_agent = (episode_returns * finished[..., None]).sum((0, 1)) / episodes
    team_return = episode_returns.mean(-1)  # [T, N]
    spread = jnp.sqrt((((team_return - per_agent.mean()) ** 2) * finished).sum() / episodes)
    metrics = {"episode_return": per_agent.mean(), "episode_return_std": spread, "episodes": finished.sum(),
               "episode_length": (episode_length * finished).sum() / episodes}
    metrics.update({f"episode_return_{a}": per_agent[i] for i, a in enumerate(agents)})
    metrics.update({f"episode_{k}": (jnp.asarray(v, jnp.float32) * finished).sum() / episodes
                    for k, v in outcome.items()})
    return metrics


def masked_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean of ``x`` over samples with weight 1 (0 if there are none)."""
    return (x * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def normalise(x: jax.Array, weight: jax.Array) -> jax.Array:
    mean = masked_mean(x, weight)
    return (x - mean) / (jnp.sqrt(masked_mean((x - mean) ** 2, weight)) + 1e-8)


def clipped_policy_loss(log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, weight: jax.Array,
                        clip: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """PPO's clipped surrogate on minibatch-normalised advantages: (loss, approx KL, clip fraction)."""
    adv = normalise(advantages, weight)
    ratio = jnp.exp(log_prob - old_log_prob)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv)
    approx_kl = masked_mean((ratio - 1) - (log_prob - old_log_prob), weight)
    clip_frac = masked_mean((jnp.abs(ratio - 1) > clip).astype(jnp.float32), weight)
    return -masked_mean(surrogate, weight), approx_kl, clip_frac


def clipped_value_loss(value: jax.Array, old_value: jax.Array, targets: jax.Array, weight: jax.Array,
                       clip: float) -> jax.Array:
    """0.5 · max((V − target)², (V_clipped − target)²), V_clipped within ``clip`` of the rollout's value."""
    clipped = old_value + jnp.clip(value - old_value, -clip, clip)
    return 0.5 * masked_mean(jnp.maximum((value - targets) ** 2, (clipped - targets) ** 2), weight)


def make_optimizer(lr: float, anneal_lr: bool, max_grad_norm: float, num_updates: int,
                   steps_per_update: int) -> optax.GradientTransformation:
    """Adam (eps 1e-5) after global-norm clipping; with ``anneal_lr`` the rate decays linearly to 0
    over ``num_updates`` updates of ``steps_per_update`` optimizer steps each."""

    def schedule(count):
        return lr * jnp.maximum(1.0 - (count // steps_per_update) / num_updates, 0.0)

    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule if anneal_lr else lr, eps=1e-5))


def minibatch_epochs(loss_fn: Callable, optimizer: optax.GradientTransformation, params, opt_state, data,
                     key: jax.Array, epochs: int, num_minibatches: int):
    """``epochs`` passes over ``data`` (a pytree with a leading batch axis) in shuffled minibatches.

    ``loss_fn(params, minibatch) -> (loss, aux)``. Returns (params, opt_state, (loss, *aux) averaged).
    """
    batch = jax.tree_util.tree_leaves(data)[0].shape[0]
    if batch % num_minibatches:
        raise ValueError(f"a batch of {batch} samples does not split into {num_minibatches} minibatches")
    size = batch // num_minibatches

    def epoch(carry, epoch_key):
        params, opt_state = carry
        perm = jax.random.permutation(epoch_key, batch)
        shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape((num_minibatches, size) + x.shape[1:]), data)

        def step(carry, minibatch):
            params, opt_state = carry
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, minibatch)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (loss, *aux)

        return jax.lax.scan(step, (params, opt_state), shuffled)

    (params, opt_state), stats = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
    return params, opt_state, tuple(x.mean() for x in stats)
