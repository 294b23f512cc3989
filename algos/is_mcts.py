"""IS-MCTS: information-set Monte Carlo tree search at decision time over a trained policy.

    python algos/is_mcts.py --checkpoint RUN_DIR --num-simulations 100 [--use-gumbel] --num-games 2000
    python algos/is_mcts.py --env kuhn_poker --prior baseline:random --opponent-model baseline:random ...

``search_policy(env, prior_policy, num_simulations, ...)`` returns a :class:`Policy` that searches
at every decision; it is jittable, vmaps over games and plays anywhere a Policy does (evaluate,
crossplay as ``search:RUN_DIR:100``). It is the search `[LW24]` §6 describes; the original repo's
``is_mcts`` is a stub (shared/specs/bargain.md §4.8).

Determinisation (one set of worlds per decision)
------------------------------------------------
The searching player p knows its own private information and the public history. The policy keeps
a memory of every observation p received in the game (``initial_memory``; the evaluation loops
carry it), because the bargaining observation shows only the offer on the table. Each decision:

1. Draw ``num_worlds`` deals from the chance distribution conditioned on p's private information
   (``env.resample_deal``: the opponent's values and outside offer in bargaining, the hidden cards
   in poker).
2. Replay the game so far in every world: at each past step, the action taken is whichever legal
   action reproduces p's next observation in that world (the env's own ``step``; deterministic
   once dealt). A world in which no action does is inconsistent (weight 0).
3. Weight each world by how likely the opponent model makes the opponent's observed actions:
   w ∝ Π_t π_opp(a_t | o_t^opp) over the opponent's past decisions, with π_opp mixed with
   ``likelihood_floor`` of the uniform legal distribution so a wrong model cannot zero every world.
   This is importance sampling from the prior to the posterior Pr(world | p's information).

Search (one tree over p's information, per-player values)
---------------------------------------------------------
Tree nodes are public action sequences from the root; every node stores visit counts and the
summed return of *both* players per action (general-sum: the mover at a node maximises its own
component, so mctx's single negated value does not apply; anchors §5, §10.10). Each simulation
draws a world by weight and walks down with the env's ``step``. At p's nodes selection is PUCT on
the prior policy, Q + c_puct·P·sqrt(N + 1)/(1 + N(a)) with Q min-max normalised per player over
the tree and unvisited actions valued at the node's estimate. At the opponent's nodes
(``opponent_nodes``) the action is sampled from the opponent model on that world's observation
(default ``sample``: the opponent is the fixed, modelled policy, so with enough simulations the
search approaches a best response to it; on Kuhn it reaches the exact best-response value), or
chosen by PUCT on the opponent's own returns (``puct``: an opponent that searches too; one tree
node mixes the opponent's worlds, so this also plays as an opponent that cannot see its own
private information). The first new node is a leaf: its
value for each player is the prior's value head on that player's observation, or (``leaf:
rollout``, or a prior without value head) the return of one rollout with the models; terminal
states return their rewards. Returns are backed up per player (``discount`` per step).

Root: with ``use_gumbel`` (default, Gumbel MuZero, Danihelka et al. 2022) sample g ~ Gumbel
(× ``gumbel_scale``), consider the top-m legal actions by g + log π (m = ``max_num_considered``),
spend the simulations by sequential halving on g + log π + σ(q̂) with σ(q̂) = (50 + max N)·0.1·q̂
(q̂: min-max normalised completed Q), and play the most visited considered action with the best
score. Otherwise PUCT at the root (optional Dirichlet noise) and play argmax visits
(``temperature`` 0) or sample ∝ N^(1/temperature). Improved policy (``action_weights``):
softmax(log π + σ(q̂)) (Gumbel) or visit frequencies.

Shape: SearchConfig → models → worlds (resample, replay, weights) → tree search → IsMctsAct /
search_policy → evaluation CLI (``main``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.policies import MASKED_LOGIT, Policy, baseline, list_baselines
from jaxmarl_lab.sparse_call import call_where

SEARCHABLE_ENVS = ("bargain", "bargain_tiny", "kuhn_poker", "leduc_poker")


@dataclass(frozen=True)
class SearchConfig:
    """Search options. Defaults follow the original config (spec §4.8) except where noted."""

    num_simulations: int = 100
    num_worlds: int = 32  # determinised deals per decision (weighted by the opponent's observed actions)
    c_puct: float = 1.5
    temperature: float = 0.0  # UCT mode: 0 plays argmax visits (the original's 1.0 samples ∝ visits)
    use_gumbel: bool = True
    gumbel_scale: float = 1.0  # 0: deterministic root (evaluation on perfect-information games)
    max_num_considered: int = 16
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.0  # UCT root noise; the original's 0.25 is a training-time exploration aid
    discount: float = 1.0  # both games pay once at the end; the original's 0.99 only rescales values by depth
    leaf: str = "auto"  # value | rollout | auto (value head if the prior has one, else rollout)
    likelihood_floor: float = 1e-3  # share of uniform mixed into the opponent model in the world weights
    # opponent's nodes: "sample" its action from the opponent model in the simulation's world (a fixed,
    # modelled opponent: the search converges to a best response to it); "puct": the opponent also
    # selects by PUCT on its own returns (an opponent that searches too)
    opponent_nodes: str = "sample"

    def __post_init__(self):
        if self.num_simulations < 1 or self.num_worlds < 1 or self.max_num_considered < 1:
            raise ValueError("num_simulations, num_worlds and max_num_considered must be >= 1")
        if self.opponent_nodes not in ("sample", "puct"):
            raise ValueError(f"opponent_nodes must be sample or puct, got {self.opponent_nodes!r}")
        if self.leaf not in ("auto", "value", "rollout"):
            raise ValueError(f"leaf must be auto, value or rollout, got {self.leaf!r}")
        if self.temperature < 0 or self.gumbel_scale < 0:
            raise ValueError("temperature and gumbel_scale must be >= 0")


# ---- models: a Policy as (log-probabilities, value) ------------------------------------------


def model_outputs(act_fn, params, obs: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    """(log π(·|obs) with illegal actions at MASKED_LOGIT, value or None) of any Policy's act_fn:
    actor-critics give both; policies with ``action_probs`` give probabilities; any other
    (deterministic) policy is its action with probability 1."""
    if hasattr(act_fn, "logits_and_value"):
        logits, value = act_fn.logits_and_value(params, obs, mask)
        return jnp.where(mask, jax.nn.log_softmax(logits), MASKED_LOGIT), value
    if hasattr(act_fn, "action_probs"):
        probs = act_fn.action_probs(params, obs, mask)
        return jnp.where(mask & (probs > 0), jnp.log(jnp.maximum(probs, 1e-30)), MASKED_LOGIT), None
    action = act_fn(params, obs, mask, jax.random.key(0))
    return jnp.where(jnp.arange(mask.shape[-1]) == action, 0.0, MASKED_LOGIT), None


@dataclass(frozen=True)
class _Models:
    """The searcher's prior and its model of the opponent (the prior itself when ``opponent`` is None)."""

    prior: Any
    opponent: Any = None

    def log_probs(self, params, obs, mask, is_searcher):
        own, _ = model_outputs(self.prior, params["prior"], obs, mask)
        if self.opponent is None:
            return own
        other, _ = model_outputs(self.opponent, params["opponent"], obs, mask)
        return jnp.where(is_searcher, own, other)

    def opponent_log_probs(self, params, obs, mask):
        if self.opponent is None:
            return model_outputs(self.prior, params["prior"], obs, mask)[0]
        return model_outputs(self.opponent, params["opponent"], obs, mask)[0]

    def value(self, params, obs, mask):
        return model_outputs(self.prior, params["prior"], obs, mask)[1]


# ---- worlds -----------------------------------------------------------------------------------


class Worlds(NamedTuple):
    obs: jax.Array  # [W, num_agents, obs_dim] every player's observation at the root
    state: Any  # env states stacked [W]
    log_weight: jax.Array  # f32[W] unnormalised log posterior weights (-inf: inconsistent)


def _mover(env, state, env_params) -> jax.Array:
    return jnp.argmax(env.acting(state, env_params)).astype(jnp.int32)


def _step_all_actions(env, state, env_params):
    """(obs, state) after each of the A actions of the mover (A leading axis)."""
    num_actions = env.action_space(env_params).n

    def one(action):
        obs, nxt, reward, done, _ = env.step(jax.random.key(0), state, jnp.full((env.num_agents,), action), env_params)
        return obs, nxt

    return jax.vmap(one)(jnp.arange(num_actions))


def sample_worlds(env, models: _Models, params, history: jax.Array, count: jax.Array, key: jax.Array,
                  num_worlds: int, likelihood_floor: float = 1e-3, env_params=None) -> Worlds:
    """Worlds consistent with the searcher's observations ``history[:count]`` (history[count - 1]
    is the current one), weighted by the opponent model's likelihood of the observed actions."""
    env_params = env.default_params if env_params is None else env_params
    seat = jnp.round(history[0][env.seat_slot]).astype(jnp.int32)
    latest = history[jnp.clip(count - 1, 0, history.shape[0] - 1)]  # reveals the most (Leduc's public card)
    obs0, state0 = jax.vmap(env.resample_deal, in_axes=(0, None))(jax.random.split(key, num_worlds), latest)

    def replay(obs, state):
        def step(carry):
            t, obs, state, log_weight = carry
            live = t < count - 1
            mover = _mover(env, state, env_params)
            legal = env.action_mask(state, env_params)[mover]
            next_obs, next_state = _step_all_actions(env, state, env_params)
            seen = history[jnp.minimum(t + 1, history.shape[0] - 1)]
            match = legal & jnp.all(jnp.abs(next_obs[:, seat] - seen) < 1e-5, axis=-1)
            opponent = jnp.exp(models.opponent_log_probs(params, obs[mover], legal))
            uniform = legal / jnp.maximum(legal.sum(), 1)
            opponent = (1.0 - likelihood_floor) * opponent + likelihood_floor * uniform
            likelihood = jnp.where(mover == seat, match.any().astype(jnp.float32), (match * opponent).sum())
            log_weight = log_weight + jnp.where(live, jnp.log(likelihood), 0.0)
            taken = jnp.argmax(match)
            obs = jnp.where(live, next_obs[taken], obs)
            state = jax.tree_util.tree_map(lambda new, old: jnp.where(live, new[taken], old), next_state, state)
            return t + 1, obs, state, log_weight

        # only the steps played so far (a while loop: at the first decision there is nothing to replay)
        carry = (jnp.zeros((), jnp.int32), obs, state, jnp.zeros(()))
        _, obs, state, log_weight = jax.lax.while_loop(lambda c: c[0] < count - 1, step, carry)
        return obs, state, log_weight

    obs, state, log_weight = jax.vmap(replay)(obs0, state0)
    return Worlds(obs, state, log_weight)


# ---- the tree ---------------------------------------------------------------------------------


def sequential_halving_visits(num_considered: int, num_simulations: int) -> np.ndarray:
    """For simulation i, the visit count the root action it explores must have (sequential
    halving: ceil(log2 m) phases, each giving the remaining actions equal visits, then halving)."""
    if num_considered <= 1:
        return np.arange(num_simulations, dtype=np.int32)
    phases = math.ceil(math.log2(num_considered))
    targets: list[int] = []
    remaining, visits = num_considered, 0
    while len(targets) < num_simulations:
        per_action = max(1, num_simulations // (phases * remaining))
        for _ in range(per_action):
            targets.extend([visits] * remaining)
            visits += 1
        remaining = max(2, remaining // 2)
    return np.asarray(targets[:num_simulations], np.int32)


class Tree(NamedTuple):
    children: jax.Array  # i32[S + 1, A] child node of (node, action), -1 if not expanded
    visits: jax.Array  # f32[S + 1, A]
    value_sum: jax.Array  # f32[S + 1, A, 2] summed returns of both players
    estimate: jax.Array  # f32[S + 1, 2] value estimate of each node (its leaf evaluation)
    low: jax.Array  # f32[2] smallest return seen per player (Q normalisation)
    high: jax.Array  # f32[2]


class SearchOutput(NamedTuple):
    action: jax.Array  # i32[] the action to play
    action_weights: jax.Array  # f32[A] improved policy
    root_visits: jax.Array  # f32[A]
    root_q: jax.Array  # f32[A] searcher's mean return per root action (0 where unvisited)
    world_weights: jax.Array  # f32[W] normalised posterior weights of the worlds


def _normalise(q, low, high):
    span = high - low
    return jnp.where(span > 1e-8, (q - low) / jnp.where(span > 1e-8, span, 1.0), 0.5)


def _completed_q(tree: Tree, node, player, legal, fallback):
    """Mean return of ``player`` per action at ``node``; unvisited actions get ``fallback``."""
    n = tree.visits[node]
    q = tree.value_sum[node, :, player] / jnp.maximum(n, 1.0)
    return jnp.where((n > 0) & legal, q, fallback)


def _gumbel_sigma(tree: Tree, legal, fallback, player):
    q = _completed_q(tree, 0, player, legal, fallback)
    q_legal = jnp.where(legal, q, jnp.inf)
    low, high = jnp.min(q_legal), jnp.max(jnp.where(legal, q, -jnp.inf))
    scaled = _normalise(q, low, high)
    return (50.0 + tree.visits[0].max()) * 0.1 * scaled


def run_search(env, models: _Models, config: SearchConfig, params, worlds: Worlds, root_obs: jax.Array,
               root_mask: jax.Array, key: jax.Array, env_params=None) -> SearchOutput:
    """One search from the searcher's current observation ``root_obs`` over weighted ``worlds``."""
    env_params = env.default_params if env_params is None else env_params
    num_actions = root_mask.shape[-1]
    sims, depth = config.num_simulations, env.max_steps
    seat = jnp.round(root_obs[env.seat_slot]).astype(jnp.int32)
    key_gumbel, key_noise, key_sims = jax.random.split(key, 3)

    root_log_prior, root_value = model_outputs(models.prior, params["prior"], root_obs, root_mask)
    use_value = config.leaf == "value" or (config.leaf == "auto" and root_value is not None)
    if use_value and root_value is None:
        raise ValueError("leaf='value' needs a prior with a value head (an actor-critic run); use leaf='rollout'")
    log_weight = jnp.where(jnp.isfinite(worlds.log_weight), worlds.log_weight, -jnp.inf)
    log_weight = jnp.where(jnp.isfinite(log_weight).any(), log_weight, 0.0)  # no consistent world: uniform
    world_weights = jax.nn.softmax(log_weight)

    legal_count = root_mask.sum()
    gumbel = config.gumbel_scale * jax.random.gumbel(key_gumbel, (num_actions,))
    noisy_prior = root_log_prior
    if not config.use_gumbel and config.dirichlet_fraction > 0:
        noise = jax.random.dirichlet(key_noise, jnp.full((num_actions,), config.dirichlet_alpha))
        probs = jnp.exp(root_log_prior) * root_mask
        mixed = (1 - config.dirichlet_fraction) * probs + config.dirichlet_fraction * noise * root_mask
        noisy_prior = jnp.where(root_mask, jnp.log(mixed / mixed.sum()), MASKED_LOGIT)
    score0 = jnp.where(root_mask, gumbel + root_log_prior, -jnp.inf)
    num_considered = jnp.minimum(config.max_num_considered, legal_count)
    rank = jnp.argsort(jnp.argsort(-score0))
    considered = root_mask & (rank < num_considered)
    table = np.stack([sequential_halving_visits(m, sims) for m in range(config.max_num_considered + 1)])
    visit_targets = jnp.asarray(table)[num_considered]

    def leaf_value(obs, state, key):
        """Each player's value of a non-terminal state: value head or one rollout of the models."""
        if use_value:
            masks = env.action_mask(state, env_params)
            return jnp.stack([models.value(params, obs[p], masks[p]) for p in range(2)]).astype(jnp.float32)

        def roll(carry, k):
            obs, state, done, ret, scale = carry
            mover = _mover(env, state, env_params)
            legal = env.action_mask(state, env_params)[mover]
            action = jax.random.categorical(k, models.log_probs(params, obs[mover], legal, mover == seat))
            nobs, nstate, reward, ndone, _ = env.step(k, state, jnp.full((env.num_agents,), action), env_params)
            ret = ret + jnp.where(done, 0.0, scale * reward[:2])
            obs = jnp.where(done, obs, nobs)
            state = jax.tree_util.tree_map(lambda n, o: jnp.where(done, o, n), nstate, state)
            return (obs, state, done | ndone, ret, scale * config.discount), None

        carry = (obs, state, jnp.zeros((), bool), jnp.zeros((2,)), jnp.ones(()))
        (_, _, _, ret, _), _ = jax.lax.scan(roll, carry, jax.random.split(key, depth))
        return ret

    def simulate(tree: Tree, inputs):
        index, key = inputs
        key_world, key_leaf, key_opponent = jax.random.split(key, 3)
        w = jax.random.categorical(key_world, jnp.log(jnp.maximum(world_weights, 1e-30)))
        obs = worlds.obs[w]
        state = jax.tree_util.tree_map(lambda x: x[w], worlds.state)

        def descend(carry):
            d, node, obs, state, active, rewards, nodes, actions, length, expanded, terminal = carry
            mover = _mover(env, state, env_params)
            legal = env.action_mask(state, env_params)[mover]
            log_prior = jnp.where(d == 0, noisy_prior, models.log_probs(params, obs[mover], legal, mover == seat))
            n = tree.visits[node]
            fallback = tree.estimate[node, mover]
            q = _normalise(_completed_q(tree, node, mover, legal, fallback), tree.low[mover], tree.high[mover])
            puct = q + config.c_puct * jnp.exp(log_prior) * jnp.sqrt(n.sum() + 1.0) / (1.0 + n)
            action = jnp.argmax(jnp.where(legal, puct, -jnp.inf))
            if config.opponent_nodes == "sample":
                modelled = jax.random.categorical(jax.random.fold_in(key_opponent, d), log_prior).astype(action.dtype)
                action = jnp.where(mover == seat, action, modelled)
            if config.use_gumbel:
                at_target = considered & (tree.visits[0] == visit_targets[index])
                candidates = jnp.where(at_target.any(), at_target, considered)
                sigma = _gumbel_sigma(tree, root_mask, tree.estimate[0, seat], seat)
                root_action = jnp.argmax(jnp.where(candidates, gumbel + root_log_prior + sigma, -jnp.inf))
                action = jnp.where(d == 0, root_action, action)
            nobs, nstate, reward, done, _ = env.step(jax.random.key(0), state, jnp.full((env.num_agents,), action),
                                                      env_params)
            child = tree.children[node, action]
            is_new = child < 0
            nodes = nodes.at[d].set(node)
            actions = actions.at[d].set(action)
            rewards = rewards.at[d].set(jnp.where(active, reward[:2], 0.0))
            length = length + active.astype(jnp.int32)
            stop = active & (is_new | done)
            expanded = expanded | (active & is_new)
            terminal = jnp.where(stop, done, terminal)
            keep = lambda new, old: jnp.where(active, new, old)  # noqa: E731
            obs = keep(nobs, obs)
            state = jax.tree_util.tree_map(keep, nstate, state)
            node = jnp.where(active & ~is_new, child, node)
            return d + 1, node, obs, state, active & ~stop, rewards, nodes, actions, length, expanded, terminal

        zero_i = jnp.zeros((), jnp.int32)
        carry = (zero_i, zero_i, obs, state, jnp.ones((), bool), jnp.zeros((depth, 2)), jnp.zeros((depth,), jnp.int32),
                 jnp.zeros((depth,), jnp.int32), zero_i, jnp.zeros((), bool), jnp.zeros((), bool))
        # walk down until the first new node or the end of the game (not always the full depth)
        _, node, obs, state, _, rewards, nodes, actions, length, expanded, terminal = jax.lax.while_loop(
            lambda c: c[4] & (c[0] < depth), descend, carry)
        bootstrap = jnp.where(terminal, 0.0, leaf_value(obs, state, key_leaf))
        # return from each depth d: Σ_{d' >= d} γ^{d'-d} r_{d'} + γ^{length-d} v_leaf
        live = jnp.arange(depth) < length

        def backward(ret, d):
            ret = jnp.where(live[d], rewards[d] + config.discount * ret, ret)
            return ret, ret

        _, returns = jax.lax.scan(backward, bootstrap, jnp.arange(depth), reverse=True)
        weight = live.astype(jnp.float32)
        new_node = index + 1
        last = jnp.maximum(length - 1, 0)
        children = tree.children.at[nodes[last], actions[last]].set(
            jnp.where(expanded, new_node, tree.children[nodes[last], actions[last]]))
        leaf_estimate = jnp.where(terminal, jnp.zeros(2), bootstrap)
        tree = Tree(
            children=children,
            visits=tree.visits.at[nodes, actions].add(weight),
            value_sum=tree.value_sum.at[nodes, actions].add(weight[:, None] * returns),
            estimate=tree.estimate.at[new_node].set(jnp.where(expanded, leaf_estimate, tree.estimate[new_node])),
            low=jnp.minimum(tree.low, jnp.where(live[:, None], returns, jnp.inf).min(0)),
            high=jnp.maximum(tree.high, jnp.where(live[:, None], returns, -jnp.inf).max(0)),
        )
        return tree, None

    root_estimate = jnp.zeros(2)
    if root_value is not None:
        root_estimate = root_estimate.at[seat].set(root_value)
    tree = Tree(
        children=jnp.full((sims + 1, num_actions), -1, jnp.int32),
        visits=jnp.zeros((sims + 1, num_actions)),
        value_sum=jnp.zeros((sims + 1, num_actions, 2)),
        estimate=jnp.zeros((sims + 1, 2)).at[0].set(root_estimate),
        low=jnp.full((2,), jnp.inf), high=jnp.full((2,), -jnp.inf),
    )
    tree, _ = jax.lax.scan(simulate, tree, (jnp.arange(sims), jax.random.split(key_sims, sims)))

    visits = tree.visits[0]
    root_q = jnp.where(visits > 0, tree.value_sum[0, :, seat] / jnp.maximum(visits, 1.0), 0.0)
    if config.use_gumbel:
        visited_mean = (tree.value_sum[0, :, seat].sum() / jnp.maximum(visits.sum(), 1.0))
        fallback = root_value if root_value is not None else visited_mean
        sigma = _gumbel_sigma(tree, root_mask, fallback, seat)
        most = considered & (visits == jnp.where(considered, visits, -1).max())
        action = jnp.argmax(jnp.where(most, gumbel + root_log_prior + sigma, -jnp.inf))
        action_weights = jax.nn.softmax(jnp.where(root_mask, root_log_prior + sigma, -jnp.inf))
    else:
        action_weights = visits / jnp.maximum(visits.sum(), 1.0)
        if config.temperature == 0:
            action = jnp.argmax(jnp.where(root_mask, visits + 1e-3 * jnp.exp(root_log_prior), -jnp.inf))
        else:
            logits = jnp.where(root_mask & (visits > 0), jnp.log(jnp.maximum(visits, 1e-30)) / config.temperature,
                               -jnp.inf)
            action = jax.random.categorical(key_noise, logits)
    return SearchOutput(action.astype(jnp.int32), action_weights, visits, root_q, world_weights)


# ---- the Policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsMctsAct:
    """A search-enhanced policy's act function (hashable, so equal searches share compiled programs).

    ``params = {"prior": ..., "opponent": ...}``. Memory: every observation of this seat so far."""

    env: Any
    models: _Models
    config: SearchConfig

    def initial_memory(self, params):
        obs_dim = self.env.observation_space().shape[0]
        return {"history": jnp.zeros((self.env.max_steps + 1, obs_dim), jnp.float32),
                "count": jnp.zeros((), jnp.int32)}

    def remember(self, memory, obs):
        index = jnp.minimum(memory["count"], self.env.max_steps)
        return {"history": memory["history"].at[index].set(obs), "count": memory["count"] + 1}

    def search(self, params, memory, mask, key) -> SearchOutput:
        """Search at the latest observation in ``memory``."""
        key_worlds, key_search = jax.random.split(key)
        history, count = memory["history"], memory["count"]
        worlds = sample_worlds(self.env, self.models, params, history, count, key_worlds, self.config.num_worlds,
                               self.config.likelihood_floor)
        root_obs = history[jnp.clip(count - 1, 0, self.env.max_steps)]
        return run_search(self.env, self.models, self.config, params, worlds, root_obs, mask, key_search)

    def __call__(self, params, obs, mask, key, memory):
        memory = self.remember(memory, obs)
        # only rows where this seat moves search (a vmapped lax.cond would search on every row)
        return call_where(mask.any(), self._searched_action, params, memory, mask, key), memory

    def _searched_action(self, params, memory, mask, key):
        return self.search(params, memory, mask, key).action


def search_policy(env, prior_policy: Policy, num_simulations: int = 100, *, opponent_model: Policy | None = None,
                  config: SearchConfig | None = None, name: str | None = None, **options) -> Policy:
    """``prior_policy`` improved by IS-MCTS at every decision (see the module docstring).

    ``opponent_model`` predicts the opponent (for the world weights and the opponent's nodes);
    default: the prior itself (self-play). ``options`` override :class:`SearchConfig` fields
    (``num_worlds``, ``use_gumbel``, ``temperature``, ``leaf``, ...).
    """
    env = getattr(env, "unwrapped", env)
    if not hasattr(env, "resample_deal"):
        raise ValueError(f"IS-MCTS needs env.resample_deal (sampling the hidden information behind an "
                         f"observation); {env.name!r} has none. Searchable envs: {', '.join(SEARCHABLE_ENVS)}")
    if env.num_agents != 2:
        raise ValueError("IS-MCTS here is for two-player turn-based games")
    config = config or SearchConfig()
    known = {f.name for f in fields(SearchConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown search option(s) {unknown}; valid: {sorted(known)}")
    config = SearchConfig(**{**asdict(config), **options, "num_simulations": int(num_simulations)})
    if getattr(prior_policy.act_fn, "initial_memory", None) is not None:
        raise ValueError("the prior must be a memoryless policy (a trained network or a baseline)")
    models = _Models(prior_policy.act_fn, None if opponent_model is None else opponent_model.act_fn)
    params = {"prior": prior_policy.params, "opponent": None if opponent_model is None else opponent_model.params}
    label = name or f"search({prior_policy.name},{config.num_simulations})"
    return Policy(params, IsMctsAct(env, models, config), label)


# ---- evaluation CLI ---------------------------------------------------------------------------


def _paired(search_returns: np.ndarray, raw_returns: np.ndarray) -> tuple[float, float]:
    diff = search_returns - raw_returns
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))


def compare(env, searched: Policy | dict[str, Policy], raw: Policy, opponents: dict[str, Policy], num_games: int,
            key: jax.Array, batch_size: int = 512, progress: bool = True) -> dict:
    """The search-enhanced and the raw policy against the same opponents in both seats, on the same
    deals and keys (common random numbers): per (opponent, seat) both means and the paired
    difference with its standard error. ``searched`` may be one policy per opponent name (a search
    that models each opponent by itself)."""
    from jaxmarl_lab.evaluation import evaluate_against

    if isinstance(searched, dict):  # one opponent per call, the raw policy too (same deals and keys)
        with_search, without = {}, {}
        for name, opponent in opponents.items():
            with_search.update(evaluate_against(env, searched[name], {name: opponent}, num_games, key,
                                                batch_size=batch_size, progress=progress))
            without.update(evaluate_against(env, raw, {name: opponent}, num_games, key, batch_size=batch_size))
    else:
        with_search = evaluate_against(env, searched, opponents, num_games, key, batch_size=batch_size,
                                       progress=progress)
        without = evaluate_against(env, raw, opponents, num_games, key, batch_size=batch_size, progress=False)
    rows = []
    for name in opponents:
        for seat in range(2):
            mine = np.asarray(with_search[name][seat].returns[:, seat])
            base = np.asarray(without[name][seat].returns[:, seat])
            diff, stderr = _paired(mine, base)
            rows.append({"opponent": name, "seat": f"P{seat + 1}", "search": float(mine.mean()),
                         "search_stderr": float(mine.std(ddof=1) / np.sqrt(len(mine))), "raw": float(base.mean()),
                         "raw_stderr": float(base.std(ddof=1) / np.sqrt(len(base))), "difference": diff,
                         "difference_stderr": stderr, "z": diff / stderr if stderr > 0 else float("inf")})
    search_all = np.concatenate([np.asarray(with_search[n][s].returns[:, s]) for n in opponents for s in range(2)])
    raw_all = np.concatenate([np.asarray(without[n][s].returns[:, s]) for n in opponents for s in range(2)])
    diff, stderr = _paired(search_all, raw_all)
    return {"rows": rows, "overall": {"search": float(search_all.mean()), "raw": float(raw_all.mean()),
                                      "difference": diff, "difference_stderr": stderr,
                                      "z": diff / stderr if stderr > 0 else float("inf")}}


def format_comparison(result: dict) -> str:
    lines = ["| opponent | seat | raw | search | search − raw | z |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['opponent']} | {r['seat']} | {r['raw']:.4f} ± {r['raw_stderr']:.4f} | "
                     f"{r['search']:.4f} ± {r['search_stderr']:.4f} | {r['difference']:+.4f} ± "
                     f"{r['difference_stderr']:.4f} | {r['z']:+.1f} |")
    o = result["overall"]
    lines.append(f"| **all** | both | {o['raw']:.4f} | {o['search']:.4f} | {o['difference']:+.4f} ± "
                 f"{o['difference_stderr']:.4f} | {o['z']:+.1f} |")
    return "\n".join(lines)


def exact_values(env, policy: Policy, opponent: Policy) -> dict:
    """Exact expected return of a memoryless ``policy`` against ``opponent`` in each seat, and the
    exact best-response value against ``opponent`` (small games only: jaxmarl_lab.game_theory)."""
    from jaxmarl_lab.game_theory import nash_conv

    as_p1 = nash_conv(env, [policy, opponent])
    as_p2 = nash_conv(env, [opponent, policy])
    return {"value_as_p1": float(as_p1.values[0]), "value_as_p2": float(as_p2.values[1]),
            "best_response_as_p1": float(as_p1.best_response[0]), "best_response_as_p2": float(as_p2.best_response[1])}


def _load_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    valid = {f.name for f in fields(SearchConfig)} | {"env", "num_games", "seed", "batch_size", "opponents"}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    return data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="is_mcts", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML with SearchConfig fields and env/num_games/seed/batch_size/opponents")
    parser.add_argument("--checkpoint", help="run directory of a trained policy (the prior)")
    parser.add_argument("--which", default="final", choices=("final", "best"), help="checkpoint of the run")
    parser.add_argument("--prior", help="prior as a policy spec instead of --checkpoint: baseline:NAME or run:DIR")
    parser.add_argument("--opponent-model",
                        help="policy spec the search assumes for the opponent (default: the prior); 'matched': "
                        "against each opponent, that opponent itself (a search that knows whom it plays)")
    parser.add_argument("--env", help="env name (default: the run's env)")
    parser.add_argument("--num-simulations", type=int)
    parser.add_argument("--num-worlds", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--use-gumbel", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--gumbel-scale", type=float)
    parser.add_argument("--c-puct", type=float)
    parser.add_argument("--leaf", choices=("auto", "value", "rollout"))
    parser.add_argument("--opponent-nodes", choices=("sample", "puct"),
                        help="opponent's tree nodes: sample the opponent model (default) or PUCT on its returns")
    parser.add_argument("--num-games", type=int, help="games per (opponent, seat) (default 2000)")
    parser.add_argument("--opponents", nargs="+", help="policy specs (default: the raw policy and every baseline)")
    parser.add_argument("--batch-size", type=int, help="games per chunk over all opponents and seats (default 512)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--output", help="write the comparison as JSON here")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from jaxmarl_lab.cli import policy_from_spec
    from jaxmarl_lab.registry import make
    from jaxmarl_lab.training import load_policy

    args = parse_args(argv)
    settings = _load_config(args.config)
    for name in ("num_simulations", "num_worlds", "temperature", "use_gumbel", "gumbel_scale", "c_puct", "leaf",
                 "opponent_nodes", "num_games", "seed", "batch_size", "env", "opponents"):
        value = getattr(args, name)
        if value is not None:
            settings[name] = value
    if bool(args.checkpoint) == bool(args.prior):
        raise SystemExit("give exactly one of --checkpoint RUN_DIR or --prior SPEC")
    env_name = settings.pop("env", None)
    if args.checkpoint:
        from jaxmarl_lab.results import Run

        env_name = env_name or Run(args.checkpoint).metadata["env"]
    if env_name is None:
        raise SystemExit("--prior needs --env")
    env = make(env_name)
    spec_args = argparse.Namespace(no_cache=True, cache_dir=None, max_concurrency=8)
    if args.checkpoint:
        raw = load_policy(args.checkpoint, args.which)
        raw_name = f"raw:{Path(args.checkpoint).name}"
    else:
        raw_name, raw = policy_from_spec(env, args.prior, spec_args)
    if isinstance(raw, tuple):
        raise SystemExit("the run trained one policy per agent; IS-MCTS needs one two-seat policy")
    matched = args.opponent_model == "matched"
    opponent_model = None
    if args.opponent_model and not matched:
        opponent_model = policy_from_spec(env, args.opponent_model, spec_args)[1]
    num_games = int(settings.pop("num_games", 2000))
    seed = int(settings.pop("seed", 0))
    batch_size = int(settings.pop("batch_size", 512))
    opponent_specs = settings.pop("opponents", None)
    num_simulations = int(settings.pop("num_simulations", 100))
    searched = search_policy(env, raw, num_simulations, opponent_model=opponent_model, **settings)
    if opponent_specs:
        opponents = dict(policy_from_spec(env, spec, spec_args) for spec in opponent_specs)
    else:
        opponents = {"selfplay_partner" if args.checkpoint else raw_name: raw}
        opponents.update({b: baseline(env, b) for b in list_baselines(env) if b != raw_name})
    if matched:  # the self-play partner is the prior: model None (the prior) shares its compiled search
        searched = {name: searched if opponent is raw else
                    search_policy(env, raw, num_simulations, opponent_model=opponent, **settings)
                    for name, opponent in opponents.items()}
    config = next(iter(searched.values())).act_fn.config if matched else searched.act_fn.config
    model_label = "each opponent itself" if matched else (args.opponent_model or "the prior")
    print(f"IS-MCTS on {env.name}: prior {raw.name}, opponent model {model_label}, {config}", file=sys.stderr)
    start = time.perf_counter()
    result = compare(env, searched, raw, opponents, num_games, jax.random.key(seed), batch_size,
                     progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    result.update({"env": env.name, "prior": raw.name, "opponent_model": model_label, "num_games": num_games,
                   "seconds": elapsed, "config": asdict(config)})
    if env.name in ("kuhn_poker", "leduc_poker") and opponent_specs:
        result["exact"] = {name: exact_values(env, raw, opp) for name, opp in opponents.items()}
    print(format_comparison(result))
    if "exact" in result:
        for name, values in result["exact"].items():
            print(f"exact vs {name}: prior {values['value_as_p1']:.4f} (P1) {values['value_as_p2']:.4f} (P2); "
                  f"best response {values['best_response_as_p1']:.4f} (P1) {values['best_response_as_p2']:.4f} (P2)")
    print(f"{num_games} games per opponent and seat, {elapsed:.1f} s", file=sys.stderr)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
