"""Kuhn poker and Leduc hold'em with OpenSpiel's tensors and action numbers.

Small two-player zero-sum games whose Nash equilibria are known, so equilibrium learners can be
checked exactly (``jaxmarl_lab.game_theory.nash_conv``). Registered as ``kuhn_poker`` and
``leduc_poker``. Every observation is exactly OpenSpiel's ``information_state_tensor(player)``
and actions use OpenSpiel's numbers, so a policy trained here is evaluated by OpenSpiel unchanged
(``jaxmarl_lab.game_theory.to_openspiel_policy``); the tests compare every history of both games
against ``pyspiel``.

Kuhn poker (deck J, Q, K = cards 0, 1, 2)
-----------------------------------------
Each player antes 1 and gets one card. Actions: 0 = pass, 1 = bet (1 chip). Player 0 moves
first. pass-pass and bet-bet (also pass-bet-bet) go to showdown, the higher card wins the pot;
passing against a bet folds. Rewards: ±1 (no bet called) or ±2 (a bet called).

Observation (11 floats): observer one-hot [2] | own card one-hot [3] | the up to 3 actions of the
game, 2 bits each (pass → bit 0, bet → bit 1) [6].

Leduc hold'em (6 cards: ranks J, Q, K × 2 suits; card c has rank c // 2)
-----------------------------------------------------------------------
Each player antes 1 and gets one private card; a public card is revealed after the first betting
round. Actions: 0 = fold (legal only facing a bet), 1 = call/check, 2 = raise (at most 2 raises
per round; raise size 2 in round 1 and 4 in round 2). A round ends on a call that is not its
first action; player 0 starts both rounds. Showdown: a private card pairing the public card
wins, else the higher rank, equal ranks split. Rewards: the chips won or lost (zero-sum).

Observation (30 floats): observer one-hot [2] | own card one-hot [6] | public card one-hot,
zeros before it is revealed [6] | round 1 actions, 4 slots × 2 bits (call → bit 0, raise →
bit 1) [8] | round 2 actions, same [8]. A fold ends the game and is not recorded.

Both games: chance deals every card at reset (the public card too, revealed only in round 2).
That gives exactly OpenSpiel's joint distribution of deals and makes ``step`` deterministic, so
:meth:`enumerate_deals` lists the whole chance tree for exact evaluation. An illegal or
out-of-range action is played as call/check (Leduc) or pass (Kuhn); a jitted step cannot raise.
Every agent observes every step; the reward vector is zero until the final step.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_lab import render as draw
from jaxmarl_lab.env import Env
from jaxmarl_lab.policies import random_policy
from jaxmarl_lab.spaces import Box, Discrete

RANK_NAMES = "JQK"


@struct.dataclass
class PokerState:
    cards: jax.Array  # i32[3]: private card of player 0, of player 1, public card (Kuhn: -1)
    contributions: jax.Array  # i32[2] chips each player has put in the pot (antes included)
    history: jax.Array  # i32[rounds, slots] recorded actions per betting round, -1 where none
    round: jax.Array  # i32[]
    actions_in_round: jax.Array  # i32[] actions recorded in the current round
    raises_in_round: jax.Array  # i32[]
    player: jax.Array  # i32[] player to move (after the end: the player who ended the game)
    done: jax.Array  # bool[]
    rewards: jax.Array  # f32[2] terminal payoffs (0 while ongoing)


@struct.dataclass
class PokerParams:
    """No dynamic parameters: the rules are static."""


class _Poker(Env):
    """Shared machinery: dealing, observations, showdown, chance enumeration, rendering."""

    num_agents = 2
    agents = ("player_0", "player_1")
    evaluation_report = "exact"  # evaluate trained policies by exact NashConv
    seat_slot = 1  # obs[1] is 1 for player 1 (the observer one-hot), which shared-seat networks read
    deck_size: int
    num_rounds: int
    slots: int  # action slots per round in the information-state tensor
    has_public_card: bool
    first_recorded_action: int  # the action that sets bit 0 of a slot
    records_fold: bool  # whether a fold is written into the action bits (Kuhn: yes, Leduc: no)
    action_names: tuple[str, ...]

    def __init__(self):
        self._config = (self.name,)
        self.obs_dim = 2 + self.deck_size * (2 if self.has_public_card else 1) + 2 * self.num_rounds * self.slots

    @property
    def default_params(self) -> PokerParams:
        return PokerParams()

    def observation_space(self, params=None) -> Box:
        return Box(0.0, 1.0, (self.obs_dim,))

    def action_space(self, params=None) -> Discrete:
        return Discrete(len(self.action_names))

    # ---- chance ------------------------------------------------------------------------
    @property
    def cards_dealt(self) -> int:
        return 3 if self.has_public_card else 2

    def deal(self, cards: jax.Array) -> tuple[jax.Array, PokerState]:
        """The initial state for explicit cards (private 0, private 1[, public])."""
        cards = jnp.asarray(cards, jnp.int32)
        if not self.has_public_card:
            cards = jnp.concatenate([cards[:2], jnp.full((1,), -1, jnp.int32)])
        zero = jnp.zeros((), jnp.int32)
        state = PokerState(cards=cards, contributions=jnp.ones((2,), jnp.int32),
                           history=jnp.full((self.num_rounds, self.slots), -1, jnp.int32), round=zero,
                           actions_in_round=zero, raises_in_round=zero, player=zero, done=jnp.zeros((), bool),
                           rewards=jnp.zeros((2,), jnp.float32))
        return self._observations(state), state

    def reset_env(self, key, params):
        return self.deal(jax.random.permutation(key, self.deck_size)[: self.cards_dealt])

    def resample_deal(self, key: jax.Array, obs: jax.Array) -> tuple[jax.Array, PokerState]:
        """An initial state consistent with what one player's observation ``obs`` reveals (its own
        card, and the public card once revealed); the other cards are dealt uniformly from the rest
        of the deck. Decision-time search (``algos/is_mcts.py``) draws its worlds this way."""
        deck = jnp.arange(self.deck_size)
        seat = jnp.round(obs[1]).astype(jnp.int32)
        own = jnp.argmax(obs[2:2 + self.deck_size]).astype(jnp.int32)
        known = deck == own
        if self.has_public_card:
            public_bits = obs[2 + self.deck_size:2 + 2 * self.deck_size]
            revealed = public_bits.max() > 0.5
            public = jnp.argmax(public_bits).astype(jnp.int32)
            known = known | (revealed & (deck == public))
        unknown_first = jnp.argsort(jax.random.uniform(key, (self.deck_size,)) + 2.0 * known).astype(jnp.int32)
        other = unknown_first[0]
        cards = [jnp.where(seat == 0, own, other), jnp.where(seat == 0, other, own)]
        if self.has_public_card:
            cards.append(jnp.where(revealed, public, unknown_first[1]))
        return self.deal(jnp.stack(cards))

    def num_deals(self) -> int:
        return int(np.prod(range(self.deck_size - self.cards_dealt + 1, self.deck_size + 1)))

    def enumerate_deals(self, params=None) -> tuple[jax.Array, PokerState, np.ndarray]:
        """Every deal with its probability: (obs [C, 2, obs_dim], states stacked [C], probs [C])."""
        deals = np.array(list(itertools.permutations(range(self.deck_size), self.cards_dealt)), np.int32)
        obs, states = jax.vmap(self.deal)(jnp.asarray(deals))
        return obs, states, np.full(len(deals), 1.0 / len(deals))

    # ---- rules -------------------------------------------------------------------------
    def _showdown(self, cards: jax.Array) -> jax.Array:
        """+1 if player 0 holds the better hand, -1 if player 1 does, 0 on a tie."""
        raise NotImplementedError

    def _rules(self, state: PokerState, action: jax.Array):
        """(fold, round_over, new contribution of the mover, is_raise) for a legal action."""
        raise NotImplementedError

    def legal_actions(self, state: PokerState) -> jax.Array:
        raise NotImplementedError

    def default_action(self) -> int:
        raise NotImplementedError

    def step_env(self, key, state: PokerState, action, params):
        mover = state.player
        chosen = action[mover]
        legal = self.legal_actions(state)
        num_actions = len(self.action_names)
        ok = (chosen >= 0) & (chosen < num_actions) & legal[jnp.clip(chosen, 0, num_actions - 1)]
        chosen = jnp.where(ok, chosen, self.default_action())

        fold, round_over, contribution, is_raise = self._rules(state, chosen)
        contributions = state.contributions.at[mover].set(contribution)
        recorded = ~fold | self.records_fold
        slot = jnp.clip(state.actions_in_round, 0, self.slots - 1)
        history = jnp.where(recorded, state.history.at[state.round, slot].set(chosen), state.history)
        last_round = state.round == self.num_rounds - 1
        showdown = round_over & last_round
        done = fold | showdown
        # fold: the folder loses what it put in; showdown: the pot is split by hand strength
        sign = jnp.where(fold, jnp.where(mover == 0, -1, 1), self._showdown(state.cards))
        stake = jnp.where(fold, state.contributions[mover], contributions[0])  # contributions equal at showdown
        payoff = (sign * stake).astype(jnp.float32)
        rewards = jnp.where(done, jnp.stack([payoff, -payoff]), 0.0)
        next_round = round_over & ~last_round
        next_state = PokerState(
            cards=state.cards, contributions=contributions, history=history,
            round=state.round + next_round.astype(jnp.int32),
            actions_in_round=jnp.where(next_round, 0, state.actions_in_round + recorded.astype(jnp.int32)),
            raises_in_round=jnp.where(next_round, 0, state.raises_in_round + is_raise.astype(jnp.int32)),
            player=jnp.where(done, mover, jnp.where(next_round, 0, 1 - mover)),
            done=done, rewards=rewards,
        )
        # a finished game stays finished and re-emits its payoffs
        next_state = jax.tree_util.tree_map(lambda old, new: jnp.where(state.done, old, new), state, next_state)
        info = {"terminated": next_state.done, "truncated": jnp.zeros((), bool),
                "played_action": jnp.where(state.done, -1, chosen)}
        return self._observations(next_state), next_state, next_state.rewards * (next_state.done | state.done), \
            next_state.done, info

    # ---- views -------------------------------------------------------------------------
    def action_mask(self, state: PokerState, params=None) -> jax.Array:
        return self.acting(state)[:, None] & self.legal_actions(state)[None, :]

    def acting(self, state: PokerState, params=None) -> jax.Array:
        return (jnp.arange(2) == state.player) & ~state.done

    def _observations(self, state: PokerState) -> jax.Array:
        """OpenSpiel's information_state_tensor of each player (see the module docstring)."""
        seats = jnp.eye(2, dtype=jnp.float32)
        own = jax.nn.one_hot(state.cards[:2], self.deck_size, dtype=jnp.float32)
        bit = state.history - self.first_recorded_action  # -1 - offset where empty: one_hot gives zeros
        bits = jax.nn.one_hot(jnp.where(state.history >= 0, bit, -1), 2, dtype=jnp.float32).reshape(-1)
        parts = [seats, own]
        if self.has_public_card:
            revealed = state.round >= 1
            public = jax.nn.one_hot(jnp.where(revealed, state.cards[2], -1), self.deck_size, dtype=jnp.float32)
            parts.append(jnp.broadcast_to(public, (2, self.deck_size)))
        parts.append(jnp.broadcast_to(bits, (2, bits.shape[0])))
        return jnp.concatenate(parts, axis=1)

    def global_state(self, state: PokerState, params=None) -> jax.Array:
        """Both private cards, the public card (always), contributions / 13 and the action bits."""
        cards = jax.nn.one_hot(state.cards, self.deck_size, dtype=jnp.float32).reshape(-1)
        bits = jax.nn.one_hot(jnp.where(state.history >= 0, state.history - self.first_recorded_action, -1), 2,
                              dtype=jnp.float32).reshape(-1)
        return jnp.concatenate([cards, state.contributions / 13.0, bits, jax.nn.one_hot(state.player, 2)])

    def card_name(self, card: int) -> str:
        return "-" if card < 0 else RANK_NAMES[card // (self.deck_size // 3)] + (
            "" if self.deck_size == 3 else "sh"[card % 2])

    def describe(self, state: PokerState, params=None) -> str:
        s = jax.tree_util.tree_map(np.asarray, state)
        lines = [f"P0 holds {self.card_name(int(s.cards[0]))}, P1 holds {self.card_name(int(s.cards[1]))}"]
        if self.has_public_card:
            shown = int(s.round) >= 1 or bool(s.done)
            lines.append(f"public card {self.card_name(int(s.cards[2])) if shown else '(hidden)'}")
        for r in range(self.num_rounds):
            moves = [self.action_names[int(a)] for a in s.history[r] if a >= 0]
            lines.append(f"round {r + 1}: {' '.join(moves) or '-'}")
        lines.append(f"pot: P0 {int(s.contributions[0])}, P1 {int(s.contributions[1])}")
        lines.append(f"game over, payoffs {s.rewards.tolist()}" if bool(s.done) else f"P{int(s.player)} to move")
        return "\n".join(lines)

    def render(self, state: PokerState, params=None) -> jax.Array:
        """Cards as tiles (rank number 1-3 = J, Q, K), the pot per player and the payoffs."""
        img = draw.canvas(64, 112)
        for p, x in ((0, 8), (1, 80)):
            img = draw.fill_rect(img, 8, x, 24, 18, (45, 95, 200) if p == 0 else (230, 120, 30))
            rank = state.cards[p] // (self.deck_size // 3) + 1
            img = draw.draw_number(img, rank, 14, x + 5, 1, scale=2, color=(255, 255, 255))
            img = draw.draw_number(img, state.contributions[p], 40, x, 2, scale=2)
        if self.has_public_card:
            shown = (state.round >= 1) | state.done
            img = draw.fill_rect(img, 8, 46, 24, 18, (120, 120, 120), where=shown)
            img = draw.draw_number(img, state.cards[2] // 2 + 1, 14, 51, 1, scale=2, color=(255, 255, 255),
                                   where=shown)
        winner = jnp.where(state.rewards[0] > 0, 0, 1)
        img = draw.fill_rect(img, 58, jnp.where(winner == 0, 8, 80), 4, 18, (40, 170, 60), where=state.done)
        return img


class KuhnPoker(_Poker):
    """Kuhn poker (see the module docstring)."""

    name = "kuhn_poker"
    deck_size, num_rounds, slots, has_public_card = 3, 1, 3, False
    first_recorded_action, records_fold = 0, True
    action_names = ("pass", "bet")
    max_steps = 3
    max_decisions_per_player, max_consecutive_moves = 2, 1  # bounds for tree traversals (Deep CFR)

    def _showdown(self, cards):
        return jnp.where(cards[0] > cards[1], 1, -1)

    def legal_actions(self, state):
        return jnp.ones((2,), bool)

    def default_action(self) -> int:
        return 0

    def _rules(self, state, action):
        mover = state.player
        facing = state.contributions[1 - mover] > state.contributions[mover]
        bet = action == 1
        fold = ~bet & facing
        round_over = (bet & facing) | (~bet & ~facing & (state.actions_in_round >= 1))
        contribution = state.contributions[mover] + bet.astype(jnp.int32)
        return fold, round_over, contribution, bet & ~facing


class LeducPoker(_Poker):
    """Leduc hold'em (see the module docstring)."""

    name = "leduc_poker"
    deck_size, num_rounds, slots, has_public_card = 6, 2, 4, True
    first_recorded_action, records_fold = 1, False
    action_names = ("fold", "call", "raise")
    max_steps = 8
    # player 0 opens both rounds, so after its round-ending call it moves twice in a row
    max_decisions_per_player, max_consecutive_moves = 4, 2
    max_raises = 2
    raise_sizes = (2, 4)

    def _showdown(self, cards):
        ranks = cards // 2
        pair = ranks[:2] == ranks[2]
        better = jnp.where(pair[0] != pair[1], jnp.where(pair[0], 1, -1), jnp.sign(ranks[0] - ranks[1]))
        return better.astype(jnp.int32)

    def legal_actions(self, state):
        facing = state.contributions[1 - state.player] > state.contributions[state.player]
        return jnp.stack([facing, jnp.ones((), bool), state.raises_in_round < self.max_raises])

    def default_action(self) -> int:
        return 1

    def _rules(self, state, action):
        mover = state.player
        other = state.contributions[1 - mover]
        raise_size = jnp.asarray(self.raise_sizes, jnp.int32)[state.round]
        fold = action == 0
        call = action == 1
        is_raise = action == 2
        round_over = call & (state.actions_in_round >= 1)
        contribution = jnp.where(fold, state.contributions[mover], other + jnp.where(is_raise, raise_size, 0))
        return fold, round_over, contribution, is_raise


KuhnPoker.baseline_policies = {"random": random_policy}
LeducPoker.baseline_policies = {"random": random_policy}
