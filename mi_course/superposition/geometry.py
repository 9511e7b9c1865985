"""Reading a toy model's weights: how many features it stores, how, and in what geometry.

Every function takes ``W: [instances, hidden, features]`` (or 2-D directions)
and returns one number per instance or per feature: feature norms, feature
dimensionality, dimensions per feature, the hierarchy of feature properties
(linearity, superposition, basis alignment), and the phase of a 2-in-1 model.

These are also the grader's reference implementations for chapter 03: try
the exercises before reading them.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

def feature_norms(W: Tensor) -> Tensor:
    """||W_i|| for every feature column. W: [instances, hidden, features] -> [instances, features]"""
    return W.norm(dim=-2)


def feature_dimensionality(W: Tensor, eps: float = 1e-8) -> Tensor:
    """``D_i = ||W_i||^2 / sum_j (Ŵ_i · W_j)^2``: the fraction of a dimension feature i gets.

    A feature with no weight (all-zero column) gets 0.
    W: [instances, hidden, features] -> [instances, features]
    """
    norms = W.norm(dim=-2, keepdim=True)                        # [i, 1, f]
    W_hat = W / norms.clamp_min(eps)
    overlaps = torch.einsum("ihf,ihg->ifg", W_hat, W)            # Ŵ_f · W_g
    return norms.squeeze(-2) ** 2 / (overlaps ** 2).sum(-1).clamp_min(eps)


def dimensions_per_feature(W: Tensor) -> Tensor:
    """``m / ||W||_F^2`` per instance: hidden dimensions per embedded feature.

    W: [instances, hidden, features] -> [instances]
    """
    return W.shape[-2] / W.pow(2).sum(dim=(-2, -1))


def is_linear(encode: Callable[[Tensor], Tensor], n_features: int, n_trials: int = 16,
              tol: float = 1e-4, generator: torch.Generator | None = None) -> bool:
    """Is ``encode`` a linear representation, ``f(a x + c y) = a f(x) + c f(y)``?

    Tested on random feature vectors and coefficients (positive and negative).
    encode: [batch, features] -> [batch, d]
    """
    x = torch.rand(n_trials, n_features, generator=generator)
    y = torch.rand(n_trials, n_features, generator=generator)
    a = torch.randn(n_trials, 1, generator=generator)
    c = torch.randn(n_trials, 1, generator=generator)
    lhs, rhs = encode(a * x + c * y), a * encode(x) + c * encode(y)
    return bool(((lhs - rhs).abs() <= tol * (1 + rhs.abs())).all())


def exhibits_superposition(W: Tensor, threshold: float = 0.5, tol: float = 1e-3) -> Tensor:
    """Superposition test of the hierarchy of feature properties.

    A representation exhibits superposition when the Gram matrix of its
    (represented) feature directions, ``W^T W`` here, is not invertible: more
    features than the directions can hold independently. Features whose norm
    is below ``threshold`` count as not represented and are left out.
    W: [instances, hidden, features] -> bool [instances]
    """
    out = []
    for Wi in W:
        kept = Wi[:, Wi.norm(dim=0) > threshold]                 # [hidden, k]
        if kept.shape[1] == 0:
            out.append(False)
            continue
        eigvals = torch.linalg.eigvalsh(kept.T @ kept)
        out.append(bool(eigvals.min() < tol * eigvals.max()))
    return torch.tensor(out)


def basis_alignment(W: Tensor, threshold: float = 0.5) -> Tensor:
    """How basis-aligned the represented features are: mean over them of max_k W_ki^2 / ||W_i||^2.

    1.0 means every represented feature is a one-hot direction. Instances with
    no represented feature give NaN.
    W: [instances, hidden, features] -> [instances]
    """
    sq = W ** 2
    share = sq.max(dim=-2).values / sq.sum(dim=-2).clamp_min(1e-12)   # [i, f]
    kept = (W.norm(dim=-2) > threshold).float()
    return (share * kept).sum(-1) / kept.sum(-1)


def adjacent_angles(directions: Tensor) -> Tensor:
    """Angles (degrees) between neighbouring 2-D directions, going round the circle.

    directions: [k, 2] (any order, any lengths) -> [k], sorted by direction
    angle, the last entry closing the circle; they sum to 360.
    """
    theta = torch.atan2(directions[:, 1], directions[:, 0])
    theta = torch.sort(theta).values
    gaps = torch.diff(theta, append=theta[:1] + 2 * math.pi)
    return torch.rad2deg(gaps)


def angle_between(u: Tensor, v: Tensor) -> float:
    """The angle between two directions in degrees, 0 to 180 (not the way round a circle). u, v: [d]"""
    cosine = (u @ v) / (u.norm() * v.norm()).clamp_min(1e-12)
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine.item()))))


def antipodal_pairs(W: Tensor, threshold: float = 0.5, cosine: float = -0.95) -> Tensor:
    """How many pairs of represented features point in opposite directions (cosine below ``cosine``).

    W: [instances, hidden, features] -> long [instances]
    """
    norms = W.norm(dim=-2)
    unit = W / norms.clamp_min(1e-6).unsqueeze(-2)
    cosines = unit.transpose(-1, -2) @ unit                                   # [instances, features, features]
    both = (norms > threshold).unsqueeze(-1) & (norms > threshold).unsqueeze(-2)
    return ((cosines < cosine) & both).sum((-2, -1)) // 2


def rotate_hidden(W: Tensor, degrees: float, dims: tuple[int, int] = (0, 1)) -> Tensor:
    """``Q W``: the hidden space rotated by ``degrees`` in the plane of two of its axes.

    W: [..., hidden, features] -> the same shape. ``W^T W`` is unchanged; the coordinates are not.
    """
    Q = torch.eye(W.shape[-2], dtype=W.dtype)
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = dims
    Q[i, i], Q[i, j], Q[j, i], Q[j, j] = c, -s, s, c
    return Q @ W


PHASES = ("second feature dropped", "second feature takes the dimension", "both, antipodal")


def classify_phase(W: Tensor, threshold: float = 0.5) -> Tensor:
    """Phase of a 2-features-in-1-dimension model (feature 1 is the reference feature).

    0: feature 2 dropped (feature 1 alone, or nothing, represented);
    1: feature 2 takes the dimension, feature 1 dropped;
    2: both represented, with opposite signs (antipodal superposition).
    A feature is represented when ``|w| > threshold``.
    W: [instances, 1, 2] -> long [instances]
    """
    w1, w2 = W[:, 0, 0], W[:, 0, 1]
    both = (w1.abs() > threshold) & (w2.abs() > threshold) & (w1 * w2 < 0)
    second_only = (w2.abs() > threshold) & (w1.abs() <= threshold)
    return torch.where(both, 2, torch.where(second_only, 1, 0)).long()


STICKY_VALUES = {1.0: "one feature per dim", 3 / 4: "tetrahedron", 2 / 3: "triangle",
                 1 / 2: "antipodal pair", 2 / 5: "pentagon", 3 / 8: "square antiprism"}
"""Values of a feature's dimensionality that training tends to 'stick' to."""
