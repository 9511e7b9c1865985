"""The progress file: atomic writes, recovery from corruption, the table and the widget."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from mi_course import checks, dashboard, progress
from mi_course.course import CHAPTERS


@pytest.fixture
def path(tmp_path, monkeypatch):
    p = tmp_path / "sub" / "progress.json"
    monkeypatch.setenv(progress.ENV_VAR, str(p))
    return p


def test_environment_variable_sets_the_path(path):
    assert progress.progress_path() == path


def test_record_creates_folders_and_keeps_first_pass_time(path):
    progress.record_pass("03.tms_loss")
    first = json.loads(path.read_text())["passed"]["03.tms_loss"]["first_passed"]
    progress.record_pass("03.tms_loss")
    assert json.loads(path.read_text())["passed"]["03.tms_loss"]["first_passed"] == first
    assert progress.passed() == {"03.tms_loss"}


def test_writes_leave_no_temporary_files(path):
    for ex in ("03.tms_loss", "03.tms_forward", "03.generate_batch"):
        progress.record_pass(ex)
    assert sorted(os.listdir(path.parent)) == ["progress.json"]


def test_a_failed_write_keeps_the_old_file(path, monkeypatch):
    progress.record_pass("03.tms_loss")
    before = path.read_text()

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(progress.json, "dump", broken_dump)
    with pytest.warns(UserWarning, match="disk full"):
        progress.record_pass("03.tms_forward")
    assert path.read_text() == before
    assert sorted(os.listdir(path.parent)) == ["progress.json"]


@pytest.mark.parametrize("garbage", ["{not json", "[1, 2]", '{"passed": 3}', "\udcff"])
def test_corrupted_file_is_backed_up_and_progress_restarts(path, garbage):
    path.parent.mkdir(parents=True)
    path.write_text(garbage, errors="surrogateescape")
    with pytest.warns(UserWarning, match="unreadable"):
        assert progress.passed() == set()
    backups = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(backups) == 1 and not path.exists()
    progress.record_pass("03.tms_loss")        # and recording works again
    assert progress.passed() == {"03.tms_loss"}


def test_table_has_a_row_per_chapter_with_counts(path):
    progress.record_pass("03.tms_loss")
    progress.record_pass("03.tms_forward")
    table = dashboard.table()
    row = next(line for line in table.splitlines() if line.startswith("03 "))
    assert "Toy models of superposition" in row and " 2/12" in row


def test_table_counts_predictions_made_and_right(path):
    progress.record_prediction("03.dense_features", 2.0)
    progress.record_prediction_outcome("03.dense_features", True)
    progress.record_prediction("03.least_important_feature", "it grows")
    progress.record_prediction_outcome("03.least_important_feature", False)
    row = next(line for line in dashboard.table().splitlines() if line.startswith("03 "))
    assert row.endswith(f"2/{len(checks.questions('03'))}, 1 right")


def test_widget_shows_the_same_counts(path):
    progress.record_pass("03.tms_loss")
    box = dashboard.widget()
    bars = [child.children[0] for child in box.children if hasattr(child, "children") and child.children]
    expected = [(ch.number, int(ch.number == "03"), len(checks.exercises(ch.number)))
                for ch in CHAPTERS if checks.exercises(ch.number) and ch.status == "ready"]
    assert ("03", 1, 12) in expected
    assert [(b.description, b.value, b.max) for b in bars] == expected


def test_an_empty_file_is_empty_progress_not_corruption(path):
    path.parent.mkdir(parents=True)
    path.write_text("")  # what `mktemp` leaves
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert progress.passed() == set()
    progress.record_pass("03.tms_loss")
    assert progress.passed() == {"03.tms_loss"}


VERSION_1 = {"version": 1,
             "passed": {"03.tms_loss": {"first_passed": "2026-11-02T10:00:00"}, "P1": {"first_passed": "2026-11-03T09:00:00"}},
             "predictions": {"03.dense_features": {"first": 2.0, "at": "2026-11-02T09:58:00", "right": True}}}


def test_a_version_1_file_loads_and_keeps_its_passes_when_attempts_are_added(path):
    """Files written before attempts were counted: same passes and predictions; old passes stay 'unknown'."""
    from mi_course import classroom

    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(VERSION_1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert progress.passed() == {"03.tms_loss", "P1"}
        assert progress.predictions()["03.dense_features"]["right"] is True
        assert progress.activity() == {}
    progress.record_attempt("03.tms_loss", True)          # checked again after the upgrade
    progress.record_attempt("03.tms_forward", False)
    data = json.loads(path.read_text())
    assert data["version"] == progress.FORMAT_VERSION == 2
    assert data["passed"] == {**VERSION_1["passed"]} and data["predictions"] == VERSION_1["predictions"]
    assert "attempts_to_pass" not in data["activity"]["03.tms_loss"]      # its attempts before are unknown
    exported = classroom.export_data()
    assert exported["exercises"]["03.tms_loss"] == {"attempts": None, "hints": 0, "passed": True,
                                                   "first_try": None, "seconds_to_pass": None}
    assert exported["exercises"]["03.tms_forward"]["first_try"] is False
    assert exported["puzzles"]["P1"]["passed"] is True


def test_attempts_hints_and_time_to_pass(path, monkeypatch):
    clock = iter([100.2, 130.0, 145.4, 200.0])
    monkeypatch.setattr(progress, "_now", lambda: next(clock))
    progress.record_attempt("03.tms_loss", False)
    progress.record_hint("03.tms_loss", 2)
    progress.record_hint("03.tms_loss", 1)                 # an earlier hint again: the record keeps the highest
    progress.record_attempt("03.tms_loss", False)
    progress.record_attempt("03.tms_loss", True)
    progress.record_attempt("03.tms_loss", True)           # checked again later: the first pass's numbers stay
    entry = progress.activity()["03.tms_loss"]
    assert (entry["attempts"], entry["attempts_to_pass"], entry["hints"], entry["seconds_to_pass"]) == (4, 3, 2, 45)
    assert progress.passed() == {"03.tms_loss"}
    assert sorted(os.listdir(path.parent)) == ["progress.json"]          # atomic writes leave nothing behind


@pytest.mark.parametrize("activity", [5, {"03.tms_loss": "x"}, {"03.tms_loss": {"attempts": "many", "hints": None}}])
def test_a_malformed_activity_record_is_replaced_not_fatal(path, activity):
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 2, "passed": {}, "activity": activity}))
    progress.record_attempt("03.tms_loss", False)
    progress.record_hint("03.tms_loss", 1)
    entry = progress.activity()["03.tms_loss"]
    assert entry["attempts"] == 1 and entry["hints"] == 1


def test_recording_an_attempt_never_raises(path, monkeypatch):
    def broken_dump(*args, **kwargs):
        raise TypeError("not serialisable")
    monkeypatch.setattr(progress.json, "dump", broken_dump)
    with pytest.warns(UserWarning, match="not serialisable"):
        progress.record_attempt("03.tms_loss", True)
        progress.record_hint("03.tms_loss", 1)
    assert not path.exists()
