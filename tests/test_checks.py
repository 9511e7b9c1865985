"""The grader: every exercise passes on its solution and fails on its stub, with messages that teach."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mi_course import checks, progress
from mi_course import superposition as tms
from mi_course.checks.sandbox import call_with_timeout
from mi_course.course import CHAPTERS

from exercise_cells import exercise_objects

REPO = Path(__file__).resolve().parents[1]


def test_exercises_are_listed_in_chapter_order():
    ids = checks.exercises("03")
    assert ids[:3] == ["03.generate_batch", "03.tms_forward", "03.tms_loss"]
    assert len(ids) == len(set(ids)) == 12
    assert set(ids) <= set(checks.exercises())


SOLVED = [ch for ch in CHAPTERS if (REPO / "solutions" / ch.notebook).exists()]


@pytest.mark.parametrize("chapter", SOLVED, ids=[ch.number for ch in SOLVED])
def test_every_solution_passes(repo, chapter):
    objects = exercise_objects(repo / "solutions" / chapter.notebook)
    ids = {explicit or f"{chapter.number}.{name}" for explicit, name, _ in objects}
    assert ids == set(checks.exercises(chapter.number))
    for explicit, name, obj in objects:
        result = checks.run(explicit or f"{chapter.number}.{name}", obj)
        assert result.passed, (name, result.message)


@pytest.mark.parametrize("chapter", SOLVED, ids=[ch.number for ch in SOLVED])
def test_every_stub_fails_with_a_not_implemented_message(repo, chapter):
    objects = exercise_objects(repo / "chapters" / chapter.notebook)
    ids = {explicit or f"{chapter.number}.{name}" for explicit, name, _ in objects}
    assert ids == set(checks.exercises(chapter.number))
    for explicit, name, obj in objects:
        result = checks.run(explicit or f"{chapter.number}.{name}", obj)
        assert not result.passed, name
        if callable(obj):
            assert "not implemented yet" in result.message, result.message


def test_every_known_mistake_fails_with_its_own_message():
    """Each Mistake an exercise lists is recognised on the exercise's own cases (in every chapter)."""
    listed = 0
    for ex_id in checks.exercises():
        exercise = checks.get(ex_id)
        for mistake in getattr(exercise, "mistakes", []):
            result = checks.run(ex_id, mistake.fn)
            assert not result.passed and mistake.message in result.message, (ex_id, mistake.message, result.message)
            listed += 1
    assert listed >= 20


def test_references_pass_their_own_checks():
    for ex_id in checks.exercises():
        reference = checks.get(ex_id).reference
        if reference is None:  # the answer depends on the notebook's model (e.g. 04.find_heads): tested there
            continue
        assert checks.run(ex_id, reference).passed, ex_id


@pytest.mark.parametrize("learner, expected", [
    (lambda W: W.norm(dim=-2).numpy(), "numpy array"),
    (lambda W: None, "forget a `return`"),
    (lambda W: W.shape[-2] / W.pow(2).sum(), "shape ()"),
    (lambda W: (W.shape[-2] / W.pow(2).sum(dim=(-2, -1))).double(), "dtype torch.float64"),
    (lambda W: W.shape[-2] / W.pow(2).sum(dim=(-2, -1)) * float("nan"), "contains NaN"),
    (lambda W: W.shape[-2] / W.pow(2).sum(dim=(-2, -1)) + 0.1, "is off at index (0,)"),
    (lambda W: W.shape[-1] / W.pow(2).sum(dim=(-2, -1)), "number of *features*"),
])
def test_messages_name_the_problem(learner, expected):
    result = checks.run("03.dimensions_per_feature", learner)
    assert not result.passed
    assert expected in result.message, result.message


def test_value_mismatch_reports_expected_got_and_tolerance():
    result = checks.run("03.tms_loss", lambda out, x, imp: (imp * (x - out) ** 2).sum(-1).mean(0) * 1.01)
    assert "expected" in result.message and "got" in result.message and "tolerance" in result.message


@pytest.mark.parametrize("exercise, wrong, phrase", [
    ("03.tms_forward", lambda W, b, x: torch.relu(torch.einsum("ihf,bih->bif", W, torch.einsum("ihf,bif->bih", W, x))),
     "bias b is missing"),
    ("03.tms_forward", lambda W, b, x: torch.einsum("ihf,bih->bif", W, torch.relu(torch.einsum("ihf,bif->bih", W, x))) + b,
     "ReLU is applied in the wrong place"),
    ("03.tms_loss", lambda out, x, imp: ((x - out) ** 2).sum(-1).mean(0), "importance weighting is missing"),
    ("03.feature_dimensionality", lambda W: W.pow(2).sum(-2) / torch.einsum("ihf,ihg->ifg", W, W).pow(2).sum(-1),
     "unit vector"),
    ("03.adjacent_angles", lambda d: torch.deg2rad(tms.adjacent_angles(d)), "radians"),
])
def test_known_mistakes_get_their_own_message(exercise, wrong, phrase):
    result = checks.run(exercise, wrong)
    assert not result.passed and phrase in result.message, result.message


def test_swapped_sparsity_in_the_generator_is_recognised():
    def swapped(batch_size, n_features, p):
        shape = (batch_size, p.shape[0], n_features)
        return torch.rand(shape) * (torch.rand(shape) < (1 - p)[:, None])
    result = checks.run("03.generate_batch", swapped)
    assert not result.passed and "other way round" in result.message


def test_exception_is_reported_from_the_learners_frame():
    def feature_dimensionality(W):
        norms = W.norm(dim=-2)
        return norms @ torch.zeros(3, 3, 3, 3, 3)     # a shape error inside torch
    result = checks.run("03.feature_dimensionality", feature_dimensionality)
    assert not result.passed
    assert "in feature_dimensionality" in result.message
    assert "return norms @ torch.zeros" in result.message
    assert "exercise.py" not in result.message and "sandbox.py" not in result.message


def test_input_mutation_is_detected():
    def in_place(W):
        W /= W.norm(dim=-2, keepdim=True)
        return tms.dimensions_per_feature(W)
    result = checks.run("03.dimensions_per_feature", in_place)
    assert not result.passed and "changed its input `W` in place" in result.message


def test_a_hanging_function_is_stopped(monkeypatch):
    monkeypatch.setattr(checks.get("03.tms_loss"), "timeout", 0.5)

    def hangs(out, x, imp):
        while True:
            pass
    result = checks.run("03.tms_loss", hangs)
    assert not result.passed and "did not finish within 0.5 s" in result.message


def test_a_hanging_function_is_stopped_off_the_main_thread():
    import threading
    box = {}

    def hangs():
        while True:
            pass

    thread = threading.Thread(target=lambda: box.update(out=call_with_timeout(hangs, timeout=0.3)))
    thread.start()
    thread.join(5)
    assert box["out"].timed_out
    # the runaway loop is stopped, not left spinning (it would hold the GIL for the rest of the session)
    assert not [t for t in threading.enumerate() if t.name == "mi-course-learner-call"]


@pytest.mark.parametrize("learner", [None, 42, "text", np.zeros(3), lambda *a: 1 / 0,
                                     lambda *a: (_ for _ in ()).throw(SystemExit(1)),
                                     lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())])
def test_run_never_raises(learner):
    for ex_id in checks.exercises():
        result = checks.run(ex_id, learner)
        assert isinstance(result, checks.Result) and not result.passed and result.message


def test_unknown_exercise_lists_the_known_ones():
    result = checks.run("99.nope", lambda: 0)
    assert not result.passed and "03.tms_forward" in result.message


def test_check_returns_the_reference_until_the_learner_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "p.json"))

    def dimensions_per_feature(W):
        raise NotImplementedError("your code here")
    used = checks.check(dimensions_per_feature)
    assert used is tms.dimensions_per_feature
    assert "not yet" in capsys.readouterr().out
    assert progress.passed() == set()

    def dimensions_per_feature(W):  # noqa: F811 - the learner fixes the cell and reruns it
        return W.shape[-2] / W.pow(2).sum(dim=(-2, -1))
    assert checks.check(dimensions_per_feature) is dimensions_per_feature
    assert progress.passed() == {"03.dimensions_per_feature"}
    assert json.loads((tmp_path / "p.json").read_text())["passed"]["03.dimensions_per_feature"]


def test_hints_are_progressive(capsys):
    checks.hint("03.feature_dimensionality")
    checks.hint("03.feature_dimensionality")
    out = capsys.readouterr().out
    assert "Hint 1/3" in out and "Hint 2/3" in out


def _near_miss(x):
    """``x`` with every float moved by 3% of itself plus 1% of its mean size (what a slightly wrong formula,
    a missing epsilon or a wrong constant gives); other values unchanged."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x * 1.03 + 0.01 * (x.abs().mean() + 1e-3)
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return x * 1.03 + 0.01 * (np.abs(x).mean() + 1e-3)
    if isinstance(x, float):
        return x * 1.03 + 0.01
    if isinstance(x, (tuple, list)):
        return type(x)(_near_miss(v) for v in x)
    if isinstance(x, dict):
        return {k: _near_miss(v) for k, v in x.items()}
    return x


def _has_floats(x) -> bool:
    if isinstance(x, torch.Tensor):
        return x.is_floating_point() and x.numel() > 0
    if isinstance(x, np.ndarray):
        return np.issubdtype(x.dtype, np.floating) and x.size > 0
    if isinstance(x, (tuple, list)):
        return any(_has_floats(v) for v in x)
    if isinstance(x, dict):
        return any(_has_floats(v) for v in x.values())
    return isinstance(x, float)


def test_a_near_miss_of_every_function_exercise_fails():
    """Every exercise graded against a reference function rejects answers that are 3% off (on every chapter):
    its tolerance is for rounding, not for a nearly right formula."""
    import functools

    from mi_course.checks.exercise import FunctionExercise, clone_args
    from mi_course.seed import stream

    tried = []
    for ex_id in checks.exercises():
        exercise = checks.get(ex_id)
        if not isinstance(exercise, FunctionExercise) or exercise.reference is None:
            continue
        reference = exercise.reference
        cases = exercise.cases(stream(exercise.seed(), "check.cases"))
        if not any(_has_floats(reference(*clone_args(c.args), **clone_args(c.kwargs))) for c in cases):
            continue                                         # nothing continuous to be near (ids, booleans, counts)
        learner = functools.wraps(reference)(lambda *a, _ref=reference, **k: _near_miss(_ref(*a, **k)))
        assert not checks.run(ex_id, learner).passed, f"{ex_id} passes an answer 3% off"
        tried.append(ex_id)
    assert len(tried) >= 40
