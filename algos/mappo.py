"""MAPPO: decentralised actors, one centralised critic on the env's global state (CTDE).

    python algos/mappo.py --config configs/mappo_mpe.yaml
    python algos/mappo.py --config configs/mappo_bargain.yaml

Actors act on their own observation (shared parameters by default, ``share_actor: false`` for
one actor per agent, ``agent_id`` to append a one-hot id). The critic is one network
V(global_state, one-hot agent id) → that agent's value, so it can give different agents
different values in mixed-motive games; it is used only in training.

Credit assignment (jaxmarl_lab.ppo.agent_gae): each agent's GAE runs over its own decisions
(``env.acting``), so turn-based games such as ``bargain`` get correct per-player credit — the
reward of a decision includes what the opponent's reply earns the player, and a player's
target never bootstraps from the other player's value. Time-limit truncation bootstraps from
the critic at the true final global state (``AutoReset(final_global_state=True)``).

Shape: Config → Transition → make_train (rollout, update, train_chunk) → make_policy → main.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp
from flax import struct

import jaxmarl_lab as jl
from jaxmarl_lab.config import RolloutBudget
from jaxmarl_lab.networks import (
    MLPCritic,
    apply_agents,
    apply_seats,
    init_seat_params,
    make_network,
    team_policy,
    with_agent_id,
)
from jaxmarl_lab.policies import masked_logits
from jaxmarl_lab.ppo import (
    agent_gae,
    check_discrete_flat_env,
    clipped_policy_loss,
    clipped_value_loss,
    episode_metrics,
    make_optimizer,
    masked_mean,
    minibatch_epochs,
)


@dataclass(frozen=True)
class Config(RolloutBudget):
    """MAPPO hyperparameters. Defaults = configs/mappo_mpe.yaml; ``ENV_DEFAULTS`` holds the changes
    for other envs (configs/mappo_bargain.yaml)."""

    env: str = "mpe_simple_reference"  # registered env name (discrete actions)
    env_kwargs: dict = field(default_factory=dict)  # static env options, e.g. {scenario: rest_trap}
    opponents: str = ""  # scripted policies in the last seats: baseline names "a,b" or a count (see make_env)
    hidden_size: int = 64  # width of each hidden layer (actor and critic)
    num_layers: int = 2  # hidden layers (actor and critic)
    activation: str = "tanh"  # tanh | relu
    share_actor: bool = True  # one actor for all agents (parameter sharing)
    agent_id: bool = False  # append a one-hot agent id to each actor's observation
    factored_actions: bool = True  # product actions (env.action_factors: MPE message x move) as independent parts
    num_envs: int = 64  # parallel envs
    rollout: int = 128  # env steps per env per update
    total_timesteps: int = 10_000_000  # env steps over the whole run (one step moves every agent)
    lr: float = 1e-3
    anneal_lr: bool = True  # linear decay to 0 over the run
    reward_scale: float = 1.0  # rewards are multiplied by this for learning (values, advantages); logs stay raw
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.001  # low, as in ippo.py: a large bonus keeps the message symbols uniform
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    update_epochs: int = 4
    num_minibatches: int = 4  # minibatches per epoch (samples = rollout x num_envs x agents)
    seed: int = 0
    num_seeds: int = 1  # independent runs vmapped into one program
    updates_per_chunk: int = 25  # updates per jitted train_chunk call (logging/checkpoint granularity)
    eval_interval: int = 2_000_000  # env steps between evaluations (0: only at the end)
    eval_games: int = 1_000  # episodes per evaluation
    checkpoint_interval: int = 2_000_000  # env steps between periodic checkpoints (0: only final/best)


#: per-env changes to the defaults (configs/mappo_<env>.yaml mirror them; used by jaxmarl_lab.default_cfg)
ENV_DEFAULTS: dict[str, dict] = {
    # 20 pistons sharing one actor on their local views; returns of ~100 per episode need reward_scale.
    # Reaches the rule policy (k = 1) in ~600k cycles, ~3 min on 2 CPU cores (see the README)
    "pistonball": {"env": "pistonball", "reward_scale": 0.05, "lr": 5e-4, "ent_coef": 0.01, "num_envs": 64,
                   "rollout": 32, "total_timesteps": 1_500_000, "num_minibatches": 4, "updates_per_chunk": 5,
                   "eval_interval": 300_000, "eval_games": 200, "checkpoint_interval": 500_000},
    "bargain": {"env": "bargain", "hidden_size": 128, "activation": "relu", "num_envs": 256, "rollout": 64,
                "total_timesteps": 3_000_000, "lr": 5e-4, "ent_coef": 0.01, "num_minibatches": 16,
                "updates_per_chunk": 10, "eval_interval": 1_000_000, "checkpoint_interval": 1_000_000,
                "eval_games": 10_000},
}


def actor_kwargs(config: Config, env) -> dict:
    return {"name": "mlp_actor", "num_actions": env.num_actions, "hidden_size": config.hidden_size,
            "num_layers": config.num_layers, "activation": config.activation,
            "action_factors": getattr(env, "action_factors", None) if config.factored_actions else None}


class Transition(NamedTuple):
    obs: jax.Array  # [N, A, obs] actor inputs
    critic_in: jax.Array  # [N, A, state + A] global state with the agent's one-hot id
    mask: jax.Array  # [N, A, actions]
    acting: jax.Array  # [N, A]
    action: jax.Array  # [N, A]
    log_prob: jax.Array  # [N, A]
    value: jax.Array  # [N, A]
    reward: jax.Array  # [N, A]
    done: jax.Array  # [N]
    truncated: jax.Array  # [N]
    final_value: jax.Array  # [N, A] critic at the true final global state (used where truncated)
    episode_returns: jax.Array  # [N, A]
    episode_length: jax.Array  # [N]
    outcome: dict  # name -> [N]


class Sample(NamedTuple):
    """One agent's decision, flattened out of the [T, N, A] rollout."""

    obs: jax.Array
    critic_in: jax.Array
    mask: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    agent: jax.Array


@struct.dataclass
class RunnerState:
    params: dict  # {"actor": ..., "critic": ...}
    opt_state: object
    env_state: object
    obs: jax.Array
    key: jax.Array
    update: jax.Array


def make_train(config: Config, env):
    """Pure ``init(key) -> RunnerState`` and ``train_chunk(runner) -> (runner, metrics[K])``."""
    check_discrete_flat_env(env, "mappo")
    actor = make_network(**actor_kwargs(config, env))
    critic = MLPCritic((config.hidden_size,) * config.num_layers, config.activation)
    venv = jl.VmapEnv(jl.EpisodeStats(jl.AutoReset(env, final_global_state=True)), config.num_envs)
    env_params = env.default_params
    num_agents = env.num_agents
    batch = config.steps_per_update * num_agents
    if batch % config.num_minibatches:
        raise ValueError(f"num_envs * rollout * agents = {batch} must be a multiple of num_minibatches "
                         f"= {config.num_minibatches}")
    optimizer = make_optimizer(config.lr, config.anneal_lr, config.max_grad_norm, config.num_updates,
                               config.num_minibatches * config.update_epochs)
    agent_index = jnp.broadcast_to(jnp.arange(num_agents), (config.num_envs, num_agents))

    def actor_input(obs):
        return with_agent_id(obs, agent_index, num_agents) if config.agent_id else obs

    def critic_input(global_state):  # [N, S] -> [N, A, S + A]
        tiled = jnp.broadcast_to(global_state[:, None], (config.num_envs, num_agents, global_state.shape[-1]))
        return with_agent_id(tiled, agent_index, num_agents)

    def init(key) -> RunnerState:
        key_actor, key_critic, key_env, key_run = jax.random.split(key, 4)
        obs, env_state = venv.reset(key_env, env_params)
        actor_dummy = jnp.zeros((env.obs_shape[0] + (num_agents if config.agent_id else 0),))
        critic_dummy = critic_input(venv.global_state(env_state, env_params))[0, 0]
        params = {"actor": init_seat_params(actor, key_actor, actor_dummy, config.share_actor, num_agents),
                  "critic": critic.init(key_critic, critic_dummy)}
        return RunnerState(params, optimizer.init(params), env_state, obs, key_run, jnp.zeros((), jnp.int32))

    def env_step(runner: RunnerState, _):
        key, key_act, key_step = jax.random.split(runner.key, 3)
        obs = actor_input(runner.obs)
        critic_in = critic_input(venv.global_state(runner.env_state, env_params))
        mask = venv.action_mask(runner.env_state, env_params)
        logits = apply_agents(actor, runner.params["actor"], obs, config.share_actor)
        value = critic.apply(runner.params["critic"], critic_in)
        dist = distrax.Categorical(logits=masked_logits(logits, mask))
        action = dist.sample(seed=key_act).astype(jnp.int32)
        next_obs, env_state, reward, done, info = venv.step(key_step, runner.env_state, action, env_params)
        final_value = critic.apply(runner.params["critic"], critic_input(info["final_global_state"]))
        transition = Transition(obs, critic_in, mask, venv.acting(runner.env_state, env_params), action,
                                dist.log_prob(action), value, reward, done, info["truncated"] & done, final_value,
                                info["returned_episode_returns"], info["returned_episode_length"],
                                info["final_outcome"])
        return runner.replace(env_state=env_state, obs=next_obs, key=key), transition

    def loss_fn(params, minibatch):
        sample, advantages, targets, valid = minibatch
        logits = apply_seats(actor, params["actor"], sample.obs, sample.agent, config.share_actor)
        dist = distrax.Categorical(logits=masked_logits(logits, sample.mask))
        value = critic.apply(params["critic"], sample.critic_in)
        weight = valid.astype(jnp.float32)
        policy_loss, approx_kl, clip_frac = clipped_policy_loss(dist.log_prob(sample.action), sample.log_prob,
                                                                advantages, weight, config.clip)
        value_loss = clipped_value_loss(value, sample.value, targets, weight, config.clip)
        entropy = masked_mean(dist.entropy(), weight)
        loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        return loss, (policy_loss, value_loss, entropy, approx_kl, clip_frac)

    def update(runner: RunnerState, _):
        runner, traj = jax.lax.scan(env_step, runner, None, config.rollout)
        last_value = critic.apply(runner.params["critic"],
                                  critic_input(venv.global_state(runner.env_state, env_params)))
        last_acting = venv.acting(runner.env_state, env_params)
        scaled_reward = traj.reward * config.reward_scale
        advantages, targets, valid = agent_gae(scaled_reward, traj.value, traj.acting, traj.done, traj.truncated,
                                               traj.final_value, last_value, last_acting, config.gamma,
                                               config.gae_lambda)
        flat = lambda x: x.reshape((batch,) + x.shape[3:])
        sample = Sample(flat(traj.obs), flat(traj.critic_in), flat(traj.mask), flat(traj.action),
                        flat(traj.log_prob), flat(traj.value), flat(jnp.broadcast_to(agent_index, traj.action.shape)))
        key, key_epochs = jax.random.split(runner.key)
        params, opt_state, stats = minibatch_epochs(
            loss_fn, optimizer, runner.params, runner.opt_state,
            (sample, flat(advantages), flat(targets), flat(valid)), key_epochs, config.update_epochs,
            config.num_minibatches)
        loss, policy_loss, value_loss, entropy, approx_kl, clip_frac = stats
        metrics = episode_metrics(traj.done, traj.episode_returns, traj.episode_length, traj.outcome, env.agents)
        metrics.update(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=entropy,
                       approx_kl=approx_kl, clip_frac=clip_frac, valid_fraction=valid.mean())
        if num_agents == 2:  # two-player games: the driver's progress bar shows welfare
            metrics["episode_welfare"] = 2 * metrics["episode_return"]
        runner = runner.replace(params=params, opt_state=opt_state, key=key, update=runner.update + 1)
        return runner, metrics

    def train_chunk(runner: RunnerState):
        return jax.lax.scan(update, runner, None, config.updates_per_chunk)

    return init, train_chunk


# ---- the trained actors as Policy objects -------------------------------------------------------


def make_policy(config: Config, env, params, sample: bool = True):
    """The actors as a :class:`jaxmarl_lab.Policy` (or one per agent, see networks.team_policy)."""
    actors = None if params is None else actor_params(params)
    return team_policy(actor_kwargs(config, env), actors, env, share=config.share_actor, agent_id=config.agent_id,
                       sample=sample, name="mappo")


def actor_params(params: dict):
    """What a saved MAPPO policy keeps: the actors (the critic is only for training)."""
    return params["actor"]


#: how the shared driver runs this file (also used by jaxmarl_lab.train_wrapper)
DRIVER_KWARGS = {"progress_metric": "episode_return", "policy_params": actor_params}


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm("mappo", Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
