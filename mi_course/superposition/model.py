"""Toy models of superposition (Elhage et al. 2022; seed note 003).

The model squeezes ``n`` features through ``m < n`` hidden dimensions and back:

    h  = W x                    W: [m, n]   (each column W_i is feature i's direction)
    x' = ReLU(W^T h + b) = ReLU(W^T W x + b)

Many *instances* (one per sparsity or importance setting) are trained at once
in one batched model: every tensor carries a leading ``instances`` dimension,
and the loss of each instance depends only on its own weights.

These functions are also the grader's reference implementations for chapter
03: try the exercises before reading them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..seed import stream


# ----------------------------------------------------------------------------
# Data, model, loss
# ----------------------------------------------------------------------------

def generate_batch(batch_size: int, n_features: int, feature_probability: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
    """Sparse synthetic features.

    Each feature is 0 with probability ``1 - p`` (its sparsity S) and otherwise
    uniform on [0, 1]; ``p`` is the instance's feature probability.

    feature_probability: [instances] (or [instances, features])
    returns:             [batch, instances, features]
    """
    p = feature_probability
    if p.ndim == 1:
        p = p[:, None]
    u = torch.rand((batch_size, p.shape[0], n_features), generator=generator, device=p.device)
    # One draw does both jobs: the feature is present when u < p, and then
    # u / p is uniform on [0, 1]. (Two separate draws are just as correct.)
    return torch.where(u < p, u / p, torch.zeros((), device=p.device))


def tms_forward(W: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """The toy model's forward pass ``ReLU(W^T W x + b)`` for every instance.

    W: [instances, hidden, features]   b: [instances, features]
    x: [batch, instances, features]    returns: [batch, instances, features]
    """
    # W^T W first: [instances, features, features] is small, and one batched product with x is then
    # cheaper than going through the hidden layer (twice as fast for the phase diagram's many tiny
    # instances). Same function as einsum("ihf,bih->bif", W, einsum("ihf,bif->bih", W, x)).
    gram = W.transpose(1, 2) @ W
    return torch.relu(torch.einsum("big,igf->bif", x, gram) + b)


def relu_hidden_forward(W: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """The privileged-basis variant: a ReLU on the hidden layer too, ``x' = ReLU(W^T ReLU(W x) + b)``.

    The hidden ReLU acts coordinate by coordinate, so rotating the hidden space changes what the model
    computes: its neurons are a privileged basis. Shapes as in :func:`tms_forward`.
    """
    h = torch.relu(torch.einsum("ihf,bif->bih", W, x))
    return torch.relu(torch.einsum("ihf,bih->bif", W, h) + b)


def tms_loss(out: Tensor, x: Tensor, importance: Tensor) -> Tensor:
    """Importance-weighted squared error, one loss per instance.

    ``L = mean over batch of sum_i I_i (x_i - x'_i)^2``.

    out, x:     [batch, instances, features]
    importance: [instances, features]
    returns:    [instances]
    """
    return (importance * (x - out) ** 2).sum(-1).mean(0)


class ToyModel(nn.Module):
    """A batch of independent toy models, ``n_instances`` of them, trained together.

    W: [instances, hidden, features], b: [instances, features].
    ``feature_probability`` ([instances, features]) and ``importance``
    ([instances, features]) are buffers that travel with the model.
    """

    def __init__(self, n_features: int, n_hidden: int, feature_probability: Tensor,
                 importance: Tensor, seed: int = 0, device: str | torch.device = "cpu"):
        super().__init__()
        feature_probability = torch.as_tensor(feature_probability, dtype=torch.float32)
        n_instances = feature_probability.shape[0]
        if feature_probability.ndim == 1:
            feature_probability = feature_probability[:, None].expand(n_instances, n_features)
        importance = torch.as_tensor(importance, dtype=torch.float32)
        if importance.ndim == 1:
            importance = importance[None, :].expand(n_instances, n_features)
        gen = stream(seed, "superposition.init")
        W = torch.empty(n_instances, n_hidden, n_features)
        for i in range(n_instances):  # Xavier-normal, per instance, from one seeded stream
            W[i] = torch.randn(n_hidden, n_features, generator=gen) * math.sqrt(2 / (n_hidden + n_features))
        self.W = nn.Parameter(W.to(device))
        self.b = nn.Parameter(torch.zeros(n_instances, n_features, device=device))
        self.register_buffer("feature_probability", feature_probability.contiguous().to(device))
        self.register_buffer("importance", importance.contiguous().to(device))

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    @property
    def n_features(self) -> int:
        return self.W.shape[2]

    def forward(self, x: Tensor) -> Tensor:
        """x: [batch, instances, features] -> [batch, instances, features]"""
        return tms_forward(self.W, self.b, x)

    def batch(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """A fresh batch of sparse features: [batch, instances, features]."""
        return generate_batch(batch_size, self.n_features, self.feature_probability, generator)


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """Optimiser settings.

    The paper uses Adam at lr 1e-3, batch 1024, 5-10k steps. A higher rate with
    cosine decay reaches the same geometries in fewer steps on a CPU.
    """

    steps: int = 3_000
    batch_size: int = 512
    lr: float = 1e-2
    seed: int = 0
    log_every: int = 50
    progress: bool = True
    description: str = "training toy models"


def adam_step(params: Sequence[Tensor], grads: Sequence[Tensor], moments: list[tuple[Tensor, Tensor]], lr: float,
              step: int, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step (``step`` counts from 1), in place: the arithmetic of ``torch.optim.Adam`` on the CPU, bit for
    bit, without its per-step bookkeeping (for two small tensors that bookkeeping cost more than the update, and
    its first step imports torch's compiler, 2 s). moments: one (exp_avg, exp_avg_sq) pair per parameter."""
    beta1, beta2 = betas
    with torch.no_grad():
        for param, grad, (exp_avg, exp_avg_sq) in zip(params, grads, moments):
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / (1 - beta2 ** float(step)) ** 0.5).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-(lr / (1 - beta1 ** float(step))))


def train(model: ToyModel, config: TrainConfig | None = None,
          forward: Callable[[Tensor, Tensor, Tensor], Tensor] = tms_forward,
          loss_fn: Callable[[Tensor, Tensor, Tensor], Tensor] = tms_loss) -> Tensor:
    """Train every instance of ``model`` at once with Adam; returns logged losses [n_logs, instances].

    The summed loss is minimised, so each instance follows its own gradient.
    The learning rate decays on a cosine schedule, which helps the sparse
    instances settle into their final geometry. ``forward`` and ``loss_fn``
    can be swapped for your own implementations from the exercises.
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    gen = stream(config.seed, "superposition.batches", model.W.device)
    params = [model.W, model.b]
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    history = []
    bar = tqdm(range(config.steps), desc=config.description, disable=not config.progress,
               mininterval=0.5, leave=False)
    for step in bar:
        x = model.batch(config.batch_size, gen)
        with torch.enable_grad():   # also when the notebook switched autograd off
            loss = loss_fn(forward(model.W, model.b, x), x, model.importance)
            grads = torch.autograd.grad(loss.sum(), params)
        lr = config.lr * (0.5 * (1 + math.cos(math.pi * step / config.steps)))     # cosine decay
        adam_step(params, grads, moments, lr, step + 1)
        if step % config.log_every == 0 or step == config.steps - 1:
            history.append(loss.detach().cpu())
    bar.close()
    return torch.stack(history)


def train_instances_in_a_loop(n_features: int, n_hidden: int, feature_probability: Tensor,
                              importance: Tensor, config: TrainConfig) -> list[ToyModel]:
    """The slow way, for comparison: one single-instance model per setting, trained in turn."""
    models = []
    for i, p in enumerate(torch.as_tensor(feature_probability).tolist()):
        imp = importance if importance.ndim == 1 else importance[i]
        model = ToyModel(n_features, n_hidden, torch.tensor([p]), imp, seed=config.seed + i)
        train(model, TrainConfig(**{**config.__dict__, "progress": False}))
        models.append(model)
    return models


def final_loss(model: ToyModel, batch_size: int = 8192, seed: int = 12345) -> Tensor:
    """Each instance's loss on one large fresh batch: [instances]."""
    with torch.no_grad():
        x = model.batch(batch_size, stream(seed, "superposition.eval", model.W.device))
        return tms_loss(model(x), x, model.importance).cpu()


def best_of_seeds(model: ToyModel, n_seeds: int) -> Tensor:
    """Pick, for every setting, the seed whose instance reached the lowest loss.

    Instances are laid out seed-major: instance ``s * n_settings + k`` is
    setting ``k`` trained from seed ``s`` (``feature_probability.repeat(n_seeds)``).
    Training sometimes stalls in a local minimum (a 4-feature square instead
    of a pentagon, say); the best of a few seeds is the model the paper reports.
    Returns the instance index for each setting: [n_settings].
    """
    losses = final_loss(model).view(n_seeds, -1)
    n_settings = losses.shape[1]
    return losses.argmin(0) * n_settings + torch.arange(n_settings)


def sweep(n_features: int, n_hidden: int, feature_probability: Tensor, importance: Tensor,
          n_seeds: int = 1, config: TrainConfig | None = None,
          device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
    """Train one instance per (setting, seed) in one batched model; keep the best seed.

    feature_probability: [settings]; importance: [features] or [settings, features].
    returns (W [settings, hidden, features], b [settings, features]) on the CPU.
    """
    config = config or TrainConfig()
    importance = torch.as_tensor(importance, dtype=torch.float32)
    if importance.ndim == 2:
        importance = importance.repeat(n_seeds, 1)
    model = ToyModel(n_features, n_hidden, feature_probability.repeat(n_seeds), importance,
                     seed=config.seed, device=device)
    train(model, config)
    best = best_of_seeds(model, n_seeds).to(model.W.device)
    return model.W.detach()[best].cpu(), model.b.detach()[best].cpu()
