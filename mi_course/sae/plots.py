"""Figures for chapter 05: the width sweep, training curves, feature frequencies, a feature's card,
and the steering trade-off.

Every function returns the matplotlib ``Figure`` (notebooks display it), and takes tensors
already on the CPU.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor


def plot_width_sweep(widths: Sequence[int], scores: Tensor, n_true: int | None = None) -> plt.Figure:
    """MMCS against SAE width; a dashed line at the true feature count when it is known."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(list(widths), scores.tolist(), "o-")
    if n_true is not None:
        ax.axvline(n_true, color="gray", ls="--", label=f"true count ({n_true})")
        ax.legend(loc="lower right")
    ax.set(xlabel="SAE width (features)", ylabel="MMCS with the true features", ylim=(0, 1.02),
           title="Recovered features against width")
    fig.tight_layout()
    return fig


def plot_training(history: dict[str, Tensor], log_every: int) -> plt.Figure:
    """Loss, L0 and dead features over training (one point per ``log_every`` steps)."""
    steps = torch.arange(len(history["loss"])) * log_every
    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    for ax, key, label in zip(axes, ("loss", "l0", "dead"), ("loss (MSE + λ·L1)", "L0 (features per token)",
                                                              "dead features")):
        ax.plot(steps, history[key])
        ax.set(xlabel="step", ylabel=label, title=label)
    fig.tight_layout()
    return fig


def plot_frequencies(frequencies: Tensor, dense_above: float = 0.1) -> plt.Figure:
    """Histogram of log10 feature frequencies; dead features (frequency 0) are counted in the title."""
    alive = frequencies[frequencies > 0]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(alive.log10().tolist(), bins=40)
    ax.axvline(torch.tensor(dense_above).log10().item(), color="gray", ls="--", label=f"dense (> {dense_above:g})")
    ax.set(xlabel="log10(share of tokens the feature fires on)", ylabel="features",
           title=f"Feature frequencies ({int((frequencies == 0).sum())} dead)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_feature_card(card) -> plt.Figure:
    """A feature's dashboard: activation histogram, top contexts, promoted and suppressed tokens, labels."""
    fig, (ax_hist, ax_text, ax_logit) = plt.subplots(1, 3, figsize=(13, 3.6), width_ratios=(1, 1.6, 1))
    counts, edges = card.histogram
    ax_hist.stairs(counts.tolist(), edges.tolist(), fill=True)
    ax_hist.set(xlabel="activation (non-zero)", ylabel="tokens",
                title=f"Feature {card.feature}: fires on {card.frequency:.2%}")
    ax_text.axis("off")
    lines = [f"{a:6.2f}  …{text[-48:]}" for a, text in card.contexts] or ["(never fires)"]
    if card.labels:
        lines += ["", "best labels (AUROC): " + ", ".join(f"{n} {s:.2f}" for n, s in card.labels[:2])]
    ax_text.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8)
    ax_text.set_title("top activating contexts")
    names = [t for t, _ in card.promoted[:6]] + [t for t, _ in card.suppressed[:6]][::-1]
    values = [v for _, v in card.promoted[:6]] + [v for _, v in card.suppressed[:6]][::-1]
    ax_logit.barh(range(len(values)), values, color=["tab:blue" if v > 0 else "tab:red" for v in values])
    ax_logit.set_yticks(range(len(values)), names)
    ax_logit.invert_yaxis()
    ax_logit.axvline(0, color="black", lw=0.8)
    ax_logit.set(xlabel="direct logit effect (centred)", title="tokens promoted / suppressed")
    fig.tight_layout()
    return fig


def plot_pareto(success: Tensor, cost: Tensor, coeffs: Sequence[float], front: Tensor) -> plt.Figure:
    """Steering success against collateral loss for each coefficient, the Pareto frontier joined up."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.scatter(cost.tolist(), success.tolist(), c="lightgray", label="dominated")
    order = cost[front].argsort()
    ax.plot(cost[front][order].tolist(), success[front][order].tolist(), "o-", label="Pareto frontier")
    for c, s, k in zip(cost.tolist(), success.tolist(), coeffs):
        ax.annotate(f"{k:g}", (c, s), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set(xlabel="loss on untouched positions (nats)", ylabel="share of prompts steered",
           title="Steering: success against damage")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
