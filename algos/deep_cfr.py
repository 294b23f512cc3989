"""Deep CFR (Brown et al. 2019) with external-sampling traversals, batched and jit-compiled.

    python algos/deep_cfr.py --config configs/deep_cfr.yaml [--env leduc_poker | bargain_tiny | bargain]

(``algos/sampled_cfr.py`` runs this file under the original framework's name.)

Iteration t, for each player p (the traverser) in turn:

1. ``num_traversals`` games are dealt and traversed with external sampling, using the env's own
   ``step``: at p's decisions every legal action is explored (recursively, vmapped over the
   branches); at the opponent's decisions one action is sampled from the opponent's current
   strategy; chance is sampled once, at the deal. The current strategy at an information set is
   regret matching on the player's advantage network: σ(a) ∝ max(A(I, a), 0) over the legal
   actions, or all weight on the largest advantage when none is positive.
2. At each of p's decisions the sampled regrets r(a) = v(a) − Σ_b σ(b) v(b) go to p's advantage
   memory with weight t (linear CFR); at each opponent decision the opponent's σ goes to the
   opponent's strategy memory with weight t. Both memories are reservoirs.
3. p's advantage network is re-initialised and trained for ``advantage_steps`` minibatches on the
   t-weighted squared error over the explored legal actions.

The average strategy (what is evaluated and saved) is a network trained on the strategy
memories with the t-weighted cross-entropy to the stored σ, for ``policy_steps`` minibatches at
the end of every chunk (warm-started). This replaces the original's "sampled CFR", which
regressed advantages on one reward and never traversed the tree (``shared/specs/bargain.md``
§4.3).

Games with many actions (full ``bargain``: 82 actions, 3 decisions per player) set
``max_branching`` k: the traverser then explores k legal actions drawn without replacement,
σ is renormalised over them, and only their regrets are trained (the others are left out of the
loss). With k ≥ the number of actions (the default, 0) the traversal is exact external sampling.

Units: one update = one CFR iteration; "steps" in logs and budgets are traversals (2 ×
``num_traversals`` per iteration).

Shape: Config → memories → make_train (regret matching, traverse, train nets, train_chunk) → make_policy → main.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmarl_lab.buffers import Reservoir
from jaxmarl_lab.env import tree_select
from jaxmarl_lab.networks import actor_critic_policy, init_seat_params, make_network
from jaxmarl_lab.policies import masked_logits


@dataclass(frozen=True)
class Config:
    """Deep CFR hyperparameters. Defaults = configs/deep_cfr.yaml (Kuhn poker)."""

    env: str = "kuhn_poker"  # kuhn_poker | leduc_poker | bargain_tiny | bargain
    env_kwargs: dict = field(default_factory=dict)
    hidden_size: int = 64
    num_layers: int = 2
    activation: str = "relu"
    num_iterations: int = 300  # CFR iterations
    num_traversals: int = 256  # traversals per player per iteration (vmapped)
    max_branching: int = 0  # actions explored at the traverser's decisions (0: all)
    advantage_steps: int = 200  # minibatches per advantage-network training (from scratch each iteration)
    advantage_lr: float = 1e-3
    advantage_batch: int = 512
    policy_steps: int = 500  # minibatches of average-strategy training per chunk (warm-started)
    policy_lr: float = 1e-3
    policy_batch: int = 1024
    advantage_capacity: int = 1_000_000  # advantage memory per player (reservoir)
    strategy_capacity: int = 1_000_000  # strategy memory per player (reservoir)
    seed: int = 0
    num_seeds: int = 1
    updates_per_chunk: int = 10  # CFR iterations per jitted chunk (then the policy network trains)
    eval_interval: int = 5_120  # traversals between evaluations (exact NashConv on small games)
    eval_games: int = 2_000  # games per matchup in bargain's evaluation table
    checkpoint_interval: int = 0  # traversals between step checkpoints (0: only final and best)

    @property
    def steps_per_update(self) -> int:
        return 2 * self.num_traversals

    @property
    def num_updates(self) -> int:
        return -(-self.num_iterations // self.updates_per_chunk) * self.updates_per_chunk


#: per-env overrides of the defaults (configs/deep_cfr_<env>.yaml mirror them)
ENV_DEFAULTS: dict[str, dict] = {
    # NashConv below 0.5 after ~100 iterations (~8 min on 2 CPU cores); variance, not the networks, limits
    # Leduc, hence many traversals per iteration
    "leduc_poker": {"env": "leduc_poker", "hidden_size": 128, "num_iterations": 300, "num_traversals": 2048,
                    "advantage_steps": 600, "advantage_batch": 1024, "policy_steps": 2000, "eval_interval": 81_920},
    "bargain_tiny": {"env": "bargain_tiny", "hidden_size": 128, "num_iterations": 300, "num_traversals": 512,
                     "advantage_steps": 300, "eval_interval": 51_200},
    # 8 of 82 actions explored per decision; ~3 s per iteration on 2 CPU cores
    "bargain": {"env": "bargain", "hidden_size": 256, "num_iterations": 100, "num_traversals": 64,
                "max_branching": 8, "advantage_capacity": 200_000, "strategy_capacity": 200_000,
                "eval_interval": 6_400},
}


def network_kwargs(config: Config, env) -> dict:
    return {"name": "mlp_actor", "num_actions": env.num_actions, "hidden_size": config.hidden_size,
            "num_layers": config.num_layers, "activation": config.activation}


@struct.dataclass
class AdvantageSample:
    obs: jax.Array
    regret: jax.Array  # [A] sampled regrets (0 where not explored)
    explored: jax.Array  # bool[A]
    weight: jax.Array  # iteration t


@struct.dataclass
class StrategySample:
    obs: jax.Array
    mask: jax.Array
    strategy: jax.Array  # [A] σ at that decision
    weight: jax.Array


@struct.dataclass
class RunnerState:
    params: dict  # {"advantage", "policy"}, each stacked per player [2, ...]
    initial_advantage: dict  # where each iteration's advantage training starts (re-initialisation)
    policy_opt: object
    advantage_memory: Reservoir  # per player [2, ...]
    strategy_memory: Reservoir
    key: jax.Array
    update: jax.Array  # CFR iterations done


def regret_matching(advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """σ ∝ positive advantages over legal actions; all weight on the best legal one if none is positive."""
    positive = jnp.where(mask, jnp.maximum(advantages, 0.0), 0.0)
    total = positive.sum(-1, keepdims=True)
    best = jax.nn.one_hot(jnp.argmax(jnp.where(mask, advantages, -jnp.inf), -1), advantages.shape[-1])
    return jnp.where(total > 0, positive / jnp.where(total > 0, total, 1.0), best)


def decision_bounds(env) -> tuple[int, int]:
    """(decisions per player per game, consecutive opponent moves) bounds of the env."""
    return int(getattr(env, "max_decisions_per_player", math.ceil(env.max_steps / 2))), \
        int(getattr(env, "max_consecutive_moves", 2))


def make_traverse(config: Config, env):
    """``traverse(key, advantage_params, traverser, t, obs, states) -> (root values, unfinished leaves,
    advantage samples, strategy samples)`` for a batch of dealt games (see the module docstring)."""
    network = make_network(**network_kwargs(config, env))
    env_params = env.default_params
    num_actions = env.num_actions
    branching = num_actions if config.max_branching <= 0 else min(config.max_branching, num_actions)
    depth_limit, opponent_moves = decision_bounds(env)

    def mover(state):
        return jnp.argmax(env.acting(state, env_params)).astype(jnp.int32)

    def play(key, state, seat, action):
        joint = jnp.zeros((2,), jnp.int32).at[seat].set(action)
        return env.step(key, state, joint, env_params)

    # ---- external-sampling traversals, breadth-first over a flat batch of nodes -------------
    # Level d holds every node after the traverser's d-th decision: [num_traversals · k^d] games.
    # Flat batches (no nested vmaps) keep compile time small and make every network call one matmul.
    batch_step = jax.vmap(lambda state, seat, action: play(jax.random.key(0), state, seat, action),
                          in_axes=(0, None, 0))
    batch_mask = jax.vmap(lambda state: env.action_mask(state, env_params))
    batch_mover = jax.vmap(mover)

    def advance(key, seat_params, seat, t, obs, state, done, value, traverser):
        """The opponent (``seat``) plays from its σ until it is the traverser's turn or the game ends."""

        def move(carry, k):
            obs, state, done, value = carry
            mask = batch_mask(state)[:, seat]
            turn = ~done & (batch_mover(state) == seat)
            sigma = regret_matching(network.apply(seat_params, obs[:, seat]), mask)
            action = jax.random.categorical(k, jnp.log(jnp.where(mask, sigma, 0.0) + 1e-30))
            next_obs, next_state, reward, next_done, _ = batch_step(state, seat, action)
            record = StrategySample(obs[:, seat], mask, sigma, jnp.where(turn, t, 0.0))
            obs = jnp.where(turn[:, None, None], next_obs, obs)
            state = tree_select(turn, next_state, state)
            value = value + jnp.where(turn, reward[:, traverser], 0.0)
            return (obs, state, done | (turn & next_done), value), record

        carry, records = jax.lax.scan(move, (obs, state, done, value), jax.random.split(key, opponent_moves))
        return (*carry, jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), records))

    def traverse(key, advantage_params, traverser, t, obs, state):
        """Root values for ``traverser`` of a batch of dealt games, and the memories they produced."""
        opponent = 1 - traverser
        opponent_params = jax.tree_util.tree_map(lambda x: x[opponent], advantage_params)
        own_params = jax.tree_util.tree_map(lambda x: x[traverser], advantage_params)
        n = obs.shape[0]
        done, value = jnp.zeros((n,), bool), jnp.zeros((n,))
        levels, strategy_records = [], []
        for depth, k in enumerate(jax.random.split(key, depth_limit + 1)):
            key_advance, key_pick = jax.random.split(k)
            obs, state, done, value, records = advance(key_advance, opponent_params, opponent, t, obs, state, done,
                                                       value, traverser)
            strategy_records.append(records)
            if depth == depth_limit:
                break
            mask = batch_mask(state)[:, traverser]
            if branching >= num_actions:
                actions = jnp.broadcast_to(jnp.arange(num_actions), mask.shape)
                explored = mask
            else:  # k legal actions without replacement (Gumbel top-k over the legal ones)
                scores = jnp.where(mask, jax.random.gumbel(key_pick, mask.shape), -jnp.inf)
                actions = jax.lax.top_k(scores, branching)[1]
                explored = jnp.take_along_axis(mask, actions, axis=1)
            sigma = jnp.take_along_axis(regret_matching(network.apply(own_params, obs[:, traverser]), mask), actions,
                                        axis=1) * explored
            total = sigma.sum(1, keepdims=True)
            sigma = jnp.where(total > 0, sigma / jnp.where(total > 0, total, 1.0),
                              explored / jnp.maximum(explored.sum(1, keepdims=True), 1))
            levels.append((obs[:, traverser], actions, explored, sigma, done, value))
            # children: every node times its k explored actions, flattened
            repeat = lambda tree: jax.tree_util.tree_map(lambda x: jnp.repeat(x, branching, axis=0), tree)
            child_obs, child_state, reward, child_done, _ = batch_step(repeat(state), traverser, actions.reshape(-1))
            value = repeat(value) + jnp.where(repeat(done), 0.0, reward[:, traverser])
            done = repeat(done) | child_done
            obs, state = child_obs, child_state
        unfinished = (~done).sum()
        adv_records = []
        for node_obs, actions, explored, sigma, node_done, node_value in reversed(levels):
            child_values = value.reshape(-1, branching)
            expected = (sigma * child_values).sum(1)
            rows = jnp.arange(actions.shape[0])[:, None]
            regret = jnp.zeros((actions.shape[0], num_actions)).at[rows, actions].set(
                jnp.where(explored, child_values - expected[:, None], 0.0))
            explored_full = jnp.zeros((actions.shape[0], num_actions), bool).at[rows, actions].set(explored)
            adv_records.append(AdvantageSample(node_obs, regret, explored_full, jnp.where(node_done, 0.0, t)))
            value = jnp.where(node_done, node_value, expected)
        concat = lambda records: jax.tree_util.tree_map(lambda *x: jnp.concatenate(x), *records)
        return value, unfinished, concat(adv_records), concat(strategy_records)

    return traverse


def make_train(config: Config, env):
    """Pure ``init(key) -> RunnerState`` and ``train_chunk(runner) -> (runner, metrics[K])``."""
    if env.num_agents != 2 or len(env.action_space().shape) != 0:
        raise ValueError(f"deep_cfr: needs a two-player env with discrete actions, got {env.name}")
    network = make_network(**network_kwargs(config, env))
    env_params = env.default_params
    num_actions, obs_dim = env.num_actions, env.obs_shape[0]
    advantage_optimizer = optax.adam(config.advantage_lr)
    policy_optimizer = optax.adam(config.policy_lr)
    dummy = jnp.zeros((obs_dim,))
    traverse = make_traverse(config, env)

    # ---- network training ------------------------------------------------------------------
    def weighted(loss, weight):
        return (loss * weight).sum() / jnp.maximum(weight.sum(), 1e-9)

    def advantage_loss(params, batch: AdvantageSample):
        error = jnp.where(batch.explored, network.apply(params, batch.obs) - batch.regret, 0.0)
        return weighted((error**2).sum(-1), batch.weight)

    def policy_loss(params, batch: StrategySample):
        log_probs = jax.nn.log_softmax(masked_logits(network.apply(params, batch.obs), batch.mask))
        return weighted(-(batch.strategy * jnp.where(batch.mask, log_probs, 0.0)).sum(-1), batch.weight)

    def fit(loss_fn, optimizer, params, opt_state, memory, key, steps, batch_size):
        def body(carry, k):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, memory.sample(k, batch_size))
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), jax.random.split(key, steps))
        return params, opt_state, losses[-1]

    # ---- the loop -------------------------------------------------------------------------
    def init(key) -> RunnerState:
        key_adv, key_pol, key_run = jax.random.split(key, 3)
        advantage = init_seat_params(network, key_adv, dummy, False, 2)
        policy = init_seat_params(network, key_pol, dummy, False, 2)
        adv_item = AdvantageSample(dummy, jnp.zeros((num_actions,)), jnp.zeros((num_actions,), bool), jnp.zeros(()))
        strat_item = StrategySample(dummy, jnp.zeros((num_actions,), bool), jnp.zeros((num_actions,)), jnp.zeros(()))
        per_player = lambda buffer: jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), buffer)
        return RunnerState({"advantage": advantage, "policy": policy}, advantage,
                           jax.vmap(policy_optimizer.init)(policy),
                           per_player(Reservoir.create(adv_item, config.advantage_capacity)),
                           per_player(Reservoir.create(strat_item, config.strategy_capacity)),
                           key_run, jnp.zeros((), jnp.int32))

    def player_update(runner: RunnerState, traverser, t, key):
        """Traversals for ``traverser`` (traced: one program serves both players), then its advantage net."""
        key_deal, key_walk, key_adv_mem, key_strat_mem, key_fit = jax.random.split(key, 5)
        obs, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key_deal, config.num_traversals),
                                                              env_params)
        values, unfinished, adv, strat = traverse(key_walk, runner.params["advantage"], traverser, t, obs, states)
        opponent = 1 - traverser
        pick = lambda tree, i: jax.tree_util.tree_map(lambda x: x[i], tree)
        put = lambda tree, i, new: jax.tree_util.tree_map(lambda x, y: x.at[i].set(y), tree, new)
        adv_memory = pick(runner.advantage_memory, traverser).add(key_adv_mem, adv, adv.weight > 0)
        strat_memory = pick(runner.strategy_memory, opponent).add(key_strat_mem, strat, strat.weight > 0)
        fresh = jax.tree_util.tree_map(lambda x: x[traverser], runner.initial_advantage)
        params, _, loss = fit(advantage_loss, advantage_optimizer, fresh, advantage_optimizer.init(fresh),
                              adv_memory, key_fit, config.advantage_steps, config.advantage_batch)
        runner = runner.replace(params={**runner.params, "advantage": put(runner.params["advantage"], traverser,
                                                                           params)},
                                advantage_memory=put(runner.advantage_memory, traverser, adv_memory),
                                strategy_memory=put(runner.strategy_memory, opponent, strat_memory))
        return runner, {"advantage_loss": loss, "root_value": values.mean(), "unfinished": unfinished.sum()}

    def iteration(runner: RunnerState, _):
        key, key_players = jax.random.split(runner.key)
        t = (runner.update + 1).astype(jnp.float32)
        runner, m = jax.lax.scan(lambda r, x: player_update(r, x[0], t, x[1]), runner,
                                 (jnp.arange(2), jax.random.split(key_players, 2)))
        runner = runner.replace(key=key, update=runner.update + 1)
        metrics = {"advantage_loss_p0": m["advantage_loss"][0], "advantage_loss_p1": m["advantage_loss"][1],
                   "traversal_value_p0": m["root_value"][0], "traversal_value_p1": m["root_value"][1],
                   "unfinished_leaves": m["unfinished"].sum(),
                   "advantage_memory": jnp.minimum(runner.advantage_memory.seen[0], config.advantage_capacity),
                   "strategy_memory": jnp.minimum(runner.strategy_memory.seen[0], config.strategy_capacity)}
        return runner, metrics

    def train_chunk(runner: RunnerState):
        runner, metrics = jax.lax.scan(iteration, runner, None, config.updates_per_chunk)
        key, key_fit = jax.random.split(runner.key)
        policy, opt_state, loss = jax.vmap(
            lambda p, o, m, k: fit(policy_loss, policy_optimizer, p, o, m, k, config.policy_steps,
                                   config.policy_batch))(
            runner.params["policy"], runner.policy_opt, runner.strategy_memory, jax.random.split(key_fit, 2))
        runner = runner.replace(params={**runner.params, "policy": policy}, policy_opt=opt_state, key=key)
        last = jnp.arange(config.updates_per_chunk) == config.updates_per_chunk - 1
        metrics["policy_loss_p0"] = jnp.where(last, loss[0], jnp.nan)
        metrics["policy_loss_p1"] = jnp.where(last, loss[1], jnp.nan)
        return runner, metrics

    return init, train_chunk


def policy_params(params):
    """What the saved policy needs: the average-strategy networks."""
    return params["policy"]


def make_policy(config: Config, env, params, sample: bool = True):
    """The average strategy (one network per seat, the seat read from the observation)."""
    policy = None if params is None else params.get("policy", params)
    return actor_critic_policy(network_kwargs(config, env), policy, share_seats=False, seat_slot=env.seat_slot,
                               sample=sample, name="deep_cfr")


#: how the shared driver runs this file
DRIVER_KWARGS = {"progress_metric": "advantage_loss_p0", "policy_params": policy_params,
                 "eval_metric": "nash_conv"}  # the best checkpoint: lowest exact NashConv where it can be computed


def main(argv: list[str] | None = None, algorithm: str = "deep_cfr") -> int:
    from jaxmarl_lab.training import run_algorithm

    return run_algorithm(algorithm, Config, make_train, make_policy, argv, description=__doc__, **DRIVER_KWARGS)


if __name__ == "__main__":
    sys.exit(main())
