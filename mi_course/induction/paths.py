"""Path ablation: remove one layer-0 head from what layer-1 heads read on one side (query, key or value).

Ablating a head removes everything it writes, for every reader at once. To test a *role* (the
previous-token head feeds the induction heads' keys; the current-token heads feed their queries and
values), remove the head's output only from the residual stream that one side of the readers sees:

    q'_h = q_h - (w / s) W_Q^h          (and likewise for k with W_K, v with W_V)

where ``w`` is the writer's output at each position and ``s`` the readers' LayerNorm scale from the
clean run (kept frozen, as in chapter 02's path expansion: with the weights of ``models.load``, a frozen
LayerNorm is a division by its scale). Every other path is left alone.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

Model = Any
SIDES = ("q", "k", "v")


def path_ablation_hooks(model: Model, writer: tuple[int, int], readers: Sequence[int], side: str,
                        reader_layer: int = 1) -> list:
    """Hooks (for ``run_with_hooks``) that zero head ``writer``'s output in the ``side`` input of ``readers``.

    writer: (layer, head) of an earlier layer; readers: heads of ``reader_layer``; side: "q", "k" or "v".
    The writer's output ``z W_O`` [batch, pos, d_model] and the readers' LayerNorm scale [batch, pos, 1]
    are kept as the run passes them; the readers' ``hook_{side}`` [batch, pos, head, d_head] then loses
    ``(w / s) @ W_side[head]``.
    """
    if side not in SIDES:
        raise ValueError(f"side is one of {SIDES}, not {side!r}")
    layer, head = writer
    if layer >= reader_layer:
        raise ValueError(f"L{layer}H{head} cannot write into layer {reader_layer}: it is not an earlier layer")
    seen: dict[str, Tensor] = {}
    W_side = {"q": model.W_Q, "k": model.W_K, "v": model.W_V}[side][reader_layer]     # [head, d_model, d_head]

    def keep_output(z: Tensor, hook: Any) -> Tensor:
        seen["out"] = z[:, :, head] @ model.W_O[layer, head]                         # [batch, pos, d_model]
        return z

    def keep_scale(scale: Tensor, hook: Any) -> Tensor:
        seen["scale"] = scale                                                        # [batch, pos, 1]
        return scale

    def remove(x: Tensor, hook: Any) -> Tensor:
        x = x.clone()
        removed = seen["out"] / seen["scale"]
        for h in readers:
            x[:, :, h] = x[:, :, h] - removed @ W_side[h]
        return x

    return [(f"blocks.{layer}.attn.hook_z", keep_output), (f"blocks.{reader_layer}.ln1.hook_scale", keep_scale),
            (f"blocks.{reader_layer}.attn.hook_{side}", remove)]
