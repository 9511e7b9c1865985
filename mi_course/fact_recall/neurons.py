"""MLP neurons as key-value memories, and next-token neurons (Geva et al. 2021; Neo et al. 2024).

A neuron's input weights ``W_in[:, i]`` are its *key*: it fires on residual streams that point
along them. Its output weights ``W_out[i]`` are its *value*: what it adds when it fires. Read
through the unembedding, ``W_out[i] @ W_U`` says which next tokens the neuron promotes; a
*next-token neuron* is one whose value singles out a token (its congruence with that token's
unembedding stands out). To score a neuron against the world's labels, use chapter 05's
:func:`mi_course.sae.labels.auroc`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def congruence(W_out: Tensor, W_U: Tensor) -> Tensor:
    """``W_out[i] · W_U[:, t]`` for every neuron and token. W_out: [d_mlp, d_model], W_U: [d_model, vocab] -> [d_mlp, vocab]"""
    return W_out @ W_U


def top_neuron_per_token(cong: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
    """For each token, the neuron with the largest congruence, and that congruence's z-score among the
    neuron's own tokens (how much the token stands out for it). cong: [d_mlp, vocab] -> ([k], [k])"""
    best = cong[:, tokens].argmax(0)
    row = cong[best]                                                   # [k, vocab]
    z = (row.gather(-1, tokens[:, None])[:, 0] - row.mean(-1)) / row.std(-1)
    return best, z


def top_positions(acts: Tensor, k: int) -> Tensor:
    """The ``k`` (row, position) pairs where ``acts`` [rows, pos] is largest, largest first. -> long [k, 2]"""
    flat = acts.flatten().topk(k).indices
    return torch.stack([flat // acts.shape[1], flat % acts.shape[1]], dim=1)


def head_attribution(head_out: Tensor, scale: Tensor, w_in: Tensor) -> Tensor:
    """Each head's direct contribution to a neuron's pre-activation: its output through the LayerNorm
    scale, dotted with the neuron's input weights. head_out: [heads, batch, d_model], scale: [batch, 1],
    w_in: [d_model] -> [heads, batch]"""
    return (head_out / scale) @ w_in


def head_outputs(cache, W_O: Tensor, n_layers: int, rows, positions) -> Tensor:
    """What each head of layers ``0..n_layers-1`` writes to the residual stream at ``(rows, positions)``:
    its ``hook_z`` through ``W_O``, on the CPU. W_O: [layers, heads, d_head, d_model];
    ``cache[...][rows, positions]`` must give [batch, heads, d_head]. -> [n_layers * heads, batch, d_model]"""
    return torch.cat([torch.einsum("bhe,hed->hbd", cache[f"blocks.{l}.attn.hook_z"][rows, positions].cpu(),
                                   W_O[l].cpu()) for l in range(n_layers)])
