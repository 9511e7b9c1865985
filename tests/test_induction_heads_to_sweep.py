"""Which heads chapter 04's ablation sweeps visit: all of a small model's, the best-scoring few of a large one's
(issue 25: GPT-2 small's 144 heads would take 288 forward passes)."""

from __future__ import annotations

import torch

from mi_course.induction.head_scores import heads_to_sweep
from mi_course.seed import stream


def test_every_head_of_a_small_model_in_order():
    scores = {"induction": torch.rand(2, 4, generator=stream(0, "tests.heads_to_sweep"))}
    assert heads_to_sweep(scores) == [(l, h) for l in range(2) for h in range(4)]


def test_a_large_model_gets_the_best_of_each_score_in_turn():
    prev, ind = torch.zeros(12, 12), torch.zeros(12, 12)
    prev[0, 5], prev[0, 7], prev[3, 3] = 0.9, 0.8, 0.7          # the previous-token ranking: L0H5, L0H7, L3H3, ...
    ind[5, 1], ind[4, 4], ind[6, 2] = 0.9, 0.5, float("nan")     # a NaN score ranks last, not first
    heads = heads_to_sweep({"previous-token": prev, "induction": ind}, most=4)
    assert heads == [(0, 5), (0, 7), (4, 4), (5, 1)]             # two from each ranking in turn, then in order
    assert len(heads_to_sweep({"previous-token": prev, "induction": ind})) == 8
