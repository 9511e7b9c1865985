"""Predict, then check: the first prediction is recorded, graded against the notebook's truth, and taught on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import torch

from mi_course import progress
from mi_course.checks import prediction as P
from mi_course.checks import questions
from mi_course.course import CHAPTERS

REPO = Path(__file__).resolve().parents[1]

CHOICE = P.Question(id="99.choice", title="A choice", prompt="Which?", choices=["red", "green", "blue"],
                    messages={"red": "Red is what the eye notices first."}, explain="Blue, because of scattering.")
NUMBER = P.Question(id="99.number", title="A number", prompt="How many?", kind="number", rel_tol=0.1)
NAME = P.Question(id="99.name", title="A path", prompt="Which path?", kind="name", pattern=r"L\d+H\d+→L\d+H\d+",
                  advise=lambda answer, truth, context: "That is the previous-token head's path."
                  if answer.startswith(f"L0H{context.get('prev_head')}→") else None)


@pytest.fixture(autouse=True)
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, str(tmp_path / "progress.json"))
    monkeypatch.setattr(P, "_session", {})
    for q in (CHOICE, NUMBER, NAME):
        monkeypatch.setitem(P._QUESTIONS, q.id, q)


def test_a_right_first_prediction_is_recorded_and_confirmed(capsys):
    P.predict("99.choice", " Blue ")
    assert "recorded: 'blue'" in capsys.readouterr().out
    assert P.reveal("99.choice", "blue") is True
    out = capsys.readouterr().out
    assert "✓" in out and "scattering" in out
    assert progress.predictions()["99.choice"]["first"] == "blue"
    assert progress.predictions()["99.choice"]["right"] is True


def test_only_the_first_prediction_counts(capsys):
    P.predict("99.choice", "red")
    P.predict("99.choice", "blue")
    assert "first prediction, 'red', is the one that counts" in capsys.readouterr().out
    assert P.reveal("99.choice", "blue") is False
    out = capsys.readouterr().out
    assert "✗" in out and "Red is what the eye notices first." in out and "scattering" in out
    assert progress.predictions()["99.choice"] == {**progress.predictions()["99.choice"], "first": "red", "right": False}
    P.reveal("99.choice", "red")                   # a second reveal does not rewrite the outcome
    assert progress.predictions()["99.choice"]["right"] is False


@pytest.mark.parametrize("bad", [None, ..., "purple", 3, ["blue"], torch.tensor(1.0)])
def test_a_malformed_choice_is_explained_and_not_recorded(bad, capsys):
    P.predict("99.choice", bad)
    out = capsys.readouterr().out
    assert "'red', 'green', 'blue'" in out and "recorded" not in out
    assert "99.choice" not in progress.predictions()


def test_numbers_are_right_within_the_tolerance_and_a_near_miss_is_wrong():
    P.predict("99.number", torch.tensor(0.19))
    assert P.reveal("99.number", 0.177) is True     # within 10%
    P._session.clear()
    progress.save(progress._empty())
    P.predict("99.number", 0.2)
    assert P.reveal("99.number", 0.177) is False    # 13% off: a near miss does not pass


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, "0.2", torch.ones(3)])
def test_a_malformed_number_is_not_recorded(bad, capsys):
    P.predict("99.number", bad)
    assert "recorded" not in capsys.readouterr().out
    assert "99.number" not in progress.predictions()


def test_names_are_normalised_and_advice_uses_the_notebooks_context(capsys):
    P.predict("99.name", "l0h2 -> l1h0")
    assert progress.predictions()["99.name"]["first"] == "L0H2→L1H0"
    assert P.reveal("99.name", "L0H1→L1H0", prev_head=2) is False
    assert "previous-token head" in capsys.readouterr().out
    P.predict("99.name", "head two")               # already recorded: stays
    assert progress.predictions()["99.name"]["first"] == "L0H2→L1H0"


def test_reveal_without_a_prediction_shows_the_answer_and_never_raises(capsys):
    assert P.reveal("99.choice", "green") is None
    assert "no prediction made. The answer here: 'green'" in capsys.readouterr().out
    assert P.reveal("99.choice", "not a choice") is None     # a broken notebook truth: reported, not raised
    assert "could not be checked" in capsys.readouterr().out
    assert P.reveal("99.unknown", "x") is None
    P.predict("99.unknown", "x")
    assert "Unknown question" in capsys.readouterr().out


def test_a_progress_file_from_before_predictions_still_loads(tmp_path):
    old = tmp_path / "progress.json"
    old.write_text(json.dumps({"version": 1, "passed": {"01.embed": {"first_passed": "2026-01-01T00:00:00"}}}))
    assert progress.passed(old) == {"01.embed"} and progress.predictions(old) == {}
    progress.record_prediction("01.who_writes_the_sport", "the MLPs", old)
    assert progress.passed(old) == {"01.embed"}
    assert progress.predictions(old)["01.who_writes_the_sport"]["right"] is None


def test_every_questions_messages_name_valid_answers():
    for qid in questions():
        q = P.get_question(qid)
        assert q.prompt and q.title, qid
        for answer in q.messages:
            assert q.parse(answer) == (answer, None), (qid, answer)
        if q.kind == "choice":
            assert len(q.choices) >= 2 and len(set(c.lower() for c in q.choices)) == len(q.choices), qid


READY = [ch for ch in CHAPTERS if (REPO / "solutions" / ch.notebook).exists()]


@pytest.mark.parametrize("chapter", READY, ids=[ch.number for ch in READY])
def test_each_question_is_predicted_before_it_is_revealed(chapter):
    """In the learner's notebook every question of the chapter is asked (with no answer filled in) in a cell
    before the one that reveals it, and nothing else is predicted or revealed."""
    nb = nbformat.read(REPO / "chapters" / chapter.notebook, as_version=4)
    asked, revealed = {}, {}
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for qid in re.findall(r'predict\("([^"]+)"', cell.source):
            asked[qid] = i
            assert re.search(r"^\w+ = None\b", cell.source, re.M), (qid, "the learner's answer starts empty")
        for qid in re.findall(r'reveal\("([^"]+)"', cell.source):
            revealed[qid] = i
    assert set(asked) == set(revealed) == set(questions(chapter.number))
    assert all(asked[q] < revealed[q] for q in asked), (asked, revealed)
