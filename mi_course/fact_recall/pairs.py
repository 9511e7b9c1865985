"""Clean and corrupted prompt pairs for patching, and where a model looks a fact up.

A *pair* is two fact prompts with the same template and different people whose sports differ:
the clean run knows the answer, the corrupted run knows another one. Restoring one activation
from the clean run into the corrupted run and watching the normalised logit difference come
back (0: corrupted, 1: clean) says how much of the fact that activation carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from ..seed import stream
from ..residual_stream.prompts import FactPrompts, fact_prompts
from .patching import logit_diff, lookup_sites, mlp_sites, normalised_metric, patch_sweep, residual_sites


@dataclass
class Pairs:
    """clean, corrupt: tokens [n, pos]; answer, wrong: the clean and the corrupted prompt's sport tokens [n]."""

    clean: Tensor
    corrupt: Tensor
    answer: Tensor
    wrong: Tensor


def make_pairs(P: FactPrompts, n: int, seed: int = 0) -> Pairs:
    """``n`` clean prompts and, for each, another person with a different sport (same template)."""
    gen = stream(seed, "fact_recall.pairs")
    clean = torch.randperm(len(P.names), generator=gen)[:n]
    corrupt = torch.tensor([next(j for j in torch.randperm(len(P.names), generator=gen).tolist()
                                 if P.labels[j] != P.labels[i]) for i in clean.tolist()])
    return Pairs(P.tokens[clean], P.tokens[corrupt], P.answers[clean], P.answers[corrupt])


def position_labels(model: Any, P: FactPrompts) -> list[str]:
    """Axis labels for the prompts' positions: "3 that", with "name" where the prompts differ (the person)."""
    words = model.to_str_tokens(P.tokens[0])
    varies = (P.tokens != P.tokens[0]).any(0)
    return [f"{i} {'‹name›' if varies[i] else w.strip() or repr(w)}" for i, w in enumerate(words)]


def one_pair(P: FactPrompts, clean: int, corrupt: int) -> Pairs:
    """A batch of one pair: person ``clean`` as the clean prompt, person ``corrupt`` as the corrupted one."""
    return Pairs(P.tokens[[clean]], P.tokens[[corrupt]], P.answers[[clean]], P.answers[[corrupt]])


def normalised_logit_diff(model: Any, pairs: Pairs) -> tuple[Callable[[Tensor], Tensor], Any]:
    """The metric (0 on the corrupted run, 1 on the clean run) and the clean run's cache."""
    device = next(model.parameters()).device
    answer, wrong = pairs.answer.to(device), pairs.wrong.to(device)
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(pairs.clean.to(device))
        corrupt_logits = model(pairs.corrupt.to(device))
    clean_ld, corrupt_ld = logit_diff(clean_logits, answer, wrong), logit_diff(corrupt_logits, answer, wrong)

    def metric(logits: Tensor) -> Tensor:
        return normalised_metric(logit_diff(logits, answer, wrong), clean_ld, corrupt_ld)

    return metric, cache


def sweep(model: Any, pairs: Pairs, kind: str = "resid") -> Tensor:
    """A sweep over layers and positions: the metric with one layer's ``resid_pre`` (``kind="resid"``) or
    MLP output (``kind="mlp"``) restored at one position. -> [layers, pos]"""
    metric, cache = normalised_logit_diff(model, pairs)
    T = pairs.clean.shape[1]
    sites = {"resid": residual_sites, "mlp": mlp_sites}[kind](model.cfg.n_layers, T)
    return patch_sweep(model, pairs.corrupt.to(next(model.parameters()).device), cache, sites, metric).view(-1, T)


def true_lookup_sites(model: Any, n: int = 16, seed: int = 0, threshold: float = 0.5) -> set[tuple[int, int]]:
    """Where ``model`` looks the sport up: the (layer, position) pairs whose MLP output, restored alone into
    the corrupted run, brings back more than ``threshold`` of the clean behaviour (recomputed by patching)."""
    return lookup_sites(sweep(model, make_pairs(fact_prompts(model), n, seed), "mlp"), threshold)
