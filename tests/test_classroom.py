"""What the room is doing: attempts, hints and predictions recorded by real checks, anonymous exports, and
the class report built from them (its numbers match what the learners did; bad input is refused clearly)."""

from __future__ import annotations

import getpass
import inspect
import json
import re
import socket
import warnings
from pathlib import Path

import pytest

from mi_course import checks, classroom, progress
from mi_course import superposition as tms
from mi_course.checks import prediction as P
from mi_course.cli import main
from mi_course.embeddings import answers

DIMS, LOSS = "03.dimensions_per_feature", "03.tms_loss"
QUESTION = "03.least_important_feature"


def dimensions_per_feature(W):
    raise NotImplementedError("your code here")          # the stub, as a learner first runs it


def wrong_dims(W):
    return W.shape[-1] / W.pow(2).sum(dim=(-2, -1))       # a known mistake: the number of features on top


def wrong_loss(out, x, imp):
    return ((x - out) ** 2).sum(-1).mean(0)               # a known mistake: importance missing


class Learner:
    """One learner: their own progress file and a clock of their own (seconds since they started)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch):
        self.file = folder / "progress.json"
        self.monkeypatch = monkeypatch
        self.t = 1_000_000.0

    def __enter__(self) -> "Learner":
        self.monkeypatch.setenv(progress.ENV_VAR, str(self.file))
        self.monkeypatch.setattr(progress, "_now", lambda: self.t)
        self.monkeypatch.setattr(checks, "_hints_shown", {})          # a fresh kernel
        self.monkeypatch.setattr(P, "_session", {})
        self.monkeypatch.setattr(answers, "_HINTS_SHOWN", {})
        return self

    def __exit__(self, *exc) -> None:
        pass

    def wait(self, seconds: float) -> None:
        self.t += seconds


def run_the_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> list[Path]:
    """Three learners run real checks, hints, a prediction and a puzzle answer; each exports. Returns the
    export files (in one folder), after checking that every check still printed its verdict."""
    exports = tmp_path / "handed-in"
    exports.mkdir()
    with Learner(tmp_path / "ada", monkeypatch) as a:
        checks.check(dimensions_per_feature)                  # the untouched stub: not an attempt
        a.wait(30)
        checks.check(wrong_dims, DIMS)                        # attempt 1, fails
        checks.hint(DIMS)
        a.wait(60)
        checks.check(tms.dimensions_per_feature, DIMS)        # attempt 2, passes 60 s after the first
        checks.check(tms.tms_loss, LOSS)                      # first try
        checks.predict(QUESTION, "it grows")
        checks.reveal(QUESTION, "it shrinks or drops out")    # wrong
        assert answers.check_answer("P1", "-4.75").status == "wrong"   # a wrong puzzle answer
        answers.hint("P1")
        assert main(["progress", "--export", str(exports / "ada.json")]) == 0
    with Learner(tmp_path / "bo", monkeypatch) as b:
        checks.check(tms.dimensions_per_feature, DIMS)        # first try
        checks.check(wrong_loss, LOSS)
        checks.hint(LOSS)
        checks.hint(LOSS)
        b.wait(200)
        checks.check(tms.tms_loss, LOSS)                      # passes on attempt 2, after 200 s
        checks.predict(QUESTION, "it shrinks or drops out")
        checks.reveal(QUESTION, "it shrinks or drops out")    # right
        classroom.write_export(exports / "bo.json")
    with Learner(tmp_path / "cy", monkeypatch) as c:
        for _ in range(3):
            checks.check(wrong_dims, DIMS)
            c.wait(100)
        checks.check(tms.dimensions_per_feature, DIMS)        # attempt 4, 300 s after the first
        checks.check(wrong_loss, LOSS)                        # gives up on the loss
        classroom.write_export(exports / "cy.json")
    out = capsys.readouterr().out
    assert out.count("✅ passed") == 5 and out.count("❌ not yet") == 7   # every check showed its verdict
    return sorted(exports.iterdir())


@pytest.fixture
def room(tmp_path, monkeypatch, capsys) -> list[Path]:
    return run_the_room(tmp_path, monkeypatch, capsys)


def test_the_progress_file_counts_what_the_learner_did(room, tmp_path):
    ada = progress.activity(tmp_path / "ada" / "progress.json")
    assert ada[DIMS]["attempts"] == 2 and ada[DIMS]["attempts_to_pass"] == 2 and ada[DIMS]["hints"] == 1
    assert ada[DIMS]["seconds_to_pass"] == 60
    assert ada[LOSS]["attempts_to_pass"] == 1 and ada[LOSS]["seconds_to_pass"] == 0
    assert ada["P1"]["attempts"] == 1 and ada["P1"]["hints"] == 1 and "attempts_to_pass" not in ada["P1"]
    bo = progress.activity(tmp_path / "bo" / "progress.json")
    assert bo[LOSS]["hints"] == 2 and bo[LOSS]["attempts_to_pass"] == 2 and bo[LOSS]["seconds_to_pass"] == 200


def test_an_export_holds_counts_only(room, tmp_path):
    ada = json.loads(room[0].read_text())
    assert set(ada) == {"schema", "schema_version", "export_id", "course_version", "exercises", "puzzles",
                        "predictions"}
    assert ada["exercises"][DIMS] == {"attempts": 2, "hints": 1, "passed": True, "first_try": False,
                                      "seconds_to_pass": 60}
    assert ada["puzzles"] == {"P1": {"attempts": 1, "hints": 1, "passed": False, "first_try": False,
                                     "seconds_to_pass": None}}
    assert ada["predictions"] == {QUESTION: {"right": False}}
    assert len({json.loads(p.read_text())["export_id"] for p in room}) == 3


def test_an_export_holds_no_path_name_code_answer_or_clock_time(room, tmp_path):
    text = "\n".join(p.read_text() for p in room)
    for p in room:                                  # random hex could spell anything short
        text = text.replace(json.loads(p.read_text())["export_id"], "")
    forbidden = [str(tmp_path), tmp_path.name, "progress.json", socket.gethostname(),
                 "W.pow(2).sum", inspect.getsource(tms.tms_loss).splitlines()[-1].strip(),   # code
                 "it grows", "4.75", "first_attempt", "first_passed"]                     # answers, times
    user = getpass.getuser()
    forbidden += [user] if len(user) > 2 else []
    for word in forbidden:
        assert word not in text, word
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d", text)           # no date or clock time
    assert not re.search(r"\d{9,}", text)                                # no epoch seconds


def test_the_class_report_matches_what_the_room_did(room, tmp_path, capsys):
    rows, learners, skipped = classroom.class_report([room[0].parent])
    assert learners == 3 and skipped == []
    by = {r.item: r for r in rows}
    assert [r.item for r in rows] == [i for i in classroom.course_order() if i in by]     # course order
    assert [r.item for r in rows].index(QUESTION) > [r.item for r in rows].index(DIMS) and rows[-1].item == "P1"
    dims, loss, q, p1 = by[DIMS], by[LOSS], by[QUESTION], by["P1"]
    assert (dims.tried, dims.pass_rate, dims.first_try_rate, dims.median_attempts) == (3, 1.0, 1 / 3, 2)
    assert (dims.hint_rate, dims.median_seconds_to_pass) == (1 / 3, 60)           # medians of (60, 0, 300)
    assert (loss.tried, loss.pass_rate, loss.first_try_rate, loss.median_attempts) == (3, 2 / 3, 1 / 3, 1)
    assert (loss.hint_rate, loss.median_hints, loss.median_seconds_to_pass) == (1 / 3, 0, 100)
    assert (q.tried, q.reached, q.right_rate, q.pass_rate) == (2, 2 / 3, 0.5, None)
    assert (p1.tried, p1.pass_rate, p1.hint_rate) == (1, 0.0, 1.0)
    assert dims.flags == [] and p1.flags == []            # P1: one learner is below min_learners
    frame = classroom.to_dataframe(rows)
    assert list(frame["item"]) == [r.item for r in rows] and frame.loc[frame["item"] == DIMS, "tried"].item() == 3


def test_flags_say_where_the_room_stalls(room):
    rows, _, _ = classroom.class_report(room, min_learners=1)
    by = {r.item: r for r in rows}
    assert by["P1"].flags == ["under half pass", "most need hints"]
    assert by[DIMS].flags == []
    slow = classroom.Row("x", "exercise", 4, 1.0, pass_rate=0.25, median_attempts=5, hint_rate=0.75,
                         median_seconds_to_pass=900)
    assert classroom.stall_flags(slow) == ["under half pass", "many attempts", "most need hints", "slow"]
    assert classroom.stall_flags(classroom.Row("q", "question", 3, 1.0, right_rate=0.2)) == ["most predicted wrong"]


def test_class_report_command_prints_and_writes_table_and_figure(room, tmp_path, capsys):
    figure, table = tmp_path / "room.png", tmp_path / "room.csv"
    assert main(["class-report", str(room[0].parent), "--figure", str(figure), "--csv", str(table)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(DIMS))
    assert line.split()[2:8] == ["3/3", "100%", "33%", "2", "33%", "1m00s"]
    assert figure.read_bytes()[:4] == b"\x89PNG"
    csv_rows = table.read_text().splitlines()
    assert csv_rows[0].startswith("item,kind,tried") and len(csv_rows) == 1 + 4


def test_a_stub_check_is_not_an_attempt_and_a_broken_progress_file_never_stops_a_check(tmp_path, monkeypatch,
                                                                                          capsys):
    with Learner(tmp_path, monkeypatch):
        checks.check(dimensions_per_feature)
        assert progress.activity() == {}
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        monkeypatch.setenv(progress.ENV_VAR, str(blocker / "progress.json"))   # its folder cannot be made
        with pytest.warns(UserWarning, match="Could not save progress"):
            assert checks.check(tms.dimensions_per_feature, DIMS) is tms.dimensions_per_feature
            checks.hint(DIMS)
            answers.check_answer("P1", "0.5")
    out = capsys.readouterr().out
    assert "✅ passed [03.dimensions_per_feature]" in out and "Hint 1/1" in out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not JSON"),
    ('{"name": "a foreign file"}', "not an mi-course export"),
    ("[1, 2, 3]", "not an mi-course export"),
    ('{"version": 2, "passed": {}}', "a progress file, not an export"),
])
def test_a_bad_file_among_good_ones_is_skipped_and_named(room, content, reason, capsys):
    bad = room[0].parent / "bad.json"
    bad.write_text(content)
    before = _files(room[0].parent)
    assert main(["class-report", str(room[0].parent)]) == 1
    captured = capsys.readouterr()
    assert "3 learners" in captured.out and f"skipped {bad}: {reason}" in captured.err
    assert "Traceback" not in captured.err
    assert _files(room[0].parent) == before


def test_another_schema_version_and_a_duplicate_are_skipped(room, capsys):
    future = json.loads(room[0].read_text())
    future.update(schema_version=2, export_id="another")
    (room[0].parent / "future.json").write_text(json.dumps(future))
    (room[0].parent / "copy.json").write_text(room[1].read_text())     # handed in twice
    assert main(["class-report", str(room[0].parent)]) == 1
    captured = capsys.readouterr()
    assert "3 learners" in captured.out
    assert "schema version 2; this mi-course reads version 1" in captured.err
    assert "same export_id" in captured.err


@pytest.mark.parametrize("record, problem", [
    ({"attempts": "2", "hints": 0, "passed": True, "first_try": None, "seconds_to_pass": None}, "attempts"),
    ({"attempts": 2, "hints": -1, "passed": True, "first_try": None, "seconds_to_pass": None}, "hints"),
    ({"attempts": 2, "hints": 0, "passed": 1, "first_try": None, "seconds_to_pass": None}, "passed"),
    ({"attempts": 2, "hints": 0, "passed": True, "first_try": None, "seconds_to_pass": None, "name": "x"}, "fields"),
])
def test_a_malformed_item_is_refused(record, problem):
    data = {"schema": classroom.SCHEMA, "schema_version": 1, "export_id": "x", "course_version": "0",
            "exercises": {DIMS: record}, "puzzles": {}, "predictions": {}}
    with pytest.raises(classroom.ExportError, match=problem):
        classroom.validate(data)


def test_nothing_usable_is_a_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["class-report", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no usable exports" in err and "a folder with no .json files" in err and "Traceback" not in err
    (empty / "broken.json").write_text("{")
    assert main(["class-report", str(empty), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "not JSON" in err and "no such file or folder" in err
    assert (empty / "broken.json").read_text() == "{"


def test_outputs_never_overwrite_an_export_or_a_progress_file(room, tmp_path, capsys):
    before = _files(tmp_path)
    assert main(["class-report", str(room[0].parent), "--csv", str(room[0])]) == 2
    assert "would overwrite one of the exports" in capsys.readouterr().err
    progress_file = tmp_path / "ada" / "progress.json"
    assert main(["progress", "--export", str(progress_file)]) == 2
    assert "not an mi-course export; not overwriting it" in capsys.readouterr().err
    assert _files(tmp_path) == before
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["progress", "--export", str(room[0])]) == 0     # a new export may replace an old one
    assert json.loads(room[0].read_text())["schema"] == classroom.SCHEMA
