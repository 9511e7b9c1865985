"""Figures for chapter 04. Every function takes CPU tensors (or plain lists) and returns the ``Figure``."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor


def plot_loss_by_position(loss: Tensor, n: int) -> plt.Figure:
    """Mean loss at each position of ``[BOS, t_1..t_n, t_1..t_n]``. loss: [batch, 2n]"""
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(range(1, loss.shape[1] + 1), loss.mean(0), marker=".", ms=3)
    ax.axvline(n + 0.5, color="grey", ls="--", lw=0.8)
    ax.text(n / 2, ax.get_ylim()[1] * 0.9, "first copy", ha="center", fontsize=9)
    ax.text(1.5 * n, ax.get_ylim()[1] * 0.9, "second copy", ha="center", fontsize=9)
    ax.set_xlabel("position of the predicted token")
    ax.set_ylabel("loss (nats)")
    ax.set_title("Loss on repeated random tokens")
    fig.tight_layout()
    return fig


def _head_heatmap(ax: plt.Axes, scores: Tensor, title: str, cmap: str = "Blues", vmin: float = 0.0,
                  vmax: float = 1.0) -> None:
    im = ax.imshow(scores, cmap=cmap, vmin=vmin, vmax=vmax)
    for (l, h), v in zip(torch.cartesian_prod(torch.arange(scores.shape[0]), torch.arange(scores.shape[1])).tolist(),
                         scores.flatten().tolist()):
        ax.text(h, l, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(v - vmin) > 0.6 * (vmax - vmin) else "black")
    ax.set_xticks(range(scores.shape[1]), [f"H{h}" for h in range(scores.shape[1])])
    ax.set_yticks(range(scores.shape[0]), [f"L{l}" for l in range(scores.shape[0])])
    ax.set_title(title, fontsize=10)
    plt.colorbar(im, ax=ax, fraction=0.046)


def plot_head_scores(scores: dict[str, Tensor]) -> plt.Figure:
    """One heatmap per score ([layer, head] each), values printed in the cells."""
    fig, axes = plt.subplots(1, len(scores), figsize=(3.4 * len(scores), 2.2 + 0.4 * next(iter(scores.values())).shape[0]))
    for ax, (name, s) in zip(axes, scores.items()):
        _head_heatmap(ax, s, name)
    fig.suptitle("Head scores on repeated random tokens (0.4 and above: the head has the label)")
    fig.tight_layout()
    return fig


def plot_ablation(zero: Tensor, mean: Tensor) -> plt.Figure:
    """Increase in second-copy loss when each head is zero- or mean-ablated. [layer, head] each"""
    vmax = max(float(zero.abs().max()), float(mean.abs().max()), 1e-6)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.2 + 0.4 * zero.shape[0]))
    _head_heatmap(axes[0], zero, "zero-ablated", "RdBu_r", -vmax, vmax)
    _head_heatmap(axes[1], mean, "mean-ablated", "RdBu_r", -vmax, vmax)
    fig.suptitle("Increase in the second copy's loss (nats) when one head is ablated")
    fig.tight_layout()
    return fig


def plot_positional_qk(scores: Tensor, head: str, n: int = 24) -> plt.Figure:
    """The first ``n`` positions of a positional QK circuit, each row softmaxed (as attention would be)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    im = ax.imshow(scores[:n, :n].softmax(-1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    ax.set_title(f"{head}: softmax(W_pos W_QK W_posᵀ)", fontsize=10)
    plt.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_token_matrix(M: Tensor, labels: Sequence[str], title: str, xlabel: str, ylabel: str) -> plt.Figure:
    """A token-by-token matrix on a readable subset, with a diverging colour map centred on zero."""
    vmax = float(M.abs().max())
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    plt.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def plot_phase_change(steps: Sequence[int], scores: dict[str, Tensor], curve: list[dict]) -> plt.Figure:
    """Scores and losses at each checkpoint (dots) over the training curve recorded every 100 steps (lines)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    cs = [r["step"] for r in curve]
    ax1.plot(cs, [r["induction_score"] for r in curve], color="tab:red", lw=1, alpha=0.6)
    ax1.plot(cs, [r["prev_token_score"] for r in curve], color="tab:blue", lw=1, alpha=0.6)
    ax1.plot(steps, scores["induction"], "o", color="tab:red", label="best induction score (layer 1)")
    ax1.plot(steps, scores["prev_token"], "o", color="tab:blue", label="best previous-token score (layer 0)")
    ax1.axhline(0.4, color="grey", ls=":", lw=0.8)
    ax1.set_ylabel("score")
    ax1.set_title("the circuit forms")
    ax1.legend(fontsize=8)
    ax2.plot(cs, [r["held_out_loss"] for r in curve], color="black", lw=1, alpha=0.6, label="held-out loss (curve)")
    ax2.plot(cs, [r["loss_second_copy"] for r in curve], color="tab:green", lw=1, alpha=0.6, label="second-copy loss (curve)")
    ax2.plot(steps, scores["held_out"], "o", color="black", ms=4)
    ax2.plot(steps, scores["second_copy"], "o", color="tab:green", ms=4)
    ax2.plot(steps, scores["icl"], "s", color="tab:purple", ms=4, label="ICL score (late - early loss)")
    ax2.axhline(0, color="grey", lw=0.6)
    ax2.set_ylabel("nats")
    ax2.set_title("losses")
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.set_xscale("symlog", linthresh=1000)
        ax.set_xlabel("training step")
    fig.tight_layout()
    return fig
