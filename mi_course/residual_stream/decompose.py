"""Taking the residual stream apart: embeddings, and every head and MLP that writes to it.

The residual stream at any layer is a sum: token embedding + position embedding
+ the output of every earlier attention head + every earlier MLP (+ biases).
These functions split a run's cache into those pieces and check the sum.

Reading is the other half: a head reads the stream through a projection (``W_V``, say),
so a direction outside that projection's column space is invisible to it.
:func:`null_direction` draws such a direction and :func:`null_space_test` adds it to the stream.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor


def embed(tokens: Tensor, W_E: Tensor, W_pos: Tensor) -> Tensor:
    """The residual stream before the first block: each token's row of ``W_E`` plus its position's row of ``W_pos``.

    tokens: [batch, pos] (int) -> [batch, pos, d_model]
    """
    return W_E[tokens] + W_pos[: tokens.shape[-1]]


def head_outputs(z: Tensor, W_O: Tensor) -> Tensor:
    """What each head of one layer writes: its ``z`` through its own slice of ``W_O``.

    z: [batch, pos, heads, d_head], W_O: [heads, d_head, d_model] -> [heads, batch, pos, d_model]
    """
    return torch.einsum("bphe,hed->hbpd", z, W_O)


def component_labels(n_layers: int, n_heads: int, has_mlp: bool = True) -> list[str]:
    """Names of the pieces :func:`decompose_residual` returns, in its order."""
    labels = ["embed", "pos"]
    for l in range(n_layers):
        labels += [f"L{l}H{h}" for h in range(n_heads)] + ([f"MLP{l}"] if has_mlp else [])
    return labels + ["attn bias"]


def decompose_residual(cache: Mapping[str, Tensor], W_O: Tensor, b_O: Tensor) -> Tensor:
    """The final residual stream as a stack of the pieces that wrote it, in :func:`component_labels` order.

    ``cache`` holds ``hook_embed``, ``hook_pos_embed``, ``blocks.{l}.attn.hook_z`` and (if the
    model has MLPs) ``blocks.{l}.hook_mlp_out``. W_O: [layers, heads, d_head, d_model], b_O: [layers, d_model].
    Returns [n_components, batch, pos, d_model]; the pieces sum to the final residual stream.
    """
    embed_ = cache["hook_embed"]
    parts = [embed_, cache["hook_pos_embed"].expand_as(embed_)]
    for l in range(W_O.shape[0]):
        parts += list(head_outputs(cache[f"blocks.{l}.attn.hook_z"], W_O[l]))
        if f"blocks.{l}.hook_mlp_out" in cache:
            parts.append(cache[f"blocks.{l}.hook_mlp_out"])
    parts.append(b_O.sum(0).expand_as(embed_))
    return torch.stack(parts)


def accumulated_residual(cache: Mapping[str, Tensor], n_layers: int) -> Tensor:
    """The residual stream before block 0 and after every block. -> [n_layers + 1, batch, pos, d_model]"""
    return torch.stack([cache["blocks.0.hook_resid_pre"]]
                       + [cache[f"blocks.{l}.hook_resid_post"] for l in range(n_layers)])


def decomposition_names(n_layers: int) -> list[str]:
    """The cache entries :func:`decompose_residual` and :func:`accumulated_residual` read."""
    names = ["hook_embed", "hook_pos_embed", "blocks.0.hook_resid_pre", "ln_final.hook_scale"]
    for l in range(n_layers):
        names += [f"blocks.{l}.attn.hook_z", f"blocks.{l}.hook_mlp_out", f"blocks.{l}.hook_resid_post"]
    return names


def null_direction(W: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """A random unit vector that ``W`` cannot read: orthogonal to every column of ``W`` and to the all-ones vector.

    (The all-ones direction is excluded so that adding the vector does not move the LayerNorm's mean.)
    W: [d_model, k] (e.g. one head's ``W_V``) -> [d_model]
    """
    d = W.shape[0]
    basis, _ = torch.linalg.qr(torch.cat([W.detach().double().cpu(), torch.ones(d, 1, dtype=torch.float64)], dim=1))
    v = torch.randn(d, generator=generator, dtype=torch.float64)
    v = v - basis @ (basis.T @ v)
    return (v / v.norm()).to(W.dtype).to(W.device)


def null_space_test(model: Any, tokens: Tensor, direction: Tensor, layer: int = 0, head: int = 0) -> dict[str, Tensor]:
    """Add ``direction`` to the residual stream entering block ``layer`` (every position) and measure what changes.

    Returns relative changes ``|after - before| / |before|`` per position, each [batch, pos]:
    ``values`` (head ``head``'s value vectors), ``values_same_scale`` (the same, after undoing the change of
    the LayerNorm's scale, which depends on every direction) and, when the model has MLPs, ``mlp_pre``
    (that block's MLP pre-activations). tokens: [batch, pos], direction: [d_model].
    """
    names = [f"blocks.{layer}.attn.hook_v", f"blocks.{layer}.ln1.hook_scale", f"blocks.{layer}.mlp.hook_pre"]
    tokens = tokens.to(model.W_E.device)
    push = direction.to(model.W_E.device)

    def add(resid: Tensor, hook: Any) -> Tensor:
        return resid + push

    with torch.no_grad():
        _, before = model.run_with_cache(tokens, names_filter=names)
        with model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_resid_pre", add)]):
            _, after = model.run_with_cache(tokens, names_filter=names)
    b_V = model.b_V[layer, head]
    v0, v1 = before[names[0]][:, :, head] - b_V, after[names[0]][:, :, head] - b_V   # [batch, pos, d_head]
    rescale = after[names[1]] / before[names[1]]                                     # [batch, pos, 1]

    def rel(new: Tensor, old: Tensor) -> Tensor:
        return ((new - old).norm(dim=-1) / old.norm(dim=-1)).cpu()

    out = {"values": rel(v1, v0), "values_same_scale": rel(v1 * rescale, v0)}
    if names[2] in before:
        out["mlp_pre"] = rel(after[names[2]], before[names[2]])
    return out
