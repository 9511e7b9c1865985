"""Choosing where tensors live: ``"auto"`` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")
LOGITS_BUDGET = 2**26    # floats of [rows, positions, vocab] logits held at once (256 MB): a hub vocabulary needs chunks


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when a GPU is visible. Asking for CUDA on a machine
    without one raises a ``RuntimeError`` that says so, instead of failing
    later inside a kernel call.
    """
    if isinstance(device, torch.device):
        device = str(device)
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} was requested but no CUDA GPU is visible to torch "
                f"(torch {torch.__version__}). Use device='cpu' or device='auto'."
            )
        return torch.device(name)
    raise ValueError(f"Unknown device {device!r}; choose one of {DEVICE_CHOICES}.")


def rows_that_fit(model: object, positions: int, max_rows: int | None = None) -> int:
    """How many rows of ``positions`` tokens may go through ``model`` in one pass, so that their logits
    ``[rows, positions, d_vocab]`` stay within :data:`LOGITS_BUDGET` floats (at least 1, at most ``max_rows``).

    The course's 510 words fit 2,048 rows of 64 tokens; GPT-2's 50,257 words fit 20 rows of 64."""
    d_vocab = getattr(getattr(model, "cfg", None), "d_vocab", 0) or 1
    rows = max(1, LOGITS_BUDGET // max(1, positions * d_vocab))
    return rows if max_rows is None else max(1, min(max_rows, rows))
