"""Section 6: virtual attention heads and the path expansion of a two-layer attention-only model.

Freeze a run's attention patterns ``A`` and LayerNorm scales ``s``: every LayerNorm becomes the
linear map ``x -> (x - mean x) / s`` and every head the linear map ``A ⊗ W_OV``. The logits are then
a sum of paths from the embeddings to the unembedding (Elhage et al. 2021):

* the **direct** path: embeddings -> unembedding;
* one path per head, reading the embeddings (4 + 4 heads);
* one **virtual head** per layer-0/layer-1 pair: ``(A¹ D A⁰) ⊗ (W_OV⁰ W_OV¹)``, where ``D`` divides
  each position by the layer-1 LayerNorm scale (4 x 4 pairs);
* the biases (``b_O`` of both layers, ``b_U``, and layer 1 reading layer 0's ``b_O``).

The expansion assumes the weights of ``models.load`` (``processed=True``): LayerNorm weights
folded into the next layer and writing weights centred, so a frozen LayerNorm is exactly a
division by its scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from .factored import _w

Model = Any


@dataclass
class FrozenRun:
    """What a run leaves behind, to be frozen: patterns and LayerNorm scales (CPU, float)."""

    tokens: Tensor       # [batch, pos]
    logits: Tensor       # [batch, pos, vocab]
    embed: Tensor        # token + position embeddings, [batch, pos, d_model]
    patterns: Tensor     # [layer, batch, head, query, key]
    scales: Tensor       # LayerNorm scales [layer + 1, batch, pos]: ln1 of each layer, then ln_final


def frozen_run(model: Model, tokens: Tensor) -> FrozenRun:
    """Run ``model`` on ``tokens`` [batch, pos] and keep what the path expansion freezes."""
    n_layers = model.cfg.n_layers
    scale_hooks = [f"blocks.{l}.ln1.hook_scale" for l in range(n_layers)] + ["ln_final.hook_scale"]
    pattern_hooks = [f"blocks.{l}.attn.hook_pattern" for l in range(n_layers)]
    wanted = set(scale_hooks + pattern_hooks + ["blocks.0.hook_resid_pre"])
    device = next(model.parameters()).device
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens.to(device), names_filter=lambda name: name in wanted)
    embed = cache["blocks.0.hook_resid_pre"].float().cpu()
    ones = torch.ones(embed.shape[:2])
    scales = [cache[h].float().cpu()[..., 0] if h in cache else ones for h in scale_hooks]
    return FrozenRun(tokens=tokens.cpu(), logits=logits.float().cpu(), embed=embed,
                     patterns=torch.stack([cache[h].float().cpu() for h in pattern_hooks]),
                     scales=torch.stack(scales))


def frozen_layer_norm(x: Tensor, scale: Tensor) -> Tensor:
    """LayerNorm with its scale frozen: ``(x - mean(x)) / scale``. x: [batch, pos, d], scale: [batch, pos]"""
    return (x - x.mean(dim=-1, keepdim=True)) / scale[..., None]


def virtual_head_output(x: Tensor, A0: Tensor, A1: Tensor, W_OV0: Tensor, W_OV1: Tensor,
                        scale1: Tensor) -> Tensor:
    """What a layer-1 head writes by reading a layer-0 head's output: ``A¹ D A⁰ x W_OV⁰ W_OV¹``.

    Layer 0 moves ``x W_OV⁰`` with its pattern ``A⁰``; the layer-1 LayerNorm divides each position by
    its scale ``D = diag(1 / scale1)``; layer 1 moves the result with ``A¹`` and multiplies by ``W_OV¹``.
    x: [batch, pos, d_model] (layer 0's input after its LayerNorm)
    A0, A1: [batch, query, key] (one head's pattern in each layer)
    W_OV0, W_OV1: [d_model, d_model]; scale1: [batch, pos]
    returns: [batch, pos, d_model]
    """
    layer0 = A0 @ x @ W_OV0                                  # [batch, pos, d_model]
    return A1 @ (layer0 / scale1[..., None]) @ W_OV1


def _check_two_layer_attn_only(model: Model) -> None:
    if model.cfg.n_layers != 2 or not getattr(model.cfg, "attn_only", False):
        raise ValueError("The path expansion here is for two-layer attention-only models (like attn-only-2l): "
                         f"this model has {model.cfg.n_layers} layers and attn_only={model.cfg.attn_only}. "
                         "MLP outputs are not paths through attention heads.")
    if _w(model.W_O).mean(dim=-1).abs().max() > 1e-4:
        raise ValueError("The writing weights are not centred: load the model with processed=True "
                         "(models.load's default), so that a frozen LayerNorm is a division by its scale.")


def _bias_out(model: Model, layer: int) -> Tensor:
    """``b_O`` plus what ``b_V`` adds through ``W_O`` (pattern rows sum to 1). [d_model]"""
    return _w(model.b_O[layer]) + torch.einsum("he,hed->d", _w(model.b_V[layer]), _w(model.W_O[layer]))


def path_expansion(model: Model, tokens: Tensor | None = None, run: FrozenRun | None = None,
                   virtual_head: Callable[..., Tensor] = virtual_head_output) -> dict[str, Tensor]:
    """Every path's contribution to the logits of a two-layer attention-only model.

    Keys: "direct", "L0H0".."L0H3", "L1H0".."L1H3", "L0H0→L1H0".. (virtual heads), "biases".
    Each value is [batch, pos, vocab]; the values sum to the model's logits.
    Pass ``tokens`` [batch, pos] or a ``run`` from :func:`frozen_run`.
    """
    _check_two_layer_attn_only(model)
    run = frozen_run(model, tokens) if run is None else run
    n_heads = model.cfg.n_heads
    W_OV = _w(model.W_V) @ _w(model.W_O)                      # [layer, head, d_model, d_model]
    A0, A1 = run.patterns[0], run.patterns[1]                 # [batch, head, q, k]
    s0, s1, s_final = run.scales
    W_U = _w(model.W_U)

    def unembed(residual: Tensor) -> Tensor:
        return frozen_layer_norm(residual, s_final) @ W_U

    x0 = frozen_layer_norm(run.embed, s0)                     # what layer 0 reads
    x1 = frozen_layer_norm(run.embed, s1)                     # what layer 1 reads of the embeddings
    terms = {"direct": unembed(run.embed)}
    for h in range(n_heads):
        terms[f"L0H{h}"] = unembed(A0[:, h] @ x0 @ W_OV[0, h])
    for h in range(n_heads):
        terms[f"L1H{h}"] = unembed(A1[:, h] @ x1 @ W_OV[1, h])
    for a in range(n_heads):
        for b in range(n_heads):
            terms[f"L0H{a}→L1H{b}"] = unembed(virtual_head(x0, A0[:, a], A1[:, b], W_OV[0, a], W_OV[1, b], s1))
    b0, b1 = (_bias_out(model, l).expand_as(run.embed) for l in (0, 1))
    through_layer1 = sum(A1[:, h] @ frozen_layer_norm(b0, s1) @ W_OV[1, h] for h in range(n_heads))
    terms["biases"] = unembed(b0 + b1 + through_layer1) + _w(model.b_U)
    return terms


def correct_logit_effects(terms: dict[str, Tensor], tokens: Tensor, positions: Tensor) -> dict[str, float]:
    """Each path's mean contribution to the logit of the correct next token.

    terms: name -> [batch, pos, vocab]; tokens: [batch, pos]; positions: [n] (each predicts position + 1)
    """
    target = tokens[:, positions + 1]                                        # [batch, n]
    return {name: term[:, positions].gather(-1, target[..., None]).mean().item() for name, term in terms.items()}


def score_terms_by_source(sources: Tensor, scale: Tensor, W_Q: Tensor, W_K: Tensor, b_Q: Tensor, b_K: Tensor) -> Tensor:
    """A head's attention scores split by where the query and the key come from.

    The head reads ``LN(Σ_i sources[i])``, with the LayerNorm's scale frozen, so it reads ``Σ_i LN(sources[i])``
    and its score is bilinear: ``score = Σ_{i,j} q_i · k_j / √d_head`` with ``q_i = LN(sources[i]) W_Q`` and
    ``k_j = LN(sources[j]) W_K``. The biases ``b_Q, b_K`` go with the last source.
    sources: [S, batch, pos, d_model]; scale: [batch, pos]; W_Q, W_K: [d_model, d_head]; b_Q, b_K: [d_head]
    returns: [S (query source), S (key source), batch, query, key]; their sum is the scores before the mask
    """
    normed = frozen_layer_norm(sources, scale)
    queries, keys = normed @ W_Q, normed @ W_K                                        # [S, batch, pos, d_head]
    queries[-1], keys[-1] = queries[-1] + b_Q, keys[-1] + b_K
    return torch.einsum("ibqe,jbke->ijbqk", queries, keys) / W_Q.shape[-1] ** 0.5


def attention_score_terms(model: Model, run: FrozenRun, head: int,
                          split: Callable[..., Tensor] = score_terms_by_source) -> tuple[list[str], Tensor]:
    """A layer-1 head's attention scores, split by where its query and its key come from.

    The sources of the residual that layer 1 reads: the embeddings, each layer-0 head, and the biases (with the
    head's ``b_Q, b_K``); ``split`` is :func:`score_terms_by_source` (or a learner's version of it).
    returns: (source names [S], terms [S, S, batch, query, key]) whose sum is the scores (before the mask)
    """
    _check_two_layer_attn_only(model)
    x0 = frozen_layer_norm(run.embed, run.scales[0])
    W_OV0 = _w(model.W_V[0]) @ _w(model.W_O[0])
    sources = {"embed": run.embed}
    for h in range(model.cfg.n_heads):
        sources[f"L0H{h}"] = run.patterns[0][:, h] @ x0 @ W_OV0[h]
    sources["biases"] = _bias_out(model, 0).expand_as(run.embed)
    terms = split(torch.stack(list(sources.values())), run.scales[1], _w(model.W_Q[1, head]), _w(model.W_K[1, head]),
                  _w(model.b_Q[1, head]), _w(model.b_K[1, head]))
    return list(sources), terms


def stripe_contributions(terms: Tensor, offset: int, first_query: int) -> Tensor:
    """How much each term lifts the score on the stripe ``key = query - offset`` above the row's mean.

    Softmax ignores a constant added to a row, so each term is measured against its mean over the
    keys a query can see (key <= query). terms: [..., batch, query, key]   returns: [...]
    """
    seq = terms.shape[-1]
    queries = torch.arange(max(first_query, offset), seq)
    visible = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    row_mean = (terms * visible).sum(-1) / visible.sum(-1)                 # [..., batch, query]
    on_stripe = terms[..., queries, queries - offset] - row_mean[..., queries]
    return on_stripe.mean(dim=(-2, -1))
