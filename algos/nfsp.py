"""NFSP: Neural Fictitious Self-Play (Heinrich & Silver 2016), vectorised and jit-compiled.

    python algos/nfsp.py --config configs/nfsp.yaml [--env leduc_poker | bargain_tiny | bargain]

Each player has a best-response Q-network trained by DQN and an average-policy network trained
by supervised learning on the player's own best-response actions. At the start of every episode
each player independently picks its mode: best response with probability η (``anticipatory``),
else its average policy, and keeps it for the whole episode. In best-response mode it acts
ε-greedily on its Q-values and its (observation, action) pairs go to a reservoir buffer, which
holds a uniform sample of everything it has ever played in that mode: that is what makes the
supervised network the running average of past best responses.

DQN transitions are the player's own: from one of its decisions to its *next* decision (or to
the end of the game), with the reward it received in between; the target is
r + max_a' Q_target(next obs)[a'] over the legal a' (no discount: episodes are short), 0 after the
end. This fixes the original's per-step mode sampling and its opponent's-observation targets
(``shared/specs/bargain.md`` §4.2). The average network is the policy that is evaluated and saved.

All ``num_envs`` games step in lockstep; after ``rollout`` steps each player takes one DQN and one
supervised gradient step (``learn_every`` in OpenSpiel terms is num_envs·rollout env steps).
The target network is copied every ``target_update_every`` gradient steps.

Shape: Config → Transition/Buffers → make_train (act, rollout, learn, train_chunk) → make_policy → main.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmarl_lab.buffers import Replay, Reservoir
from jaxmarl_lab.config import RolloutBudget
from jaxmarl_lab.env import tree_select
from jaxmarl_lab.networks import actor_critic_policy, apply_agents, init_seat_params, make_network
from jaxmarl_lab.policies import masked_logits, uniform_legal_action


@dataclass(frozen=True)
class Config(RolloutBudget):
    """NFSP hyperparameters. Defaults = configs/nfsp.yaml (Kuhn poker): OpenSpiel's NFSP example
    values (η 0.1, ε 0.06 → 0.001, batch 128, replay 200k, min 1000 items to learn, target copy every
    300 gradient steps) except Adam 1e-3 instead of SGD 0.01 for both networks, a 1M reservoir
    instead of 2M, and 128 games in lockstep."""

    env: str = "kuhn_poker"  # kuhn_poker | leduc_poker | bargain_tiny | bargain (any two-player turn-based env)
    env_kwargs: dict = field(default_factory=dict)
    hidden_size: int = 128
    num_layers: int = 1
    activation: str = "relu"
    anticipatory: float = 0.1  # η: probability of playing the best response in an episode
    epsilon_start: float = 0.06
    epsilon_end: float = 0.001
    epsilon_decay_steps: int = 20_000_000  # env steps over which ε decays linearly
    optimizer: str = "adam"  # adam | sgd (OpenSpiel's NFSP uses SGD)
    rl_lr: float = 0.001  # Adam; 0.01 learns Kuhn faster at first, then NashConv drifts back up
    sl_lr: float = 0.001
    batch_size: int = 128
    replay_capacity: int = 200_000  # DQN transitions per player (circular)
    reservoir_capacity: int = 1_000_000  # supervised (obs, action) pairs per player
    min_buffer_size: int = 1_000  # transitions in the replay buffer before learning starts
    target_update_every: int = 300  # gradient steps between target-network copies
    num_envs: int = 128  # games played in lockstep
    rollout: int = 1  # env steps per env between gradient steps
    total_timesteps: int = 20_000_000  # env steps (one step = one decision in every game)
    seed: int = 0
    num_seeds: int = 1
    updates_per_chunk: int = 2_000  # gradient steps per jitted chunk
    eval_interval: int = 2_000_000  # env steps between evaluations (exact NashConv on small games)
    eval_games: int = 2_000  # games per matchup in bargain's evaluation table
    checkpoint_interval: int = 0  # env steps between step checkpoints (0: only final and best)


#: per-env overrides of the defaults (configs/nfsp_<env>.yaml mirror them)
ENV_DEFAULTS: dict[str, dict] = {
    # NashConv 0.38 after 20M steps (~6.5 min on 2 CPU cores), 0.28 after 40M
    "leduc_poker": {"env": "leduc_poker", "hidden_size": 128, "num_layers": 2, "total_timesteps": 60_000_000,
                    "epsilon_decay_steps": 100_000_000, "eval_interval": 5_000_000},
    "bargain_tiny": {"env": "bargain_tiny", "total_timesteps": 20_000_000, "eval_interval": 2_000_000},
    # the original's 92 -> 256 -> 256 -> 82 networks; ~18k env steps/s on 2 CPU cores, so 5M steps take ~5 min
    "bargain": {"env": "bargain", "hidden_size": 256, "num_layers": 2, "total_timesteps": 5_000_000,
                "epsilon_decay_steps": 5_000_000, "eval_interval": 2_500_000},
}


def network_kwargs(config: Config, env) -> dict:
    return {"name": "mlp_actor", "num_actions": env.num_actions, "hidden_size": config.hidden_size,
            "num_layers": config.num_layers, "activation": config.activation}


@struct.dataclass
class Transition:
    """One player's step from a decision to its next decision (or the end of the game)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    next_mask: jax.Array
    done: jax.Array


@struct.dataclass
class Imitation:
    """A best-response decision, for the supervised average policy."""

    obs: jax.Array
    mask: jax.Array
    action: jax.Array


@struct.dataclass
class Pending:
    """Each player's last decision whose outcome is not known yet ([N, 2, ...])."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array  # reward received since that decision
    valid: jax.Array


@struct.dataclass
class RunnerState:
    params: dict  # {"q", "target", "average"}, each stacked per player [2, ...]
    opt_state: dict  # {"q", "average"}
    replay: Replay  # per player [2, ...]
    reservoir: Reservoir
    env_state: object
    obs: jax.Array  # [N, 2, obs]
    best_response_mode: jax.Array  # bool[N, 2]
    pending: Pending
    key: jax.Array
    update: jax.Array  # gradient steps done
    env_steps: jax.Array


def check_two_player_turn_based(env, name: str) -> None:
    if env.num_agents != 2 or len(env.action_space().shape) != 0:
        raise ValueError(f"{name}: needs a two-player env with discrete actions; {env.name} has "
                         f"{env.num_agents} agents")


def make_train(config: Config, env):
    """Pure ``init(key) -> RunnerState`` and ``train_chunk(runner) -> (runner, metrics[K])``."""
    check_two_player_turn_based(env, "nfsp")
    if config.optimizer not in ("adam", "sgd"):
        raise ValueError(f"nfsp: optimizer must be adam or sgd, got {config.optimizer!r}")
    network = make_network(**network_kwargs(config, env))
    env_params = env.default_params
    num_envs, num_actions, obs_dim = config.num_envs, env.num_actions, env.obs_shape[0]
    make_opt = optax.adam if config.optimizer == "adam" else optax.sgd
    q_optimizer, sl_optimizer = make_opt(config.rl_lr), make_opt(config.sl_lr)
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def forward(params, obs):  # [N, 2, obs] -> [N, 2, A], each player by its own network
        return apply_agents(network, params, obs, False)

    def sample_modes(key):
        return jax.random.uniform(key, (num_envs, 2)) < config.anticipatory

    def init(key) -> RunnerState:
        key_q, key_avg, key_env, key_mode, key_run = jax.random.split(key, 5)
        dummy = jnp.zeros((obs_dim,))
        q = init_seat_params(network, key_q, dummy, False, 2)
        average = init_seat_params(network, key_avg, dummy, False, 2)
        obs, env_state = reset(jax.random.split(key_env, num_envs), env_params)
        item = Transition(dummy, jnp.zeros((), jnp.int32), jnp.zeros(()), dummy, jnp.zeros((num_actions,), bool),
                          jnp.zeros((), bool))
        imitation = Imitation(dummy, jnp.zeros((num_actions,), bool), jnp.zeros((), jnp.int32))
        per_player = lambda buffer: jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), buffer)
        pending = Pending(jnp.zeros((num_envs, 2, obs_dim)), jnp.zeros((num_envs, 2), jnp.int32),
                          jnp.zeros((num_envs, 2)), jnp.zeros((num_envs, 2), bool))
        zero = jnp.zeros((), jnp.int32)
        return RunnerState({"q": q, "target": q, "average": average},
                           {"q": jax.vmap(q_optimizer.init)(q), "average": jax.vmap(sl_optimizer.init)(average)},
                           per_player(Replay.create(item, config.replay_capacity)),
                           per_player(Reservoir.create(imitation, config.reservoir_capacity)),
                           env_state, obs, sample_modes(key_mode), pending, key_run, zero, zero)

    def epsilon(env_steps):
        fraction = jnp.minimum(env_steps / max(config.epsilon_decay_steps, 1), 1.0)
        return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)

    def env_step(runner: RunnerState, _):
        key, key_explore, key_random, key_avg, key_step, key_reset, key_mode, key_reservoir = \
            jax.random.split(runner.key, 8)
        obs, pending = runner.obs, runner.pending
        mask = jax.vmap(env.action_mask, in_axes=(0, None))(runner.env_state, env_params)  # [N, 2, A]
        acting = jax.vmap(env.acting, in_axes=(0, None))(runner.env_state, env_params)  # [N, 2]
        q_values = masked_logits(forward(runner.params["q"], obs), mask)
        greedy = jnp.argmax(q_values, axis=-1)
        explore = jax.random.uniform(key_explore, greedy.shape) < epsilon(runner.env_steps)
        best_response = jnp.where(explore, uniform_legal_action(key_random, mask), greedy)
        average = jax.random.categorical(key_avg, masked_logits(forward(runner.params["average"], obs), mask))
        action = jnp.where(runner.best_response_mode, best_response, average).astype(jnp.int32)

        # the mover's previous decision is complete: its next observation is this one
        continued = Transition(pending.obs, pending.action, pending.reward, obs, mask, jnp.zeros_like(acting))
        continued_valid = acting & pending.valid
        imitation = Imitation(obs, mask, action)
        imitation_valid = acting & runner.best_response_mode
        pending = Pending(jnp.where(acting[..., None], obs, pending.obs), jnp.where(acting, action, pending.action),
                          jnp.where(acting, 0.0, pending.reward), pending.valid | acting)

        next_obs, env_state, reward, done, _ = step(jax.random.split(key_step, num_envs), runner.env_state, action,
                                                    env_params)
        pending = pending.replace(reward=pending.reward + reward)
        ended = Transition(pending.obs, pending.action, pending.reward, jnp.zeros_like(obs),
                           jnp.zeros_like(mask), jnp.ones_like(acting))
        ended_valid = done[:, None] & pending.valid

        # finished games restart at once with freshly drawn modes
        fresh_obs, fresh_state = reset(jax.random.split(key_reset, num_envs), env_params)
        env_state = tree_select(done, fresh_state, env_state)
        next_obs = jnp.where(done[:, None, None], fresh_obs, next_obs)
        modes = jnp.where(done[:, None], sample_modes(key_mode), runner.best_response_mode)
        pending = pending.replace(valid=pending.valid & ~done[:, None],
                                  reward=jnp.where(done[:, None], 0.0, pending.reward))

        # per player: [N] continued + [N] ended transitions, [N] imitation items
        by_player = lambda tree: jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), tree)
        both = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b], axis=1),
                                      by_player(continued), by_player(ended))
        both_valid = jnp.concatenate([continued_valid.T, ended_valid.T], axis=1)
        replay = jax.vmap(lambda buf, batch, valid: buf.add(batch, valid))(runner.replay, both, both_valid)
        reservoir = jax.vmap(lambda buf, k, batch, valid: buf.add(k, batch, valid))(
            runner.reservoir, jax.random.split(key_reservoir, 2), by_player(imitation), imitation_valid.T)
        runner = runner.replace(replay=replay, reservoir=reservoir, env_state=env_state, obs=next_obs,
                                best_response_mode=modes, pending=pending, key=key,
                                env_steps=runner.env_steps + num_envs)
        return runner, {"episodes": done.sum(), "returns": jnp.where(done[:, None], reward, 0.0).sum(0)}

    def q_loss(q_params, target_params, batch: Transition):
        q = network.apply(q_params, batch.obs)
        chosen = jnp.take_along_axis(q, batch.action[:, None], axis=1)[:, 0]
        next_q = masked_logits(network.apply(target_params, batch.next_obs), batch.next_mask).max(axis=1)
        target = batch.reward + jnp.where(batch.done, 0.0, jax.lax.stop_gradient(next_q))
        return jnp.mean((chosen - target) ** 2)

    def sl_loss(params, batch: Imitation):
        logits = masked_logits(network.apply(params, batch.obs), batch.mask)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(batch.action.shape[0]), batch.action])

    def learn_player(q, target, average, q_opt, sl_opt, replay, reservoir, key):
        key_q, key_sl = jax.random.split(key)
        ready = replay.size >= config.min_buffer_size
        loss_q, grads = jax.value_and_grad(q_loss)(q, target, replay.sample(key_q, config.batch_size))
        updates, new_q_opt = q_optimizer.update(grads, q_opt, q)
        new_q = optax.apply_updates(q, updates)
        loss_sl, grads = jax.value_and_grad(sl_loss)(average, reservoir.sample(key_sl, config.batch_size))
        updates, new_sl_opt = sl_optimizer.update(grads, sl_opt, average)
        new_average = optax.apply_updates(average, updates)
        ready_sl = reservoir.size >= config.batch_size
        return (tree_select(ready, new_q, q), tree_select(ready, new_q_opt, q_opt),
                tree_select(ready_sl, new_average, average), tree_select(ready_sl, new_sl_opt, sl_opt),
                jnp.where(ready, loss_q, jnp.nan), jnp.where(ready_sl, loss_sl, jnp.nan))

    def update(runner: RunnerState, _):
        runner, stats = jax.lax.scan(env_step, runner, None, config.rollout)
        key, key_learn = jax.random.split(runner.key)
        p, o = runner.params, runner.opt_state
        q, q_opt, average, sl_opt, loss_q, loss_sl = jax.vmap(learn_player)(
            p["q"], p["target"], p["average"], o["q"], o["average"], runner.replay, runner.reservoir,
            jax.random.split(key_learn, 2))
        step_count = runner.update + 1
        target = tree_select(step_count % config.target_update_every == 0, q, p["target"])
        runner = runner.replace(params={"q": q, "target": target, "average": average},
                                opt_state={"q": q_opt, "average": sl_opt}, key=key, update=step_count)
        episodes = stats["episodes"].sum()
        returns = stats["returns"].sum(0) / jnp.maximum(episodes, 1)
        metrics = {"rl_loss_p0": loss_q[0], "rl_loss_p1": loss_q[1], "sl_loss_p0": loss_sl[0],
                   "sl_loss_p1": loss_sl[1], "epsilon": epsilon(runner.env_steps), "episodes": episodes,
                   "episode_reward_p0": jnp.where(episodes > 0, returns[0], jnp.nan),
                   "episode_reward_p1": jnp.where(episodes > 0, returns[1], jnp.nan),
                   "replay_size": runner.replay.size[0],
                   "reservoir_size": jnp.minimum(runner.reservoir.seen[0], config.reservoir_capacity)}
        return runner, metrics

    def train_chunk(runner: RunnerState):
        return jax.lax.scan(update, runner, None, config.updates_per_chunk)

    return init, train_chunk


def policy_params(params):
    """What the saved policy needs: the average-policy networks."""
    return params["average"]


def make_policy(config: Config, env, params, sample: bool = True):
    """The average policy (one network per seat, the seat read from the observation)."""
    average = None if params is None else params.get("average", params)
    return actor_critic_policy(network_kwargs(config, env), average, share_seats=False,
                               seat_slot=env.seat_slot, sample=sample, name="nfsp")


#: how the shared driver runs this file
DRIVER_KWARGS = {"progress_metric": "episode_reward_p0", "policy_params": policy_params,
                 "eval_metric": "nash_conv"}  # the best checkpoint: lowest exact NashConv where it can be computed


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm("nfsp", Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
