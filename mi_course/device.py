"""Choosing where tensors live: ``"auto"`` means CUDA when present, else CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


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
