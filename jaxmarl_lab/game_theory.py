"""Exact game-theoretic evaluation of small two-player games in our env contract.

    tree = GameTree.build(jl.make("kuhn_poker"))
    result = nash_conv(env, policy, tree=tree)      # result.nash_conv, result.best_response, ...

How it works
------------
The env must list its chance outcomes: ``env.enumerate_deals(params) -> (obs, states, probs)``
with every later ``step`` deterministic (Kuhn and Leduc deal the public card at reset; bargain's
only chance is the deal). :class:`GameTree` expands every deal and every legal action level by
level with the env's own jitted ``step`` (vmapped over all nodes of a level), so the tree is
exactly the env's game.

Information sets. What player i knows at a node is the sequence of its own observations since
the deal (every agent observes every step in our contract). Nodes are grouped by that sequence,
which is perfect recall by construction; for Kuhn and Leduc (whose observation already is
OpenSpiel's information-state tensor) it is the same partition as OpenSpiel's. For bargain,
whose observation shows only the offer on the table, the best response may use the full history
while the evaluated policy sees its observation, as it does when it plays.

Best response to the other player's fixed policy is computed bottom-up: at each of player i's
information sets I, pick a* = argmax_a Σ_{h∈I} w(h)·v_i(h·a), where w(h) is the chance
probability times the opponent's reach probability, and v_i below I already follows the best
response. NashConv = Σ_i (BR value_i − value_i of the profile); for zero-sum games
exploitability = NashConv / 2. Results equal OpenSpiel's ``exploitability.nash_conv`` (tested to
1e-6 on Kuhn and Leduc).

Policies must expose exact probabilities: ``policy.act_fn.action_probs(params, obs, mask)``
(trained networks, uniform random, :func:`tabular_policy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.policies import Policy

#: refuse trees larger than this (a full bargain game has ~10^13 deals)
MAX_NODES = 5_000_000


def _padded(n: int) -> int:
    """Batch sizes rounded up to a power of two, so a level reuses compiled programs."""
    return 1 << max(4, int(np.ceil(np.log2(max(n, 1)))))


def _pad(tree, n: int):
    size = _padded(n)
    return jax.tree_util.tree_map(lambda x: np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)]), tree)


@dataclass
class Level:
    """All nodes at one depth. Arrays are indexed by node; ``children[n, a]`` indexes the next level."""

    obs: np.ndarray  # f32[N, 2, D]
    mask: np.ndarray  # bool[N, A] legal actions of the player to move (all False at terminals)
    player: np.ndarray  # i32[N] player to move, -1 at terminals
    returns: np.ndarray  # f32[N, 2] rewards accumulated from the deal to this node
    chance: np.ndarray  # f64[N] probability of the node's deal
    infoset: np.ndarray  # i64[N, 2] id of each player's observation sequence (unique within a level)
    children: np.ndarray = field(default=None)  # i32[N, A], -1 where illegal or terminal


class GameTree:
    """The full game tree of a two-player env with enumerable chance (see the module docstring)."""

    def __init__(self, levels: list[Level], num_actions: int):
        self.levels = levels
        self.num_actions = num_actions

    @property
    def num_nodes(self) -> int:
        return sum(len(level.player) for level in self.levels)

    @classmethod
    def build(cls, env, params=None, max_nodes: int = MAX_NODES) -> GameTree:
        if getattr(env, "num_agents", None) != 2 or not hasattr(env, "enumerate_deals"):
            raise ValueError(f"exact evaluation needs a two-player env with enumerate_deals(); {env!r} has none")
        params = env.default_params if params is None else params
        obs, states, probs = env.enumerate_deals(params)
        num_actions = env.num_actions
        step = jax.jit(jax.vmap(lambda s, a: env.step(jax.random.key(0), s, a, params)[:4]))
        masks_of = jax.jit(jax.vmap(lambda s: env.action_mask(s, params)))

        def describe(obs, states, done, returns, chance, parent_ids):
            n = len(chance)
            mask2 = masks_of(_pad(states, n))
            mask2 = np.asarray(mask2)[:n]
            acting = mask2.any(axis=2)
            player = np.where(done, -1, np.argmax(acting, axis=1)).astype(np.int32)
            mask = np.where((player >= 0)[:, None], mask2[np.arange(n), np.maximum(player, 0)], False)
            infoset = np.stack([_sequence_ids(parent_ids[:, p], obs[:, p]) for p in range(2)], axis=1)
            return Level(obs, mask, player, returns, chance, infoset)

        states = jax.tree_util.tree_map(np.asarray, states)
        obs = np.asarray(obs)
        n = len(probs)
        level = describe(obs, states, np.zeros(n, bool), np.zeros((n, 2), np.float32), np.asarray(probs, np.float64),
                         np.zeros((n, 2), np.int64))
        levels, total = [], n
        while True:
            levels.append(level)
            parent, action = np.nonzero(level.mask)
            level.children = np.full(level.mask.shape, -1, np.int32)
            if len(parent) == 0:
                break
            total += len(parent)
            if total > max_nodes:
                raise ValueError(f"{env!r}: the game tree has more than {max_nodes:,} nodes; exact evaluation is "
                                 "meant for small games (kuhn_poker, leduc_poker, bargain_tiny)")
            level.children[parent, action] = np.arange(len(parent), dtype=np.int32)
            m = len(parent)
            joint = np.zeros((m, 2), np.int32)
            joint[np.arange(m), level.player[parent]] = action
            sub = jax.tree_util.tree_map(lambda x, rows=parent: x[rows], states)
            o, s, r, d = step(_pad(sub, m), jnp.asarray(_pad(joint, m)))
            states = jax.tree_util.tree_map(lambda x, size=m: np.asarray(x)[:size], s)
            level = describe(np.asarray(o)[:m], states, np.asarray(d)[:m],
                             level.returns[parent] + np.asarray(r)[:m], level.chance[parent],
                             level.infoset[parent])
        return cls(levels, num_actions)

    # ---- policies on the tree ---------------------------------------------------------
    def policy_probs(self, policies) -> list[np.ndarray]:
        """Per level f64[N, A]: the acting player's action probabilities (zero rows at terminals)."""
        seat_policies = _two_seats(policies)
        out = []
        for level in self.levels:
            probs = np.zeros(level.mask.shape, np.float64)
            for seat, policy in enumerate(seat_policies):
                rows = np.nonzero(level.player == seat)[0]
                if len(rows):
                    p = _action_probs(policy, level.obs[rows, seat], level.mask[rows])
                    p = np.where(level.mask[rows], p, 0.0)
                    probs[rows] = p / p.sum(axis=1, keepdims=True)
            out.append(probs)
        return out

    def values(self, probs: list[np.ndarray]) -> np.ndarray:
        """Expected returns f64[2] of the profile whose probabilities are ``probs``."""
        below = None
        for level, p in zip(reversed(self.levels), reversed(probs), strict=True):
            v = level.returns.astype(np.float64)
            if below is not None:
                child = np.where(level.children >= 0, level.children, 0)
                v_children = below[child]  # [N, A, 2]
                v = np.where((level.player >= 0)[:, None], (p[:, :, None] * v_children).sum(axis=1), v)
            below = v
        return (self.levels[0].chance[:, None] * below).sum(axis=0)

    def best_response(self, probs: list[np.ndarray], player: int) -> tuple[float, list[np.ndarray]]:
        """Player ``player``'s best-response value against the other's ``probs``, and the response's
        action per node at that player's decisions (-1 elsewhere), level by level."""
        # opponent reach (times chance) top-down
        weights = [self.levels[0].chance.copy()]
        for level, p in zip(self.levels[:-1], probs[:-1], strict=True):
            parent, action = np.nonzero(level.children >= 0)
            scale = np.where(level.player[parent] == player, 1.0, p[parent, action])
            w = np.zeros(int(level.children.max()) + 1)
            w[level.children[parent, action]] = weights[-1][parent] * scale
            weights.append(w)
        below, choices = None, []
        for depth in reversed(range(len(self.levels))):
            level, p, w = self.levels[depth], probs[depth], weights[depth]
            v = level.returns[:, player].astype(np.float64)
            choice = np.full(len(v), -1, np.int32)
            if below is not None:
                child = np.where(level.children >= 0, level.children, 0)
                q = np.where(level.mask, below[child], -np.inf)  # [N, A]
                others = level.player == 1 - player
                v = np.where(others, (p * np.where(level.mask, q, 0.0)).sum(axis=1), v)
                mine = np.nonzero(level.player == player)[0]
                if len(mine):
                    ids, inverse = np.unique(level.infoset[mine, player], return_inverse=True)
                    score = np.zeros((len(ids), self.num_actions))
                    np.add.at(score, inverse, w[mine, None] * np.where(level.mask[mine], q[mine], 0.0))
                    legal = np.zeros((len(ids), self.num_actions), bool)
                    legal[inverse] = level.mask[mine]
                    best = np.argmax(np.where(legal, score, -np.inf), axis=1)[inverse]
                    v[mine] = q[mine, best]
                    choice[mine] = best
            below = v
            choices.append(choice)
        return float((self.levels[0].chance * below).sum()), choices[::-1]


def _sequence_ids(parent_ids: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Ids of (parent's sequence id, this observation) pairs: equal ids = equal observation sequences."""
    rows = np.concatenate([parent_ids[:, None].astype(np.float64), obs.astype(np.float64)], axis=1)
    _, inverse = np.unique(rows, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _two_seats(policies) -> tuple[Policy, Policy]:
    if isinstance(policies, Policy):
        return policies, policies
    policies = tuple(policies)
    if len(policies) != 2:
        raise ValueError(f"exact evaluation is for two-player games: give one Policy or two, got {len(policies)}")
    return policies


_PROB_FNS: dict[Any, Any] = {}


def _action_probs(policy: Policy, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    act = policy.act_fn
    if not hasattr(act, "action_probs"):
        raise ValueError(f"policy {policy.name!r} has no exact action probabilities (act_fn.action_probs); "
                         "exact evaluation needs them")
    fn = _PROB_FNS.get(act)
    if fn is None:
        fn = _PROB_FNS[act] = jax.jit(jax.vmap(act.action_probs, in_axes=(None, 0, 0)))
    n = len(obs)
    out = fn(policy.params, jnp.asarray(_pad(obs, n)), jnp.asarray(_pad(mask, n)))
    return np.asarray(out, np.float64)[:n]


@dataclass
class NashConvResult:
    """Exact evaluation of a policy profile."""

    nash_conv: float
    values: np.ndarray  # f64[2] expected returns of the profile
    best_response: np.ndarray  # f64[2] each player's best-response value against the other's policy

    @property
    def gains(self) -> np.ndarray:
        return self.best_response - self.values

    def to_dict(self) -> dict:
        return {"nash_conv": self.nash_conv, "value_p0": float(self.values[0]), "value_p1": float(self.values[1]),
                "best_response_p0": float(self.best_response[0]), "best_response_p1": float(self.best_response[1])}


_TREES: dict[Any, GameTree] = {}


def game_tree(env, params=None) -> GameTree:
    """The env's tree, built once per env configuration (trees of the default params are cached)."""
    if params is not None:
        return GameTree.build(env, params)
    if env not in _TREES:
        _TREES[env] = GameTree.build(env)
    return _TREES[env]


def nash_conv(env, policies, params=None, tree: GameTree | None = None) -> NashConvResult:
    """Exact NashConv of ``policies`` (one Policy for both seats, or one per seat) on ``env``."""
    tree = tree or game_tree(env, params)
    probs = tree.policy_probs(policies)
    values = tree.values(probs)
    best = np.array([tree.best_response(probs, p)[0] for p in range(2)])
    return NashConvResult(float((best - values).sum()), values, best)


def supports_exact_evaluation(env, max_deals: int = 20_000) -> bool:
    """Whether ``env`` lists its chance outcomes and has few enough of them for :func:`nash_conv`."""
    count = getattr(env, "num_deals", None)
    return callable(count) and count() <= max_deals


# ---- tabular policies ---------------------------------------------------------------------
@dataclass(frozen=True)
class TabularAct:
    """Action probabilities looked up by exact observation match (rows of ``params["keys"]``);
    unknown observations play uniformly over the legal actions."""

    def action_probs(self, params, obs, mask):
        match = jnp.all(params["keys"] == obs[None, :], axis=1)
        row = jnp.where(match.any(), params["probs"][jnp.argmax(match)], 1.0)
        row = jnp.where(mask, row, 0.0)
        total = row.sum()
        return jnp.where(total > 0, row / jnp.maximum(total, 1e-30), mask / jnp.maximum(mask.sum(), 1))

    def __call__(self, params, obs, mask, key):
        return jax.random.categorical(key, jnp.log(self.action_probs(params, obs, mask))).astype(jnp.int32)


def tabular_policy(observations, probabilities, name: str = "tabular") -> Policy:
    """A Policy playing ``probabilities[k]`` at observation ``observations[k]`` (exact match)."""
    keys = jnp.asarray(np.asarray(observations, np.float32))
    probs = jnp.asarray(np.asarray(probabilities, np.float32))
    if keys.ndim != 2 or probs.ndim != 2 or len(keys) != len(probs):
        raise ValueError(f"observations [K, D] and probabilities [K, A] must match; got {keys.shape} and {probs.shape}")
    return Policy({"keys": keys, "probs": probs}, TabularAct(), name)


# ---- OpenSpiel interop ----------------------------------------------------------------------
def to_openspiel_policy(game, policies):
    """Our policy (one, or one per seat) as an OpenSpiel ``TabularPolicy`` over ``game``'s
    information states (our observation = OpenSpiel's information_state_tensor), so OpenSpiel's
    ``exploitability.nash_conv`` can evaluate it."""
    from open_spiel.python import policy as openspiel_policy

    seat_policies = _two_seats(policies)
    table = openspiel_policy.TabularPolicy(game)
    by_player: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {0: [], 1: []}
    for row, state in enumerate(table.states):
        player = state.current_player()
        mask = np.zeros(game.num_distinct_actions(), bool)
        mask[state.legal_actions()] = True
        by_player[player].append((row, np.asarray(state.information_state_tensor(player), np.float32), mask))
    for player, entries in by_player.items():
        if not entries:
            continue
        rows = np.array([e[0] for e in entries])
        masks = np.stack([e[2] for e in entries])
        probs = _action_probs(seat_policies[player], np.stack([e[1] for e in entries]), masks)
        table.action_probability_array[rows] = probs * masks
        table.action_probability_array[rows] /= table.action_probability_array[rows].sum(axis=1, keepdims=True)
    return table


def from_openspiel_policy(game, table, name: str = "openspiel") -> Policy:
    """An OpenSpiel ``TabularPolicy`` as our Policy (keyed by information-state tensors)."""
    keys, probs = [], []
    for row, state in enumerate(table.states):
        keys.append(state.information_state_tensor(state.current_player()))
        probs.append(table.action_probability_array[row])
    return tabular_policy(np.array(keys), np.array(probs), name)
