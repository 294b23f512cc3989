"""Two-player bargaining over three item types with private values and outside offers.

A pure-functional JAX port of the ``cuda_bargain`` CUDA kernels (the canonical rules of
``shared/specs/bargain.md`` §1–§3): every rule below is the kernel's, including its handling of
illegal actions.

Game
----
* Chance at reset, independently for each player p: per-unit values v_p,i ~ U{1..100} for the item
  types i with quantities q = (7, 4, 1); M_p = Σ_i q_i·v_p,i; outside offer o_p ~ U{1..M_p}.
* Decisions t = 0..5 alternate P1 (player_0, even t) and P2 (player_1, odd t); round = t div 2.
  P1 always moves first.
* Actions (82): 0..79 counter-offers, 80 ACCEPT, 81 WALK. Offer index a = 10·n0 + 2·n1 + n2 encodes
  n = units that go to **P2, whoever proposes** (P1 keeps q − n).
* Legal actions: WALK always; ACCEPT when an offer is on the table (so never at t = 0);
  counter-offers at every decision except the last (round 2, P2), where only ACCEPT/WALK remain.
* **Any illegal or out-of-range action is played as WALK.** A jitted step cannot raise, so this is
  the documented behaviour (the kernel's), not an error.
* A counter-offer replaces the offer on the table; the round advances after P2's counter-offer.
  ACCEPT or WALK ends the game at once, so every game ends within 6 decisions (never truncated).

Rewards (both players, on the final step; 0 before; no discount)
* ACCEPT of offer n: r_0 = Σ (q_i − n_i)·v_0,i / M_0 and r_1 = Σ n_i·v_1,i / M_1.
* WALK: r_p = o_p / M_p for both players.
  Rewards lie in [0, 1]; welfare r_0 + r_1 in [0, 2]. Stepping a finished game (no auto-reset)
  re-emits done and the terminal rewards, as the kernel does; wrappers never do that.

Observation ``obs[p]`` of player p (92 floats; the kernel builds it for the mover, we build it
for both players, each from its own point of view):

====== =========================================== ============================================
slot   content                                     values
====== =========================================== ============================================
0–2    own per-unit values v_p,i                   / 100 → [0.01, 1]
3      own outside offer                           o_p / M_p → (0, 1]
4–6    offer on the table, egocentric: the share    n_i/q_i for P2, (q_i − n_i)/q_i for P1;
       of each item type p would get by accepting   −1, −1, −1 when no offer is on the table
7      offer-valid flag                            0 or 1
8      round                                       round / 2 → {0, 0.5, 1}
9      seat of the observer (= mover id for the     0 (P1) or 1 (P2)
       player to move)
10–91  legal-action mask of p                      0/1, equal to ``action_mask(state)[p]``:
                                                   all 0 when p is not to move or the game is over
====== =========================================== ============================================

Not observed: the opponent's values and outside offer, earlier offers.

``global_state`` (17 floats, for centralised critics): values of P1 and P2 / 100 [6], outside
offers o_p / M_p [2], M_p / (Σ q_i · 100) [2], offer on the table as P2's share n_i/q_i (−1 if
none) [3], offer-valid flag, round / 2, one-hot mover [2].

Static options give small variants (for exact game-theory checks): ``quantities`` (units per item
type), ``value_range`` (inclusive per-unit value range) and ``num_rounds``; slot sizes above then
scale with the number of item types k and the number of actions Π(q_i + 1) + 2
(obs size 2k + 4 + num_actions).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_lab import render as draw
from jaxmarl_lab.env import Env
from jaxmarl_lab.policies import Policy, first_best, random_policy, uniform_legal_action
from jaxmarl_lab.spaces import Box, Discrete

ONGOING, ACCEPTED, WALKED = 0, 1, 2
P1_COLOR, P2_COLOR, NEUTRAL = (45, 95, 200), (230, 120, 30), (190, 190, 190)


@struct.dataclass
class BargainState:
    values: jax.Array  # i32[2, k] per-unit private values
    max_value: jax.Array  # f32[2] M_p = Σ q_i v_p,i
    outside: jax.Array  # i32[2] outside offers o_p in 1..M_p
    offer: jax.Array  # i32[k] units to P2 of the offer on the table (-1 when none)
    offer_valid: jax.Array  # bool[]
    round: jax.Array  # i32[]
    player: jax.Array  # i32[] player to move (after the end: the player who ended the game)
    action_count: jax.Array  # i32[] counter-offers made so far
    done: jax.Array  # bool[]
    outcome: jax.Array  # i32[] 0 ongoing, 1 accept, 2 walk
    rewards: jax.Array  # f32[2] terminal rewards (0 while ongoing)


@struct.dataclass
class BargainParams:
    """No dynamic parameters: every rule is static (see the constructor)."""


class Bargain(Env):
    """Bargaining with outside offers (see the module docstring for rules and layouts)."""

    name = "bargain"

    def __init__(self, quantities: tuple[int, ...] = (7, 4, 1), value_range: tuple[int, int] = (1, 100),
                 num_rounds: int = 3):
        quantities = tuple(int(q) for q in quantities)
        if not quantities or any(q < 1 for q in quantities):
            raise ValueError(f"quantities must be positive integers, got {quantities}")
        lo, hi = (int(v) for v in value_range)
        if not 1 <= lo <= hi:
            raise ValueError(f"value_range must satisfy 1 <= low <= high, got {value_range}")
        if int(num_rounds) < 1:
            raise ValueError(f"num_rounds must be >= 1, got {num_rounds}")
        self.quantities = quantities
        self.value_range = (lo, hi)
        self.num_rounds = int(num_rounds)
        self.num_items = len(quantities)
        self.num_offers = math.prod(q + 1 for q in quantities)
        self.accept_action = self.num_offers
        self.walk_action = self.num_offers + 1
        self.num_agents = 2
        self.agents = ("player_0", "player_1")
        self.max_steps = 2 * self.num_rounds
        self.max_decisions_per_player, self.max_consecutive_moves = self.num_rounds, 1  # strict alternation
        self.obs_dim = 2 * self.num_items + 4 + self.num_offers + 2
        self.seat_slot = 2 * self.num_items + 3  # observation slot holding the observer's seat (policies read it)
        # offer index -> units to P2; the last item type varies fastest (a = 10 n0 + 2 n1 + n2 for 7,4,1)
        self.offer_table = np.array(list(itertools.product(*(range(q + 1) for q in quantities))), np.int32)
        self._config = (quantities, self.value_range, self.num_rounds)

    # ---- spaces ----------------------------------------------------------------------
    @property
    def default_params(self) -> BargainParams:
        return BargainParams()

    def observation_space(self, params=None) -> Box:
        return Box(-1.0, 1.0, (self.obs_dim,))

    def action_space(self, params=None) -> Discrete:
        return Discrete(self.num_offers + 2)

    # ---- dynamics --------------------------------------------------------------------
    def reset_env(self, key, params):
        # one draw of raw 32-bit words, reduced modulo the range as the CUDA kernel does
        # (`rand mod 100 + 1`, `rand mod M + 1`; the modulo bias is below 1e-7): several times
        # cheaper than jax.random.randint, and reset dominates the cost of an auto-reset step
        lo, hi = self.value_range
        bits = jax.random.bits(key, (2, self.num_items + 1), jnp.uint32)
        values = (lo + bits[:, :-1] % jnp.uint32(hi - lo + 1)).astype(jnp.int32)
        max_value = (values * jnp.asarray(self.quantities, jnp.int32)).sum(axis=1)
        outside = (1 + bits[:, -1] % max_value.astype(jnp.uint32)).astype(jnp.int32)
        return self.deal(values, outside)

    def deal(self, values, outside) -> tuple[jax.Array, BargainState]:
        """The initial state for explicit per-unit values i32[2, k] and outside offers i32[2]."""
        values = jnp.asarray(values, jnp.int32)
        outside = jnp.asarray(outside, jnp.int32)
        max_value = (values * jnp.asarray(self.quantities, jnp.int32)).sum(axis=1)
        zero = jnp.zeros((), jnp.int32)
        state = BargainState(
            values=values, max_value=max_value.astype(jnp.float32), outside=outside,
            offer=jnp.full((self.num_items,), -1, jnp.int32), offer_valid=jnp.zeros((), bool),
            round=zero, player=zero, action_count=zero, done=jnp.zeros((), bool), outcome=zero,
            rewards=jnp.zeros((2,), jnp.float32),
        )
        return self._observations(state), state

    def resample_deal(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, BargainState]:
        """An initial state consistent with what one player's observation ``obs`` reveals: the
        observer's values and outside offer are read from ``obs``; the opponent's are drawn from
        the chance distribution (values U{lo..hi} per item type, outside offer U{1..M}). Decision-time
        search (``algos/is_mcts.py``) draws its worlds this way and replays the public history."""
        k, hi = self.num_items, self.value_range[1]
        seat = jnp.round(obs[self.seat_slot]).astype(jnp.int32)
        own_values = jnp.round(obs[:k] * hi).astype(jnp.int32)
        own_max = (own_values * jnp.asarray(self.quantities, jnp.int32)).sum()
        own_outside = jnp.round(obs[k] * own_max).astype(jnp.int32)
        _, drawn = self.reset_env(key, self.default_params)
        first = seat == 0
        values = jnp.where(first, jnp.stack([own_values, drawn.values[1]]), jnp.stack([drawn.values[0], own_values]))
        outside = jnp.where(first, jnp.stack([own_outside, drawn.outside[1]]),
                            jnp.stack([drawn.outside[0], own_outside]))
        return self.deal(values, outside)

    def _player_deals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One player's chance outcomes: values [n, k], outside offers [n], probabilities [n]."""
        lo, hi = self.value_range
        values = np.array(list(itertools.product(range(lo, hi + 1), repeat=self.num_items)), np.int32)
        totals = values @ np.asarray(self.quantities, np.int32)
        rows = np.repeat(np.arange(len(values)), totals)
        outside = np.concatenate([np.arange(1, m + 1) for m in totals]).astype(np.int32)
        probs = 1.0 / len(values) / totals[rows]
        return values[rows], outside, probs

    def num_deals(self) -> int:
        """How many (values, outside offer) outcomes chance has for both players together."""
        lo, hi = self.value_range
        per_value = (hi - lo + 1) ** self.num_items
        mean_total = sum(self.quantities) * (lo + hi) / 2  # E[M_p]: the outside offer has M_p outcomes
        return int(round(per_value * mean_total)) ** 2

    def enumerate_deals(self, params=None) -> tuple[jax.Array, BargainState, np.ndarray]:
        """Every deal with its probability, for exact evaluation of small variants
        (``jaxmarl_lab.game_theory``): (obs [C, 2, obs], states stacked [C], probs [C])."""
        if self.num_deals() > 1_000_000:
            raise ValueError(f"bargain with quantities {self.quantities} and values {self.value_range} has "
                             f"{self.num_deals():,} deals: too many to enumerate (use bargain_tiny)")
        values, outside, probs = self._player_deals()
        first, second = (a.ravel() for a in np.meshgrid(np.arange(len(probs)), np.arange(len(probs)), indexing="ij"))
        obs, states = jax.vmap(self.deal)(jnp.asarray(np.stack([values[first], values[second]], axis=1)),
                                          jnp.asarray(np.stack([outside[first], outside[second]], axis=1)))
        return obs, states, probs[first] * probs[second]

    def legal_actions(self, state: BargainState) -> jax.Array:
        """bool[num_actions] of the player to move, by the rules alone (ignores ``done``)."""
        final_decision = (state.round == self.num_rounds - 1) & (state.player == 1)
        accept = state.offer_valid & ~((state.round == 0) & (state.player == 0))
        return jnp.concatenate([
            jnp.broadcast_to(~final_decision, (self.num_offers,)), accept[None], jnp.ones((1,), bool)
        ])

    def step_env(self, key, state: BargainState, action, params):
        quantities = jnp.asarray(self.quantities, jnp.int32)
        mover = state.player
        chosen = action[mover]
        legal = self.legal_actions(state)
        in_range = (chosen >= 0) & (chosen < self.num_offers + 2)
        chosen = jnp.where(in_range & legal[jnp.clip(chosen, 0, self.num_offers + 1)], chosen, self.walk_action)

        is_offer = chosen < self.num_offers
        is_accept = chosen == self.accept_action
        ends = ~is_offer  # ACCEPT or WALK

        units_to_p2 = state.offer
        accept_utility = jnp.stack([
            ((quantities - units_to_p2) * state.values[0]).sum(), (units_to_p2 * state.values[1]).sum()
        ]).astype(jnp.float32)
        terminal = jnp.where(is_accept, accept_utility, state.outside.astype(jnp.float32)) / state.max_value

        new_offer = jnp.asarray(self.offer_table)[jnp.clip(chosen, 0, self.num_offers - 1)]
        next_state = BargainState(
            values=state.values, max_value=state.max_value, outside=state.outside,
            offer=jnp.where(is_offer, new_offer, state.offer),
            offer_valid=state.offer_valid | is_offer,
            round=state.round + (is_offer & (mover == 1)).astype(jnp.int32),
            player=jnp.where(is_offer, 1 - mover, mover),
            action_count=state.action_count + is_offer.astype(jnp.int32),
            done=ends,
            outcome=jnp.where(is_accept, ACCEPTED, jnp.where(ends, WALKED, ONGOING)).astype(jnp.int32),
            rewards=jnp.where(ends, terminal, 0.0),
        )
        # a finished game stays finished and re-emits its terminal rewards (kernel semantics)
        next_state = jax.tree_util.tree_map(lambda old, new: jnp.where(state.done, old, new), state, next_state)
        done = next_state.done
        reward = jnp.where(state.done | ends, next_state.rewards, 0.0)
        info = {
            "terminated": done,
            "truncated": jnp.zeros((), bool),
            "outcome": next_state.outcome,
            "played_action": jnp.where(state.done, -1, chosen),
        }
        return self._observations(next_state), next_state, reward, done, info

    # ---- views -----------------------------------------------------------------------
    def action_mask(self, state: BargainState, params=None) -> jax.Array:
        movers = self.acting(state, params)
        return movers[:, None] & self.legal_actions(state)[None, :]

    def acting(self, state: BargainState, params=None) -> jax.Array:
        return (jnp.arange(2) == state.player) & ~state.done

    def _observations(self, state: BargainState) -> jax.Array:
        quantities = jnp.asarray(self.quantities, jnp.float32)
        share_p2 = state.offer / quantities
        share = jnp.stack([1.0 - share_p2, share_p2])  # [2, k] what each player gets by accepting
        share = jnp.where(state.offer_valid, share, -1.0)
        public = jnp.stack([
            jnp.broadcast_to(state.offer_valid.astype(jnp.float32), (2,)),
            jnp.broadcast_to(state.round / max(1, self.num_rounds - 1), (2,)),
            jnp.arange(2, dtype=jnp.float32),
        ], axis=1)
        return jnp.concatenate([
            state.values / self.value_range[1],
            (state.outside / state.max_value)[:, None],
            share,
            public,
            self.action_mask(state).astype(jnp.float32),
        ], axis=1).astype(jnp.float32)

    def global_state(self, state: BargainState, params=None) -> jax.Array:
        quantities = jnp.asarray(self.quantities, jnp.float32)
        return jnp.concatenate([
            state.values.ravel() / self.value_range[1],
            state.outside / state.max_value,
            state.max_value / (quantities.sum() * self.value_range[1]),
            jnp.where(state.offer_valid, state.offer / quantities, -1.0),
            state.offer_valid[None].astype(jnp.float32),
            (state.round / max(1, self.num_rounds - 1))[None],
            jax.nn.one_hot(state.player, 2),
        ]).astype(jnp.float32)

    def outcome_statistics(self, state: BargainState, params=None) -> dict[str, jax.Array]:
        return {"accept": state.outcome == ACCEPTED, "walk": state.outcome == WALKED}

    # ---- human-readable ----------------------------------------------------------------
    def decode_offer(self, action: int) -> tuple[int, ...]:
        """Units to P2 of a counter-offer index."""
        return tuple(int(u) for u in self.offer_table[int(action)])

    def encode_offer(self, units_to_p2) -> int:
        """Counter-offer index of ``units_to_p2`` (the inverse of :meth:`decode_offer`)."""
        index = 0
        for n, q in zip(units_to_p2, self.quantities, strict=True):
            if not 0 <= int(n) <= q:
                raise ValueError(f"offer {tuple(units_to_p2)} exceeds the quantities {self.quantities}")
            index = index * (q + 1) + int(n)
        return index

    def action_name(self, action: int) -> str:
        if action == self.accept_action:
            return "ACCEPT"
        if action == self.walk_action:
            return "WALK"
        n = self.decode_offer(action)
        keep = tuple(q - u for q, u in zip(self.quantities, n, strict=True))
        return f"OFFER P1 gets {keep}, P2 gets {n}"

    def describe(self, state: BargainState, params=None) -> str:
        s = jax.tree_util.tree_map(np.asarray, state)
        if s.values.ndim != 2:
            raise ValueError("describe() takes one unbatched state")
        lines = []
        for p in range(2):
            lines.append(f"P{p + 1}: values per unit {s.values[p].tolist()} for quantities {list(self.quantities)}"
                         f" (max {int(s.max_value[p])}), outside offer {int(s.outside[p])}")
        if bool(s.offer_valid):
            n = s.offer.tolist()
            keep = [q - u for q, u in zip(self.quantities, n, strict=True)]
            maker = 1 - int(s.player) + 1
            worth = [int(np.dot(keep, s.values[0])), int(np.dot(n, s.values[1]))]
            lines.append(f"Offer on the table (made by P{maker}): P1 gets {keep} (worth {worth[0]}), "
                         f"P2 gets {n} (worth {worth[1]})")
        else:
            lines.append("No offer on the table yet.")
        if bool(s.done):
            how = "accepted" if int(s.outcome) == ACCEPTED else "walked away"
            lines.append(f"Game over: P{int(s.player) + 1} {how}. Rewards P1 {s.rewards[0]:.4f}, "
                         f"P2 {s.rewards[1]:.4f}.")
        else:
            lines.append(f"Round {int(s.round) + 1} of {self.num_rounds}; P{int(s.player) + 1} to move.")
        return "\n".join(lines)

    def render(self, state: BargainState, params=None) -> jax.Array:
        """RGB frame: both players' private information (values V, max M, outside offer OUT), the
        offer on the table as unit squares (blue = P1's units, orange = P2's), and the outcome with
        rewards once the game is over."""
        s, k = 2, self.num_items
        cell = (draw.GLYPH_W + 1) * s
        width = max(272, (21 + 4 * k) * cell + 8)
        unit = max(4, min(14, (width - 80) // max(self.quantities)))
        height = 70 + 16 * k + 26
        img = draw.canvas(height, width)
        ongoing = ~state.done
        # header: round and mover, or the outcome
        img = draw.draw_text(img, "ROUND", 4, 4, s)
        img = draw.draw_number(img, jnp.minimum(state.round + 1, self.num_rounds), 4, 4 + 6 * cell, 1, s)
        img = draw.draw_text(img, f"/{self.num_rounds}", 4, 4 + 7 * cell, s)
        x_status = 4 + 11 * cell
        for p, color in ((0, P1_COLOR), (1, P2_COLOR)):
            img = draw.draw_text(img, f"P{p + 1} TO MOVE", 4, x_status, s, color, ongoing & (state.player == p))
        img = draw.draw_text(img, "ACCEPTED", 4, x_status, s, (20, 150, 40), state.outcome == ACCEPTED)
        img = draw.draw_text(img, "WALKED", 4, x_status, s, (200, 30, 30), state.outcome == WALKED)
        # private information
        for p, color in ((0, P1_COLOR), (1, P2_COLOR)):
            y = 20 + 14 * p
            img = draw.draw_text(img, f"P{p + 1} V", y, 4, s, color)
            for i in range(k):
                img = draw.draw_number(img, state.values[p, i], y, 4 + (5 + 4 * i) * cell, 3, s)
            x = 4 + (5 + 4 * k) * cell
            img = draw.draw_text(img, "M", y, x, s, color)
            img = draw.draw_number(img, state.max_value[p], y, x + 2 * cell, 4, s)
            img = draw.draw_text(img, "OUT", y, x + 7 * cell, s, color)
            img = draw.draw_number(img, state.outside[p], y, x + 11 * cell, 4, s)
        # the offer on the table
        img = draw.draw_text(img, "OFFER", 52, 4, s)
        for p, color in ((0, P1_COLOR), (1, P2_COLOR)):
            made_by = state.offer_valid & (state.player == 1 - p)
            img = draw.draw_text(img, f"BY P{p + 1}", 52, 4 + 7 * cell, s, color, made_by)
        for i, q in enumerate(self.quantities):
            y = 68 + 16 * i
            img = draw.draw_text(img, f"ITEM{i + 1}", y + 2, 4, s)
            kept = q - state.offer[i]
            for u in range(q):
                x = 4 + 7 * cell + u * (unit + 2)
                img = draw.fill_rect(img, y, x, 12, unit, NEUTRAL, ~state.offer_valid)
                img = draw.fill_rect(img, y, x, 12, unit, P1_COLOR, state.offer_valid & (u < kept))
                img = draw.fill_rect(img, y, x, 12, unit, P2_COLOR, state.offer_valid & (u >= kept))
        # rewards
        y = height - 18
        img = draw.draw_text(img, "R P1", y, 4, s, P1_COLOR, state.done)
        img = draw.draw_number(img, state.rewards[0], y, 4 + 5 * cell, 1, s, decimals=3, where=state.done)
        img = draw.draw_text(img, "P2", y, 4 + 11 * cell, s, P2_COLOR, state.done)
        img = draw.draw_number(img, state.rewards[1], y, 4 + 14 * cell, 1, s, decimals=3, where=state.done)
        return img


# ---- baselines (shared/specs/bargain.md §3) -------------------------------------------------
# Each reads only its own observation and legal mask. Acts are frozen dataclasses so that two
# policies built from the same env share one compiled program.


@dataclass(frozen=True)
class _ObservationReader:
    quantities: tuple[int, ...]
    value_scale: int
    offer_table: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, env: Bargain):
        return cls(env.quantities, env.value_range[1], tuple(map(tuple, env.offer_table.tolist())))

    @property
    def num_offers(self) -> int:
        return len(self.offer_table)

    def read(self, obs):
        """(own values, own M, own outside offer, units I get by accepting, offer valid, seat) as integers."""
        k = len(self.quantities)
        q = jnp.asarray(self.quantities, jnp.int32)
        values = jnp.round(obs[:k] * self.value_scale).astype(jnp.int32)
        max_value = (values * q).sum()
        outside = jnp.round(obs[k] * max_value).astype(jnp.int32)
        my_units = jnp.round(jnp.clip(obs[k + 1:2 * k + 1], 0.0, 1.0) * q).astype(jnp.int32)
        valid = obs[2 * k + 1] > 0.5
        seat = jnp.round(obs[2 * k + 3]).astype(jnp.int32)
        return values, max_value, outside, my_units, valid, seat

    def to_p2(self):
        return jnp.asarray(self.offer_table, jnp.int32)  # [num_offers, k]


@dataclass(frozen=True)
class AlwaysWalkAct:
    walk_action: int

    def __call__(self, params, obs, mask, key):
        return jnp.int32(self.walk_action)


@dataclass(frozen=True)
class GreedyAct(_ObservationReader):
    """P2: accept iff the offer is worth at least the outside offer, else walk. P1: keep everything."""

    def __call__(self, params, obs, mask, key):
        accept, walk = self.num_offers, self.num_offers + 1
        values, _, outside, my_units, valid, seat = self.read(obs)
        worth = (my_units * values).sum()
        as_p2 = jnp.where(mask[accept] & valid & (worth >= outside), accept, walk)
        kept_value = ((jnp.asarray(self.quantities) - self.to_p2()) * values).sum(axis=1)
        best = first_best(kept_value, mask[:accept])
        as_p1 = jnp.where(best >= 0, best, walk)
        return jnp.where(seat == 1, as_p2, as_p1).astype(jnp.int32)


@dataclass(frozen=True)
class FairSplitAct(_ObservationReader):
    """P2: accept iff the offer is worth >= accept_threshold·M (ignores the outside offer), else walk.
    P1: offer the split whose share for P2, valued with P1's own values, is closest to half of M."""

    def __call__(self, params, obs, mask, key):
        accept, walk = self.num_offers, self.num_offers + 1
        values, max_value, _, my_units, valid, seat = self.read(obs)
        worth = (my_units * values).sum()
        as_p2 = jnp.where(mask[accept] & valid & (worth >= params["accept_threshold"] * max_value), accept, walk)
        # |share/M - 1/2| in exact integers (|2·share - M|), so ties resolve to the first index
        distance_from_half = jnp.abs(2 * (self.to_p2() * values).sum(axis=1) - max_value)
        best = first_best(distance_from_half, mask[:accept], maximise=False)
        as_p1 = jnp.where(best >= 0, best, walk)
        return jnp.where(seat == 1, as_p2, as_p1).astype(jnp.int32)


@dataclass(frozen=True)
class ToughAct(_ObservationReader):
    """Offer the opponent one unit of the item type it values least itself, keep the rest; never
    accept; walk when counter-offers are illegal (the final decision)."""

    def __call__(self, params, obs, mask, key):
        walk = self.num_offers + 1
        values, _, _, _, _, seat = self.read(obs)
        q = jnp.asarray(self.quantities, jnp.int32)
        one_unit = jax.nn.one_hot(jnp.argmin(values), len(self.quantities), dtype=jnp.int32)
        units_to_p2 = jnp.where(seat == 0, one_unit, q - one_unit)
        strides = np.cumprod([1] + [qq + 1 for qq in self.quantities[:0:-1]])[::-1]
        index = (units_to_p2 * jnp.asarray(strides.copy(), jnp.int32)).sum()
        return jnp.where(mask[index], index, walk).astype(jnp.int32)


@dataclass(frozen=True)
class SoftAct:
    """Accept whenever an offer is on the table; otherwise a uniformly random counter-offer."""

    num_offers: int

    def __call__(self, params, obs, mask, key):
        accept, walk = self.num_offers, self.num_offers + 1
        offer = uniform_legal_action(key, mask[:accept])
        offer = jnp.where(mask[:accept].any(), offer, walk)
        return jnp.where(mask[accept], accept, offer).astype(jnp.int32)


def always_walk_policy(env: Bargain) -> Policy:
    """WALK at once: both players get their outside offers."""
    return Policy(None, AlwaysWalkAct(env.walk_action), "always_walk")


def greedy_policy(env: Bargain) -> Policy:
    return Policy(None, GreedyAct.of(env), "greedy")


def fair_split_policy(env: Bargain, accept_threshold: float = 0.4) -> Policy:
    return Policy({"accept_threshold": jnp.float32(accept_threshold)}, FairSplitAct.of(env), "fair_split")


def tough_policy(env: Bargain) -> Policy:
    return Policy(None, ToughAct.of(env), "tough")


def soft_policy(env: Bargain) -> Policy:
    return Policy(None, SoftAct(env.num_offers), "soft")


Bargain.evaluation_report = "two_player"  # evaluate trained policies against the baselines in both seats


Bargain.baseline_policies = {
    "random": random_policy,
    "greedy": greedy_policy,
    "always_walk": always_walk_policy,
    "fair_split": fair_split_policy,
    "tough": tough_policy,
    "soft": soft_policy,
}
