"""Dead features: features that stopped firing and so get no gradient from the loss.

Two remedies (seed note 002):

- **Resampling** (Anthropic, "Towards Monosemanticity"): every so often, point each dead
  feature at an input the SAE reconstructs badly, and give it a small encoder.
- **Ghost grads** (Jermyn & Templeton, January 2024 update), with the seed's two fixes: an
  extra loss in which the dead features, with ``exp`` instead of ReLU, try to explain the
  live SAE's residual error. The fixes: the loss is multiplied by the fraction of features
  that are dead (otherwise one dead feature in a wide SAE gets a huge update), and the
  activation is ``exp(min(pre, 0))`` (capped at 1), so a "dead" feature that suddenly fires
  strongly cannot blow the loss up to ``inf``. We also drop the original's rescaling of the
  ghost loss to the size of the reconstruction loss, which the seed found made no difference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import SAE


def ghost_grads_loss(x: Tensor, x_hat: Tensor, pre_acts: Tensor, W_dec: Tensor, dead: Tensor) -> Tensor:
    """The ghost-grads loss on the dead features only (a scalar).

    1. The target is the residual error of the live SAE, ``r = x - x̂`` (no gradient flows into it).
    2. The dead features fire with ``exp(min(pre, 0))`` and decode through their own rows of
       ``W_dec``: ``g = exp(min(pre_dead, 0)) @ W_dec[dead]``.
    3. ``g`` is rescaled per token to half the norm of ``r`` (the scale is a constant for autograd).
    4. ``loss = dead_fraction * mean over tokens of ||g - r||²``; exactly 0 with no dead feature.

    x, x_hat: [batch, d_in]; pre_acts: [batch, d_sae]; W_dec: [d_sae, d_in]; dead: [d_sae] bool
    """
    if not bool(dead.any()):
        return (pre_acts * 0).sum()            # zero, but part of the graph
    residual = (x - x_hat).detach()
    acts = torch.exp(torch.clamp(pre_acts, max=0.0)) * dead      # live features masked out (no boolean indexing:
    ghost = acts @ W_dec                                         # the same sums, without a copy per step)
    scale = residual.norm(dim=-1) / (2 * ghost.norm(dim=-1) + 1e-6)
    ghost = ghost * scale.detach()[:, None]
    dead_fraction = dead.float().mean()
    return dead_fraction * ((ghost - residual) ** 2).sum(-1).mean()


def resampled_weights(W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor, x: Tensor, x_hat: Tensor,
                      dead: Tensor, generator: torch.Generator | None = None, encoder_scale: float = 0.2
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Anthropic's resampling of dead features, as new weights (the inputs are not changed).

    1. Every input in ``x`` (a large sample) is weighted by the SAE's squared reconstruction error on it,
       ``||x - x_hat||²`` (Anthropic weights by the square of the model's loss; this needs no extra pass).
    2. For each dead feature an input is drawn with probability proportional to that weight.
    3. The feature's decoder row becomes that input's direction (``x - b_dec``, unit norm); its encoder
       column the same direction, scaled to ``encoder_scale`` times the mean norm of the live features'
       encoder columns; its encoder bias 0. Live features keep their weights.

    W_enc: [d_in, d_sae]; b_enc: [d_sae]; W_dec: [d_sae, d_in]; b_dec: [d_in]; x, x_hat: [n, d_in]; dead: [d_sae]
    bool -> (W_enc, b_enc, W_dec)
    """
    W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
    idx = dead.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return W_enc, b_enc, W_dec
    weights = ((x - x_hat) ** 2).sum(-1)
    if weights.sum() <= 0:
        weights = torch.ones_like(weights)
    picks = torch.multinomial(weights.cpu(), idx.numel(), replacement=True, generator=generator).to(x.device)
    directions = x[picks] - b_dec
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    alive = ~dead
    enc_norm = W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    W_dec[idx] = directions
    W_enc[:, idx] = directions.T * enc_norm * encoder_scale
    b_enc[idx] = 0.0
    return W_enc, b_enc, W_dec


@torch.no_grad()
def resample_dead(sae: SAE, x: Tensor, dead: Tensor, generator: torch.Generator | None = None,
                  optimizer: torch.optim.Optimizer | None = None, encoder_scale: float = 0.2,
                  resample=None) -> int:
    """Resample the dead features of ``sae`` in place (:func:`resampled_weights`, or ``resample``, a function
    with its signature, e.g. a learner's) and reset the optimiser's running averages (Adam's moments) for
    those entries to 0. Returns how many were resampled.

    x: [n, d_in]; dead: [d_sae] bool
    """
    idx = dead.nonzero().squeeze(-1)
    if idx.numel() == 0:
        return 0
    f, x_hat = sae(x)
    if resample is None:
        new = resampled_weights(sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, x, x_hat, dead, generator, encoder_scale)
    else:
        new = resample(sae.W_enc.detach().clone(), sae.b_enc.detach().clone(), sae.W_dec.detach().clone(),
                       sae.b_dec.detach().clone(), x, x_hat, dead, generator)
    for param, value in zip((sae.W_enc, sae.b_enc, sae.W_dec), new):
        param.copy_(value)
    if optimizer is not None:
        for param, index in ((sae.W_dec, (idx,)), (sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,))):
            state = optimizer.state.get(param, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][index] = 0.0
    return int(idx.numel())
