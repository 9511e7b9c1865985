"""The exercise grader.

In a notebook, an exercise is checked with one call next to it::

    feature_dimensionality = check(feature_dimensionality)

``check`` shows a pass/fail message, records the attempt (and a pass) in your progress file and
returns the function the rest of the notebook should use: yours once it
passes, the reference implementation until then (so later cells still run).

Tests and tools use the programmatic API: :func:`exercises` lists exercise
ids and :func:`run` returns a :class:`Result` without ever raising.
"""

from __future__ import annotations

from typing import Any

from .. import progress
from ..course import import_exercise_modules
from .exercise import Exercise, registry
from .prediction import predict, questions, reveal
from .result import Result

_hints_shown: dict[str, int] = {}
NOT_STARTED = "The exercise is not implemented yet"     # how sandbox.py reports a stub (not counted as an attempt)


def _load() -> dict[str, Exercise]:
    """Import every chapter's ``exercises`` module (found through the course map); they register on import."""
    import_exercise_modules()
    return registry()


def exercises(chapter: str | None = None) -> list[str]:
    """Exercise ids (e.g. ``"03.tms_forward"``), in chapter order; optionally one chapter's."""
    ids = list(_load())
    return [i for i in ids if chapter is None or i.split(".", 1)[0] == chapter]


def get(exercise_id: str) -> Exercise:
    """The :class:`Exercise` with this id; ``KeyError`` listing the ids if unknown."""
    reg = _load()
    if exercise_id not in reg:
        raise KeyError(f"Unknown exercise {exercise_id!r}. Known exercises: {', '.join(reg)}")
    return reg[exercise_id]


def run(exercise_id: str, learner_object: Any) -> Result:
    """Check ``learner_object`` against exercise ``exercise_id``. Never raises."""
    try:
        exercise = get(exercise_id)
    except KeyError as exc:
        return Result(str(exercise_id), False, str(exc.args[0]))
    try:
        passed, message = exercise.evaluate(learner_object)
    except BaseException as exc:  # a bug in a judge must not crash the learner's notebook
        passed, message = False, f"The grader itself failed ({type(exc).__name__}: {exc}). Please report this."
    if not passed and exercise.hints:
        message += f"\nStuck? hint({exercise_id!r}) shows hint 1 of {len(exercise.hints)}."
    return Result(exercise.id, passed, message)


def _resolve_id(learner_object: Any, exercise_id: str | None) -> str | None:
    if exercise_id is not None:
        return exercise_id
    name = getattr(learner_object, "__name__", None)
    matches = [i for i in exercises() if i.split(".", 1)[1] == name]
    return matches[0] if len(matches) == 1 else None


def _show(obj: Any) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(obj)
            return
    except ImportError:
        pass
    print(obj)


def check(learner_object: Any, exercise_id: str | None = None) -> Any:
    """Check an exercise in a notebook; show the verdict; return what later cells should use.

    ``exercise_id`` may be left out when the object is a function named like
    the exercise. Returns ``learner_object`` when it passes, otherwise the
    reference (with a note saying so).
    """
    ex_id = _resolve_id(learner_object, exercise_id)
    if ex_id is None:
        _show(Result("?", False, "Could not tell which exercise this is; pass its id, e.g. "
                     f"check(my_function, {exercises()[0]!r})."))
        return learner_object
    result = run(ex_id, learner_object)
    if result.passed or NOT_STARTED not in result.message:     # running the untouched stub is not an attempt
        progress.record_attempt(ex_id, result.passed)
    if result.passed:
        _show(result)
        return learner_object
    _show(Result(result.exercise_id, False, result.message
                 + "\nUntil it passes, the cells below use the reference implementation."))
    try:
        return get(ex_id).reference
    except KeyError:
        return learner_object


def hint(exercise_id: str) -> None:
    """Show the next hint for an exercise (each call reveals one more)."""
    try:
        exercise = get(exercise_id)
    except KeyError as exc:
        print(exc.args[0])
        return
    if not exercise.hints:
        print(f"No hints for {exercise_id}.")
        return
    shown = _hints_shown.get(exercise_id, 0)
    k = min(shown, len(exercise.hints) - 1)
    _hints_shown[exercise_id] = shown + 1
    progress.record_hint(exercise_id, k + 1)
    print(f"💡 Hint {k + 1}/{len(exercise.hints)} for {exercise_id}: {exercise.hints[k]}")


__all__ = ["Result", "exercises", "run", "check", "hint", "get", "predict", "reveal", "questions"]
