"""Section 1: attention heads are independent and additive.

A layer's heads each write ``z_h @ W_O[h]`` into the residual stream. The usual implementation
concatenates the heads' results and multiplies by one big ``W_O``; both are the same sum.
"""

from __future__ import annotations

import torch
from torch import Tensor


def head_outputs(z: Tensor, W_O: Tensor) -> Tensor:
    """What each head writes into the residual stream (before the layer's bias ``b_O``).

    z: [batch, pos, head, d_head] (``blocks.L.attn.hook_z``)
    W_O: [head, d_head, d_model]
    returns: [batch, pos, head, d_model]
    """
    return torch.einsum("bphe,hed->bphd", z, W_O)


def concatenated_output(z: Tensor, W_O: Tensor) -> Tensor:
    """The standard implementation: concatenate the heads, then one ``[head * d_head, d_model]`` matrix.

    z: [batch, pos, head, d_head]; W_O: [head, d_head, d_model]   returns: [batch, pos, d_model]
    """
    batch, pos, n_heads, d_head = z.shape
    return z.reshape(batch, pos, n_heads * d_head) @ W_O.reshape(n_heads * d_head, -1)


def layer_head_roles(patterns: Tensor, previous: float = 0.4, own: float = 0.5) -> dict[str, set[int]]:
    """Which heads of a layer are previous-token heads and which current-token heads, from their patterns.

    A previous-token head puts more than ``previous`` of its attention, on average, on the position just
    before the query; a current-token head more than ``own`` on the query's own position (BOS, whose only
    choice is itself, left out). patterns: [batch, head, query, key] -> {"previous_token": {heads},
    "current_token": {heads}}
    """
    back = patterns.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, 2))          # [head]
    itself = patterns.diagonal(dim1=-2, dim2=-1)[..., 1:].mean(dim=(0, 2))          # [head]
    return {"previous_token": set((back > previous).nonzero().flatten().tolist()),
            "current_token": set((itself > own).nonzero().flatten().tolist())}
