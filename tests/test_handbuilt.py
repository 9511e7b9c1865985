"""Chapter 04's hand-built induction circuit: the model, the reference heads, and the two checks' verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mi_course import checks
from mi_course.checks.prediction import get_question, predict, reveal
from mi_course.induction import handbuilt as hb
from mi_course.induction import handbuilt_exercises as hx
from mi_course.induction import head_scores
from mi_course.induction.handbuilt import Head, Layout

PREV, IND = "04.handbuilt_previous_token", "04.handbuilt_induction"
ref0, ref1 = hb.reference_previous_token_head, hb.reference_induction_head


@pytest.fixture(autouse=True)
def no_learner_previous_head():
    """The induction check remembers a passing previous-token head; every test starts without one."""
    hx._passed_previous.clear()
    yield
    hx._passed_previous.clear()


def test_the_subspaces_tile_the_residual_stream():
    layout = Layout(vocab=7, n_ctx=5)
    bases = [layout.basis(name) for name in hb.SUBSPACES]
    assert layout.d_model == 3 * 7 + 5 == sum(b.shape[1] for b in bases)
    stacked = torch.cat(bases, dim=1)
    assert torch.equal(stacked, torch.eye(layout.d_model))          # orthonormal and covering
    assert layout.token == slice(0, 7) and layout.position == slice(7, 12)
    assert layout.previous_token == slice(12, 19) and layout.output == slice(19, 26)
    x = torch.randn(layout.d_model)
    assert torch.equal(x @ layout.basis("position"), x[layout.position])
    with pytest.raises(KeyError):
        layout.basis("mlp")


def test_repeated_tokens_are_two_copies_of_distinct_tokens():
    layout = Layout()
    tokens = hb.repeated_tokens(layout, 10, batch=16, seed=3)
    assert tokens.shape == (16, 21) and (tokens[:, 0] == hb.BOS).all()
    assert torch.equal(tokens[:, 1:11], tokens[:, 11:])
    assert all(len(set(row[1:11].tolist())) == 10 for row in tokens)
    assert (tokens[:, 1:] > 0).all() and (tokens < layout.vocab).all()
    assert torch.equal(tokens, hb.repeated_tokens(layout, 10, batch=16, seed=3))
    assert not torch.equal(tokens, hb.repeated_tokens(layout, 10, batch=16, seed=4))
    with pytest.raises(ValueError):
        hb.repeated_tokens(layout, 11)          # 1 + 2 * 11 positions do not fit n_ctx = 21


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reference_circuit_predicts_the_second_copy_and_nothing_of_the_first(seed):
    layout = Layout()
    tokens = hb.repeated_tokens(layout, 10, batch=64, seed=seed)
    logits, patterns = hb.forward(layout, [ref0(layout), ref1(layout)], tokens)
    assert logits.shape == (64, 21, layout.vocab) and patterns.shape == (2, 64, 1, 21, 21)
    assert torch.allclose(patterns.sum(-1), torch.ones(2, 64, 1, 21))
    assert hb.second_copy_accuracy(logits, tokens, 10) >= 0.99
    assert hb.first_copy_accuracy(logits, tokens, 10) <= 1 / (layout.vocab - 1)   # at most chance (it is 0 here)
    assert head_scores.prev_token_scores(patterns)[0, 0] > 0.99
    assert head_scores.induction_scores(patterns, 10)[1, 0] > 0.99


def test_a_soft_induction_head_still_predicts_the_second_copy():
    """What the notebook's second question reveals: a small stripe share, and still a top-1 hit everywhere."""
    layout = Layout()
    for seed in range(4):
        tokens = hb.repeated_tokens(layout, 10, batch=64, seed=seed)
        logits, patterns = hb.forward(layout, [ref0(layout), ref1(layout, scale=1.0)], tokens)
        assert head_scores.induction_scores(patterns, 10)[1, 0] < 0.25
        assert hb.second_copy_accuracy(logits, tokens, 10) > 0.9


def test_the_references_pass():
    result = checks.run(IND, ref1)
    assert result.passed and "the reference previous-token head" in result.message, result.message
    result = checks.run(PREV, ref0)
    assert result.passed and "puts 100% of its attention on the previous token" in result.message, result.message


def test_the_induction_check_uses_the_learners_previous_token_head_once_it_passed():
    def previous_token_head(layout):
        return ref0(layout, scale=10.0)
    assert checks.run(PREV, previous_token_head).passed
    assert "your previous-token head (it passed" in checks.run(IND, ref1).message
    # a later failing version of it is no longer used
    assert not checks.run(PREV, lambda layout: ref0(layout)._replace(W_Q=10 * layout.basis("position"))).passed
    assert "reference previous-token head (yours has not passed" in checks.run(IND, ref1).message


def _shift(layout: Layout, k: int) -> torch.Tensor:
    return torch.diag(torch.ones(layout.n_ctx - abs(k)), -k)


def _positional_induction(layout: Layout) -> Head:
    """Attends 9 positions back by position: right for n = 10 only."""
    E = layout.basis("position")
    return ref1(layout)._replace(W_Q=20 * E @ _shift(layout, 9), W_K=E)


PREVIOUS_MISTAKES = [
    ("attends to the current token", lambda L: ref0(L)._replace(W_Q=20 * L.basis("position")), "query's own position"),
    ("two back", lambda L: ref0(L)._replace(W_Q=20 * L.basis("position") @ _shift(L, 2)), "two positions back"),
    ("shifted towards the future", lambda L: ref0(L)._replace(W_Q=20 * L.basis("position") @ _shift(L, -1)),
     "a key after the query is masked"),
    ("too soft", lambda L: ref0(L, scale=1.0), "but softly"),
    ("writes into output", lambda L: ref0(L)._replace(W_O=L.basis("output").T), "writes mostly into the `output`"),
    ("reads an empty subspace", lambda L: ref0(L)._replace(W_V=L.basis("previous_token")), "writes nothing"),
    ("writes the wrong token", lambda L: ref0(L)._replace(W_V=-L.basis("token")), "but not the one-hot of the token"),
    ("also writes into output", lambda L: ref0(L)._replace(W_O=(L.basis("previous_token") + L.basis("output")).T),
     "but also into `output`"),
]

INDUCTION_MISTAKES = [
    ("duplicate-token head (offset -n)", lambda L: ref1(L)._replace(W_K=L.basis("token")), "key = query - n"),
    ("copies the current token", lambda L: ref1(L)._replace(W_V=L.basis("previous_token")),
     "predicts the current token again"),
    ("writes into previous_token", lambda L: ref1(L)._replace(W_O=L.basis("previous_token").T),
     "writes mostly into the `previous_token`"),
    ("too soft", lambda L: ref1(L, scale=0.3), "but softly"),
    ("attends by position", _positional_induction, "attends by position, not by content"),
    ("attends to itself", lambda L: ref1(L)._replace(W_Q=20 * L.basis("previous_token")), "query's own position"),
]


@pytest.mark.parametrize("label, head, phrase", PREVIOUS_MISTAKES, ids=[m[0] for m in PREVIOUS_MISTAKES])
def test_a_broken_previous_token_head_fails_with_its_own_message(label, head, phrase):
    result = checks.run(PREV, head)
    assert not result.passed and phrase in result.message, result.message


@pytest.mark.parametrize("label, head, phrase", INDUCTION_MISTAKES, ids=[m[0] for m in INDUCTION_MISTAKES])
def test_a_broken_induction_head_fails_with_its_own_message(label, head, phrase):
    result = checks.run(IND, head)
    assert not result.passed and phrase in result.message, result.message


def _stub(layout):
    raise NotImplementedError("your code here")


BAD_ANSWERS = [
    ("stub", _stub, "not implemented yet"),
    ("raises", lambda L: 1 / 0, "ZeroDivisionError"),
    ("returns None", lambda L: None, "forget a `return`"),
    ("not a head", lambda L: L.basis("token"), "Return Head("),
    ("a dict without W_O", lambda L: {"W_Q": 1, "W_K": 1, "W_V": 1}, "no W_O"),
    ("numpy arrays", lambda L: tuple(m.numpy() for m in ref0(L)), "not a torch tensor"),
    ("sizes of the notebook's layout", lambda L: ref0(Layout()), "Build the matrices from `layout`"),
    ("3-D", lambda L: ref0(L)._replace(W_Q=ref0(L).W_Q[None]), "2-D"),
    ("d_head mismatch", lambda L: ref0(L)._replace(W_K=L.basis("token")), "same d_head"),
    ("NaN", lambda L: ref0(L)._replace(W_V=ref0(L).W_V * float("nan")), "W_V contains NaN"),
    ("complex", lambda L: ref0(L)._replace(W_O=ref0(L).W_O.to(torch.complex64)), "real numbers"),
    ("not a function", 42, "Pass your function itself"),
]


@pytest.mark.parametrize("exercise", [PREV, IND])
@pytest.mark.parametrize("label, answer, phrase", BAD_ANSWERS, ids=[b[0] for b in BAD_ANSWERS])
def test_bad_answers_fail_with_a_message_and_never_raise(exercise, label, answer, phrase):
    result = checks.run(exercise, answer)
    assert not result.passed and phrase in result.message, result.message


def test_infinite_weights_and_overflowing_scores_are_reported():
    result = checks.run(PREV, lambda L: ref0(L, scale=1e39))                 # inf in float32
    assert not result.passed and "W_Q contains NaN or inf" in result.message, result.message
    result = checks.run(PREV, lambda L: ref0(L, scale=1e30)._replace(W_K=1e30 * L.basis("position")))   # scores 1e60
    assert not result.passed and "overflow" in result.message, result.message


def test_dicts_and_float64_are_accepted():
    assert checks.run(PREV, lambda L: {k: v.double() for k, v in ref0(L)._asdict().items()}).passed


@pytest.fixture
def fresh_predictions(tmp_path, monkeypatch):
    from mi_course.checks import prediction
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "p.json"))
    monkeypatch.setattr(prediction, "_session", {})


def test_the_questions_teach_on_the_likely_wrong_answers(fresh_predictions, capsys):
    assert get_question("04.handbuilt_first_copy").kind == "number"
    predict("04.handbuilt_first_copy", 1 / 23)                       # chance: the natural guess
    assert reveal("04.handbuilt_first_copy", 0.0, chance=1 / 23) is False
    assert "It does not guess" in capsys.readouterr().out
    predict("04.handbuilt_soft_induction", 0.15)                     # the stripe's share, taken for the accuracy
    assert reveal("04.handbuilt_soft_induction", 1.0) is False
    assert "Top-1 only needs the right token" in capsys.readouterr().out


def test_right_predictions_are_recognised(fresh_predictions):
    predict("04.handbuilt_first_copy", 0)
    assert reveal("04.handbuilt_first_copy", 0.0, chance=1 / 23) is True
    predict("04.handbuilt_soft_induction", 0.98)
    assert reveal("04.handbuilt_soft_induction", 1.0) is True
