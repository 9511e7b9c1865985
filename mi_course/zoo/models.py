"""One loader for every model the course uses: the shipped zoo and public hub models.

    >>> from mi_course import models
    >>> models.available()                      # shipped names first, then hub names
    >>> model = models.load("attn-only-2l")     # a TransformerBridge, tokenizer attached
    >>> model = models.load("attn-only-2l", checkpoint=models.checkpoints("attn-only-2l")[0])
    >>> model = models.load("gpt2-small")       # needs the Hugging Face hub (or its cache)

Shipped models live in ``mi_course/zoo/data/models/<name>/`` (weights as safetensors,
``config.json``, and ``card.json`` with SHA-256 checksums and measured
metrics). They load offline, and every file is checked against its checksum
first: a damaged or missing file is an error that names the file and says how
to restore it. Hub models are booted with the TransformerLens 4 function
that fits them; when the hub cannot be reached they fail within a few seconds
and name the shipped model to use instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file
from transformer_lens.config import TransformerBridgeConfig
from transformer_lens.model_bridge import TransformerBridge

from ..device import resolve_device

ZOO_DIR = Path(__file__).resolve().parent / "data" / "models"
HUB_TIMEOUT_S = 2.0

__all__ = ["available", "load", "checkpoints", "card", "shipped", "verify", "model_dir", "hub_reachable",
           "HUB_MODELS", "ModelFileError", "HubUnavailableError"]


@dataclass(frozen=True)
class HubModel:
    repo: str          # Hugging Face repository id
    boot: str          # "transformers" (HF format) or "tl_legacy" (TransformerLens' own repos)
    instead: str       # the shipped model that plays the same role offline


HUB_MODELS: dict[str, HubModel] = {
    "gpt2-small": HubModel("openai-community/gpt2", "transformers", "gelu-3l-facts"),
    "pythia-70m": HubModel("EleutherAI/pythia-70m", "transformers", "gelu-3l-facts"),
    "tl-attn-only-2l": HubModel("NeelNanda/Attn_Only_2L", "tl_legacy", "attn-only-2l"),
}


class ModelFileError(RuntimeError):
    """A shipped model's file is missing or does not match its checksum."""


class HubUnavailableError(ConnectionError):
    """A hub model was asked for but the Hugging Face hub cannot be reached."""


# ----------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------

def shipped() -> list[str]:
    """Names of the models shipped inside the package (offline)."""
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "config.json").exists() or (p / "card.json").exists())


def available() -> list[str]:
    """Every name ``load`` accepts: the shipped models, then the hub models (need the hub)."""
    return shipped() + list(HUB_MODELS)


def load(name: str, device: str | torch.device = "auto", checkpoint: int | None = None,
         processed: bool = True) -> TransformerBridge:
    """Load a model by name as a ``TransformerBridge`` with its tokenizer attached.

    name: a shipped name, a hub name (see ``available()``), or the path of a
        local folder in Hugging Face format (loaded like a hub model)
    device: "auto" (CUDA when present), "cpu" or "cuda"
    checkpoint: for shipped models with training checkpoints, the training
        step to load (one of ``checkpoints(name)``); None = final weights
    processed: apply ``enable_compatibility_mode()`` (HookedTransformer's weight
        processing: LayerNorm weights folded into the next layer, writing
        weights and the unembedding centred). The model computes the same
        function either way; set False for the raw trained weights.
    """
    dev = resolve_device(device)
    if name in shipped():
        return _load_shipped(name, dev, checkpoint, processed)
    if name in HUB_MODELS:
        if checkpoint is not None:
            raise ValueError("checkpoint= is only supported for shipped models")
        return _load_hub(name, dev, processed)
    if Path(name).is_dir() and (Path(name) / "config.json").exists():
        return _boot_transformers(str(name), dev, processed)
    raise KeyError(f"Unknown model {name!r}. Available models: {', '.join(available())} "
                   "(or the path of a local Hugging Face model folder).")


# ----------------------------------------------------------------------------
# Shipped models
# ----------------------------------------------------------------------------

def model_dir(name: str) -> Path:
    return ZOO_DIR / name


def card(name: str) -> dict[str, Any]:
    """The model card (architecture, recipe, metrics, checksums) of a shipped model."""
    return json.loads(_required(name, "card.json").read_text())


def checkpoints(name: str) -> list[int]:
    """Training steps of the shipped checkpoints of ``name`` (empty if it has none)."""
    return [int(step) for step in card(name).get("checkpoints", {})]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, files: list[str] | None = None) -> bool:
    """Whether every file of a shipped model (or just ``files``) matches its checksum."""
    try:
        _check_files(name, files)
    except ModelFileError:
        return False
    return True


def _restore_hint(name: str) -> str:
    return (f"Restore it by reinstalling mi-course (`pip install --force-reinstall mi-course`, or "
            f"`git checkout -- mi_course/zoo/data/models/{name}` in a clone), or retrain the model with "
            f"`mi-course train {name}`.")


def _required(name: str, relative: str) -> Path:
    path = model_dir(name) / relative
    if not path.is_file():
        raise ModelFileError(f"The shipped model {name!r} is missing its file {path}. {_restore_hint(name)}")
    return path


def _check_files(name: str, files: list[str] | None = None) -> None:
    expected: dict[str, str] = card(name)["sha256"]
    for relative in files if files is not None else list(expected):
        if relative not in expected:
            raise ModelFileError(f"{relative} of {name!r} has no checksum in card.json. {_restore_hint(name)}")
        path = _required(name, relative)
        if sha256(path) != expected[relative]:
            raise ModelFileError(f"The file {path} of the shipped model {name!r} is corrupted "
                                 f"(its SHA-256 does not match card.json). {_restore_hint(name)}")


def shipped_config(name: str) -> TransformerBridgeConfig:
    """The ``TransformerBridgeConfig`` stored in ``config.json``."""
    cfg = json.loads(_required(name, "config.json").read_text())
    return TransformerBridgeConfig(**cfg)


def _load_shipped(name: str, device: torch.device, checkpoint: int | None, processed: bool) -> TransformerBridge:
    from .tokenizer import load_tokenizer

    if checkpoint is None:
        weights = "model.safetensors"
    else:
        steps = checkpoints(name)
        if checkpoint not in steps:
            raise ValueError(f"{name!r} has no checkpoint at step {checkpoint}; its checkpoints are {steps}")
        weights = card(name)["checkpoints"][str(checkpoint)]["file"]
    _check_files(name, ["config.json", weights])
    cfg = shipped_config(name)
    state = load_file(str(model_dir(name) / weights))
    bridge = TransformerBridge.boot_native(cfg, tokenizer=load_tokenizer(), device=device, model_name=name)
    result = bridge.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if processed:
        bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge.eval()


# ----------------------------------------------------------------------------
# Hub models
# ----------------------------------------------------------------------------

def _connects(timeout: float) -> bool:
    """Whether a TCP connection to the Hugging Face hub (``$HF_ENDPOINT`` if set) opens in time."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub answers within ``timeout`` seconds (False when offline mode is set).

    The check runs in a thread, so a slow DNS lookup cannot make it wait longer.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0") or os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("", "0"):
        return False
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(_connects(timeout)), daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])


def _cached_snapshot(repo: str) -> str | None:
    """The local folder of ``repo`` in the Hugging Face cache, if it was downloaded before."""
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo, "config.json")
    except Exception:
        return None
    return str(Path(path).parent) if isinstance(path, str) else None


def _load_hub(name: str, device: torch.device, processed: bool = True) -> TransformerBridge:
    hub = HUB_MODELS[name]
    if not hub_reachable():
        snapshot = _cached_snapshot(hub.repo) if hub.boot == "transformers" else None
        if snapshot is not None:
            return _boot_transformers(snapshot, device, processed)
        raise HubUnavailableError(
            f"{name!r} ({hub.repo}) must be downloaded from the Hugging Face hub, which cannot be "
            f"reached from here. Use the shipped model {hub.instead!r} instead: "
            f"models.load({hub.instead!r}).")
    if hub.boot == "tl_legacy":  # TransformerLens' own repos (weights as .pth state dicts)
        bridge = TransformerBridge.boot_tl_legacy(hub.repo, device=device)
        bridge.enable_compatibility_mode(disable_warnings=True, no_processing=not processed)
        return bridge.eval()
    return _boot_transformers(hub.repo, device, processed)


def _boot_transformers(repo_or_dir: str, device: torch.device, processed: bool = True) -> TransformerBridge:
    """A Hugging Face-format model (hub id or local folder) with HookedTransformer-style hook names,
    and (``processed``) HookedTransformer's weight processing."""
    bridge = TransformerBridge.boot_transformers(repo_or_dir, device=device)
    bridge.enable_compatibility_mode(disable_warnings=True, no_processing=not processed)
    return bridge.eval()
