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
        if v != v:                      # NaN: a head the sweep did not visit (head_scores.heads_to_sweep)
            continue
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
    vmax = max(float(zero.nan_to_num().abs().max()), float(mean.nan_to_num().abs().max()), 1e-6)   # NaN: not swept
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.2 + 0.4 * zero.shape[0]))
    _head_heatmap(axes[0], zero, "zero-ablated", "RdBu_r", -vmax, vmax)
    _head_heatmap(axes[1], mean, "mean-ablated", "RdBu_r", -vmax, vmax)
    fig.suptitle("Increase in the second copy's loss (nats) when one head is ablated")
    fig.tight_layout()
    return fig


def plot_positional_qk(pattern: Tensor, head: str, ln_scale: float, n: int = 24) -> plt.Figure:
    """The first ``n`` positions of a positional pattern (``circuits.positional_pattern``: scaled by
    ``1/√d_head`` and the LayerNorm scale, then softmaxed, as the head scales its scores). pattern: [pos, pos]"""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    im = ax.imshow(pattern[:n, :n], cmap="Blues", vmin=0, vmax=1)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    ax.set_title(f"{head}: softmax(P W_QK Pᵀ / √d_head)\nP = W_pos / LayerNorm scale ({ln_scale:.2f})", fontsize=9)
    plt.colorbar(im, ax=ax, fraction=0.046, label="attention")
    fig.tight_layout()
    return fig


def plot_path_ablation(increase: Tensor, writers: Sequence[str], sides: Sequence[str], readers: str) -> plt.Figure:
    """Increase in the second copy's loss when one writer is removed from one side of the readers' input.
    increase: [writer, side]"""
    vmax = max(float(increase.nan_to_num().abs().max()), 1e-6)              # NaN: a writer not swept
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    im = ax.imshow(increase, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    for (i, j), v in zip(torch.cartesian_prod(torch.arange(increase.shape[0]), torch.arange(increase.shape[1])).tolist(),
                         increase.flatten().tolist()):
        if v != v:
            continue
        ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=9, color="white" if abs(v) > 0.6 * vmax else "black")
    ax.set_xticks(range(len(sides)), sides)
    ax.set_yticks(range(len(writers)), writers)
    ax.set_xlabel(f"input of {readers} it is removed from")
    ax.set_ylabel("layer-0 head removed")
    ax.set_title("Path ablation: increase in the second copy's loss (nats)", fontsize=10)
    plt.colorbar(im, ax=ax, fraction=0.046, label="nats")
    fig.tight_layout()
    return fig


def plot_checkpoint(pattern: Tensor, n: int, prev_token: Tensor, induction: Tensor, head: str, step: int) -> plt.Figure:
    """The explorer's frame: ``head``'s attention on one repeated sequence, with the induction stripe
    (key = query - (n - 1), from the second copy) dotted in red, and every head's two scores.
    pattern: [query, key]; prev_token, induction: [layer, head]"""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    axes[0].imshow(pattern, cmap="Blues", vmin=0, vmax=1)
    q = torch.arange(n + 1, 2 * n + 1)
    axes[0].plot(q - (n - 1), q, ls=":", color="red", lw=0.9, alpha=0.7, label="induction stripe")
    axes[0].legend(fontsize=7, loc="upper right")
    axes[0].set_title(f"{head} at step {step}", fontsize=10)
    axes[0].set_xlabel("key position")
    axes[0].set_ylabel("query position")
    _head_heatmap(axes[1], prev_token, "previous-token scores")
    _head_heatmap(axes[2], induction, "induction scores", "Reds")
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


def plot_phase_change(steps: Sequence[int], scores: dict[str, Tensor], curve: list[dict],
                      window: tuple[int, int] = (3000, 4000)) -> plt.Figure:
    """Scores and losses at each shipped checkpoint (dots) over the curve recorded in training every 100
    steps (lines; its second-copy loss is measured on other random sequences). Left column: the whole run;
    right column: ``window``, where most checkpoints lie. Rows: scores, losses, ICL score (nats)."""
    fig, axes = plt.subplots(3, 2, figsize=(11, 7.6), sharex="col", sharey="row", gridspec_kw={"width_ratios": [1, 1.3]})
    cs = [r["step"] for r in curve]
    rows = [
        [("induction_score", "induction", "tab:red", "best induction score (layer 1)"),
         ("prev_token_score", "prev_token", "tab:blue", "best previous-token score (layer 0)")],
        [("held_out_loss", "held_out", "black", "held-out loss"),
         ("loss_second_copy", "second_copy", "tab:green", "second-copy loss")],
        [(None, "icl", "tab:purple", "ICL score (token 100 - token 10)")],
    ]
    for r, (series, ylabel) in enumerate(zip(rows, ("score", "loss (nats)", "ICL score (nats)"))):
        for c, ax in enumerate(axes[r]):
            for curve_key, key, color, label in series:
                if curve_key is not None:
                    ax.plot(cs, [x[curve_key] for x in curve], color=color, lw=1, alpha=0.5,
                            label=f"{label}, recorded in training" if c == 0 else None)
                ax.plot(steps, scores[key], "o", color=color, ms=4, label=f"{label}, checkpoints" if c == 0 else None)
            if r == 0:
                ax.axhline(0.4, color="grey", ls=":", lw=0.8)
            if r == 2:
                ax.axhline(0, color="grey", lw=0.6)
            if c == 1:
                ax.set_xlim(*window)
                ax.set_xticks(range(window[0], window[1] + 1, 100), minor=True)
            else:
                ax.set_ylabel(ylabel)
        handles, labels = axes[r, 0].get_legend_handles_labels()       # the scores' legend fits best in the zoom
        axes[r, 1 if r == 0 else 0].legend(handles, labels, fontsize=7, loc=("lower right", "upper right", "lower left")[r])
    axes[0, 0].set_title("the whole run")
    axes[0, 1].set_title(f"steps {window[0]:,}-{window[1]:,} (the phase change)")
    for ax in axes[2]:
        ax.set_xlabel("training step")
    fig.suptitle("The induction circuit forms (lines: recorded in training on other random sequences; dots: this chapter's measurements)",
                 fontsize=10)
    fig.tight_layout()
    return fig
