"""Predict, then check: questions a learner answers *before* the cell that shows the answer.

In a notebook, two calls frame the cell that computes the answer::

    my_prediction = "the MLPs"                        # before you look
    predict("01.who_writes_the_sport", my_prediction)
    ...                                               # the cell that computes it from the model
    reveal("01.who_writes_the_sport", truth)          # truth: computed here, from the loaded model

``predict`` records the learner's *first* answer in the progress file (a later change of mind is shown,
not recorded). ``reveal`` compares that first answer with the truth the notebook has just computed, says
whether it was right and, for a known wrong answer, what it gets wrong; it records whether the first
answer was right. Neither call ever raises: a malformed answer gets a message saying what is expected.

A question is a :class:`Question`: a choice among fixed answers, a number (right within a tolerance), or a
name such as a head (``"L0H1"``, matched against a pattern). Its ``messages`` teach on known wrong answers;
``advise`` can compute a message from the truth and from what the notebook passes to ``reveal``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import progress
from ..course import import_exercise_modules

_QUESTIONS: dict[str, "Question"] = {}
_session: dict[str, Any] = {}          # first predictions, also when the progress file cannot be written


@dataclass
class Question:
    """One prediction question. ``kind`` is "choice", "number" or "name"."""

    id: str
    title: str
    prompt: str
    kind: str = "choice"
    choices: list[str] = field(default_factory=list)       # choice: the answers allowed
    pattern: str = ""                                      # name: a regex the normalised answer must match
    example: str = ""                                      # name: a valid answer, shown in messages
    rel_tol: float = 0.0                                   # number: right within max(abs_tol, rel_tol * |truth|)
    abs_tol: float = 0.0
    messages: dict[str, str] = field(default_factory=dict)  # wrong answer (normalised) -> what it misses
    advise: Callable[[Any, Any, dict], str | None] | None = None   # (answer, truth, context) -> a message
    explain: str = ""                                      # shown with the truth, right or wrong

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    def expected(self) -> str:
        """What a valid answer looks like, for messages."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "number":
            return "a number"
        return f"a name like {self.example or self.pattern!r}"

    def parse(self, answer: Any) -> tuple[Any, str | None]:
        """(normalised answer, None) for a valid answer, else (None, what is wrong with it)."""
        if answer is None or answer is Ellipsis:
            return None, "No prediction yet."
        if self.kind == "number":
            if isinstance(answer, bool) or not isinstance(answer, (int, float)) and not hasattr(answer, "item"):
                return None, f"Expected a number, got {type(answer).__name__}."
            try:
                value = float(answer)
            except (TypeError, ValueError, RuntimeError):
                return None, "Expected a single number."
            return (value, None) if math.isfinite(value) else (None, "Expected a finite number.")
        if not isinstance(answer, str):
            return None, f"Expected text ({self.expected()}), got {type(answer).__name__}."
        text = " ".join(answer.strip().split())
        if self.kind == "choice":
            match = [c for c in self.choices if c.lower() == text.lower()]
            return (match[0], None) if match else (None, f"{answer!r} is not {self.expected()}.")
        name = text.replace(" ", "").replace("->", "→").upper()
        name = re.sub(r"EMBEDDINGS?", "embeddings", name)
        if re.fullmatch(self.pattern, name):
            return name, None
        return None, f"{answer!r} is not {self.expected()}."

    def is_right(self, answer: Any, truth: Any) -> bool:
        if self.kind == "number":
            return abs(answer - float(truth)) <= max(self.abs_tol, self.rel_tol * abs(float(truth)))
        return answer == truth

    def feedback(self, answer: Any, truth: Any, context: dict) -> str:
        """The message for a wrong answer: computed advice first, then a known-mistake message."""
        if self.advise is not None:
            message = self.advise(answer, truth, context)
            if message:
                return message
        return self.messages.get(answer if isinstance(answer, str) else "", "")


def register_question(question: Question) -> Question:
    """Add a question (chapter ``exercises`` modules call this at import)."""
    _QUESTIONS[question.id] = question
    return question


def questions(chapter: str | None = None) -> list[str]:
    """Question ids in chapter order; optionally one chapter's."""
    import_exercise_modules()
    return [q for q in _QUESTIONS if chapter is None or q.split(".", 1)[0] == chapter]


def get_question(question_id: str) -> Question:
    import_exercise_modules()
    if question_id not in _QUESTIONS:
        raise KeyError(f"Unknown question {question_id!r}. Known questions: {', '.join(_QUESTIONS)}")
    return _QUESTIONS[question_id]


def _show(text: str) -> None:
    print(text)


def _first(question_id: str) -> Any:
    recorded = progress.load().get("predictions", {}).get(question_id)
    return recorded["first"] if recorded else _session.get(question_id)


def predict(question_id: str, answer: Any) -> None:
    """Record a prediction (the first one counts). Prints what happened; never raises."""
    try:
        question = get_question(question_id)
    except KeyError as exc:
        _show(str(exc.args[0]))
        return
    value, problem = question.parse(answer)
    if problem is not None:
        _show(f"🔮 {question.title} · {problem} {question.prompt}\n   Answer with {question.expected()} and run this "
              "cell again (or run on: the answer is shown all the same).")
        return
    first = _first(question_id)
    if first is not None:
        _show(f"🔮 {question.title} · your first prediction, {first!r}, is the one that counts "
              f"(you have now answered {value!r}).")
        return
    _session[question_id] = value
    progress.record_prediction(question_id, value)
    _show(f"🔮 {question.title} · prediction recorded: {value!r}. The answer comes a few cells below.")


def reveal(question_id: str, truth: Any, **context: Any) -> bool | None:
    """Compare the first prediction with ``truth`` (computed by the notebook) and explain.

    Returns whether the prediction was right (None without one). Prints; never raises.
    """
    try:
        question = get_question(question_id)
        truth_value, problem = question.parse(truth)
        if problem is not None:
            raise ValueError(f"the notebook's truth {truth!r} is not {question.expected()}")
        first = _first(question_id)
        shown = f"{truth_value:.3g}" if question.kind == "number" else repr(truth_value)
        if first is None:
            _show(f"🔮 {question.title} · no prediction made. The answer here: {shown}. {question.explain}".rstrip())
            return None
        right = question.is_right(first, truth_value)
        progress.record_prediction_outcome(question_id, right)
        if right:
            _show(f"🔮 {question.title} · ✓ you predicted {first!r}, and the answer here is {shown}. "
                  f"{question.explain}".rstrip())
        else:
            why = question.feedback(first, truth_value, context)
            _show(f"🔮 {question.title} · ✗ you predicted {first!r}; the answer here is {shown}. {why} "
                  f"{question.explain}".replace("  ", " ").rstrip())
        return right
    except Exception as exc:        # a bug in a question must not stop the learner's notebook
        _show(f"The question {question_id!r} could not be checked ({type(exc).__name__}: {exc}). Please report this.")
        return None


__all__ = ["Question", "register_question", "questions", "get_question", "predict", "reveal"]
