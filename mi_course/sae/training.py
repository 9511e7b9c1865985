"""Training an SAE: Adam on the SAE loss, with unit-norm decoder rows and dead-feature remedies.

Each step: encode and decode a batch, take the loss (plus the ghost-grads loss if asked),
remove the decoder gradient's component along each row, step, and set the rows back to unit
norm. A feature is *dead* when it has not fired on any of the last ``dead_window`` tokens.
The data is either a function ``sample(batch_size, generator) -> [batch, d_in]`` (fresh
synthetic batches) or a tensor of stored activations ``[n, d_in]`` (shuffled, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..seed import stream
from .dead import ghost_grads_loss, resample_dead
from .model import SAE, l0, sae_loss


@dataclass
class SAETrainConfig:
    """Trainer settings. ``resample_every`` > 0 turns on resampling; ``ghost_grads`` the ghost loss."""

    steps: int = 2_000
    batch_size: int = 256
    lr: float = 1e-3
    l1_coeff: float = 1e-1
    seed: int = 0
    dead_window: int = 5_000        # tokens without firing before a feature counts as dead
    resample_every: int = 0         # steps; 0 = never
    resample_sample: int = 4_096    # inputs scored when resampling
    ghost_grads: bool = False
    clip_grad_norm: float | None = None   # clip the gradient's total norm before each step (SAELens always uses 1.0)
    log_every: int = 25
    progress: bool = True
    description: str = "training SAE"


Sampler = Callable[[int, torch.Generator], Tensor]


def _batches(data: Sampler | Tensor, batch_size: int, gen: torch.Generator):
    if callable(data):
        while True:
            yield data(batch_size, gen)
    n = data.shape[0]
    if n < batch_size:
        raise ValueError(f"{n} stored activations are fewer than one batch of {batch_size}.")
    while True:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            yield data[order[start:start + batch_size].to(data.device)]


def train_sae(sae: SAE, data: Sampler | Tensor, config: SAETrainConfig | None = None, resample=None
              ) -> dict[str, Tensor]:
    """Train ``sae`` in place; returns its history: ``loss``, ``mse``, ``l0``, ``dead``, ``ghost``
    (one entry per ``log_every`` steps) and ``resampled`` (features resampled at each resampling).

    ``resample``: the function that resamples dead features (default :func:`dead.resampled_weights`;
    chapter 05 passes the learner's, which has the same signature)."""
    from tqdm.auto import tqdm

    config = config or SAETrainConfig()
    gen = stream(config.seed, "sae.batches")
    optimizer = torch.optim.Adam(sae.parameters(), lr=config.lr, fused=sae.W_dec.device.type in {"cpu", "cuda"})
    steps_since_fired = torch.zeros(sae.W_dec.shape[:-1], dtype=torch.long, device=sae.W_dec.device)   # [..., d_sae]
    window_steps = max(1, config.dead_window // config.batch_size)
    logs: dict[str, list] = {"loss": [], "mse": [], "l0": [], "dead": [], "ghost": [], "resampled": []}
    batches = _batches(data, config.batch_size, gen)
    bar = tqdm(range(config.steps), desc=config.description, disable=not config.progress,
               mininterval=0.5, leave=False)
    for step in bar:
        x = next(batches)
        dead = steps_since_fired >= window_steps
        with torch.enable_grad():   # also when the notebook switched autograd off
            pre = sae.pre_acts(x)
            f = torch.relu(pre)
            x_hat = sae.decode(f)
            loss = sae_loss(x, x_hat, f, config.l1_coeff)
            ghost = ghost_grads_loss(x, x_hat, pre, sae.W_dec, dead) if config.ghost_grads else loss.new_zeros(())
            optimizer.zero_grad(set_to_none=True)
            (loss + ghost).backward()
        sae.project_decoder_grad()
        if config.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), config.clip_grad_norm)
        optimizer.step()
        sae.normalise_decoder()
        fired = f.detach().amax(-2) > 0    # fired anywhere in the batch (f >= 0; faster than any): [..., d_sae]
        steps_since_fired = torch.where(fired, 0, steps_since_fired + 1)
        if config.resample_every and (step + 1) % config.resample_every == 0 and step + 1 < config.steps:
            sample = torch.cat([next(batches) for _ in range(max(1, config.resample_sample // config.batch_size))])
            logs["resampled"].append(resample_dead(sae, sample, dead, gen, optimizer, resample=resample))
            steps_since_fired[dead] = 0
        if step % config.log_every == 0 or step == config.steps - 1:
            with torch.no_grad():
                logs["loss"].append(loss.item())
                logs["mse"].append(((x - x_hat) ** 2).sum(-1).mean().item())
                logs["l0"].append(l0(f).item())
                logs["dead"].append(int(dead.sum()))
                logs["ghost"].append(float(ghost))
    bar.close()
    return {k: torch.tensor(v) for k, v in logs.items()}
