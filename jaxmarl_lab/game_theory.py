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
        out = [np.zeros(level.mask.shape, np.float64) for level in self.levels]
        for seat, policy in enumerate(seat_policies):
            if hasattr(policy.act_fn, "component_probs"):
                self._mixture_probs(policy, seat, out)
                continue
            for level, probs in zip(self.levels, out, strict=True):
                rows = np.nonzero(level.player == seat)[0]
                if len(rows):
                    p = _action_probs(policy, level.obs[rows, seat], level.mask[rows])
                    p = np.where(level.mask[rows], p, 0.0)
                    probs[rows] = p / p.sum(axis=1, keepdims=True)
        return out

    def _mixture_probs(self, policy: Policy, seat: int, out: list[np.ndarray]) -> None:
        """Behaviour probabilities of a mixture of K policies at ``seat``'s nodes, written into ``out``:
        at a node, sum_k w_k r_k pi_k(a) / sum_k w_k r_k, where r_k is component k's own reach
        probability of the node (the product of its own action probabilities on the path). With
        perfect recall r_k is the same at every node of an information set, so this is the
        realisation-equivalent behaviour strategy of the mixture (Kuhn's theorem)."""
        num_components = int(policy.act_fn.max_components)
        reach = np.ones((len(self.levels[0].player), num_components))  # f64[N, K] at the current level
        for level, probs in zip(self.levels, out, strict=True):
            rows = np.nonzero(level.player == seat)[0]
            comp = None
            if len(rows):
                comp, weights = _component_probs(policy, level.obs[rows, seat], level.mask[rows])  # [R, K, A], [R, K]
                comp = np.where(level.mask[rows, None, :], comp, 0.0)
                comp /= np.maximum(comp.sum(axis=2, keepdims=True), 1e-300)
                w = weights * reach[rows]
                total = w.sum(axis=1, keepdims=True)
                prior = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)
                w = np.where(total > 0, w / np.maximum(total, 1e-300), prior)  # unreachable: any mixture
                probs[rows] = np.einsum("rk,rka->ra", w, comp)
            parent, action = np.nonzero(level.children >= 0)
            if len(parent) == 0:
                break
            step = np.ones((len(parent), num_components))
            if comp is not None:
                position = np.full(len(level.player), -1)
                position[rows] = np.arange(len(rows))
                mine = level.player[parent] == seat
                step[mine] = comp[position[parent[mine]], :, action[mine]]
            child_reach = np.zeros((int(level.children.max()) + 1, num_components))
            child_reach[level.children[parent, action]] = reach[parent] * step
            reach = child_reach

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


_COMPONENT_FNS: dict[Any, Any] = {}


def _component_probs(policy: Policy, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    act = policy.act_fn
    fn = _COMPONENT_FNS.get(act)
    if fn is None:
        fn = _COMPONENT_FNS[act] = jax.jit(jax.vmap(act.component_probs, in_axes=(None, 0, 0)))
    n = len(obs)
    probs, weights = fn(policy.params, jnp.asarray(_pad(obs, n)), jnp.asarray(_pad(mask, n)))
    return np.asarray(probs, np.float64)[:n], np.asarray(weights, np.float64)[:n]


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


# ---- meta-games: solvers, regret, welfare --------------------------------------------------------
# A meta-game is a bimatrix game (A, B): A[i, j] / B[i, j] are the row / column player's payoffs when
# row strategy i meets column strategy j (PSRO: seat-0 population x seat-1 population). A symmetric
# meta-game M (cross-play of one pool of policies) is the bimatrix game (M, M^T).


def _as_bimatrix(A, B=None) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(A, np.float64)
    B = -A if B is None else np.asarray(B, np.float64)
    if A.ndim != 2 or A.shape != B.shape or A.size == 0:
        raise ValueError(f"a bimatrix game needs two payoff matrices of one shape [m, n]; got {A.shape} and {B.shape}")
    return A, B


def replicator_dynamics(A, B=None, iterations: int = 10_000, dt: float = 0.01,
                        floor: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Discrete replicator dynamics from uniform (the original PSRO meta-solver, §4.4):
    x <- x * (1 + dt (Ay - x.Ay)), y <- y * (1 + dt (B^T x - x.By)), floored at ``floor`` and
    renormalised. Payoffs are rescaled to [0, 1] first so ``dt`` means the same for any game."""
    A, B = _as_bimatrix(A, B)
    scale = max(np.ptp(A), np.ptp(B), 1e-12)
    A, B = (A - A.min()) / scale, (B - B.min()) / scale
    x, y = np.full(A.shape[0], 1.0 / A.shape[0]), np.full(A.shape[1], 1.0 / A.shape[1])
    for _ in range(iterations):
        u, w = A @ y, B.T @ x
        x = np.maximum(x * (1.0 + dt * (u - x @ u)), floor)
        y = np.maximum(y * (1.0 + dt * (w - y @ w)), floor)
        x, y = x / x.sum(), y / y.sum()
    return x, y


def fictitious_play(A, B=None, iterations: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Alternating fictitious play: each round the row player best-responds to the column player's
    empirical frequencies, then the column player to the row player's (already updated) ones;
    returns the empirical frequencies. Ties go to the lowest index."""
    A, B = _as_bimatrix(A, B)
    counts_x, counts_y = np.zeros(A.shape[0]), np.zeros(A.shape[1])
    for _ in range(iterations):
        y = counts_y / counts_y.sum() if counts_y.sum() else np.full(A.shape[1], 1.0 / A.shape[1])
        counts_x[np.argmax(A @ y)] += 1
        counts_y[np.argmax(B.T @ (counts_x / counts_x.sum()))] += 1
    return counts_x / counts_x.sum(), counts_y / counts_y.sum()


def _zero_sum_nash(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximin strategies of the zero-sum game A (row maximises) by linear programming."""
    from scipy.optimize import linprog

    def maximin(P):  # max_x min_j (x^T P)_j: variables (x, v), minimise -v
        m, n = P.shape
        res = linprog(np.r_[np.zeros(m), -1.0], A_ub=np.c_[-P.T, np.ones(n)], b_ub=np.zeros(n),
                      A_eq=np.r_[np.ones(m), 0.0][None], b_eq=[1.0],
                      bounds=[(0, None)] * m + [(None, None)], method="highs")
        if not res.success:
            raise RuntimeError(f"linear program failed: {res.message}")
        x = np.maximum(res.x[:m], 0.0)
        return x / x.sum()

    return maximin(A), maximin(-A.T)


def _lemke_howson(A: np.ndarray, B: np.ndarray, dropped: int, max_pivots: int = 10_000):
    """One Lemke–Howson path (complementary pivoting on the two best-response polytopes) from the
    artificial equilibrium, dropping label ``dropped``. Labels 0..m-1 are row strategies, m..m+n-1
    column strategies. Returns (x, y) or None if the path did not close within ``max_pivots``."""
    m, n = A.shape
    A = A - A.min() + 1.0  # positive payoffs keep both polytopes bounded
    B = B - B.min() + 1.0
    # column tableau: A y + r = 1 (r_i has label i, y_j label m + j); row tableau: B^T x + s = 1
    tableaux = [np.c_[np.eye(m), A, np.ones(m)], np.c_[B.T, np.eye(n), np.ones(n)]]
    bases = [list(range(m)), list(range(m, m + n))]
    which = 1 if dropped < m else 0  # x variables live in the row tableau, y variables in the column one
    entering = dropped
    for _ in range(max_pivots):
        T, basis = tableaux[which], bases[which]
        column = T[:, entering]
        positive = column > 1e-12
        if not positive.any():
            return None
        ratios = np.where(positive, T[:, -1] / np.where(positive, column, 1.0), np.inf)
        row = int(np.argmin(ratios + 1e-12 * np.arange(len(ratios))))  # lowest index among ties
        T[row] /= T[row, entering]
        for r in range(len(T)):
            if r != row:
                T[r] -= T[r, entering] * T[row]
        leaving, basis[row] = basis[row], entering
        if leaving == dropped:
            break
        entering, which = leaving, 1 - which
    else:
        return None
    x, y = np.zeros(m), np.zeros(n)
    for r, label in enumerate(bases[1]):
        if label < m:
            x[label] = tableaux[1][r, -1]
    for r, label in enumerate(bases[0]):
        if label >= m:
            y[label - m] = tableaux[0][r, -1]
    if x.sum() <= 0 or y.sum() <= 0:
        return None
    return x / x.sum(), y / y.sum()


def nash_equilibrium(A, B=None, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """An exact Nash equilibrium of a bimatrix game: linear programming when the game is
    zero-sum (B = -A up to a constant), otherwise Lemke–Howson from every starting label (the
    result with the smallest NashConv; degenerate games are perturbed slightly). Falls back to
    replicator dynamics, with a warning, if no path closes."""
    A, B = _as_bimatrix(A, B)
    total = A + B
    if np.ptp(total) <= 1e-9 * max(1.0, np.abs(A).max()):
        return _zero_sum_nash(A)
    best, best_gap = None, np.inf
    rng = np.random.default_rng(0)
    scale = max(np.ptp(A), np.ptp(B), 1e-12)
    for attempt in range(2):
        # second attempt: a tiny perturbation breaks the ties of degenerate games (e.g. duplicated strategies)
        noise = (lambda s: 1e-9 * scale * rng.standard_normal(s)) if attempt else (lambda s: 0.0)
        A_try, B_try = A + noise(A.shape), B + noise(B.shape)
        for label in range(sum(A.shape)):
            found = _lemke_howson(A_try.copy(), B_try.copy(), label)
            if found is None:
                continue
            gap = meta_nash_conv(A, B, *found)
            if gap < best_gap:
                best, best_gap = found, gap
            if gap <= tol * scale:
                return best
    if best is not None and best_gap <= 1e-5 * scale:
        return best
    import warnings

    warnings.warn("Lemke–Howson did not find an equilibrium; using replicator dynamics", RuntimeWarning, stacklevel=2)
    return replicator_dynamics(A, B)


def uniform_strategies(A, B=None) -> tuple[np.ndarray, np.ndarray]:
    A, B = _as_bimatrix(A, B)
    return np.full(A.shape[0], 1.0 / A.shape[0]), np.full(A.shape[1], 1.0 / A.shape[1])


#: meta-solver name -> f(A, B) -> (row strategy, column strategy)
META_SOLVERS = {
    "replicator": replicator_dynamics,
    "fictitious_play": fictitious_play,
    "nash": nash_equilibrium,
    "uniform": uniform_strategies,
}


def meta_solver(name: str):
    """A meta-solver by name (``replicator``, ``fictitious_play``, ``nash``, ``uniform``)."""
    if name not in META_SOLVERS:
        raise ValueError(f"unknown meta-solver {name!r}; valid meta-solvers: {', '.join(META_SOLVERS)}")
    return META_SOLVERS[name]


def strategy_regrets(A, B, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Per-strategy regret against the profile (x, y): (A y)_i - x.Ay and (B^T x)_j - x.By.
    Positive entries are strategies that would gain by deviating to them."""
    A, B = _as_bimatrix(A, B)
    u, w = A @ y, B.T @ x
    return u - x @ u, w - y @ w


def meta_nash_conv(A, B, x, y) -> float:
    """NashConv of (x, y) in the meta-game: the sum of both players' best pure-deviation gains."""
    regret_x, regret_y = strategy_regrets(A, B, x, y)
    return float(max(regret_x.max(), 0.0) + max(regret_y.max(), 0.0))


def symmetric_regrets(M, sigma) -> np.ndarray:
    """Regret of each strategy of a symmetric meta-game against sigma: (M sigma)_i - sigma.M.sigma."""
    M, sigma = np.asarray(M, np.float64), np.asarray(sigma, np.float64)
    u = M @ sigma
    return u - sigma @ u


def symmetric_nash(M, max_enumeration: int = 14, tol: float = 1e-8) -> np.ndarray:
    """A symmetric Nash equilibrium sigma of the symmetric game (M, M^T) with the largest entropy
    among those found by enumerating supports (every support up to ``max_enumeration``
    strategies; beyond that, replicator dynamics). Batched: all supports of one size are solved
    together as (k+1)x(k+1) linear systems M_SS x = v, sum x = 1."""
    from itertools import combinations

    M = np.asarray(M, np.float64)
    n = M.shape[0]
    if M.ndim != 2 or M.shape[1] != n:
        raise ValueError(f"a symmetric meta-game needs a square matrix, got {M.shape}")
    if n > max_enumeration:
        return replicator_dynamics(M, M.T)[0]
    scale = max(np.ptp(M), 1e-12)
    best, best_entropy = None, -np.inf
    for k in range(1, n + 1):
        supports = np.array(list(combinations(range(n), k)))  # [S, k]
        sub = M[supports[:, :, None], supports[:, None, :]]  # [S, k, k]
        system = np.zeros((len(supports), k + 1, k + 1))
        system[:, :k, :k] = sub
        system[:, :k, k] = -1.0
        system[:, k, :k] = 1.0
        rhs = np.zeros(k + 1)
        rhs[k] = 1.0
        solution = np.einsum("sij,j->si", np.linalg.pinv(system), rhs)
        residual = np.abs(np.einsum("sij,sj->si", system, solution) - rhs).max(axis=1)
        weights, value = solution[:, :k], solution[:, k]
        sigma = np.zeros((len(supports), n))
        np.put_along_axis(sigma, supports, weights, axis=1)
        payoff = sigma @ M.T  # [S, n] (M sigma)_i
        ok = (residual < 1e-7 * scale) & (weights >= -tol).all(axis=1)
        ok &= (payoff <= value[:, None] + 1e-7 * scale).all(axis=1)
        for s in np.nonzero(ok)[0]:
            p = np.maximum(sigma[s], 0.0)
            p /= p.sum()
            entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
            if entropy > best_entropy + 1e-12:
                best, best_entropy = p, entropy
    if best is None:  # cannot happen for a finite game, but stay safe under round-off
        return replicator_dynamics(M, M.T)[0]
    return best


def utilitarian_welfare(payoffs) -> np.ndarray:
    """r_0 + r_1 (sums the last axis)."""
    return np.asarray(payoffs, np.float64).sum(axis=-1)


def nash_welfare(payoffs) -> np.ndarray:
    """Geometric mean sqrt(max(r_0, 1e-8) * max(r_1, 1e-8)) (the Ex²PSRO definition, §4.5)."""
    p = np.maximum(np.asarray(payoffs, np.float64), 1e-8)
    return np.sqrt(p[..., 0] * p[..., 1])


def egalitarian_welfare(payoffs) -> np.ndarray:
    """min(r_0, r_1)."""
    return np.asarray(payoffs, np.float64).min(axis=-1)


WELFARE_FUNCTIONS = {"utilitarian": utilitarian_welfare, "nash": nash_welfare, "egalitarian": egalitarian_welfare}


def welfare_function(name: str):
    if name not in WELFARE_FUNCTIONS:
        raise ValueError(f"unknown welfare function {name!r}; valid: {', '.join(WELFARE_FUNCTIONS)}")
    return WELFARE_FUNCTIONS[name]


def expected_payoffs(payoffs, x, y) -> np.ndarray:
    """Expected payoff vector f64[2] of the profile (x, y) in a payoff tensor [m, n, 2]."""
    return np.einsum("i,j,ijp->p", np.asarray(x, np.float64), np.asarray(y, np.float64),
                     np.asarray(payoffs, np.float64))
