"""SAEs where the true features are known (seed note 002, "SAEs on toy models").

Activations are built from ``n_features`` known unit directions in ``d`` dimensions, with
more features than dimensions (superposition): each feature is present with a small
probability and then has a magnitude uniform on [0, 1] (chapter 03's ``generate_batch``),
and an activation is the sum of the present features' directions times their magnitudes.

An SAE trained on such data should find the directions again: the mean max cosine
similarity (MMCS) of the true directions with the learned decoder rows says how well.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..seed import stream
from ..superposition import generate_batch
from .model import SAE, unit_rows
from .training import SAETrainConfig, train_sae


@dataclass
class ToyData:
    """Sparse activations made of known features.

    features: [n_features, d] unit rows (the true dictionary); p: each feature's probability
    of being present.
    """

    features: Tensor
    p: float

    @property
    def n_features(self) -> int:
        return self.features.shape[0]

    @property
    def d(self) -> int:
        return self.features.shape[1]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """A batch of activations: [batch, d]."""
        coeffs = generate_batch(batch_size, self.n_features, torch.tensor([self.p]), generator)[:, 0]
        return coeffs @ self.features


def toy_data(n_features: int = 32, d: int = 16, p: float = 0.05, seed: int = 0) -> ToyData:
    """Random unit feature directions (``n_features`` > ``d``), each present with probability ``p``."""
    gen = stream(seed, "toy.features")
    return ToyData(unit_rows(torch.randn(n_features, d, generator=gen)), p)


def mmcs(W_dec: Tensor, true_features: Tensor) -> Tensor:
    """Mean max cosine similarity: for each true feature, its best cosine with any decoder row, averaged.

    1 when every true feature has a learned copy; a learned dictionary that misses a true
    feature loses that feature's share. Averaging over the *true* features means extra
    learned features (duplicates, dead ones) do not count against the SAE.

    W_dec: [d_sae, d]; true_features: [n_features, d] -> scalar
    """
    cos = unit_rows(true_features) @ unit_rows(W_dec).T          # [n_features, d_sae]
    return cos.max(dim=1).values.mean()


TOY_CONFIG = SAETrainConfig(steps=2_000, batch_size=256, lr=3e-3, l1_coeff=0.3, seed=0)


def train_toy_sae(data: ToyData, d_sae: int, config: SAETrainConfig = TOY_CONFIG) -> tuple[SAE, dict]:
    """Train an SAE of width ``d_sae`` on fresh batches of ``data``; returns (sae, history)."""
    sae = SAE(data.d, d_sae, seed=config.seed)
    history = train_sae(sae, data.sample, config)
    return sae, history


def half_dead_sae(d_in: int, d_sae: int, seed: int = 0, bias: float = -2.0) -> SAE:
    """An SAE whose first half of features starts dead: encoder bias ``bias``, so on the toy data (inputs of
    norm about 1) they never fire. For watching the dead-feature remedies bring them back."""
    sae = SAE(d_in, d_sae, seed=seed)
    with torch.no_grad():
        sae.b_enc[: d_sae // 2] = bias
    return sae


class _WidthStack(SAE):
    """SAEs of several widths trained side by side as one module, so one optimiser step trains them all.
    Each is padded to the widest with features whose encoder column is zero and bias -1: they never fire,
    so they get no gradient and never change. The SAEs share nothing (separate slices of the stacked
    tensors; the loss adds theirs up), so each trains as it would alone, on the same batches, from the
    initialisation of ``SAE(d_in, width, seed)``. The biases keep a middle dimension of 1, so the methods
    of ``SAE`` broadcast over the stack unchanged.

    W_enc: [k, d_in, widest]; b_enc: [k, 1, widest]; W_dec: [k, widest, d_in]; b_dec: [k, 1, d_in]
    """

    def __init__(self, d_in: int, widths: list[int], seed: int = 0):
        nn.Module.__init__(self)
        k, widest = len(widths), max(widths)
        W_dec = torch.eye(widest, d_in).repeat(k, 1, 1)          # padding rows: any unit vectors
        W_enc = torch.zeros(k, d_in, widest)
        b_enc = torch.full((k, 1, widest), -1.0)
        for i, width in enumerate(widths):
            W_dec[i, :width] = SAE(d_in, width, seed=seed).W_dec.detach()
            W_enc[i, :, :width] = W_dec[i, :width].T
            b_enc[i, :, :width] = 0.0
        self.W_dec, self.W_enc = nn.Parameter(W_dec), nn.Parameter(W_enc)
        self.b_enc, self.b_dec = nn.Parameter(b_enc), nn.Parameter(torch.zeros(k, 1, d_in))


def width_sweep(data: ToyData, widths: list[int], config: SAETrainConfig = TOY_CONFIG,
                progress: bool = True) -> Tensor:
    """Train one SAE per width (all at once, see ``_WidthStack``); returns each one's MMCS against the
    true features: [len(widths)]. Resampling and ghost grads are not supported here."""
    if config.resample_every or config.ghost_grads:
        raise ValueError("width_sweep trains plain SAEs: no resampling, no ghost grads.")
    stack = _WidthStack(data.d, widths, seed=config.seed)
    train_sae(stack, data.sample, SAETrainConfig(**{**config.__dict__, "progress": progress,
                                                     "description": f"width sweep ({len(widths)} SAEs at once)"}))
    return torch.stack([mmcs(stack.W_dec[i, :w].detach(), data.features) for i, w in enumerate(widths)])


def knee(widths: list[int], scores: Tensor) -> int:
    """The width where the MMCS curve bends: the point farthest above the straight line from its first
    point to its last, both axes scaled to [0, 1] ("Kneedle", Satopää et al. 2011).

    Below the true feature count an SAE cannot give every true feature a row of its own, so MMCS
    rises quickly with the width; above it the extra rows split or duplicate features and MMCS
    creeps towards 1. The curve has no sharp corner, and where it bends depends on the widths
    tried: the knee is an estimate of the count, not a reading of it.

    widths: ascending, len n; scores: [n] -> one of ``widths``
    """
    w = torch.tensor(widths, dtype=torch.float64)
    s = scores.detach().double()
    x = (w - w[0]) / (w[-1] - w[0])
    y = (s - s.min()) / (s.max() - s.min()).clamp_min(1e-12)
    return widths[int((y - x).argmax())]
