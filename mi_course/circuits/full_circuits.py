"""Sections 3 and 4: full circuits from tokens to tokens, their top-k accuracy and copying score.

A layer-0 head's QK and OV circuits, read between tokens instead of residual directions:

* ``W_E W_QK W_Eᵀ`` [query token, key token]: how much a token wants to attend to another;
* ``W_E W_OV W_U`` [source token, output token]: which logits a head raises when it attends to
  a token.

Both leave out the positional embeddings and the LayerNorm scales, so what they say about a
head is suggestive, to be checked against real attention patterns and logits (section 6).
For a layer-1 head they are the part of its circuit that reads the token embeddings directly.
Both are rank ``d_head`` and are returned as ``FactoredMatrix``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from transformer_lens import FactoredMatrix

from .factored import _w

Model = Any


def _token_ids(model: Model, tokens: Tensor | None) -> Tensor:
    return torch.arange(model.cfg.d_vocab) if tokens is None else torch.as_tensor(tokens, dtype=torch.long).cpu()


def full_ov_circuit(model: Model, layer: int, head: int, tokens: Tensor | None = None) -> FactoredMatrix:
    """``W_E[tokens] W_V W_O W_U[:, tokens]``: row = the attended token, column = an output logit.

    tokens: [n] ids to keep (None = the whole vocabulary)   returns: FactoredMatrix [n, n] of rank d_head
    """
    ids = _token_ids(model, tokens)
    return FactoredMatrix(_w(model.W_E)[ids] @ _w(model.W_V[layer, head]),
                          _w(model.W_O[layer, head]) @ _w(model.W_U)[:, ids])


def full_qk_circuit(model: Model, layer: int, head: int, tokens: Tensor | None = None) -> FactoredMatrix:
    """``W_E[tokens] W_Q W_Kᵀ W_E[tokens]ᵀ``: row = query token, column = key token.

    tokens: [n]   returns: FactoredMatrix [n, n] of rank d_head
    """
    E = _w(model.W_E)[_token_ids(model, tokens)]
    return FactoredMatrix(E @ _w(model.W_Q[layer, head]), _w(model.W_K[layer, head]).T @ E.T)


def positional_qk_circuit(model: Model, layer: int, head: int, n_pos: int | None = None) -> Tensor:
    """``W_pos W_QK W_posᵀ``, causally masked (-inf above the diagonal): row = query position.

    returns: [n_pos, n_pos] (n_pos defaults to the context length)
    """
    P = _w(model.W_pos)[: n_pos or model.cfg.n_ctx]
    scores = P @ _w(model.W_Q[layer, head]) @ _w(model.W_K[layer, head]).T @ P.T
    future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf"))


def top_k_accuracy(circuit: Tensor, k: int = 1) -> float:
    """Fraction of rows ``i`` whose diagonal entry ``circuit[i, i]`` is among the row's ``k`` largest.

    For a full OV circuit: how often the token a head attends to is among the k logits it raises most.
    circuit: [n, n]
    """
    top = circuit.topk(k, dim=-1).indices                                   # [n, k]
    rows = torch.arange(circuit.shape[0], device=circuit.device)[:, None]
    return (top == rows).any(dim=-1).float().mean().item()


def copying_score(circuit: FactoredMatrix) -> float:
    """``Σ λ / Σ |λ|`` over the eigenvalues of a (square) circuit: +1 copies, -1 suppresses.

    A matrix that maps each token to itself (up to a positive scale) has positive eigenvalues.
    The eigenvalues come from the k x k ``BA`` (``circuit.eigenvalues``).
    """
    eigenvalues = circuit.eigenvalues
    return (eigenvalues.sum().real / eigenvalues.abs().sum().clamp_min(1e-12)).item()


def promoted_tokens(model: Model, layer: int, head: int, source: int, candidates: Tensor | None = None,
                    k: int = 10) -> tuple[Tensor, Tensor]:
    """The k output tokens whose logits a head raises most when it attends to ``source``.

    One row of the full OV circuit, restricted to ``candidates`` (None = every token).
    returns: (token ids [k], logit effects [k]), largest first
    """
    ids = _token_ids(model, candidates)
    row = _w(model.W_E)[source] @ _w(model.W_V[layer, head]) @ _w(model.W_O[layer, head]) @ _w(model.W_U)[:, ids]
    values, order = row.topk(min(k, len(ids)))
    return ids[order], values
