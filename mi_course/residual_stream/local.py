"""Local processing in early layers (seed 002, Fact Finding post 5).

Run the model twice: on a whole window of text, and on BOS followed by only
its last ``k`` tokens (at the same positions). Where the last position's residual
stream is nearly the same in both runs, the layer has only looked at the last
``k`` tokens: its processing is local. We compare the two with the cosine
similarity after subtracting each layer's mean residual.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import torch
from torch import Tensor


def truncate(tokens: Tensor, k: int, bos: int) -> tuple[Tensor, Tensor]:
    """BOS followed by the last ``k`` tokens of each row, and the positions those tokens had.

    tokens: [n, T] -> (tokens [n, k + 1], positions [k + 1]: 0, then T-k .. T-1)
    """
    T = tokens.shape[1]
    short = torch.cat([torch.full_like(tokens[:, :1], bos), tokens[:, T - k:]], dim=1)
    return short, torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(T - k, T)])


def centred_cosine(full: Tensor, short: Tensor) -> Tensor:
    """Cosine between matching rows after subtracting each layer's mean (over the rows of ``full``).

    full, short: [layers, n, d_model] -> [layers, n]
    """
    mean = full.mean(1, keepdim=True)
    return torch.cosine_similarity(full - mean, short - mean, dim=-1)


class _Enough(Exception):
    """Raised by the last block's hook: the rest of the forward pass (the unembedding) is not needed."""


def last_position_resid(model: Any, tokens: Tensor, positions: Tensor | None = None) -> Tensor:
    """The residual stream after every block at the last position. -> [n_layers, n, d_model]

    ``positions`` replaces the position embeddings (to keep the truncated tokens where they were). The forward
    pass stops after the last block: a hub model's logits ([n, T, 50,257]) would cost more than the blocks.
    """
    n_layers = model.cfg.n_layers
    found: dict[int, Tensor] = {}

    def keep(resid: Tensor, hook: Any, layer: int) -> None:
        found[layer] = resid[:, -1].detach().cpu()
        if layer == n_layers - 1:
            raise _Enough

    hooks = [(f"blocks.{layer}.hook_resid_post", functools.partial(keep, layer=layer)) for layer in range(n_layers)]
    if positions is not None:
        W_pos = model.W_pos

        def same_positions(pos_embed: Tensor, hook: Any) -> Tensor:
            return W_pos[positions.to(W_pos.device)].expand_as(pos_embed).clone()

        hooks.append(("hook_pos_embed", same_positions))
    try:
        with torch.no_grad(), model.hooks(fwd_hooks=hooks):
            model(tokens.to(model.W_E.device))
    except _Enough:
        pass
    return torch.stack([found[layer] for layer in range(n_layers)])


def local_processing(model: Any, tokens: Tensor, ks: Sequence[int], bos: int,
                     similarity: Callable[[Tensor, Tensor], Tensor] = centred_cosine,
                     truncation: Callable[[Tensor, int, int], tuple[Tensor, Tensor]] = truncate) -> Tensor:
    """``similarity`` (centred cosine) of the last position, full window vs BOS + last k tokens, for each k
    (``truncation`` makes the short window and the positions it keeps).

    tokens: [n, T] -> [len(ks), n_layers, n]
    """
    full = last_position_resid(model, tokens)
    rows = []
    for k in ks:
        short, positions = truncation(tokens, k, bos)
        rows.append(similarity(full, last_position_resid(model, short, positions)))
    return torch.stack(rows)
