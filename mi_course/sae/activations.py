"""Activations of a language model at one hook point, as rows to train an SAE on.

Works on any model with hooks (the zoo's bridges, hub models): the model and the
tokens are arguments. The BOS position is dropped by default: its activation is the same in
every row and usually much larger than the rest, and an SAE would spend features on it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..residual_stream.local import activations


@torch.no_grad()
def collect_activations(model: Any, tokens: Tensor, hook_name: str, batch_size: int = 32,
                        drop_bos: bool = True) -> Tensor:
    """The activation at ``hook_name`` for every token: tokens [rows, pos] -> [rows * pos', d]
    (``pos' = pos - 1`` when ``drop_bos``), float32, on the CPU."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, tokens.shape[0], batch_size):      # each forward pass stops at the hook (chapter 01's)
        acts = activations(model, tokens[start:start + batch_size].to(device), [hook_name])[hook_name]
        if drop_bos:
            acts = acts[:, 1:]
        out.append(acts.reshape(-1, acts.shape[-1]).float().cpu())
    return torch.cat(out)
