"""``mi_course.models``: names, shipped models with checksums, hub models offline, devices.

The shipped-model mechanics are tested on a tiny model trained for a few
steps into a temporary zoo, so they do not depend on which real models are
shipped; the hub path is tested with a tiny GPT-2 saved to a folder.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from mi_course.zoo import models, training as zoo_training
from mi_course.zoo.world import BOS_ID, VOCAB

TINY = zoo_training.Recipe(
    name="tiny-test", chapter="tests", description="a few steps of a tiny model",
    n_layers=2, d_model=32, n_heads=2, d_head=16, n_ctx=112, attn_only=False, d_mlp=64,
    normalization_type="LN", steps=3, batch=4, warmup=1, eval_every=1,
    checkpoint_every=1, n_checkpoints=3,
)


@pytest.fixture(scope="module")
def tiny_zoo(tmp_path_factory):
    zoo = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(zoo_training.RECIPES, TINY.name, TINY)
        zoo_training.train_and_save(TINY.name, zoo / TINY.name, device="cpu", progress=False)
    return zoo


@pytest.fixture
def zoo(tiny_zoo, tmp_path, monkeypatch):
    """A fresh copy of the tiny zoo (tests may damage it) as the package's zoo."""
    copy = tmp_path / "zoo"
    shutil.copytree(tiny_zoo, copy)
    monkeypatch.setattr(models, "ZOO_DIR", copy)
    return copy


def test_available_lists_shipped_and_hub_names(zoo):
    names = models.available()
    assert names[0] == TINY.name
    for hub in ("gpt2-small", "pythia-70m", "tl-attn-only-2l"):
        assert hub in names
    assert "attn-only-2l" not in models.HUB_MODELS  # TransformerLens' model has a distinct name


def test_shipped_model_loads_with_tokenizer(zoo):
    model = models.load(TINY.name, device="cpu")
    assert model.cfg.n_layers == 2 and model.cfg.d_vocab == len(VOCAB)
    assert model.to_tokens("Anna Smith plays")[0, 0].item() == BOS_ID
    assert model.to_str_tokens("Anna Smith plays") == ["<bos>", "Anna", "Smith", "plays"]
    # the loaded weights are the saved ones: same held-out loss as on the card
    from mi_course.zoo import metrics as zoo_metrics

    loss = zoo_metrics.held_out_loss(model, zoo_training.held_out_tokens(TINY, 256))
    assert loss == pytest.approx(models.card(TINY.name)["metrics"]["held_out_loss"], abs=1e-4)
    assert models.verify(TINY.name)


def test_checkpoints_load(zoo):
    steps = models.checkpoints(TINY.name)
    assert len(steps) == 3 and steps[0] == 0
    first = models.load(TINY.name, device="cpu", checkpoint=steps[0])
    last = models.load(TINY.name, device="cpu")
    assert not torch.allclose(first.W_E, last.W_E)
    with pytest.raises(ValueError, match="no checkpoint"):
        models.load(TINY.name, device="cpu", checkpoint=12345)


def test_corrupted_weights_name_the_file_and_the_fix(zoo):
    path = zoo / TINY.name / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not models.verify(TINY.name)
    with pytest.raises(models.ModelFileError) as err:
        models.load(TINY.name, device="cpu")
    message = str(err.value)
    assert str(path) in message and "corrupted" in message
    assert f"mi-course train {TINY.name}" in message and "reinstall" in message


@pytest.mark.parametrize("relative", ["model.safetensors", "config.json", "card.json"])
def test_missing_file_names_the_file_and_the_fix(zoo, relative):
    (zoo / TINY.name / relative).unlink()
    with pytest.raises(models.ModelFileError) as err:
        models.load(TINY.name, device="cpu")
    assert relative in str(err.value) and f"mi-course train {TINY.name}" in str(err.value)


def test_unknown_name_lists_the_available_names(zoo):
    with pytest.raises(KeyError) as err:
        models.load("no-such-model")
    for name in models.available():
        assert name in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error(zoo):
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        models.load(TINY.name, device="cuda")


def test_auto_picks_cuda_when_present(zoo, monkeypatch):
    assert next(models.load(TINY.name).parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.resolve_device("auto").type == "cuda"


def test_hub_names_fail_fast_offline_and_name_the_shipped_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_cached_snapshot", lambda repo: None)  # as on a machine that never downloaded it
    for name, hub in models.HUB_MODELS.items():
        with pytest.raises(models.HubUnavailableError) as err:
            models.load(name, device="cpu")
        assert repr(hub.instead) in str(err.value) and hub.repo in str(err.value)
        assert hub.instead in zoo_training.RECIPES  # the stand-in is one of the course's own models


def test_hub_reachable_is_false_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.hub_reachable() is False
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert models.hub_reachable(timeout=0.5) is False


def test_hub_path_with_a_local_gpt2(tiny_gpt2, monkeypatch):
    """The code path of hub names (reachability check, boot_transformers, compatibility mode)."""
    folder, hf = tiny_gpt2
    monkeypatch.setitem(models.HUB_MODELS, "tiny-gpt2", models.HubModel(str(folder), "transformers", TINY.name))
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=models.HUB_TIMEOUT_S: True)
    for model in (models.load("tiny-gpt2", device="cpu"), models.load(str(folder), device="cpu")):
        tokens = model.to_tokens("Anna Smith plays the sport of")
        assert tokens[0, 0].item() == BOS_ID
        with torch.no_grad():
            ours = torch.log_softmax(model(tokens), -1)
            theirs = torch.log_softmax(hf(tokens).logits, -1)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
        _, cache = model.run_with_cache(tokens)
        assert cache["blocks.1.attn.hook_pattern"].shape == (1, 2, tokens.shape[1], tokens.shape[1])


def test_offline_hub_name_uses_the_local_cache_when_present(tiny_gpt2, monkeypatch):
    folder, _ = tiny_gpt2
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_cached_snapshot", lambda repo: str(folder))
    assert models.load("gpt2-small", device="cpu").cfg.n_layers == 2


def test_transformer_lens_legacy_names_boot_through_boot_tl_legacy(monkeypatch):
    """TransformerLens' own repos are not in HF format: their name must reach boot_tl_legacy
    (faked here, offline) with the repo id, and come back in compatibility mode."""
    calls = []

    class Fake:
        def enable_compatibility_mode(self, **kwargs):
            calls.append("compat")

        def eval(self):
            return self

    def fake_boot(repo, device=None):
        calls.append(repo)
        return Fake()

    monkeypatch.setattr(models, "hub_reachable", lambda timeout=models.HUB_TIMEOUT_S: True)
    monkeypatch.setattr(models.TransformerBridge, "boot_tl_legacy", staticmethod(fake_boot))
    monkeypatch.setattr(models, "_boot_transformers", lambda *a, **k: pytest.fail("HF boot used"))
    assert isinstance(models.load("tl-attn-only-2l", device="cpu"), Fake)
    assert calls == [models.HUB_MODELS["tl-attn-only-2l"].repo, "compat"]
