"""Ex²PSRO: PSRO that explores towards high-welfare behaviour (Nguyen, Gu, Wellman, ICML 2025).

    python algos/ex2psro.py --config configs/ex2psro.yaml [--welfare-fn nash --kl-coef 0.1 ...]

The outer loop is PSRO's (algos/psro.py). What changes is each seat's new policy:

1. **Exploration policy.** Score every policy of the seat by its mean welfare W over all opponent
   columns of the payoff tensor (``--welfare-fn`` utilitarian r0+r1 | nash sqrt(r0 r1) |
   egalitarian min); keep the top k (``--exploration-top-k``). The experts are mixed by
   softmax(score / ``welfare_temperature``) over the top k (``--welfare-weighted``; the original
   left the other policies at score 0 instead of excluding them) or uniformly. The seat's expert
   mixture (one component per game) plays the opponent's meta-mixture for
   ``imitation_samples`` decisions of the seat, and a fresh network is behaviour-cloned on them
   (masked cross-entropy, ``--imitation-epochs`` epochs). With one policy the exploration policy
   is a copy of it.
2. **Regularised response.** PPO best response to the opponent's meta-mixture with loss
   PPO + kappa * mean_s KL(pi_explore(.|s) || pi(.|s)) on legal actions (jaxmarl_lab.oracle).
3. **Adaptive kappa** (``--use-adaptive-kl``): after every PPO update, over the last 10 update KLs:
   mean > 2 kl_target → kappa x 1.5; mean < kl_target / 2 → kappa x 0.5; clipped to
   [1e-4, 10]; kappa carries over across seats and iterations (it is checkpointed).

Logged on top of PSRO's metrics: ``equilibrium_welfare`` (W of the meta-profile's payoff
vector, with the chosen welfare function) and ``welfare_improvement`` (after − before the
iteration), ``kl_coef``, ``br_avg_kl_p{0,1}``, ``br_kl_coef_p{0,1}``, ``imitation_loss_p{0,1}``.

Shape: Config (PSRO's + exploration options) → adaptive kappa → collect expert decisions →
behaviour cloning → respond → make_train (PSRO with this respond) → main.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from algos import psro
from algos.psro import make_policy, network_kwargs, seat_stack
from jaxmarl_lab import game_theory as gt
from jaxmarl_lab.networks import _logits, make_network
from jaxmarl_lab.oracle import initial_kl_state, make_best_response
from jaxmarl_lab.policies import masked_logits
from jaxmarl_lab.population import pad_weights, padded_size, take_components
from jaxmarl_lab.wrappers import AutoReset, VmapEnv

__all__ = ["Config", "make_train", "make_policy", "main"]


@dataclass(frozen=True)
class Config(psro.Config):
    """PSRO's fields plus the exploration options (§4.5 names). Defaults = configs/ex2psro.yaml."""

    welfare_fn: str = "utilitarian"  # utilitarian | nash | egalitarian
    kl_coef: float = 0.1  # initial kappa
    kl_target: float = 0.01  # adaptive kappa aims the per-update KL at this
    use_adaptive_kl: bool = True
    exploration_top_k: int = 3  # experts per seat
    welfare_weighted: bool = True  # experts mixed by softmax(welfare / temperature), else uniformly
    welfare_temperature: float = 1.0
    imitation_samples: int = 10_000  # expert decisions collected for behaviour cloning (at least)
    imitation_epochs: int = 5
    imitation_batch: int = 1024
    imitation_lr: float = 1e-3


ENV_DEFAULTS: dict[str, dict] = psro.ENV_DEFAULTS


def adaptive_kl(config: Config):
    """kl_state -> kl_state after one update's mean KL (the rule in the module docstring)."""

    def update(state: dict, kl: jax.Array) -> dict:
        window = state["history"].shape[0]
        history = state["history"].at[state["count"] % window].set(kl)
        count = state["count"] + 1
        mean = history.sum() / jnp.minimum(count, window)
        kappa = state["kappa"]
        kappa = jnp.where(mean > 2.0 * config.kl_target, kappa * 1.5,
                          jnp.where(mean < 0.5 * config.kl_target, kappa * 0.5, kappa))
        return {"kappa": jnp.clip(kappa, 1e-4, 10.0), "history": history, "count": count}

    return update if config.use_adaptive_kl else None


def make_collect(config: Config, env, network):
    """Jitted: the seat's expert mixture against the opponent mixture (components drawn per game);
    returns the seat's decisions (obs, mask, action) [T * N] and which rows are the seat's."""
    num_envs = config.br_num_envs
    steps = -(-2 * config.imitation_samples // num_envs)  # the seat moves about every other step
    venv = VmapEnv(AutoReset(env), num_envs)
    env_params = env.default_params
    rows = jnp.arange(num_envs)

    @jax.jit
    def collect(key, seat, experts, expert_weights, opponents, opponent_weights):
        key_env, key_e, key_o, key_run = jax.random.split(key, 4)
        obs, state = venv.reset(key_env, env_params)
        draw = lambda k, w: jax.random.categorical(k, jnp.log(jnp.maximum(w, 1e-30)), shape=(num_envs,))
        mine, theirs = draw(key_e, expert_weights), draw(key_o, opponent_weights)

        def step(carry, k):
            obs, state, mine, theirs = carry
            k_act, k_step, k_e, k_o = jax.random.split(k, 4)
            mover = jnp.argmax(venv.acting(state, env_params), axis=1)
            obs_m, mask_m = obs[rows, mover], venv.action_mask(state, env_params)[rows, mover]
            logits_of = lambda stack: jax.vmap(lambda p: _logits(network.apply(p, obs_m)))(stack)
            own = logits_of(experts)[mine, rows]
            other = logits_of(opponents)[theirs, rows]
            is_seat = mover == seat
            logits = masked_logits(jnp.where(is_seat[:, None], own, other), mask_m)
            action = jax.random.categorical(k_act, logits).astype(jnp.int32)
            obs, state, _, done, _ = venv.step(k_step, state, jnp.broadcast_to(action[:, None], (num_envs, 2)),
                                               env_params)
            mine = jnp.where(done, draw(k_e, expert_weights), mine)
            theirs = jnp.where(done, draw(k_o, opponent_weights), theirs)
            return (obs, state, mine, theirs), (obs_m, mask_m, action, is_seat)

        _, samples = jax.lax.scan(step, (obs, state, mine, theirs), jax.random.split(key_run, steps))
        return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), samples)

    return collect


def make_imitate(config: Config, env, network):
    """Jitted behaviour cloning of a fresh network on (obs, mask, action, valid) samples."""
    optimizer = optax.adam(config.imitation_lr)

    @partial(jax.jit, static_argnames=("num_samples",))
    def imitate(key, samples, num_samples: int):
        key_init, key_epochs = jax.random.split(key)
        params = network.init(key_init, jnp.zeros(env.obs_shape))
        batches = max(1, num_samples // config.imitation_batch)

        def loss_fn(params, batch):
            obs, mask, action, valid = batch
            log_probs = jax.nn.log_softmax(masked_logits(_logits(network.apply(params, obs)), mask))
            nll = -jnp.take_along_axis(log_probs, action[:, None], axis=1)[:, 0]
            weight = valid.astype(jnp.float32)
            return (nll * weight).sum() / jnp.maximum(weight.sum(), 1.0)

        def epoch(carry, k):
            params, opt_state = carry
            perm = jax.random.permutation(k, num_samples)[: batches * config.imitation_batch]
            shuffled = jax.tree_util.tree_map(lambda x: x[perm].reshape((batches, -1) + x.shape[1:]), samples)

            def step(carry, batch):
                params, opt_state = carry
                loss, grads = jax.value_and_grad(loss_fn)(params, batch)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), shuffled)
            return (params, opt_state), losses.mean()

        (params, _), losses = jax.lax.scan(epoch, (params, optimizer.init(params)),
                                           jax.random.split(key_epochs, config.imitation_epochs))
        return params, losses[-1]

    return imitate


def expert_weights(config: Config, payoffs: np.ndarray, seat: int) -> np.ndarray:
    """Mixture weights over the seat's n policies: top-k by mean welfare over the other seat's policies."""
    welfare = gt.welfare_function(config.welfare_fn)(payoffs)  # [n, n]
    scores = welfare.mean(axis=1) if seat == 0 else welfare.mean(axis=0)
    top = np.argsort(-scores, kind="stable")[: config.exploration_top_k]
    weights = np.zeros(len(scores))
    if config.welfare_weighted:
        z = scores[top] / config.welfare_temperature
        weights[top] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    else:
        weights[top] = 1.0 / len(top)
    return weights


def make_train(config: Config, env):
    gt.welfare_function(config.welfare_fn)  # validates the name
    if config.exploration_top_k < 1:
        raise ValueError("exploration_top_k must be at least 1")
    network = make_network(**network_kwargs(config, env))
    best_response = make_best_response(env, network_kwargs(config, env), config.best_response_config(),
                                       kl_update=adaptive_kl(config))
    collect = make_collect(config, env, network)
    imitate = make_imitate(config, env, network)
    welfare = gt.welfare_function(config.welfare_fn)

    def respond(state, seat, opponents, weights, key):
        key_collect, key_bc, key_br = jax.random.split(key, 3)
        n = int(state.size)
        own = seat_stack(state.params["components"], seat)
        if n == 1:  # one policy: the exploration policy is that policy
            explore, bc_loss = jax.tree_util.tree_map(lambda x: x[0], own), float("nan")
        else:
            payoffs = np.asarray(state.payoffs)[:n, :n].astype(np.float64)
            mix = expert_weights(config, payoffs, seat)
            size = padded_size(n)
            samples = collect(key_collect, seat, take_components(own, n, size), jnp.asarray(pad_weights(mix, size)),
                              opponents, jnp.asarray(weights))
            explore, bc_loss = imitate(key_bc, samples, int(samples[0].shape[0]))
            bc_loss = float(bc_loss)
        params, metrics, kl_state = best_response(key_br, seat, opponents, jnp.asarray(weights), explore,
                                                  state.extra["kl"])
        out = {"br_return": metrics["br_return"], "entropy": metrics["entropy"],
               "br_avg_kl": float(metrics["kl"].mean()), "br_kl_coef": float(kl_state["kappa"]),
               "imitation_loss": bc_loss}
        return params, out, {"kl": kl_state}

    def on_iteration(state, old, x, y, new, x_new, y_new) -> dict:
        before = float(welfare(gt.expected_payoffs(old, x, y)))
        after = float(welfare(gt.expected_payoffs(new, x_new, y_new)))
        return {"equilibrium_welfare": after, "welfare_improvement": after - before,
                "utilitarian_welfare": float(gt.expected_payoffs(new, x_new, y_new).sum()),
                "kl_coef": float(state.extra["kl"]["kappa"])}

    return psro.make_train(config, env, respond=respond, extra_init=lambda: {"kl": initial_kl_state(config.kl_coef)},
                           on_iteration=on_iteration)


DRIVER_KWARGS = {**psro.DRIVER_KWARGS, "progress_metric": "equilibrium_welfare"}


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm("ex2psro", Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
