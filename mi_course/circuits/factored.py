"""Section 2: the QK and OV circuits of a head, and low-rank (factored) matrices.

Row-vector convention, as in TransformerLens: a residual vector ``x`` is a row, so

* the attention score of query ``x_q`` on key ``x_k`` is ``x_q W_QK x_kᵀ`` with ``W_QK = W_Q W_Kᵀ``;
* a head that attends to ``x`` writes ``x W_OV`` with ``W_OV = W_V W_O``.

Both are ``[d_model, d_model]`` but have rank at most ``d_head``. TransformerLens's
``FactoredMatrix(A, B)`` keeps the two factors and never builds ``A @ B``: eigenvalues, singular
values and norms come from ``d_head x d_head`` matrices instead of ``d_model x d_model`` (or
``vocab x vocab`` for the full circuits of section 3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:     # imported where used: transformer_lens takes seconds to import, and the grader imports
    from transformer_lens import FactoredMatrix     # this module in chapters that never load a language model

Model = Any  # a TransformerBridge (or anything with W_Q, W_K, W_V, W_O)


def _w(t: Tensor) -> Tensor:
    """A weight as a plain float CPU tensor (no autograd)."""
    return t.detach().float().cpu()


def factored_matrix(A: Tensor, B: Tensor) -> FactoredMatrix:
    """TransformerLens's ``FactoredMatrix(A, B)``, imported on first use. A: [m, r], B: [r, n] -> [m, n]."""
    from transformer_lens import FactoredMatrix

    return FactoredMatrix(A, B)


def ov_matrix(model: Model, layer: int, head: int) -> Tensor:
    """``W_OV = W_V W_O`` (row-vector convention: a residual ``x`` writes ``x @ W_OV``). [d_model, d_model]"""
    return (model.W_V[layer, head] @ model.W_O[layer, head]).detach().float().cpu()


def qk_matrix(model: Model, layer: int, head: int) -> Tensor:
    """``W_QK = W_Q W_K^T``: the score is ``x_query @ W_QK @ x_key^T``. [d_model, d_model]"""
    return (model.W_Q[layer, head] @ model.W_K[layer, head].T).detach().float().cpu()


def ov_circuit(model: Model, layer: int, head: int) -> FactoredMatrix:
    """``W_OV`` as a ``FactoredMatrix(W_V, W_O)``: [d_model, d_head] x [d_head, d_model]."""
    return factored_matrix(_w(model.W_V[layer, head]), _w(model.W_O[layer, head]))


def qk_circuit(model: Model, layer: int, head: int) -> FactoredMatrix:
    """``W_QK`` as a ``FactoredMatrix(W_Q, W_Kᵀ)``: [d_model, d_head] x [d_head, d_model]."""
    return factored_matrix(_w(model.W_Q[layer, head]), _w(model.W_K[layer, head]).T)


def low_rank_eigenvalues(A: Tensor, B: Tensor) -> Tensor:
    """The eigenvalues of ``BA`` [k, k]: the (up to k) non-zero eigenvalues of ``AB`` [n, n].

    If ``AB v = λ v`` with ``λ ≠ 0``, then ``BA (Bv) = λ (Bv)`` and ``Bv ≠ 0``: the two products share
    their non-zero eigenvalues. ``AB`` has ``n - k`` more, all zero.
    A: [n, k], B: [k, n]   returns: complex [k], in the order ``torch.linalg.eigvals`` gives
    """
    return torch.linalg.eigvals(B @ A)


def low_rank_singular_values(A: Tensor, B: Tensor) -> Tensor:
    """The k largest singular values of ``AB`` [n, n], without building it.

    With ``A = Q_A R_A`` and ``Bᵀ = Q_B R_B`` (reduced QR), ``AB = Q_A (R_A R_Bᵀ) Q_Bᵀ``; the outer
    factors have orthonormal columns, so ``AB`` has the singular values of the k x k ``R_A R_Bᵀ``.
    A: [n, k], B: [k, n]   returns: [k], largest first
    """
    R_A = torch.linalg.qr(A).R
    R_B = torch.linalg.qr(B.T).R
    return torch.linalg.svdvals(R_A @ R_B.T)
