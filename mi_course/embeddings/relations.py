"""Relation vectors, analogies and ordered features: word2vec's questions asked of a transformer (puzzle P2).

A *relation vector* is the mean difference between the second and the first word of many pairs
(country -> capital, male -> female). If the relation is a direction, it should explain most of the
difference of a pair it has never seen, far more than a random vector of the same size would.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..seed import stream
from ..fact_recall.atp import spearman


def relation_vector(A: Tensor, B: Tensor) -> Tensor:
    """Mean of ``B - A`` over pairs: the direction from the first word of a pair to the second.

    A, B: [n_pairs, d] (row i of A and row i of B are one pair) -> [d]
    """
    return (B - A).mean(dim=0)


def fraction_explained(d: Tensor, r: Tensor) -> Tensor:
    """The fraction of ``d``'s squared norm along the direction of ``r``: ``(d · r̂)² / |d|²``.

    1 if ``d`` is parallel to ``r``; about ``1/d_model`` for an ``r`` in a random direction.
    d: [..., d_model], r: [d_model] -> [...]
    """
    r_hat = r / r.norm()
    return (d @ r_hat).pow(2) / d.pow(2).sum(dim=-1)


def held_out_explained(A: Tensor, B: Tensor, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Leave-one-out: for each pair, the fraction of its difference that the relation vector of the *other*
    pairs explains, and the same for a random direction (a fresh one per pair).

    A, B: [n_pairs, d] -> (relation, random), each [n_pairs]
    """
    D = B - A
    n = D.shape[0]
    gen = stream(seed, "relations.random_directions")
    relation, random = torch.empty(n), torch.empty(n)
    for i in range(n):
        others = torch.cat([D[:i], D[i + 1:]])
        relation[i] = fraction_explained(D[i], others.mean(dim=0))
        random[i] = fraction_explained(D[i], torch.randn(D.shape[1], generator=gen).to(D))
    return relation, random


def analogy(E: Tensor, a: int, b: int, c: int, vocab: Sequence[str], k: int = 3,
            candidates: Tensor | None = None) -> list[tuple[str, float]]:
    """``a - b + c``: the ``k`` nearest words by cosine, leaving out ``a``, ``b`` and ``c``.

    E: [d_vocab, d] word vectors; a, b, c: token ids; candidates: optional int64 ids to search among
    (default: every word). Returns [(word, cosine), ...], best first.
    """
    target = E[a] - E[b] + E[c]
    scores = torch.nn.functional.cosine_similarity(E, target[None], dim=-1)
    allowed = torch.zeros(E.shape[0], dtype=torch.bool)
    allowed[torch.arange(E.shape[0]) if candidates is None else candidates] = True
    allowed[[a, b, c]] = False
    scores = scores.masked_fill(~allowed.to(scores.device), -float("inf"))
    top = scores.topk(k)
    return [(vocab[i], v) for i, v in zip(top.indices.tolist(), top.values.tolist())]


def analogy_accuracy(E: Tensor, A: Tensor, B: Tensor, vocab: Sequence[str], candidates: Tensor | None = None) -> float:
    """Fraction of pairs i for which ``A[i+1]``'s partner is found: ``A[i] - A[j] + B[j]`` lands on ``B[i]``,
    with j = i + 1 (cyclically). E: [d_vocab, d]; A, B: int64 [n_pairs] token ids."""
    n = len(A)
    hits = 0
    for i in range(n):
        j = (i + 1) % n
        best = analogy(E, int(A[i]), int(A[j]), int(B[j]), vocab, k=1, candidates=candidates)[0][0]
        hits += best == vocab[int(B[i])]
    return hits / n


def order_correlation(X: Tensor) -> float:
    """How well one direction orders a sequence (days, months, number words), on held-out items.

    Leave-one-out: the direction is the difference between the means of the later and the earlier half of
    the *other* items; the held-out item is projected on it. Returns the Spearman correlation between the
    projections and the true order (1: a perfect ordered direction; about 0: none).
    X: [n_items, d], rows in their true order.
    """
    n = X.shape[0]
    proj = torch.empty(n)
    for i in range(n):
        keep = torch.arange(n) != i
        late = keep & (torch.arange(n) >= n // 2)
        early = keep & (torch.arange(n) < n // 2)
        direction = X[late].mean(0) - X[early].mean(0)
        proj[i] = (X[i] - X[keep].mean(0)) @ direction
    return spearman(proj, torch.arange(n, dtype=torch.float))
