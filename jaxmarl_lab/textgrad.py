"""TextGrad-style optimisation of texts by an LLM: variables, textual gradients, a descent step.

A compact re-implementation of the parts of zou-group/textgrad that LangMARL uses (spec part C), on
our own :class:`~jaxmarl_lab.llm.LLMClient` (the ``textgrad`` package pulls litellm, datasets and
more, and its OpenAI engine rejects custom base URLs):

* :class:`Variable` — a text with a role description, its predecessors and its gradients
  (feedback texts, each with the context it was given in).
* :class:`TextLoss` — an LLM critique of a variable: one call with the evaluation instructions as
  the system prompt and the variable's text as the user message. ``loss.backward()`` asks the model
  (one more call) how the variable should change given that critique and attaches the answer as a
  gradient of every predecessor that requires one.
* :func:`summarize_gradients` — several gradients of a variable merged into one (one call).
* :class:`TGD` — textual gradient descent: per parameter one call that returns the improved text
  between ``<IMPROVED_VARIABLE>`` tags. An answer without the tags keeps the old text and is
  reported in the step's log; it never raises.

Any object with ``complete(messages) -> Completion`` serves as the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jaxmarl_lab.llm.client import LLMClient

TAGS = ("<IMPROVED_VARIABLE>", "</IMPROVED_VARIABLE>")

BACKWARD_SYSTEM = (
    "You are part of an optimization system that improves text variables with natural-language feedback. "
    "Given an evaluation of an output and the variables that produced it, give specific, actionable feedback "
    "on how one variable should change so that the evaluation improves. Do not rewrite the variable; only "
    "give feedback.")
SUMMARY_SYSTEM = ("You aggregate feedback. Summarise the pieces of feedback below into one concise list of "
                  "the changes they ask for, keeping every concrete suggestion and dropping repetition.")
OPTIMIZER_SYSTEM = (
    "You are part of an optimization system that improves text (a variable) using feedback (textual gradients). "
    "Rewrite the variable so that it addresses the feedback while keeping its role. Answer with the improved "
    "variable between {open} and {close} and nothing else inside the tags.")


@dataclass(frozen=True)
class Gradient:
    text: str
    context: str = ""


@dataclass(eq=False)
class Variable:
    value: str
    role_description: str
    requires_grad: bool = True
    predecessors: tuple[Variable, ...] = ()
    gradients: list[Gradient] = field(default_factory=list)
    backward_fn: Callable[[], None] | None = field(default=None, repr=False)

    def set_value(self, value: str) -> None:
        self.value = value

    def add_gradient(self, text: str, context: str = "") -> None:
        if self.requires_grad:
            self.gradients.append(Gradient(text, context))

    def backward(self) -> None:
        """Run the backward functions of this variable and its ancestors, children first."""
        order, seen = [], set()

        def visit(node: Variable) -> None:
            if id(node) in seen:
                return
            seen.add(id(node))
            for parent in node.predecessors:
                visit(parent)
            order.append(node)

        visit(self)
        for node in reversed(order):
            if node.backward_fn is not None:
                node.backward_fn()

    def gradient_text(self) -> str:
        return "\n\n".join(f"<CONTEXT>{g.context}</CONTEXT>\n<FEEDBACK>{g.text}</FEEDBACK>" if g.context
                           else f"<FEEDBACK>{g.text}</FEEDBACK>" for g in self.gradients)


def _ask(engine: LLMClient, system: str, user: str) -> str:
    return engine.complete([{"role": "system", "content": system}, {"role": "user", "content": user}]).text


class TextLoss:
    """``TextLoss(instructions, engine)(variable)`` → the critique as a Variable with a backward."""

    def __init__(self, eval_system_prompt: str, engine: LLMClient):
        self.eval_system_prompt, self.engine = eval_system_prompt, engine

    def __call__(self, variable: Variable) -> Variable:
        critique = _ask(self.engine, self.eval_system_prompt, variable.value)
        loss = Variable(critique, f"evaluation of the {variable.role_description}", requires_grad=False,
                        predecessors=(variable,))

        def backward() -> None:
            for parent in loss.predecessors:
                if not parent.requires_grad and not parent.predecessors:
                    continue
                prompt = (f"The variable ({parent.role_description}):\n<VARIABLE>{parent.value}</VARIABLE>\n\n"
                          f"was evaluated with these instructions:\n<INSTRUCTIONS>{self.eval_system_prompt}"
                          f"</INSTRUCTIONS>\n\nThe evaluation:\n<EVALUATION>{critique}</EVALUATION>\n\n"
                          "Give feedback on how this variable should change to improve the evaluation.")
                parent.add_gradient(_ask(self.engine, BACKWARD_SYSTEM, prompt), f"evaluation: {critique}")

        loss.backward_fn = backward
        return loss


def summarize_gradients(variable: Variable, engine: LLMClient) -> None:
    """Replace two or more gradients of ``variable`` by one summary (one LLM call)."""
    if len(variable.gradients) < 2:
        return
    summary = _ask(engine, SUMMARY_SYSTEM, f"Feedback on the {variable.role_description}:\n\n"
                   + variable.gradient_text())
    variable.gradients = [Gradient(summary, "summary of several pieces of feedback")]


def improved_text(answer: str, tags: tuple[str, str] = TAGS) -> str | None:
    """The text between the last pair of tags, or None when the answer has none."""
    start, end = answer.rfind(tags[0]), answer.rfind(tags[1])
    if start < 0 or end < start:
        return None
    return answer[start + len(tags[0]):end].strip()


class TGD:
    """Textual gradient descent over ``parameters`` (one LLM call per parameter with gradients)."""

    def __init__(self, parameters: Sequence[Variable], engine: LLMClient, constraints: Sequence[str] = (),
                 tags: tuple[str, str] = TAGS):
        self.parameters, self.engine, self.constraints, self.tags = list(parameters), engine, list(constraints), tags

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.gradients.clear()

    def prompt(self, variable: Variable) -> str:
        lines = [f"Role of the variable: {variable.role_description}",
                 f"Current value:\n<VARIABLE>{variable.value}</VARIABLE>",
                 f"Feedback (textual gradients):\n{variable.gradient_text()}"]
        if self.constraints:
            lines.append("Constraints the new value must satisfy:\n" + "\n".join(f"- {c}" for c in self.constraints))
        lines.append(f"Write the improved variable between {self.tags[0]} and {self.tags[1]}.")
        return "\n\n".join(lines)

    def step(self) -> list[dict]:
        """Update every parameter that has gradients; returns one log entry per parameter."""
        system = OPTIMIZER_SYSTEM.format(open=self.tags[0], close=self.tags[1])
        log = []
        for variable in self.parameters:
            if not variable.gradients:
                log.append({"role": variable.role_description, "updated": False, "reason": "no gradients"})
                continue
            prompt = self.prompt(variable)
            answer = _ask(self.engine, system, prompt)
            new = improved_text(answer, self.tags)
            entry = {"role": variable.role_description, "prompt": prompt, "response": answer, "updated": bool(new)}
            if new:
                variable.set_value(new)
            else:
                entry["reason"] = "the answer had no improved text between the tags; the old text is kept"
            log.append(entry)
        return log
