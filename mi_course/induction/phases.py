"""Induction heads over training: the scores at each shipped checkpoint, and in-context learning.

``attn-only-2l`` ships ten checkpoints, most of them around its phase change
(step ~3,250), so the formation of the circuit can be watched without training.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from . import head_scores as hs


def in_context_learning_score(loss: Tensor, early: int = 10, late: int = 100) -> float:
    """Mean loss on the ``late``-th token minus the ``early``-th (Olsson et al. 2022: negative = the model
    uses context). loss: [batch, seq - 1], ``loss[:, i]`` predicting token ``i + 1`` (BOS is token 0)."""
    return (loss[:, late - 1] - loss[:, early - 1]).mean().item()


def windowed_icl_score(loss: Tensor, early: tuple[int, int] = (5, 15),
                       late: tuple[int, int] = (90, 110)) -> tuple[float, float]:
    """The in-context learning score over windows of tokens, and its standard error over the rows.

    Each row's mean loss on tokens ``late[0]..late[1]`` minus its mean loss on ``early[0]..early[1]``
    (both ends included; token ``t``'s loss is ``loss[:, t - 1]``): averaging over windows tames the
    noise of single-token losses. loss: [batch, seq - 1]   returns: (mean over rows, standard error)
    """
    per_row = loss[:, late[0] - 1: late[1]].mean(-1) - loss[:, early[0] - 1: early[1]].mean(-1)   # [batch]
    return per_row.mean().item(), (per_row.std() / len(per_row) ** 0.5).item()


def checkpoint_scores(load: Callable[[int], Any], steps: Sequence[int], repeated: Tensor, n: int,
                      text: Tensor, early: int = 10, late: int = 100) -> dict[str, Tensor]:
    """For each checkpoint: best previous-token score (layer 0), best induction score (last layer),
    loss on the second copy of ``repeated`` [batch, 1 + 2n], held-out loss and ICL score on ``text``.

    load(step) returns the model at that step. -> each entry [len(steps)]
    """
    out: dict[str, list[float]] = {k: [] for k in ("prev_token", "induction", "second_copy", "held_out", "icl")}
    from tqdm.auto import tqdm

    for step in tqdm(steps, desc="checkpoints", leave=False):
        model = load(step)
        patterns = hs.attention_patterns(model, repeated)
        out["prev_token"].append(hs.prev_token_scores(patterns)[0].max().item())
        out["induction"].append(hs.induction_scores(patterns, n)[-1].max().item())
        out["second_copy"].append(hs.copy_losses(hs.per_token_loss(model, repeated), n)[1])
        text_loss = hs.per_token_loss(model, text)
        out["held_out"].append(text_loss.mean().item())
        out["icl"].append(in_context_learning_score(text_loss, early, late))
    return {k: torch.tensor(v) for k, v in out.items()}
