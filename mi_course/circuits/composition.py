"""Section 5: composition scores, how much a later head reads what an earlier head writes.

A layer-0 head writes ``x W_OV^A``; a layer-1 head can read it in three places:

* its queries (**Q-composition**): the score ``(x W_OV^A) W_QK^B yᵀ`` uses ``W_OV^A W_QK^B``;
* its keys (**K-composition**): ``y W_QK^B (x W_OV^A)ᵀ = y (W_QK^B W_OV^Aᵀ) xᵀ``, whose Frobenius
  norm is that of ``W_OV^A W_QK^Bᵀ``;
* its values (**V-composition**): it writes ``x W_OV^A W_OV^B``.

The composition score ``‖W_A W_B‖_F / (‖W_A‖_F ‖W_B‖_F)`` (Elhage et al. 2021) is 1 when the
writer's output lies in what the reader reads and 0 when the two are orthogonal. Random
low-rank matrices of the same shapes already score above 0, so real scores are read against
:func:`random_composition_scores`.

Chapter 04 and the zoo's model cards use these functions through
:mod:`mi_course.induction.head_scores`, so this module takes models as arguments and never
imports :mod:`mi_course.zoo` (that would be an import cycle).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .factored import ov_matrix, qk_matrix

Model = Any

KINDS = ("q", "k", "v")


def composition_score(W_A: Tensor, W_B: Tensor) -> float:
    """``||W_A W_B||_F / (||W_A||_F ||W_B||_F)``; 0 when either matrix is all zeros.

    W_A: [d, d] (the writer, e.g. W_OV of a layer-0 head); W_B: [d, d] (what the reader reads with)
    """
    denominator = (W_A.norm() * W_B.norm()).clamp_min(1e-12)
    return ((W_A @ W_B).norm() / denominator).item()


def composition_scores(W_OV0: Tensor, W_QK1: Tensor, W_OV1: Tensor, kind: str) -> Tensor:
    """Every writer/reader pair's Q-, K- or V-composition score.

    W_OV0: [heads_0, d, d] (writers); W_QK1, W_OV1: [heads_1, d, d] (readers); kind: "q" | "k" | "v"
    returns: [heads_0, heads_1]
    """
    readers = {"q": W_QK1, "k": W_QK1.transpose(-1, -2), "v": W_OV1}[kind]
    return torch.tensor([[composition_score(W_A, W_B) for W_B in readers] for W_A in W_OV0])


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
    gen = torch.Generator().manual_seed(seed)

    def low_rank() -> Tensor:
        return torch.randn(d_model, d_head, generator=gen) @ torch.randn(d_head, d_model, generator=gen)

    return torch.tensor([composition_score(low_rank(), low_rank()) for _ in range(n_samples)])
