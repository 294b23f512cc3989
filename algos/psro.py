"""PSRO: Policy-Space Response Oracles with PPO best responses (Lanctot et al. 2017).

    python algos/psro.py --config configs/psro.yaml [--env leduc_poker | bargain] [--meta-solver nash]

One population per seat, each starting from one randomly initialised network. Iteration t:

1. Solve the empirical meta-game (A, B) = (seat-0 payoffs, seat-1 payoffs) of the current
   populations with the meta-solver (``nash``: exact, ``replicator``, ``fictitious_play``,
   ``uniform``; jaxmarl_lab.game_theory) → meta-strategies (x, y).
2. For each seat, train a fresh PPO network against the other seat's population mixture, the
   mixture component drawn **per game** (jaxmarl_lab.oracle; the original drew it per decision
   and trained for effectively one PPO update, shared/specs/bargain.md §4.4).
3. Add both responses and fill only the new cells of the payoff tensor with jitted cross-play
   (``payoff_games`` games per cell, common random numbers); solve the new meta-game.

Logged per iteration: population size, meta-strategy support (#p > 0.01), each response's gain
against the meta-strategy it answered (``br_gain_p{0,1}``; their positive parts sum to
``approx_nash_conv``, the empirical-game estimate of NashConv), the meta-profile's values and
welfare, and, on games small enough (Kuhn, Leduc, bargain_tiny), the exact NashConv of the
meta-strategy profile (evaluation every iteration; the best checkpoint minimises it).

The policy a run saves is the meta-strategy profile: a mixture per seat (jaxmarl_lab.population),
which draws its component once per game in evaluation, cross-play and ``load_policy``.

Units: one update = one PSRO iteration; "steps" are the best responses' env steps
(2 x br_updates x br_num_envs x br_rollout per iteration).

Shape: Config → make_train (init, respond, new cells, iteration, train_chunk) → make_policy → main.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_lab import game_theory as gt
from jaxmarl_lab.networks import _network_spec, make_network
from jaxmarl_lab.oracle import BestResponseConfig, make_best_response
from jaxmarl_lab.policies import Policy
from jaxmarl_lab.population import MixtureAct, mixture_policy, pad_weights, padded_size, pair_returns, take_components


@dataclass(frozen=True)
class Config:
    """PSRO hyperparameters. Defaults = configs/psro.yaml (Kuhn poker, a few minutes on 2 CPU cores)."""

    env: str = "kuhn_poker"  # kuhn_poker | leduc_poker | bargain_tiny | bargain (two-player, turn-based)
    env_kwargs: dict = field(default_factory=dict)
    hidden_size: int = 64  # MLP width of every policy
    num_layers: int = 2
    meta_solver: str = "nash"  # nash | replicator | fictitious_play | uniform
    num_iterations: int = 20  # PSRO iterations (each adds one policy per seat)
    max_policies: int = 32  # population capacity per seat (>= num_iterations + 1)
    payoff_games: int = 20_000  # games per new payoff cell (sampling noise in the meta-game limits NashConv)
    br_num_envs: int = 128  # best response: parallel games
    br_rollout: int = 16  # best response: env steps per env per PPO update
    br_updates: int = 100  # best response: PPO updates (its budget is br_updates x br_num_envs x br_rollout)
    br_lr: float = 3e-4
    br_anneal_lr: bool = True
    br_gamma: float = 1.0
    br_gae_lambda: float = 0.95
    br_clip: float = 0.2
    br_ent_coef: float = 0.01
    br_vf_coef: float = 0.5
    br_max_grad_norm: float = 0.5
    br_update_epochs: int = 4
    br_num_minibatches: int = 4
    seed: int = 0
    num_seeds: int = 1  # PSRO runs one seed per run (its outer loop is on the host)
    updates_per_chunk: int = 1  # iterations between progress/log rows
    eval_interval: int = 1  # env steps between evaluations; 1: after every iteration
    eval_games: int = 2_000  # games per matchup in bargain's evaluation table
    checkpoint_interval: int = 1  # env steps between step checkpoints; 1: after every iteration (resumable)

    @property
    def steps_per_update(self) -> int:
        return 2 * self.br_updates * self.br_num_envs * self.br_rollout

    @property
    def num_updates(self) -> int:
        return self.num_iterations

    def best_response_config(self) -> BestResponseConfig:
        return BestResponseConfig(
            num_envs=self.br_num_envs, rollout=self.br_rollout, num_updates=self.br_updates, lr=self.br_lr,
            anneal_lr=self.br_anneal_lr, gamma=self.br_gamma, gae_lambda=self.br_gae_lambda, clip=self.br_clip,
            ent_coef=self.br_ent_coef, vf_coef=self.br_vf_coef, max_grad_norm=self.br_max_grad_norm,
            update_epochs=self.br_update_epochs, num_minibatches=self.br_num_minibatches)


#: per-env overrides of the defaults (configs/psro_<env>.yaml mirror them)
ENV_DEFAULTS: dict[str, dict] = {
    "leduc_poker": {"env": "leduc_poker", "hidden_size": 128, "num_iterations": 30, "br_num_envs": 256,
                    "br_updates": 150, "payoff_games": 10_000},
    # ~12 s per best response (490k env steps) on 2 CPU cores
    "bargain": {"env": "bargain", "hidden_size": 128, "num_iterations": 10, "max_policies": 16,
                "payoff_games": 2_000, "br_num_envs": 256, "br_rollout": 16, "br_updates": 120, "br_gamma": 0.99,
                "br_lr": 1e-3},
}


def network_kwargs(config: Config, env) -> dict:
    return {"name": "mlp", "num_actions": env.num_actions, "hidden_size": config.hidden_size,
            "num_layers": config.num_layers}


@struct.dataclass
class PSROState:
    params: dict  # {"components": [2, K, ...] network params, "weights": f32[2, K] meta-strategies}
    payoffs: jax.Array  # f32[K, K, 2]: seat-0 policy i vs seat-1 policy j -> mean returns of both seats
    size: jax.Array  # i32: policies per seat so far
    key: jax.Array
    update: jax.Array  # i32: iterations done
    extra: dict  # algorithm-specific state (Ex²PSRO: its adaptive KL coefficient)


def seat_stack(components, seat: int):
    return jax.tree_util.tree_map(lambda x: x[seat], components)


def meta_strategies(config: Config, payoffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return gt.meta_solver(config.meta_solver)(payoffs[..., 0], payoffs[..., 1])


def make_train(config: Config, env, respond: Callable | None = None, extra_init: Callable | None = None,
               on_iteration: Callable | None = None):
    """Host-side ``init(key)`` and ``train_chunk(state)`` around jitted best responses and cross-play.

    Hooks for variants (Ex²PSRO): ``respond(state, seat, opponents, weights, key) -> (params,
    metrics, extra)`` replaces the plain best response; ``extra_init()`` gives the initial
    ``state.extra``; ``on_iteration(state, old payoffs, x, y, new payoffs, x_new, y_new) -> dict``
    adds metrics.
    """
    if env.num_agents != 2:
        raise ValueError(f"PSRO needs a two-player game; {env.name!r} has {env.num_agents} agents")
    gt.meta_solver(config.meta_solver)  # validates the name
    if config.max_policies < config.num_iterations + 1:
        raise ValueError(f"max_policies = {config.max_policies} cannot hold {config.num_iterations} iterations "
                         f"(needs >= num_iterations + 1 = {config.num_iterations + 1})")
    kwargs = network_kwargs(config, env)
    network = make_network(**kwargs)
    best_response = make_best_response(env, kwargs, config.best_response_config())
    capacity = config.max_policies

    def plain_respond(state, seat, opponents, weights, key):
        params, metrics, _ = best_response(key, seat, opponents, jnp.asarray(weights))
        return params, metrics, state.extra

    respond = respond or plain_respond

    def init(key) -> PSROState:
        key_0, key_1, key_cells, key_run = jax.random.split(key, 4)
        first = [network.init(k, jnp.zeros(env.obs_shape)) for k in (key_0, key_1)]
        components = jax.tree_util.tree_map(
            lambda a, b: jnp.zeros((2, capacity) + a.shape, a.dtype).at[0, 0].set(a).at[1, 0].set(b), *first)
        weights = jnp.zeros((2, capacity), jnp.float32).at[:, 0].set(1.0)
        state = PSROState({"components": components, "weights": weights}, jnp.zeros((capacity, capacity, 2)),
                          jnp.ones((), jnp.int32), key_run, jnp.zeros((), jnp.int32),
                          extra_init() if extra_init else {})
        return fill_cells(state, [(0, 0)], key_cells)

    def fill_cells(state: PSROState, cells: list[tuple[int, int]], key) -> PSROState:
        """Play ``payoff_games`` games for each (seat-0 index, seat-1 index) cell and store the means."""
        rows, cols = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
        components = state.params["components"]
        row_params = jax.tree_util.tree_map(lambda x: x[0][rows], components)
        col_params = jax.tree_util.tree_map(lambda x: x[1][cols], components)
        returns, _ = pair_returns(env, kwargs, row_params, col_params, config.payoff_games, key)
        payoffs = state.payoffs.at[rows, cols].set(jnp.asarray(returns.mean(axis=1)))
        return state.replace(payoffs=payoffs)

    def iteration(state: PSROState) -> tuple[PSROState, dict]:
        n = int(state.size)
        key, key_0, key_1, key_cells = jax.random.split(state.key, 4)
        old = np.asarray(state.payoffs)[:n, :n].astype(np.float64)
        x, y = meta_strategies(config, old)
        size = padded_size(n)
        components = state.params["components"]
        metrics: dict = {}
        for seat, k in ((0, key_0), (1, key_1)):
            opponents = take_components(seat_stack(components, 1 - seat), n, size)
            weights = pad_weights(y if seat == 0 else x, size)
            params, m, extra = respond(state, seat, opponents, weights, k)
            state = state.replace(extra=extra)
            components = jax.tree_util.tree_map(lambda c, p, s=seat: c.at[s, n].set(p), components, params)
            metrics[f"br_return_p{seat}"] = float(np.asarray(m["br_return"])[-1])
            metrics[f"br_entropy_p{seat}"] = float(np.asarray(m["entropy"])[-1])
            metrics.update({f"{name}_p{seat}": float(v) for name, v in m.items() if name not in
                            ("br_return", "entropy", "loss", "approx_kl", "br_welfare", "kl", "kappa")})
        state = state.replace(params={**state.params, "components": components}, size=jnp.asarray(n + 1, jnp.int32))
        cells = [(n, j) for j in range(n + 1)] + [(i, n) for i in range(n)]
        state = fill_cells(state, cells, key_cells)
        new = np.asarray(state.payoffs)[: n + 1, : n + 1].astype(np.float64)
        # gains of the responses against the meta-strategies they answered (empirical NashConv estimate)
        value = gt.expected_payoffs(old, x, y)
        gain_0 = float(new[n, :n, 0] @ y - value[0])
        gain_1 = float(x @ new[:n, n, 1] - value[1])
        x_new, y_new = meta_strategies(config, new)
        weights = np.zeros((2, capacity), np.float32)
        weights[0, : n + 1], weights[1, : n + 1] = x_new, y_new
        meta_value = gt.expected_payoffs(new, x_new, y_new)
        metrics.update({
            "population_size": n + 1, "br_gain_p0": gain_0, "br_gain_p1": gain_1,
            "approx_nash_conv": max(gain_0, 0.0) + max(gain_1, 0.0),
            "meta_nash_conv": gt.meta_nash_conv(new[..., 0], new[..., 1], x_new, y_new),
            "nash_support_p0": int((x_new > 0.01).sum()), "nash_support_p1": int((y_new > 0.01).sum()),
            "meta_value_p0": float(meta_value[0]), "meta_value_p1": float(meta_value[1]),
            "equilibrium_welfare": float(meta_value.sum()),
        })
        if on_iteration is not None:
            metrics.update(on_iteration(state, old, x, y, new, x_new, y_new))
        state = state.replace(params={**state.params, "weights": jnp.asarray(weights)}, key=key,
                              update=state.update + 1)
        return state, metrics

    def train_chunk(state: PSROState):
        rows = []
        for _ in range(config.updates_per_chunk):
            state, metrics = iteration(state)
            rows.append(metrics)
        return state, {k: np.array([r.get(k, np.nan) for r in rows], np.float64) for k in rows[-1]}

    return init, train_chunk


def policy_params(params):
    return params


def make_policy(config: Config, env, params, sample: bool = True) -> Policy:
    """The meta-strategy profile: per seat, a mixture of its population (one component per game)."""
    kwargs = network_kwargs(config, env)
    if params is None:
        return Policy(None, MixtureAct(_network_spec(kwargs), env.seat_slot, config.max_policies, sample), "psro")
    return mixture_policy(kwargs, params["components"], params["weights"], seat_slot=env.seat_slot, sample=sample,
                          name="psro")


#: how the shared driver runs this file
DRIVER_KWARGS = {"progress_metric": "approx_nash_conv", "policy_params": policy_params, "eval_metric": "nash_conv",
                 "host_loop": True}


def main(argv: list[str] | None = None, algorithm: str = "psro") -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm(algorithm, Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
