"""What a feature dashboard shows: where a feature fires, and what it does to the logits.

- **top activating contexts**: the tokens with the largest activations, each with a few tokens
  of context before it;
- **activation histogram**: the distribution of its non-zero activations;
- **logit effects**: its decoder direction read through the unembedding, ``W_dec[i] @ W_U``
  (centred over the vocabulary, since adding a constant to every logit changes nothing): the
  tokens the feature directly promotes and suppresses, ignoring the layers after the SAE's
  site and the final LayerNorm's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def logit_effects(W_dec: Tensor, W_U: Tensor) -> Tensor:
    """Each feature's direct effect on the logits, centred over the vocabulary.

    W_dec: [d_sae, d_model]; W_U: [d_model, d_vocab] -> [d_sae, d_vocab]
    """
    effects = W_dec @ W_U
    return effects - effects.mean(-1, keepdim=True)


@dataclass
class Context:
    """One activating example: where it is, how strongly the feature fired, and the tokens up to it."""

    row: int
    pos: int
    activation: float
    tokens: list[int]          # the context, ending with the token the feature fired on


def top_contexts(acts: Tensor, tokens: Tensor, k: int = 10, before: int = 8) -> list[Context]:
    """The ``k`` positions where a feature is most active, with ``before`` tokens of context.

    acts: [rows, pos] one feature's activations; tokens: [rows, pos] -> k contexts, strongest first
    (positions where it is 0 are never returned).
    """
    flat = acts.reshape(-1)
    k = min(k, int((flat > 0).sum()))
    values, idx = flat.topk(k)
    out = []
    for value, i in zip(values.tolist(), idx.tolist()):
        row, pos = divmod(i, acts.shape[1])
        out.append(Context(row, pos, value, tokens[row, max(0, pos - before): pos + 1].tolist()))
    return out


def activation_histogram(acts: Tensor, bins: int = 30) -> tuple[Tensor, Tensor]:
    """Counts and bin edges of a feature's non-zero activations: acts [...] -> ([bins], [bins + 1])."""
    active = acts[acts > 0].float()
    if active.numel() == 0:
        return torch.zeros(bins), torch.linspace(0, 1, bins + 1)
    return torch.histogram(active, bins=bins)
