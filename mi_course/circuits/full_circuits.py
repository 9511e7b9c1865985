"""Sections 3 and 4: full circuits from tokens to tokens, their top-k accuracy and copying score.

A layer-0 head's QK and OV circuits, read between tokens instead of residual directions:

* ``W_E W_QK W_Eᵀ`` [query token, key token]: how much a token wants to attend to another;
* ``W_E W_OV W_U`` [source token, output token]: which logits a head raises when it attends to
  a token.

Both leave out the positional embeddings and the LayerNorm scales, so what they say about a
head is suggestive, to be checked against real attention patterns and logits (section 6).
For a layer-1 head they are the part of its circuit that reads the token embeddings directly.
A layer-1 head also reads what layer-0 heads wrote: ``via=(0, a)`` puts head ``L0Ha``'s OV
circuit in front, ``W_E W_OV^{0a} W_OV^{1h} W_U`` (a virtual head's full OV circuit, section 6),
and ``query_via``/``key_via`` do the same on either side of a QK circuit. These also leave out the
LayerNorm between the layers. All are rank ``d_head`` and are returned as ``FactoredMatrix``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .factored import _w, factored_matrix

if TYPE_CHECKING:
    from transformer_lens import FactoredMatrix

Model = Any


def _token_ids(model: Model, tokens: Tensor | None) -> Tensor:
    return torch.arange(model.cfg.d_vocab) if tokens is None else torch.as_tensor(tokens, dtype=torch.long).cpu()


Head = tuple[int, int]   # (layer, head)


def read_tokens(model: Model, ids: Tensor, layer: int, via: Head | None = None) -> Tensor:
    """What a head in ``layer`` reads of each token: its embedding, or what head ``via`` writes from it.

    ``via=(l, a)`` (an earlier layer): ``W_E[ids] W_V^{la} W_O^{la}``.   ids: [n]   returns: [n, d_model]
    """
    E = _w(model.W_E)[ids]
    if via is None:
        return E
    if via[0] >= layer:
        raise ValueError(f"a head in layer {layer} can only read heads of earlier layers, not L{via[0]}H{via[1]}")
    return E @ _w(model.W_V[via]) @ _w(model.W_O[via])


def full_ov_circuit(model: Model, layer: int, head: int, tokens: Tensor | None = None,
                    via: Head | None = None) -> FactoredMatrix:
    """``W_E[tokens] W_V W_O W_U[:, tokens]``: row = the attended token, column = an output logit.

    tokens: [n] ids to keep (None = the whole vocabulary); via: an earlier head the token passes through first
    (``W_E W_OV^{via} W_OV W_U``)   returns: FactoredMatrix [n, n] of rank d_head
    """
    ids = _token_ids(model, tokens)
    return factored_matrix(read_tokens(model, ids, layer, via) @ _w(model.W_V[layer, head]),
                          _w(model.W_O[layer, head]) @ _w(model.W_U)[:, ids])


def full_qk_circuit(model: Model, layer: int, head: int, tokens: Tensor | None = None,
                    query_via: Head | None = None, key_via: Head | None = None) -> FactoredMatrix:
    """``W_E[tokens] W_Q W_Kᵀ W_E[tokens]ᵀ``: row = query token, column = key token.

    query_via, key_via: an earlier head each side reads the token through (None = the embedding)
    tokens: [n]   returns: FactoredMatrix [n, n] of rank d_head
    """
    ids = _token_ids(model, tokens)
    queries, keys = read_tokens(model, ids, layer, query_via), read_tokens(model, ids, layer, key_via)
    return factored_matrix(queries @ _w(model.W_Q[layer, head]), _w(model.W_K[layer, head]).T @ keys.T)


def positional_qk_circuit(model: Model, layer: int, head: int, n_pos: int | None = None) -> Tensor:
    """``W_pos W_QK W_posᵀ``, causally masked (-inf above the diagonal): row = query position.

    returns: [n_pos, n_pos] (n_pos defaults to the context length)
    """
    P = _w(model.W_pos)[: n_pos or model.cfg.n_ctx]
    scores = P @ _w(model.W_Q[layer, head]) @ _w(model.W_K[layer, head]).T @ P.T
    future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf"))


def pattern_of_positions(W_pos: Tensor, W_Q: Tensor, W_K: Tensor, ln_scale: float = 1.0) -> Tensor:
    """The attention pattern a head gives the position embeddings alone, causally masked and softmaxed.

    ``softmax(mask(P W_Q (P W_K)ᵀ) / √d_head)`` with ``P = W_pos / ln_scale``: the head reads its input after
    a LayerNorm, which divides by the scale. W_pos: [n_pos, d_model]; W_Q, W_K: [d_model, d_head]
    returns: [n_pos, n_pos] (row = query position; each row sums to 1)
    """
    P = W_pos / ln_scale
    scores = (P @ W_Q) @ (P @ W_K).T / W_Q.shape[-1] ** 0.5
    future = torch.triu(torch.ones_like(scores, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def positional_pattern(model: Model, layer: int, head: int, n_pos: int | None = None,
                       ln_scale: float = 1.0) -> Tensor:
    """:func:`pattern_of_positions` of one head of ``model``, over its first ``n_pos`` positions.

    Pass the typical LayerNorm scale (``FrozenRun.scales[layer]``) as ``ln_scale`` to read positions at the
    size the head sees them.   returns: [n_pos, n_pos] (row = query position)
    """
    P = _w(model.W_pos)[: n_pos or model.cfg.n_ctx]
    return pattern_of_positions(P, _w(model.W_Q[layer, head]), _w(model.W_K[layer, head]), ln_scale)


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
                    k: int = 10, via: Head | None = None) -> tuple[Tensor, Tensor]:
    """The k output tokens whose logits a head raises most when it attends to ``source``.

    One row of the full OV circuit (through head ``via`` first, if given), restricted to ``candidates``
    (None = every token).   returns: (token ids [k], logit effects [k]), largest first
    """
    ids = _token_ids(model, candidates)
    source_row = read_tokens(model, torch.tensor([source]), layer, via)[0]
    row = source_row @ _w(model.W_V[layer, head]) @ _w(model.W_O[layer, head]) @ _w(model.W_U)[:, ids]
    values, order = row.topk(min(k, len(ids)))
    return ids[order], values


def composed_qk(E: Tensor, query_ov: Tensor, key_ov: Tensor, W_Q: Tensor, W_K: Tensor) -> Tensor:
    """A layer-1 head's QK circuit with each side reading the tokens through a layer-0 head's OV circuit.

    ``(E W_OV^q W_Q)(E W_OV^k W_K)ᵀ``: row = the query's token as the query-side head writes it, column = the
    key's token as the key-side head writes it. E: [n, d_model] (the tokens' embeddings); query_ov, key_ov:
    [d_model, d_model]; W_Q, W_K: [d_model, d_head]   returns: [n, n] (built from two [n, d_head] factors)
    """
    return (E @ query_ov @ W_Q) @ (E @ key_ov @ W_K).T
