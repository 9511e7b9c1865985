"""Local processing in early layers (seed 002, Fact Finding post 5).

Run the model twice: on a whole window of text, and on BOS followed by only
its last ``k`` tokens (at the same positions). Where the last position's residual
stream is nearly the same in both runs, the layer has only looked at the last
``k`` tokens: its processing is local. We compare the two with the cosine
similarity after subtracting each layer's mean residual.
"""

from __future__ import annotations

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
    """Raised by a forward pass's hook once every activation asked for is kept: the rest is not computed."""


def activations(model: Any, tokens: Tensor, hooks: Sequence[str], fwd_hooks: Sequence = ()) -> dict[str, Tensor]:
    """The activations at ``hooks`` (those the model has) for one batch of the model's own tokens, with
    ``fwd_hooks`` applied. The forward pass stops after the last of them, so the unembedding (most of the cost
    for a hub vocabulary: [batch, pos, 50,257] logits) is skipped.

    tokens: [batch, pos] -> {hook: [batch, pos, ...] as the hook saw it (``hook_pos_embed``: batch 1)}
    """
    present = [h for h in hooks if h in model.hook_dict]
    kept: dict[str, Tensor] = {}

    def keeper(name: str) -> Callable:
        def keep(x: Tensor, hook: Any) -> None:
            kept[name] = x.detach()
            if len(kept) == len(present):
                raise _Enough
        return keep

    with torch.no_grad():
        try:
            model.run_with_hooks(tokens, fwd_hooks=[*fwd_hooks, *[(h, keeper(h)) for h in present]])
        except _Enough:
            pass
    return kept


def last_position_resid(model: Any, tokens: Tensor, positions: Tensor | None = None) -> Tensor:
    """The residual stream after every block at the last position. -> [n_layers, n, d_model]

    ``positions`` replaces the position embeddings (to keep the truncated tokens where they were). The forward
    pass stops after the last block (:func:`activations`).
    """
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(model.cfg.n_layers)]
    hooks = []
    if positions is not None:
        W_pos = model.W_pos

        def same_positions(pos_embed: Tensor, hook: Any) -> Tensor:
            return W_pos[positions.to(W_pos.device)].expand_as(pos_embed).clone()

        hooks.append(("hook_pos_embed", same_positions))
    found = activations(model, tokens.to(model.W_E.device), names, hooks)
    return torch.stack([found[n][:, -1] for n in names]).cpu()


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
