"""Exercise definitions: what a learner must produce and how the grader judges it.

A :class:`FunctionExercise` compares the learner's function with a reference
implementation on several seeded random inputs and edge cases, and recognises
known mistakes by running small "wrong" implementations on the same inputs.
A :class:`CustomExercise` judges with its own function (for random outputs or
plain values). Chapters that need another kind (e.g. judged on gradients too) subclass
:class:`FunctionExercise` with :func:`clone_args`, :func:`changed_in_place` and :func:`arg_names`.
"""

from __future__ import annotations

import copy
import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..seed import stream
from .compare import describe_mismatch, values_match
from .sandbox import DEFAULT_TIMEOUT_S, call_with_timeout


@dataclass
class Case:
    """One set of inputs, with a label the learner will read (e.g. "an all-zero column in W")."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = "a random input"


@dataclass
class Mistake:
    """A known wrong answer: ``fn`` computes it; ``message`` explains the fix."""

    fn: Callable[..., Any]
    message: str


@dataclass
class Exercise:
    """Base class: an id like ``"03.tms_forward"``, a title, progressive hints and a
    reference (the object used downstream in a notebook while the learner's fails)."""

    id: str
    title: str
    hints: list[str]
    reference: Any

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]

    def evaluate(self, learner: Any) -> tuple[bool, str]:
        raise NotImplementedError

    def seed(self) -> int:
        """A seed fixed per exercise, so a check gives the same verdict on every run."""
        return zlib.crc32(self.id.encode())


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    """Seeded Gaussian test inputs for an exercise's cases: ``scale * N(0, 1)`` of ``shape``."""
    return torch.randn(*shape, generator=gen) * scale


def clone_args(obj: Any) -> Any:
    """A deep copy of a case's arguments (tensors detached), so that each call gets its own."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, (tuple, list)):
        return type(obj)(clone_args(o) for o in obj)
    if isinstance(obj, dict):
        return {k: clone_args(v) for k, v in obj.items()}
    try:
        return copy.deepcopy(obj)
    except Exception:
        return obj


def changed_in_place(before: Any, after: Any) -> bool:
    """Whether a call modified its arguments (tensors, and tensors inside tuples, lists and dicts)."""
    if isinstance(before, torch.Tensor):
        return not (isinstance(after, torch.Tensor) and after.shape == before.shape
                    and torch.equal(after.detach(), before.detach()))
    if isinstance(before, (tuple, list)):
        return any(changed_in_place(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return (not isinstance(after, dict) or set(before) != set(after)
                or any(changed_in_place(before[k], after[k]) for k in before))
    return False


def arg_names(fn: Callable, n: int) -> list[str]:
    """The names of ``fn``'s first ``n`` parameters, for messages ("your function changed `x`")."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(n)]


@dataclass
class FunctionExercise(Exercise):
    """Learner writes a function; it must match ``reference`` on every case from ``cases``."""

    cases: Callable[[torch.Generator], list[Case]] = lambda gen: []
    mistakes: list[Mistake] = field(default_factory=list)
    atol: float = 1e-5
    rtol: float = 1e-4
    timeout: float = DEFAULT_TIMEOUT_S

    def evaluate(self, learner: Any) -> tuple[bool, str]:
        if not callable(learner):
            return False, f"Pass your function itself (e.g. `{self.name}`), not {type(learner).__name__}."
        cases = self.cases(stream(self.seed(), "check.cases"))
        for case in cases:
            verdict = self._evaluate_case(learner, case)
            if verdict is not None:
                return False, verdict
        return True, f"{self.title}: matches the reference on all {len(cases)} test cases (random inputs and edge cases)."

    def _evaluate_case(self, learner: Callable, case: Case) -> str | None:
        expected = self.reference(*clone_args(case.args), **clone_args(case.kwargs))
        args, kwargs = clone_args(case.args), clone_args(case.kwargs)
        outcome = call_with_timeout(learner, args, kwargs, self.timeout)
        if outcome.error:
            return f"On {case.label}: {outcome.error}"
        for name, before, after in zip(arg_names(self.reference, len(args)), case.args, args):
            if changed_in_place(before, after):
                return (f"Your function changed its input `{name}` in place (on {case.label}). "
                        "In-place operations such as `x /= ...`, `x[...] = ...` or `x.relu_()` modify the "
                        "caller's tensor; compute a new tensor instead.")
        problem = describe_mismatch(outcome.value, expected, atol=self.atol, rtol=self.rtol)
        if problem is None:
            return None
        for mistake in self.mistakes:
            try:
                wrong = mistake.fn(*clone_args(case.args), **clone_args(case.kwargs))
            except Exception:
                continue
            if values_match(outcome.value, wrong, atol=self.atol, rtol=self.rtol):
                return f"{mistake.message}\n(On {case.label}: {problem})"
        return f"On {case.label}: {problem}"


@dataclass
class CustomExercise(Exercise):
    """Judged by ``judge(learner) -> (passed, message)``; for random outputs or plain values."""

    judge: Callable[[Any], tuple[bool, str]] = lambda learner: (False, "no judge")

    def evaluate(self, learner: Any) -> tuple[bool, str]:
        return self.judge(learner)


def call_answer_function(learner: Any, name: str, timeout: float = 60) -> tuple[Any, str | None]:
    """Call a learner's no-argument answer function (e.g. ``find_heads``), for judges that grade what it returns.

    Returns (its value, None), or (None, a message for the learner) when it is not a function or fails.
    """
    if not callable(learner):
        return None, f"Pass your function `{name}` itself (it returns the model, the data and your answer)."
    out = call_with_timeout(learner, timeout=timeout)
    return (None, out.error) if out.error else (out.value, None)


_REGISTRY: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (chapter modules call this at import)."""
    _REGISTRY[exercise.id] = exercise
    return exercise


def registry() -> dict[str, Exercise]:
    return _REGISTRY
