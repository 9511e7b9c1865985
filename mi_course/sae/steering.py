"""Steering: add a direction to the residual stream at one layer and see what the model does.

The direction is a feature's decoder row (or a difference of means of activations); the
coefficient sets how hard to push. Two numbers judge a coefficient:

- **success**: the share of prompts whose top prediction becomes the target (e.g. a sport);
- **cost**: the loss on unrelated text steered the same way, counted only at positions the
  steering did not touch, so that it measures collateral damage rather than the edit itself.

Sweeping the coefficient traces a curve; its Pareto frontier keeps the coefficients that no
other one beats on both counts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def add_direction_hook(direction: Tensor, coeff: float, positions: Tensor):
    """A forward hook adding ``coeff * direction`` at ``positions`` ([batch, pos] bool) of its activation."""
    def hook(act, hook=None):
        return act + coeff * positions[..., None].to(act.dtype) * direction.to(act.dtype)
    return hook


@torch.no_grad()
def steered_logits(model: Any, tokens: Tensor, hook_name: str, direction: Tensor, coeff: float,
                   positions: Tensor) -> Tensor:
    """The logits with ``coeff * direction`` added at ``hook_name`` on ``positions``: [batch, pos, d_vocab]."""
    device = next(model.parameters()).device
    hook = add_direction_hook(direction.to(device), coeff, positions.to(device))
    return model.run_with_hooks(tokens.to(device), fwd_hooks=[(hook_name, hook)])


def steering_success(logits: Tensor, target: int | Tensor) -> Tensor:
    """The share of prompts whose top prediction at the last position is ``target``: logits [batch, pos, vocab]."""
    return (logits[:, -1].argmax(-1) == torch.as_tensor(target, device=logits.device)).float().mean()


def untouched_loss(logits: Tensor, tokens: Tensor, positions: Tensor) -> Tensor:
    """Mean next-token loss over the predictions made at positions that were *not* steered.

    logits: [batch, pos, vocab]; tokens, positions: [batch, pos] -> scalar
    """
    losses = -logits[:, :-1].log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]     # [batch, pos - 1]
    keep = ~positions[:, :-1].to(losses.device)
    keep[:, 0] = False                                                                  # BOS predicts nothing
    return losses[keep].mean()


def difference_of_means(acts: Tensor, positive: Tensor) -> Tensor:
    """Mean activation where ``positive`` minus the mean elsewhere: acts [n, d], positive [n] bool -> [d]."""
    return acts[positive].mean(0) - acts[~positive].mean(0)


def pareto_front(success: Tensor, cost: Tensor) -> Tensor:
    """Which points no other point beats: none has success >= and cost <= with one of them strict.

    success, cost: [n] -> [n] bool
    """
    better_or_equal = (success[None, :] >= success[:, None]) & (cost[None, :] <= cost[:, None])
    strictly = (success[None, :] > success[:, None]) | (cost[None, :] < cost[:, None])
    return ~(better_or_equal & strictly).any(1)
