"""Cosine similarity, and why a shared direction dominates it (puzzle P1).

The cosine of two vectors only sees their angle from the origin. If every vector in a set shares one large
component ``m``, every pair looks similar, whatever the small parts that tell them apart. Subtracting a
mean first (*centring*) moves the origin; which mean you subtract is a choice, and it matters.
"""

from __future__ import annotations

import torch
from torch import Tensor


def cosine_matrix(X: Tensor) -> Tensor:
    """Cosine similarity of every pair of rows. X: [n, d] -> [n, n]"""
    unit = X / X.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def off_diagonal(M: Tensor) -> Tensor:
    """The entries of a square matrix off its diagonal, flattened. M: [n, n] -> [n * (n - 1)]"""
    n = M.shape[0]
    return M[~torch.eye(n, dtype=torch.bool, device=M.device)]


def mean_pairwise_cosine(X: Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct rows. X: [n, d]"""
    return off_diagonal(cosine_matrix(X)).mean().item()


def centre(X: Tensor, reference: Tensor | None = None) -> Tensor:
    """``X`` minus the mean of ``reference`` (default: of ``X`` itself). X: [n, d], reference: [m, d] -> [n, d]"""
    ref = X if reference is None else reference
    return X - ref.mean(dim=0)


def shared_direction_share(X: Tensor) -> float:
    """The fraction of the rows' total squared norm that lies along their mean direction. X: [n, d]

    1.0 means every row points the same way; for random rows in ``d`` dimensions it is about ``1/d`` plus
    what the sample mean picks up by chance.
    """
    direction = X.mean(dim=0)
    direction = direction / direction.norm().clamp_min(1e-12)
    return ((X @ direction).pow(2).sum() / X.pow(2).sum()).item()
