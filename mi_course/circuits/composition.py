"""Section 5: composition scores, how much a later head reads what an earlier head writes.

A layer-0 head writes ``x W_OV^A``; a layer-1 head can read it in three places:

* its queries (**Q-composition**): the score ``(x W_OV^A) W_QK^B yᵀ`` uses ``W_OV^A W_QK^B``;
* its keys (**K-composition**): ``y W_QK^B (x W_OV^A)ᵀ = y (W_QK^B W_OV^Aᵀ) xᵀ``, whose Frobenius
  norm is that of ``W_OV^A W_QK^Bᵀ``;
* its values (**V-composition**): it writes ``x W_OV^A W_OV^B``.

The composition score ``‖W_A W_B‖_F / (‖W_A‖_F ‖W_B‖_F)`` (Elhage et al. 2021) is 0 when the
writer's output and the reader's input are orthogonal. Its reference values are not 0 and 1:

* **Ceiling.** ``‖W_A W_B‖_F ≤ ‖W_A‖_2 ‖W_B‖_F``, so a score is at most ``σ₁(W_A) / ‖W_A‖_F``
  (and ``σ₁(W_B) / ‖W_B‖_F``). It reaches 1 only for rank-1 maps. Two rank-``r`` maps with flat
  spectra, the reader reading exactly what the writer writes, score ``1/√r``: 0.177 for
  ``d_head = 32``. For given singular values the largest score any alignment reaches is
  :func:`aligned_composition_score`.
* **Chance.** Turn the writer by a random rotation ``Q`` (Haar): ``E‖W_A Q W_B‖_F² =
  ‖W_A‖_F² ‖W_B‖_F² / d``, so ``E[score²] = 1/d`` whatever the spectra, and random pairs score
  about ``1/√d_model`` (0.088 for ``d_model = 128``).

Real scores are read against a baseline: :func:`random_composition_scores` (random low-rank
matrices of the heads' shapes, pooled) or :func:`rotated_composition_scores` (each pair's own
singular values, random subspaces), and real inputs can weight the directions
(:func:`data_composition_scores`).

Chapter 04 and the zoo's model cards use these functions through
:mod:`mi_course.induction.head_scores`, so this module takes models as arguments and never
imports :mod:`mi_course.zoo` (that would be an import cycle).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..seed import stream
from .factored import ov_matrix, qk_matrix

Model = Any

KINDS = ("q", "k", "v")


def composition_score(W_A: Tensor, W_B: Tensor) -> float:
    """``||W_A W_B||_F / (||W_A||_F ||W_B||_F)``; 0 when either matrix is all zeros.

    At most ``1/√r`` for two rank-``r`` maps with flat spectra; about ``1/√d`` for random ones (module docstring).
    W_A: [d, d] (the writer, e.g. W_OV of a layer-0 head); W_B: [d, d] (what the reader reads with)
    """
    denominator = (W_A.norm() * W_B.norm()).clamp_min(1e-12)
    return ((W_A @ W_B).norm() / denominator).item()


def _readers(W_QK1: Tensor, W_OV1: Tensor, kind: str) -> Tensor:
    """The reader's matrix for each kind: ``W_QK`` (q), ``W_QKᵀ`` (k) or ``W_OV`` (v). [heads, d, d]"""
    return {"q": W_QK1, "k": W_QK1.transpose(-1, -2), "v": W_OV1}[kind]


def composition_scores(W_OV0: Tensor, W_QK1: Tensor, W_OV1: Tensor, kind: str) -> Tensor:
    """Every writer/reader pair's Q-, K- or V-composition score.

    W_OV0: [heads_0, d, d] (writers); W_QK1, W_OV1: [heads_1, d, d] (readers); kind: "q" | "k" | "v"
    returns: [heads_0, heads_1]
    """
    readers = _readers(W_QK1, W_OV1, kind)
    return torch.tensor([[composition_score(W_A, W_B) for W_B in readers] for W_A in W_OV0])


def data_composition_score(X: Tensor, W_A: Tensor, W_B: Tensor) -> float:
    """The composition score on real inputs: ``‖X W_A W_B‖_F / (‖X W_A‖_F ‖W_B‖_F)``.

    Only the directions the writer really writes count, in proportion to how much they are used.
    With ``X`` the identity it is :func:`composition_score`. X: [n, d] (inputs, one per row); W_A, W_B: [d, d]
    """
    written = X @ W_A
    return ((written @ W_B).norm() / (written.norm() * W_B.norm()).clamp_min(1e-12)).item()


def data_composition_scores(X: Tensor, W_OV0: Tensor, W_QK1: Tensor, W_OV1: Tensor, kind: str) -> Tensor:
    """:func:`data_composition_score` for every writer/reader pair.

    X: [n, d] (e.g. layer 0's inputs after its LayerNorm, every position of a batch)
    W_OV0: [heads_0, d, d]; W_QK1, W_OV1: [heads_1, d, d]; kind: "q" | "k" | "v"   returns: [heads_0, heads_1]
    """
    readers = _readers(W_QK1, W_OV1, kind)
    return torch.tensor([[data_composition_score(X, W_A, W_B) for W_B in readers] for W_A in W_OV0])


def aligned_composition_score(W_A: Tensor, W_B: Tensor) -> float:
    """The largest composition score of ``W_A`` and ``W_B`` turned against each other by any rotation.

    ``max_Q ‖W_A Q W_B‖_F² = Σ_i σ_i(W_A)² σ_i(W_B)²`` (von Neumann's trace inequality: the singular
    vectors aligned, largest with largest). Two rank-``r`` maps with flat spectra give ``1/√r``.
    W_A, W_B: [d, d]
    """
    s_A, s_B = torch.linalg.svdvals(W_A), torch.linalg.svdvals(W_B)
    return ((s_A * s_B).norm() / (s_A.norm() * s_B.norm()).clamp_min(1e-12)).item()


def _random_frames(d: int, k: int, n_samples: int, seed: int) -> Tensor:
    """The first ``k`` columns of ``n_samples`` random rotations of R^d (Haar). [n_samples, d, k]"""
    gen = stream(seed, "composition.frames")
    return torch.linalg.qr(torch.randn(n_samples, d, k, generator=gen)).Q


def rotated_composition_scores(W_OV0: Tensor, W_QK1: Tensor, W_OV1: Tensor, kind: str, n_samples: int = 1000,
                               seed: int = 0) -> Tensor:
    """A baseline for each pair: its own two spectra, with the subspaces turned at random.

    The score of ``Q₁ W_A Q₂`` and ``W_B`` (``Q₁, Q₂`` random rotations) depends only on the singular
    values and on ``M = V_Aᵀ Q₂ U_B``, the overlap of the writer's output frame with the reader's
    input frame; ``M`` is distributed as a ``k x k`` block of a random rotation, so no ``d x d``
    product is needed. The mean square is ``1/d`` for every pair.
    W_OV0: [heads_0, d, d]; W_QK1, W_OV1: [heads_1, d, d]; kind: "q" | "k" | "v"
    returns: [heads_0, heads_1, n_samples] (the same random frames for every pair)
    """
    readers = _readers(W_QK1, W_OV1, kind)
    s_A, s_B = torch.linalg.svdvals(W_OV0), torch.linalg.svdvals(readers)          # [heads, d]
    k = int(max((s_A > 1e-6 * s_A.max()).sum(-1).max(), (s_B > 1e-6 * s_B.max()).sum(-1).max()))
    s_A, s_B = s_A[:, :k], s_B[:, :k]
    M = _random_frames(W_OV0.shape[-1], k, n_samples, seed)[:, :k, :]              # [n, k, k]
    # ‖diag(a) M diag(b)‖_F² = Σ_ij a_i² M_ij² b_j²
    squares = torch.einsum("ai,nij,bj->abn", s_A ** 2, M ** 2, s_B ** 2)            # [heads_0, heads_1, n]
    norms = s_A.norm(dim=-1)[:, None] * s_B.norm(dim=-1)[None, :]                   # [heads_0, heads_1]
    return squares.sqrt() / norms[..., None].clamp_min(1e-12)


def haar_rotation(d: int, generator: torch.Generator | None = None) -> Tensor:
    """A uniformly random (Haar) rotation of R^d: the QR factor of a Gaussian matrix, signs fixed. [d, d]"""
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=generator))
    return Q * torch.sign(torch.diagonal(R))


def rotated_pair_scores(W_A: Tensor, W_B: Tensor, n_samples: int, generator: torch.Generator | None = None) -> Tensor:
    """One pair's baseline, the slow and plain way: the scores of ``W_A Q`` and ``W_B`` for random rotations ``Q``.

    ``W_A Q`` keeps the writer's singular values and turns its output subspace at random (a rotation on the left
    would change no score). :func:`rotated_composition_scores` samples the same distribution for every pair at once.
    W_A, W_B: [d, d]   returns: [n_samples]
    """
    d = W_A.shape[-1]
    return torch.tensor([composition_score(W_A @ haar_rotation(d, generator), W_B) for _ in range(n_samples)])


def stacked_ov_qk(model: Model, layer: int) -> tuple[Tensor, Tensor]:
    """Dense ``W_OV`` and ``W_QK`` of every head of a layer: two [head, d_model, d_model]."""
    heads = range(model.cfg.n_heads)
    return (torch.stack([ov_matrix(model, layer, h) for h in heads]),
            torch.stack([qk_matrix(model, layer, h) for h in heads]))


def model_composition_scores(model: Model, kind: str, writer_layer: int = 0, reader_layer: int = 1) -> Tensor:
    """``composition_scores`` between two layers of a model. returns: [n_heads, n_heads]"""
    W_OV0, _ = stacked_ov_qk(model, writer_layer)
    W_OV1, W_QK1 = stacked_ov_qk(model, reader_layer)
    return composition_scores(W_OV0, W_QK1, W_OV1, kind)


def k_composition(model: Model, prev_head: tuple[int, int], ind_head: tuple[int, int]) -> float:
    """K-composition: how much ``prev_head``'s output is read by ``ind_head``'s keys.

    The key of ``ind_head`` sees ``x @ W_OV``; its score with a query ``y`` is
    ``y W_QK W_OV^T x^T``, so the score compares ``W_OV`` with ``W_QK^T``.
    """
    return composition_score(ov_matrix(model, *prev_head), qk_matrix(model, *ind_head).T)


def random_composition_scores(d_model: int, d_head: int, n_samples: int = 500, seed: int = 0) -> Tensor:
    """Composition scores of random rank-``d_head`` matrices of the heads' shapes.

    Each matrix is ``randn(d_model, d_head) @ randn(d_head, d_model)``, like ``W_V W_O``.
    The baseline to compare a real composition score with. returns: [n_samples]
    """
    gen = stream(seed, "composition.random_maps")

    def low_rank() -> Tensor:
        return torch.randn(d_model, d_head, generator=gen) @ torch.randn(d_head, d_model, generator=gen)

    return torch.tensor([composition_score(low_rank(), low_rank()) for _ in range(n_samples)])
