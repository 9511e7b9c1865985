"""Reverse-engineering the two-layer induction circuit from the weights (chapter 02's tools).

- the previous-token head attends by position: its positional QK circuit
  ``W_pos W_QK W_pos^T`` (:func:`mi_course.circuits.full_circuits.positional_qk_circuit`) peaks one
  step below the diagonal;
- an induction head's keys read the previous-token head's output: the
  K-composition circuit ``(W_E W_Q)(W_E W_OV^{prev} W_K)^T`` asks "how much does a
  query token attend to a key whose *previous* token was each token?", and its
  diagonal stands out (attend to where the current token came before).

LayerNorm and the positional terms are left out, as in Elhage et al. (2021):
what these matrices show is suggestive, and is checked against real attention.
"""

from __future__ import annotations

import torch
from torch import Tensor


def k_composition_circuit(W_E: Tensor, W_Q: Tensor, W_K: Tensor, W_OV_prev: Tensor) -> Tensor:
    """Query token -> "previous token of the key" scores through the previous-token head.

    W_E: [vocab, d] (the tokens to compare), W_Q, W_K: [d, d_head] (the induction head),
    W_OV_prev: [d, d] (the previous-token head's OV). -> [vocab (query token), vocab (previous token of the key)]
    """
    return (W_E @ W_Q) @ (W_E @ W_OV_prev @ W_K).T


def diagonal_z_score(M: Tensor) -> float:
    """How far the diagonal stands out: the mean over rows of the diagonal entry's z-score within its row."""
    return ((M.diagonal() - M.mean(-1)) / M.std(-1)).mean().item()


def prev_token_offset_share(scores: Tensor, first_query: int = 1) -> float:
    """Share of query positions whose highest positional score is the previous position."""
    q = torch.arange(first_query, scores.shape[0], device=scores.device)
    return (scores[q].argmax(-1) == q - 1).float().mean().item()
