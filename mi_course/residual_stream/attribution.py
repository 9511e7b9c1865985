"""Which component produced the answer: direct logit attribution and the logit lens.

The final residual ``x`` becomes logits as ``LN(x) @ W_U + b_U``. LayerNorm is
linear once its scale (the RMS of ``x``) is fixed from the run, and ``x`` is a
sum of components, so each component's share of a logit difference is its
own vector, divided by that scale, dotted with the difference's unembedding
direction. The shares (plus the unembedding bias) add up to the logit difference exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..seed import stream
from .weights import layer_norm


def logit_diff_direction(W_U: Tensor, answers: Tensor, candidates: Tensor) -> Tensor:
    """Unembedding direction of "the answer minus the mean of the other candidates".

    W_U: [d_model, vocab], answers: token ids [batch], candidates: token ids [k] (answers among them)
    -> [batch, d_model]
    """
    cols = W_U[:, candidates].T                                     # [k, d_model]
    is_answer = (candidates[None, :] == answers[:, None]).float()  # [batch, k]
    others = (1 - is_answer) / (1 - is_answer).sum(-1, keepdim=True)
    return W_U[:, answers].T - others @ cols


def logit_diff(logits: Tensor, answers: Tensor, candidates: Tensor) -> Tensor:
    """logit(answer) minus the mean logit of the other candidates. logits: [batch, vocab] -> [batch]"""
    cand = logits[:, candidates]                                   # [batch, k]
    is_answer = candidates[None, :] == answers[:, None]
    others = cand.masked_fill(is_answer, 0).sum(-1) / (~is_answer).sum(-1)
    return logits.gather(-1, answers[:, None])[:, 0] - others


def direct_logit_attribution(components: Tensor, scale: Tensor, direction: Tensor) -> Tensor:
    """Each component's direct contribution to a logit difference.

    components: [n_components, batch, d_model] (at the position that predicts), scale: the final
    LayerNorm's scale from the run [batch, 1], direction: [batch, d_model] -> [n_components, batch]
    """
    return torch.einsum("cbd,bd->cb", components / scale, direction)


def logit_lens(resid: Tensor, W_U: Tensor, b_U: Tensor, eps: float = 1e-5) -> Tensor:
    """Unembed intermediate residual streams as if they were the last: each through a fresh LayerNorm.

    resid: [n_layers + 1, batch, d_model] -> logits [n_layers + 1, batch, vocab]
    """
    return layer_norm(resid, eps=eps) @ W_U + b_U


def answer_rank(logits: Tensor, answers: Tensor) -> Tensor:
    """Rank of the answer among all tokens (0: the top prediction). logits: [..., batch, vocab] -> [..., batch]"""
    answer_logit = logits.gather(-1, answers.expand(*logits.shape[:-1])[..., None])
    return (logits > answer_logit).sum(-1)


def top_predictions(x: Tensor, W_U: Tensor, b_U: Tensor | None = None, chunk: int = 256) -> Tensor:
    """Each row's top token under ``x @ W_U + b_U``, a chunk of rows at a time.

    A hub model's vocabulary makes the full ``[rows, vocab]`` logits of every token large (GPT-2's
    ``W_E @ W_U`` is 50,257² floats, about 10 GB): this keeps at most ``[chunk, vocab]`` in memory.
    x: [n, d_model], W_U: [d_model, vocab], b_U: [vocab] -> int64 [n]
    """
    tops = []
    for rows in x.split(chunk):
        logits = rows @ W_U
        tops.append((logits if b_U is None else logits + b_U).argmax(-1))
    return torch.cat(tops) if tops else torch.zeros(0, dtype=torch.long, device=x.device)


def scored_tokens(d_vocab: int, seed: int, limit: int = 5_000, sample: int = 2_000,
                  device: torch.device | str = "cpu") -> Tensor:
    """The token ids a vocabulary-wide statistic is computed on: all of them up to ``limit`` words, else a
    seeded random sample of ``sample`` (a hub model's 50,257 words would make it slow, not more true).

    returns: int64 [n] (sorted)
    """
    if d_vocab <= limit:
        return torch.arange(d_vocab, device=device)
    return torch.randperm(d_vocab, generator=stream(seed, "residual_stream.scored_tokens"))[:sample].sort().values.to(device)


KINDS = ("the embeddings", "the attention heads", "the MLPs")


def dla_by_kind(dla: Tensor, labels: list[str]) -> dict[str, float]:
    """The mean DLA of each kind of component, summed over the components of that kind.

    The embeddings are ``embed`` and ``pos``; the attention heads are every ``LxHy`` and the attention
    biases; the MLPs every ``MLPx``. dla: [n_components, prompts] in ``component_labels`` order ->
    {kind: mean over prompts of the kind's summed DLA} (a kind the model lacks is left out)
    """
    kind_of = lambda label: (KINDS[0] if label in ("embed", "pos") else KINDS[2] if label.startswith("MLP")
                             else KINDS[1])
    mean = dla.mean(-1)
    totals: dict[str, float] = {}
    for label, value in zip(labels, mean.tolist()):
        totals[kind_of(label)] = totals.get(kind_of(label), 0.0) + value
    return totals


def mean_dla(model: Any, tokens: Tensor, answers: Tensor, candidates: Tensor) -> dict[str, float]:
    """Each component's direct logit attribution at the last position, averaged over the prompts.

    The logit difference is the answer's logit minus the mean of the other candidates' (as in
    :func:`logit_diff`). tokens: [prompts, pos]; answers: [prompts]; candidates: [k] ->
    {component label (``decompose.component_labels`` order): mean DLA}
    """
    from .decompose import component_labels, decompose_residual

    cfg, device = model.cfg, model.W_U.device
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens.to(device))
        components = decompose_residual(cache, model.W_O, model.b_O)[:, :, -1]          # [components, prompts, d]
        direction = logit_diff_direction(model.W_U, answers.to(device), candidates.to(device))
        dla = direct_logit_attribution(components, cache["ln_final.hook_scale"][:, -1], direction)
    return dict(zip(component_labels(cfg.n_layers, cfg.n_heads, not cfg.attn_only), dla.mean(-1).tolist()))
