"""Fictitious Co-Play (Strouse et al. 2021): a best response to a pool of partners of many skill levels.

    python algos/fcp.py --config configs/fcp.yaml [--population-size 4 --snapshot-interval 262144 --prioritized]

1. **Partners.** ``population_size`` PPO self-play runs (algos/ppo_bargain.py, one network per
   seat) with different seeds, vmapped into one program. Every ``snapshot_interval`` env steps
   (per run), and at the start, each run's two seat networks are frozen into that seat's pool,
   so the pool spans skill levels from random to trained (the original snapshotted so rarely that
   its pool hardly grew, shared/specs/bargain.md §4.7).
2. **Best response.** For each seat a fresh PPO network trains against the other seat's pool
   (jaxmarl_lab.oracle), the partner drawn per game: uniformly, or with ``--prioritized`` with
   probability ``1 - uniform_prob`` from the newest ``recent_window`` snapshot rounds.

The saved policy is the pair of best responses (one network per seat). Units: one update = one
snapshot period of partner training (``population_size x snapshot_interval`` env steps); the
last update also trains the best responses (``2 x br_updates x br_num_envs x br_rollout`` steps).

Shape: Config → make_train (partner runs, snapshots, pool weights, best responses) → make_policy → main.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from algos import ppo_bargain
from jaxmarl_lab.networks import actor_critic_policy
from jaxmarl_lab.oracle import BestResponseConfig, make_best_response
from jaxmarl_lab.policies import Policy
from jaxmarl_lab.population import pad_weights, padded_size, take_components


@dataclass(frozen=True)
class Config:
    """FCP hyperparameters. Defaults = configs/fcp.yaml (bargain, about ten minutes on 2 CPU cores)."""

    env: str = "bargain"
    hidden_size: int = 128  # MLP width of partners and responses
    num_layers: int = 2
    population_size: int = 3  # self-play runs (seeds) that make the partner pool
    partner_timesteps: int = 1_048_576  # env steps of each self-play run (64 PPO updates of 256 x 64)
    snapshot_interval: int = 262_144  # env steps (per run) between snapshots: a multiple of 256 x 64
    partner_num_envs: int = 256
    partner_rollout: int = 64
    partner_lr: float = 3e-4
    prioritized: bool = False  # favour recent snapshots when drawing partners
    uniform_prob: float = 0.5  # with --prioritized: probability of a uniform draw over the whole pool
    recent_window: int = 2  # with --prioritized: the newest snapshot rounds drawn otherwise
    br_num_envs: int = 256
    br_rollout: int = 16
    br_updates: int = 200
    br_lr: float = 1e-3
    br_gamma: float = 0.99
    br_ent_coef: float = 0.01
    seed: int = 0
    num_seeds: int = 1  # FCP runs one seed per run (its outer loop is on the host)
    updates_per_chunk: int = 1
    eval_interval: int = 0  # evaluation at the end only (the response exists only then)
    eval_games: int = 2_000
    checkpoint_interval: int = 1  # after every update (resumable)

    @property
    def rounds(self) -> int:
        """Snapshot periods of partner training."""
        return max(1, -(-self.partner_timesteps // self.snapshot_interval))

    @property
    def steps_per_update(self) -> int:
        return self.population_size * self.snapshot_interval

    @property
    def num_updates(self) -> int:
        return self.rounds

    @property
    def pool_capacity(self) -> int:
        return (self.rounds + 1) * self.population_size

    def partner_config(self) -> ppo_bargain.Config:
        per_update = self.partner_num_envs * self.partner_rollout
        if self.snapshot_interval % per_update:
            raise ValueError(f"snapshot_interval = {self.snapshot_interval} must be a multiple of partner_num_envs x "
                             f"partner_rollout = {per_update}")
        return ppo_bargain.Config(env=self.env, hidden_size=self.hidden_size, num_layers=self.num_layers,
                                  num_envs=self.partner_num_envs, rollout=self.partner_rollout, lr=self.partner_lr,
                                  total_timesteps=self.rounds * self.snapshot_interval,
                                  updates_per_chunk=self.snapshot_interval // per_update, seed=self.seed)

    def best_response_config(self) -> BestResponseConfig:
        return BestResponseConfig(num_envs=self.br_num_envs, rollout=self.br_rollout, num_updates=self.br_updates,
                                  lr=self.br_lr, gamma=self.br_gamma, ent_coef=self.br_ent_coef)


def network_kwargs(config: Config, env) -> dict:
    return {"name": "mlp", "num_actions": env.num_actions, "hidden_size": config.hidden_size,
            "num_layers": config.num_layers}


@struct.dataclass
class FCPState:
    params: dict  # {"br": [2, ...] the responses (one network per seat)}
    partners: object  # the vmapped self-play runners (ppo_bargain.RunnerState with a leading seed axis)
    pool: object  # [2, capacity, ...] frozen partner networks per seat
    pool_size: jax.Array  # i32: snapshots per seat so far
    key: jax.Array
    update: jax.Array


def pool_weights(config: Config, size: int) -> np.ndarray:
    """Partner probabilities over the first ``size`` pool entries (ordered by snapshot round, then run)."""
    weights = np.full(size, 1.0 / size)
    if config.prioritized:
        rounds = np.arange(size) // config.population_size
        recent = rounds >= rounds.max() - config.recent_window + 1
        weights = config.uniform_prob * weights + (1 - config.uniform_prob) * recent / recent.sum()
    return weights


def make_train(config: Config, env):
    if env.num_agents != 2 or getattr(env, "seat_slot", None) is None:
        raise ValueError(f"FCP trains two-player games with the seat in the observation; {env.name!r} is not one")
    if not 0.0 <= config.uniform_prob <= 1.0 or config.recent_window < 1:
        raise ValueError("uniform_prob must lie in [0, 1] and recent_window be at least 1")
    partner_config = config.partner_config()
    partner_init, partner_chunk = ppo_bargain.make_train(partner_config, env)
    partner_chunk = jax.jit(jax.vmap(partner_chunk))
    partner_init = jax.jit(partner_init)
    best_response = make_best_response(env, network_kwargs(config, env), config.best_response_config())
    capacity = config.pool_capacity

    def snapshot(state: FCPState) -> FCPState:
        """Append every run's current seat networks to that seat's pool."""
        n = int(state.pool_size)
        seats = state.partners.params  # [S, 2, ...]
        pool = jax.tree_util.tree_map(
            lambda pool, p: pool.at[:, n: n + config.population_size].set(jnp.swapaxes(p, 0, 1)), state.pool, seats)
        return state.replace(pool=pool, pool_size=jnp.asarray(n + config.population_size, jnp.int32))

    def init(key) -> FCPState:
        key_runs, key_br, key_run = jax.random.split(key, 3)
        runs = [partner_init(k) for k in jax.random.split(key_runs, config.population_size)]
        partners = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *runs)
        one_seat = jax.tree_util.tree_map(lambda x: x[0, 0], partners.params)
        pool = jax.tree_util.tree_map(lambda x: jnp.zeros((2, capacity) + x.shape, x.dtype), one_seat)
        br = jax.tree_util.tree_map(lambda x: x[0], partners.params)  # placeholder until the response is trained
        state = FCPState({"br": br}, partners, pool, jnp.zeros((), jnp.int32), key_run, jnp.zeros((), jnp.int32))
        return snapshot(state)

    def train_chunk(state: FCPState):
        partners, metrics = partner_chunk(state.partners)
        state = snapshot(state.replace(partners=partners))
        row = {"partner_welfare": float(np.mean(metrics["episode_welfare"][:, -1])),
               "partner_welfare_min": float(np.min(metrics["episode_welfare"][:, -1])),
               "partner_welfare_max": float(np.max(metrics["episode_welfare"][:, -1])),
               "pool_size": int(state.pool_size)}
        state = state.replace(update=state.update + 1)
        if int(state.update) == config.num_updates:  # the pool is complete: train the responses
            size = int(state.pool_size)
            padded = padded_size(size)
            weights = jnp.asarray(pad_weights(pool_weights(config, size), padded))
            key, key_0, key_1 = jax.random.split(state.key, 3)
            responses = []
            for seat, k in ((0, key_0), (1, key_1)):
                other_pool = jax.tree_util.tree_map(lambda x, s=seat: x[1 - s], state.pool)
                partners_of_other = take_components(other_pool, size, padded)
                params, m, _ = best_response(k, seat, partners_of_other, weights)
                responses.append(params)
                row[f"br_return_p{seat}"] = float(m["br_return"][-1])
                row[f"br_welfare_p{seat}"] = float(m["br_welfare"][-1])
            br = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *responses)
            state = state.replace(params={"br": br}, key=key)
        return state, {k: np.array([v], np.float64) for k, v in row.items()}

    return init, train_chunk


def policy_params(params):
    return params["br"]


def make_policy(config: Config, env, params, sample: bool = True) -> Policy:
    """The two best responses (one network per seat, the seat read from the observation)."""
    br = None if params is None else params.get("br", params)
    return actor_critic_policy(network_kwargs(config, env), br, share_seats=False, seat_slot=env.seat_slot,
                               sample=sample, name="fcp")


DRIVER_KWARGS = {"progress_metric": "partner_welfare", "policy_params": policy_params, "host_loop": True}


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm("fcp", Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
