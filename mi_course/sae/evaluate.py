"""The field's measures of an SAE trained on a language model's activations.

- **L0**: active features per token; **variance explained** by the reconstruction
  (both in :mod:`.model`);
- **cross-entropy loss recovered**: splice the reconstruction into the forward pass in place of
  the activation and see how much of the damage done by ablating the activation it avoids,
  ``(L_ablate - L_spliced) / (L_ablate - L_clean)``: 1 is perfect, 0 no better than ablation;
- **dead and dense features**: never active, or active on more than a tenth of the tokens.

:func:`summary` computes them all at once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .model import SAE, l0, variance_explained


def loss_recovered(clean: float | Tensor, spliced: float | Tensor, ablated: float | Tensor) -> Tensor:
    """``(L_ablate - L_spliced) / (L_ablate - L_clean)`` (tensors broadcast)."""
    clean, spliced, ablated = (torch.as_tensor(v, dtype=torch.float32) for v in (clean, spliced, ablated))
    return (ablated - spliced) / (ablated - clean)


def _next_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Mean cross-entropy of predicting token t+1 from position t, over positions 1.. (after BOS)."""
    logp = logits[:, 1:-1].log_softmax(-1)
    return -logp.gather(-1, tokens[:, 2:, None]).mean()


def _splice_hook(sae: SAE):
    """A hook that replaces an activation [batch, pos, d] by the SAE's reconstruction, BOS (position 0) kept."""
    def splice(act, hook):
        out = act.clone()
        out[:, 1:] = sae(act[:, 1:].float().to(sae.W_dec.device))[1].to(act.device, act.dtype)
        return out
    return splice


@torch.no_grad()
def spliced_accuracy(model: Any, sae: SAE, tokens: Tensor, answers: Tensor, hook_name: str,
                     candidates: Tensor | None = None) -> dict[str, float]:
    """A task splice: top-1 accuracy of the answer at the last position, clean and with the SAE's
    reconstruction spliced in at ``hook_name`` (every position but BOS).

    tokens: [batch, pos]; answers: [batch] token ids; ``candidates`` (token ids [k]) restricts the top-1 to
    the possible answers (e.g. the sports). -> {"clean", "spliced"}
    """
    device = next(model.parameters()).device
    tokens, answers = tokens.to(device), answers.to(device)
    ids = torch.arange(model.cfg.d_vocab, device=device) if candidates is None else candidates.to(device)

    def accuracy(logits: Tensor) -> float:
        return (ids[logits[:, -1, ids].argmax(-1)] == answers).float().mean().item()

    return {"clean": accuracy(model(tokens)),
            "spliced": accuracy(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, _splice_hook(sae))]))}


@torch.no_grad()
def spliced_losses(model: Any, sae: SAE, tokens: Tensor, hook_name: str,
                   ablation: str = "zero") -> dict[str, float]:
    """Next-token loss clean, with the SAE's reconstruction spliced in at ``hook_name``, and with the
    activation ablated (``"zero"``, or ``"mean"``: its mean over the batch's tokens).

    BOS keeps its clean activation throughout (the SAE is not trained on it), and the loss is taken
    at the positions after BOS. tokens: [batch, pos] -> {"clean", "spliced", "ablated", "recovered"}
    """
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    splice = _splice_hook(sae)

    def ablate(act, hook):
        out = act.clone()
        out[:, 1:] = 0.0 if ablation == "zero" else act[:, 1:].reshape(-1, act.shape[-1]).mean(0)
        return out

    clean = _next_token_loss(model(tokens), tokens)
    spliced = _next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, splice)]), tokens)
    ablated = _next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, ablate)]), tokens)
    return {"clean": clean.item(), "spliced": spliced.item(), "ablated": ablated.item(),
            "recovered": loss_recovered(clean, spliced, ablated).item()}


def feature_frequencies(f: Tensor) -> Tensor:
    """The fraction of tokens on which each feature is active: f [n, d_sae] -> [d_sae]."""
    return (f > 0).float().mean(0)


def dead_and_dense(frequencies: Tensor, dense_above: float = 0.1) -> tuple[int, int]:
    """How many features never fire, and how many fire on more than ``dense_above`` of the tokens."""
    return int((frequencies == 0).sum()), int((frequencies > dense_above).sum())


def summary(model: Any, sae: SAE, x: Tensor, tokens: Tensor, hook_name: str) -> dict[str, Any]:
    """The field's numbers for an SAE: L0 and variance explained on activations ``x`` [n, d_in], the
    next-token losses with the reconstruction spliced in on ``tokens`` [batch, pos] at ``hook_name``, and
    the dead and dense features. -> {"l0", "variance_explained", "ce_loss": {...}, "dead", "dense"}"""
    with torch.no_grad():
        f, x_hat = sae(x)
    dead, dense = dead_and_dense(feature_frequencies(f))
    return {"l0": l0(f).item(), "variance_explained": variance_explained(x, x_hat).item(),
            "ce_loss": spliced_losses(model, sae, tokens, hook_name), "dead": dead, "dense": dense}
