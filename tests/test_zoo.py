"""The shipped zoo has the circuits the chapters teach, recomputed from the shipped weights.

A model that is not shipped (yet) is skipped with the reason; nothing here
trains. Every number is recomputed from the weights, and the model card is
checked against the recomputation, so a card cannot claim what the weights
do not do.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mi_course.zoo import metrics as zm, models, training as zoo_training
from mi_course.cli import main
from mi_course.zoo.world import World

FACTS_MODEL = "gelu-3l-facts"
MB = 1024 * 1024


def _load(name: str, **kwargs):
    if name not in models.shipped():
        pytest.skip(f"{name} is not shipped yet (train it with `mi-course train {name}`)")
    return models.load(name, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def two_layer():
    model = _load("attn-only-2l")
    return model, zm.induction_circuit(model)


def test_every_shipped_model_verifies_and_is_small():
    names = models.shipped()
    if not names:
        pytest.skip("no shipped models yet")
    total = 0
    for name in names:
        assert models.verify(name), name
        folder = models.model_dir(name)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        assert size <= 8 * MB, f"{name}: {size / MB:.1f} MB"
        total += size
        card = models.card(name)
        for key in ("held_out_loss", "prev_token_scores", "induction_scores", "loss_first_copy",
                    "loss_second_copy", "fact_recall", "training_tokens", "training_seconds"):
            assert key in card["metrics"], (name, key)
        assert 0.0 <= card["metrics"]["fact_recall"]["accuracy"] <= 1.0, name
        assert set(card["sha256"]) >= {"model.safetensors", "config.json"}
    assert total <= 40 * MB


def test_attn_only_2l_has_a_previous_token_head_and_an_induction_head(two_layer):
    _, m = two_layer
    assert max(m["prev_token_scores"][0]) > 0.4
    assert max(m["induction_scores"][1]) > 0.4
    assert m["loss_second_copy"] <= 0.25 * m["loss_first_copy"]


def test_attn_only_2l_k_composition_beats_random_matrices(two_layer):
    _, m = two_layer
    best = max(m["k_composition"].values())
    assert best > m["k_composition_random_p95"], (m["k_composition"], m["k_composition_random_p95"])


def test_attn_only_2l_ablating_the_induction_heads_breaks_copying(two_layer):
    _, m = two_layer
    assert m["loss_second_copy_induction_heads_ablated"] - m["loss_second_copy"] >= 2.0


def test_attn_only_2l_card_matches_the_weights(two_layer):
    _, m = two_layer
    card = models.card("attn-only-2l")["metrics"]
    for key in ("loss_first_copy", "loss_second_copy", "loss_second_copy_induction_heads_ablated"):
        assert card[key] == pytest.approx(m[key], abs=1e-3), key
    assert card["induction_heads"] == m["induction_heads"] and card["prev_token_head"] == m["prev_token_head"]


def test_attn_only_1l_has_no_induction_head():
    model = _load("attn-only-1l")
    report = zm.induction_report(model)
    assert max(max(row) for row in report["induction_scores"]) <= 0.2
    assert report["loss_second_copy"] > 0.5 * report["loss_first_copy"]  # it cannot copy the repeat


def test_checkpoints_span_the_induction_phase_change():
    _load("attn-only-2l")
    steps = models.checkpoints("attn-only-2l")
    assert len(steps) >= 8 and steps == sorted(steps)
    scores = []
    for step in steps:
        model = models.load("attn-only-2l", device="cpu", checkpoint=step)
        scores.append(max(zm.induction_report(model)["induction_scores"][1]))
        card_score = models.card("attn-only-2l")["checkpoints"][str(step)]["best_induction_score_layer1"]
        assert card_score == pytest.approx(scores[-1], abs=1e-3)
    assert scores[0] < 0.1 and scores[-1] > 0.4, scores
    assert sum(0.1 <= s <= 0.4 for s in scores[1:-1]) >= 2, scores


@pytest.fixture(scope="module")
def facts():
    model = _load(FACTS_MODEL)
    return zm.fact_recall(model, World(models.card(FACTS_MODEL)["recipe"]["world_seed"]))


def test_facts_model_recalls_sports(facts):
    assert facts["n_people"] >= 300
    assert facts["accuracy"] >= 0.90


def test_facts_model_needs_its_mlps(facts):
    assert facts["mlp_ablated_accuracy"] <= facts["chance"] + 0.15


def test_facts_model_lookup_needs_both_names(facts):
    assert facts["first_swapped_accuracy"] <= facts["chance"] + 0.20
    assert facts["last_swapped_accuracy"] <= facts["chance"] + 0.20


def test_facts_model_card_matches_the_weights(facts):
    card = models.card(FACTS_MODEL)["metrics"]["fact_recall"]
    for key, value in facts.items():
        assert card[key] == pytest.approx(value, abs=1e-6), key


# ----------------------------------------------------------------------------
# Training (tiny smoke runs only)
# ----------------------------------------------------------------------------

TINY = dataclasses.replace(zoo_training.RECIPES["attn-only-2l"], name="tiny-smoke", d_model=32, n_heads=2,
                           d_head=16, n_ctx=112, steps=4, batch=4, warmup=2, eval_every=2,
                           checkpoint_every=2, n_checkpoints=3)


def test_training_is_deterministic():
    a = zoo_training.train(TINY, device="cpu", progress=False)
    with torch.no_grad():  # as in a chapter notebook, which switches autograd off: training still trains
        b = zoo_training.train(TINY, device="cpu", progress=False)
    assert a.state_dict.keys() == b.state_dict.keys()
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    assert not torch.equal(a.state_dict["embed.weight"], a.checkpoints[0]["embed.weight"])  # it did train
    assert [row["held_out_loss"] for row in a.history] == [row["held_out_loss"] for row in b.history]


def test_train_command_writes_a_loadable_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(zoo_training.RECIPES, TINY.name, TINY)
    assert main(["train", TINY.name, "--out", str(tmp_path / TINY.name), "--device", "cpu"]) == 0
    assert str(tmp_path / TINY.name) in capsys.readouterr().out
    folder = tmp_path / TINY.name
    for name in ("model.safetensors", "config.json", "card.json", "loss_curve.json", "loss_curve.png"):
        assert (folder / name).is_file(), name
    monkeypatch.setattr(models, "ZOO_DIR", tmp_path)
    assert models.verify(TINY.name) and len(models.checkpoints(TINY.name)) == 3
    assert models.load(TINY.name, device="cpu").cfg.n_layers == 2
    assert main(["train", "no-such-model"]) == 2
