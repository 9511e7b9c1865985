"""Scores for attention heads: previous-token, induction, composition, ablation.

All functions take a ``TransformerBridge`` (anything with ``run_with_cache``,
``run_with_hooks``, ``cfg`` and the ``W_Q/W_K/W_V/W_O`` properties). Chapter 04
builds these step by step; the zoo's model cards and tests use them too.

The repeated-random-tokens test (Olsson et al. 2022; ARENA):

    tokens = [BOS, t_1 .. t_n, t_1 .. t_n]       (n = 50 by default)

* previous-token score of a head: mean attention from each position to the
  position just before it (the -1 stripe), over every query but BOS;
* induction score: mean attention from each position of the second copy to
  the token *after* the earlier occurrence of the current token, i.e. the
  -(n-1) stripe, over the queries of the second copy;
* loss on the first vs the second copy: a model with induction heads predicts
  the second copy almost perfectly.

The composition scores (``ov_matrix``, ``qk_matrix``, ``composition_score``, ``k_composition``,
``random_composition_scores``) live in chapter 02's :mod:`mi_course.circuits` and are imported here.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..device import rows_that_fit
from ..seed import stream
from ..circuits.composition import composition_score, k_composition, random_composition_scores  # noqa: F401 (re-exported)
from ..circuits.factored import ov_matrix, qk_matrix  # noqa: F401 (re-exported for the zoo and chapter 04)

Model = Any  # a TransformerBridge; kept loose so chapters can pass their own models


def repeated_random_tokens(pool: Tensor | Sequence[int], n: int = 50, batch: int = 16,
                           bos_id: int = 0, seed: int = 0) -> Tensor:
    """``[BOS, t_1..t_n, t_1..t_n]`` with the ``t_i`` drawn uniformly from ``pool``.

    pool: token ids to draw from (e.g. the words a model saw in training)
    returns: int64 [batch, 1 + 2n]
    """
    pool = torch.as_tensor(pool, dtype=torch.long)
    gen = stream(seed, "induction.repeated_tokens")
    half = pool[torch.randint(len(pool), (batch, n), generator=gen)]
    bos = torch.full((batch, 1), bos_id, dtype=torch.long)
    return torch.cat([bos, half, half], dim=1)


def attention_patterns(model: Model, tokens: Tensor) -> Tensor:
    """Every head's attention pattern.

    tokens: [batch, seq]   returns: [layer, batch, head, query, key]
    """
    names = [f"blocks.{l}.attn.hook_pattern" for l in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens.to(_device(model)), names_filter=lambda n: n in names)
    return torch.stack([cache[n].float().cpu() for n in names])


def stripe_score(patterns: Tensor, offset: int, first_query: int) -> Tensor:
    """Mean attention on the stripe ``key = query - offset`` over queries >= ``first_query``.

    patterns: [layer, batch, head, query, key]   returns: [layer, head]
    """
    seq = patterns.shape[-1]
    q = torch.arange(max(first_query, offset), seq)
    return patterns[..., q, q - offset].mean(dim=(1, 3))


def prev_token_scores(patterns: Tensor) -> Tensor:
    """Mean attention to the previous token (queries 1..end). [layer, batch, head, q, k] -> [layer, head]"""
    return stripe_score(patterns, offset=1, first_query=1)


def current_token_scores(patterns: Tensor) -> Tensor:
    """Mean attention to the query's own position. [layer, batch, head, q, k] -> [layer, head]"""
    return stripe_score(patterns, offset=0, first_query=0)


def first_token_scores(patterns: Tensor) -> Tensor:
    """Mean attention to position 0 (BOS), over queries 1..end. [layer, batch, head, q, k] -> [layer, head]"""
    return patterns[..., 1:, 0].mean(dim=(1, 3))


def induction_scores(patterns: Tensor, n: int = 50) -> Tensor:
    """Mean attention on the -(n-1) stripe from the second copy. [layer, batch, head, q, k] -> [layer, head]"""
    return stripe_score(patterns, offset=n - 1, first_query=n + 1)


def per_token_loss(model: Model, tokens: Tensor, fwd_hooks: list | None = None) -> Tensor:
    """Cross-entropy of predicting each next token. tokens [batch, seq] -> [batch, seq - 1]

    Rows go through the model in chunks whose logits fit :data:`mi_course.device.LOGITS_BUDGET` (all at once for the
    course's 510 words; a few rows at a time for GPT-2's 50,257, whose logits for 128 rows of 256 tokens
    would be 6.6 GB). Hooks must therefore not depend on the other rows of the batch.
    """
    tokens = tokens.to(_device(model))
    rows = rows_that_fit(model, tokens.shape[1])
    losses = []
    with torch.no_grad():
        for chunk in tokens.split(rows):
            logits = model.run_with_hooks(chunk, fwd_hooks=fwd_hooks or [])
            logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
            losses.append(-logp.gather(-1, chunk[:, 1:, None])[..., 0].cpu())
    return torch.cat(losses)


def copy_losses(loss: Tensor, n: int = 50) -> tuple[float, float]:
    """Mean loss on the first and on the second copy of the repeated tokens.

    ``loss[:, i]`` is the loss of predicting token ``i + 1``. The first token of
    each copy cannot be predicted, so the first copy is tokens 2..n and the
    second copy tokens n+2..2n. loss: [batch, 2n]  returns: (first, second)
    """
    first = loss[:, 1:n].mean().item()
    second = loss[:, n + 1: 2 * n].mean().item()
    return first, second


def heads_to_sweep(scores: dict[str, Tensor], most: int = 8) -> list[tuple[int, int]]:
    """The heads a per-head ablation sweep visits (one forward pass each): every head, in order, on a model
    with at most ``most`` heads; on a larger one (GPT-2 small has 144) the ``most`` heads that score highest
    on any of ``scores``, taken in turn from each kind's ranking, then put in order.
    scores: {kind: [layer, head]} -> [(layer, head)]"""
    n_layers, n_heads = next(iter(scores.values())).shape
    if n_layers * n_heads <= most:
        return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    rankings = [s.flatten().nan_to_num(float("-inf")).argsort(descending=True).tolist() for s in scores.values()]
    chosen: list[int] = []
    for rank in range(n_layers * n_heads):
        for ranking in rankings:
            if len(chosen) < most and ranking[rank] not in chosen:
                chosen.append(ranking[rank])
    return sorted(divmod(i, n_heads) for i in chosen)


def head_ablation_hooks(heads: Sequence[tuple[int, int]], mean_over: Tensor | None = None) -> list:
    """Hooks that zero-ablate (or mean-ablate) heads' outputs ``z`` before ``W_O``.

    heads: [(layer, head), ...]; mean_over: if given, the cached ``z`` of that
    layer [batch, pos, head, d_head] whose mean over batch and position
    replaces the head's output (mean-ablation).
    """
    def make(head: int):
        def hook(z: Tensor, hook: Any) -> Tensor:
            z = z.clone()
            z[:, :, head] = 0.0 if mean_over is None else mean_over[:, :, head].mean(dim=(0, 1))
            return z
        return hook

    return [(f"blocks.{layer}.attn.hook_z", make(head)) for layer, head in heads]


# ----------------------------------------------------------------------------
# Composition scores are chapter 02's (mi_course.circuits); chapter 04 and the
# zoo's model cards use them from here.
# ----------------------------------------------------------------------------

def _device(model: Model) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------
# Naming heads
# ----------------------------------------------------------------------------

def head_name(layer: int, head: int) -> str:
    """``"L1H0"``: the way the field names heads."""
    return f"L{layer}H{head}"


def label_heads(prev: Tensor, induction: Tensor, threshold: float = 0.4) -> dict[str, set[str]]:
    """Heads whose previous-token or induction score is above ``threshold`` (the 0.4 convention).

    prev, induction: [layer, head] -> {"previous_token": {"L0H2", ...}, "induction": {...}}
    """
    def above(scores: Tensor) -> set[str]:
        return {head_name(int(l), int(h)) for l, h in (scores > threshold).nonzero().tolist()}

    return {"previous_token": above(prev), "induction": above(induction)}
