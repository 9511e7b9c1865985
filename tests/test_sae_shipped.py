"""The SAE chapter 05 ships: checksummed, loadable offline, its card recomputed from the shipped weights,
and retrainable with `mi-course train` (smoke-tested on a tiny recipe)."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from mi_course.cli import main
from mi_course.sae import recipes
from mi_course.zoo import models

NAME = "sae-facts-l0"


@pytest.fixture(scope="module")
def shipped():
    if NAME not in recipes.shipped():
        pytest.fail(f"{NAME} is not shipped: run `mi-course train {NAME}`")
    return recipes.load(NAME)


def test_the_shipped_sae_loads_with_its_checksums(shipped):
    sae, cfg = shipped
    recipe = recipes.RECIPES[NAME]
    assert (sae.d_sae, cfg["hook_name"], cfg["model_name"]) == (recipe.d_sae, recipe.hook, recipe.model)
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(sae.d_sae), atol=1e-4)   # unit-norm decoder rows


def test_a_damaged_file_is_named(tmp_path):
    copy = tmp_path / NAME
    shutil.copytree(recipes.DATA_DIR / NAME, copy)
    weights = copy / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(models.ModelFileError, match="sae_weights.safetensors"):
        recipes.load(NAME, copy)


@pytest.mark.slow
def test_the_card_is_recomputed_from_the_shipped_weights(shipped):
    sae, _ = shipped
    card = recipes.card(NAME)["metrics"]
    now = recipes.measure(sae, recipes.RECIPES[NAME])
    assert now["l0"] == pytest.approx(card["l0"], rel=1e-3)
    assert now["variance_explained"] == pytest.approx(card["variance_explained"], abs=1e-3)
    assert now["ce_loss"]["recovered"] == pytest.approx(card["ce_loss"]["recovered"], abs=1e-3)
    assert now["sports_with_a_clean_feature"] == card["sports_with_a_clean_feature"]
    # what the chapter claims: a good SAE, and a feature for every sport word
    assert now["variance_explained"] > 0.8 and now["ce_loss"]["recovered"] > 0.9
    assert all(m["auroc"] > 0.9 for m in now["sport_features"].values())


def test_mi_course_train_writes_a_loadable_sae(tmp_path, monkeypatch, capsys):
    tiny = dataclasses.replace(recipes.RECIPES[NAME], name="sae-tiny", d_sae=64, steps=30, train_rows=8, batch_size=64)
    monkeypatch.setitem(recipes.RECIPES, tiny.name, tiny)
    monkeypatch.setattr(recipes, "measure", lambda sae, recipe, **kw: {"l0": 0.0})   # metrics are tested above
    assert main(["train", tiny.name, "--out", str(tmp_path / tiny.name)]) == 0
    sae, cfg = recipes.load(tiny.name, tmp_path / tiny.name)
    assert sae.d_sae == 64 and cfg["hook_name"] == tiny.hook
    assert main(["train", "no-such-thing"]) == 2
    assert "sae-facts-l0" in capsys.readouterr().err
