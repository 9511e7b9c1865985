"""Our SAEs in SAELens's on-disk format, read and written without the package.

SAELens (6.x) keeps an SAE in a folder with two files:

- ``cfg.json``: ``d_in``, ``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``,
  ``normalize_activations``, ``reshape_activations``, ``architecture`` (``"standard"`` for
  ReLU(W_enc x + b_enc)) and a ``metadata`` dict (``model_name``, ``hook_name``, versions, ...).
  Configs written before 6.0 are flat and say ``hook_point`` instead of ``hook_name``;
- ``sae_weights.safetensors``: ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in], ``b_enc``,
  ``b_dec``, the same shapes and names as ours.

sae-lens needs TransformerLens < 4, so it cannot share this environment; ``benchmarks/`` checks
these files against the real package in an environment of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .model import SAE

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
FORMAT_VERSION = "6.0.0"        # the SAELens version whose layout these files follow


def save_saelens(sae: SAE, folder: str | Path, model_name: str, hook_name: str, context_size: int | None = None,
                 **metadata: Any) -> Path:
    """Write ``sae`` as a SAELens "standard" SAE into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {name: getattr(sae, name).detach().float().cpu().contiguous()
               for name in ("W_enc", "W_dec", "b_enc", "b_dec")}
    save_file(weights, str(folder / WEIGHTS_FILE))
    cfg = {
        "d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"sae_lens_version": FORMAT_VERSION, "sae_lens_training_version": FORMAT_VERSION,
                     "model_name": model_name, "hook_name": hook_name, "hook_head_index": None,
                     "prepend_bos": True, "context_size": context_size, **metadata},
        "architecture": "standard",
    }
    (folder / CFG_FILE).write_text(json.dumps(cfg, indent=2))
    return folder


def load_saelens(folder: str | Path) -> tuple[SAE, dict[str, Any]]:
    """Read a SAELens "standard" SAE (6.x or older config) into ours; returns (sae, flat config).

    An SAE saved with ``apply_b_dec_to_input = false`` does not subtract ``b_dec`` before its
    encoder; ours always does, so its encoder bias is un-folded, ``b_enc + b_dec @ W_enc``, which
    gives identical activations.
    """
    folder = Path(folder)
    raw = json.loads((folder / CFG_FILE).read_text())
    cfg = {**raw.get("metadata", {}), **{k: v for k, v in raw.items() if k != "metadata"}}
    if "hook_point" in cfg:
        cfg.setdefault("hook_name", cfg.pop("hook_point"))
    architecture = cfg.get("architecture", "standard")
    activation = cfg.get("activation_fn", cfg.get("activation_fn_str", "relu"))
    if architecture != "standard" or activation != "relu":
        raise ValueError(f"Only standard ReLU SAEs can be read; this one is {architecture!r} with {activation!r}.")
    if cfg.get("normalize_activations") not in (None, "none", False):
        raise ValueError(f"normalize_activations={cfg['normalize_activations']!r} is not supported.")
    weights = load_file(str(folder / WEIGHTS_FILE))
    sae = SAE(int(cfg["d_in"]), int(cfg["d_sae"]))
    with torch.no_grad():
        for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
            getattr(sae, name).copy_(weights[name].float())
        if not cfg.get("apply_b_dec_to_input", True):
            sae.b_enc += sae.b_dec @ sae.W_enc
    return sae, cfg
