"""Prompt renderers and answer parsers: how an environment's observation becomes a chat message and
an answer becomes a legal action. One :class:`EnvPrompts` per env (``prompts_for(env)``).

Both work on host numpy arrays of one acting agent: ``render(obs, mask, seat, policy_text)`` returns
chat messages; ``parse(text, obs, mask)`` returns ``(action, ok)``. When an answer cannot be parsed to a
legal action, ``ok`` is False and the action is the env's documented fallback:

* ``bargain``: WALK (always legal; both players get their outside offers).
* ``pistonball``: stay (1); continuous: 0.0.

Numbers are printed with the shortest decimal that reads back to the same float32, so a "model"
that recomputes a rule from the prompt decides exactly as the rule does on the observation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


def exact(value) -> str:
    """Shortest decimal that round-trips the float32 value (e.g. 35.2, not 35.20000076)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def _answer_line(text: str) -> str:
    """The text after the last "Action:" if there is one (models often reason first)."""
    found = list(re.finditer(r"action\s*:", text, flags=re.IGNORECASE))
    return text[found[-1].end():] if found else text


@dataclass(frozen=True)
class EnvPrompts:
    """Base class: subclasses implement ``render`` and ``parse``."""

    env: object

    def render(self, obs: np.ndarray, mask: np.ndarray, seat: int, policy_text: str = "") -> list[dict]:
        raise NotImplementedError

    def parse(self, text: str, obs: np.ndarray, mask: np.ndarray) -> tuple[float | int, bool]:
        raise NotImplementedError

    def fallback(self, mask: np.ndarray) -> float | int:
        raise NotImplementedError


# ---- bargaining ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BargainPrompts(EnvPrompts):
    """Everything stated from the reader's side: what each unit is worth to *you*, your outside
    offer, the offer on the table as the units *you* would receive, the round, and the moves that
    are legal now. Answer: ``ACCEPT``, ``WALK`` or ``OFFER a b c`` (units you would receive)."""

    def read(self, obs: np.ndarray) -> dict:
        env = self.env
        k, hi = env.num_items, env.value_range[1]
        values = np.rint(obs[:k] * hi).astype(int)
        total = int((values * np.asarray(env.quantities)).sum())
        offer_valid = obs[2 * k + 1] > 0.5
        receive = np.rint(obs[k + 1: 2 * k + 1] * np.asarray(env.quantities)).astype(int) if offer_valid else None
        return {"values": values, "total": total, "outside": int(round(float(obs[k]) * total)),
                "offer": receive, "round": int(round(float(obs[2 * k + 2]) * max(1, env.num_rounds - 1))),
                "seat": int(round(float(obs[2 * k + 3])))}

    def render(self, obs, mask, seat, policy_text=""):
        env, view = self.env, self.read(obs)
        items = ", ".join(f"{q} unit{'s' if q != 1 else ''} of item {chr(65 + i)}"
                          for i, q in enumerate(env.quantities))
        worth = ", ".join(f"item {chr(65 + i)}: {v} per unit" for i, v in enumerate(view["values"]))
        lines = [
            "You are negotiating how to split a pool of items with one other player.",
            f"The pool: {items}. Each player privately values the items; you do not know the other player's "
            "values or outside offer.",
            f"What each unit is worth to you: {worth} (the whole pool is worth {view['total']} to you).",
            f"Your outside offer: {view['outside']}. If anyone walks away, each player gets their own outside offer.",
            f"This is round {view['round'] + 1} of {env.num_rounds}; you are player {view['seat'] + 1} "
            f"(player 1 moves first). The game ends when an offer is accepted, someone walks away, or after the "
            "last player-2 decision.",
        ]
        if view["offer"] is None:
            lines.append("There is no offer on the table yet.")
        else:
            got = ", ".join(f"{n} of item {chr(65 + i)}" for i, n in enumerate(view["offer"]))
            worth_to_you = int((view["offer"] * view["values"]).sum())
            lines.append(f"Offer on the table: you would receive {got} (worth {worth_to_you} to you); "
                         "the other player keeps the rest.")
        moves = []
        if mask[env.accept_action]:
            moves.append("ACCEPT (take the offer on the table)")
        moves.append("WALK (both players get their outside offers)")
        if mask[: env.num_offers].any():
            bounds = " ".join(f"<0-{q}>" for q in env.quantities)
            moves.append(f"OFFER {bounds} (a counter-offer: the units of each item YOU would receive)")
        lines.append("Legal moves now: " + "; ".join(moves) + ".")
        if policy_text:
            lines.append(f"Your strategy notes: {policy_text}")
        lines.append("Answer with one line: 'Action: ACCEPT', 'Action: WALK' or 'Action: OFFER a b c'.")
        return [{"role": "user", "content": "\n".join(lines)}]

    def parse(self, text, obs, mask):
        env, answer = self.env, _answer_line(text).upper()
        words = [(m.start(), m.group(1)) for m in re.finditer(r"\b(ACCEPT|WALK|OFFER)\b", answer)]
        if not words:
            return self.fallback(mask), False
        word = min(words)[1]
        if word == "ACCEPT":
            action = env.accept_action
        elif word == "WALK":
            action = env.walk_action
        else:
            offer = re.search(r"OFFER\D*" + r"\D+".join([r"(\d+)"] * env.num_items), answer)
            if offer is None:
                return self.fallback(mask), False
            receive = [int(g) for g in offer.groups()]
            if any(not 0 <= r <= q for r, q in zip(receive, env.quantities, strict=True)):
                return self.fallback(mask), False
            seat = int(round(float(obs[env.seat_slot])))
            to_p2 = receive if seat == 1 else [q - r for q, r in zip(env.quantities, receive, strict=True)]
            action = env.encode_offer(to_p2)
        if not mask[action]:
            return self.fallback(mask), False
        return int(action), True

    def fallback(self, mask):
        return int(self.env.walk_action)


# ---- pistonball ---------------------------------------------------------------------------------
DISCRETE_WORDS = ((r"retract|down|lower", 0), (r"stay|hold|wait|keep", 1), (r"push|up|raise|rise", 2))


@dataclass(frozen=True)
class PistonballPrompts(EnvPrompts):
    """The actor's local view (own and neighbours' heights, the ball relative to the piston only when
    it overlaps the piston's 3-column window, velocities in px/s) plus its policy text."""

    def render(self, obs, mask, seat, policy_text=""):
        env = self.env
        n = env.n_pistons
        own, left, right = (exact(obs[i] * np.float32(64.0)) for i in range(3))
        lines = [
            f"You control piston {seat} of {n} (numbered left to right) in Pistonball. All pistons share one "
            "reward: move the ball to the LEFT wall as fast as possible. Pistons only move vertically; a piston "
            "under the ball that rises pushes it up and sideways, so a surface that is high on the right of the "
            "ball and low on its left rolls it left.",
            "Your local observation:",
            f"- your height: {own} px (0 = lowest, 64 = highest)",
            f"- left neighbour's height: {left} px" + ("" if obs[3] > 0.5 else " (you are the leftmost piston)"),
            f"- right neighbour's height: {right} px" + ("" if obs[4] > 0.5 else " (you are the rightmost piston)"),
        ]
        if obs[5] > 0.5:
            rel_x, rel_y = exact(obs[6] * np.float32(100.0)), exact(obs[7] * np.float32(100.0))
            vx, vy = exact(obs[8] * np.float32(100.0)), exact(obs[9] * np.float32(100.0))
            lines += ["- ball visible: yes",
                      f"- ball position relative to your piston: x = {rel_x} px (positive = right of you), "
                      f"y = {rel_y} px (negative = above you)",
                      f"- ball velocity: vx = {vx} px/s (negative = moving left), vy = {vy} px/s"]
        else:
            lines.append("- ball visible: no (it is outside your 3-column window)")
        if policy_text:
            lines += ["Your current policy:", policy_text]
        if env.continuous:
            lines.append("Answer with 'Action: v' where v is a number in [-1, 1] (1 = up 4 px, -1 = down 4 px).")
        else:
            lines.append("Answer with 'Action: 0' (move down 4 px), 'Action: 1' (stay) or 'Action: 2' (move up 4 px).")
        return [{"role": "user", "content": "\n".join(lines)}]

    def parse(self, text, obs, mask):
        answer = _answer_line(text)
        if self.env.continuous:
            number = re.search(r"[-+]?\d*\.?\d+", answer)
            if number is None:
                return self.fallback(mask), False
            return float(np.clip(float(number.group()), -1.0, 1.0)), True
        digit = re.search(r"(?<![\d.])([0-2])(?![\d.])", answer)
        if digit:
            return int(digit.group(1)), True
        lowered = answer.lower()
        hits = [(m.start(), action) for pattern, action in DISCRETE_WORDS for m in re.finditer(pattern, lowered)]
        if hits:
            return min(hits)[1], True
        return self.fallback(mask), False

    def fallback(self, mask):
        return 0.0 if self.env.continuous else 1


PROMPTS = {"bargain": BargainPrompts, "pistonball": PistonballPrompts}


def prompts_for(env) -> EnvPrompts:
    if env.name not in PROMPTS:
        raise ValueError(f"no LLM prompt renderer for env {env.name!r}; available: {sorted(PROMPTS)}")
    return PROMPTS[env.name](env)
