"""Claims (mi_course.claims): one line per claim in the notebook; a false one fails under test."""

from __future__ import annotations

import json

import pytest
import torch

from mi_course.claims import ClaimFailed, claim, evaluate


@pytest.mark.parametrize("value, condition, holds, shown", [
    (torch.tensor([70.2, 72.9, 71.5]), dict(between=(65, 79)), True, "70°–73°"),
    (torch.tensor([70.2, 80.1]), dict(between=(65, 79)), False, "70°–80°"),
    ([0.93, 0.97], dict(above=0.9), True, "0.93–0.97"),
    (0.87, dict(above=0.9), False, "0.87"),
    (0.9, dict(above=0.9), False, "0.9"),                    # above is strict
    (3, dict(equals=1), False, "3"),
    (float("nan"), dict(below=1.0), False, "nan"),
])
def test_numeric_claims(value, condition, holds, shown):
    fmt = "{:.0f}°" if "between" in condition else "{:.3g}"
    result = evaluate("the claim", value, fmt=fmt, **condition)
    assert (result.holds, result.shown) == (holds, shown)
    assert str(result) == f"{'✓' if holds else '✗'} the claim ({shown})"


def test_boolean_and_exact_claims():
    assert str(evaluate("the hidden layer is linear", True)) == "✓ the hidden layer is linear"
    assert not evaluate("every head agrees", torch.tensor([True, False])).holds
    assert evaluate("the top head is L1H3", "L1H3", equals="L1H3").holds
    assert not evaluate("the represented features are 0 and 1", [0, 2], equals=[0, 1]).holds
    with pytest.raises(TypeError, match="one condition"):
        evaluate("x", 1.0, above=0, below=2)


def test_claim_prints_one_line_and_fails_only_in_strict_mode(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("MI_COURSE_CLAIMS", raising=False)
    monkeypatch.setenv("MI_COURSE_CLAIMS_LOG", str(tmp_path / "claims.jsonl"))
    claim("loss recovered is above 0.9", 0.87, above=0.9)           # a learner's notebook never crashes
    assert capsys.readouterr().out == "✗ loss recovered is above 0.9 (0.87)\n"
    monkeypatch.setenv("MI_COURSE_CLAIMS", "strict")
    claim("loss recovered is above 0.9", 0.95, above=0.9)
    with pytest.raises(ClaimFailed, match="0.87"):
        claim("loss recovered is above 0.9", 0.87, above=0.9)
    logged = [json.loads(line) for line in (tmp_path / "claims.jsonl").read_text().splitlines()]
    assert [c["holds"] for c in logged] == [False, True, False]


def test_claims_written_for_another_model_report_but_never_raise(monkeypatch, capsys):
    from mi_course import claims

    monkeypatch.setenv("MI_COURSE_CLAIMS", "strict")
    claims.written_for("gelu-3l-facts", "gpt2-small")
    try:
        claim("MLP0 contributes most", "MLP1", equals="MLP0")           # no raise: the prose is about another model
        assert "✗ MLP0 contributes most (MLP1)" in capsys.readouterr().out
    finally:
        claims.written_for("gelu-3l-facts", "gelu-3l-facts")
    assert capsys.readouterr().out == ""                                # nothing to say on the model it describes
    with pytest.raises(ClaimFailed):
        claim("MLP0 contributes most", "MLP1", equals="MLP0")
