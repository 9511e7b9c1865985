"""Figures for chapter 06: patching heatmaps, AtP against exact patching, the lookup's AND, saturated attention.

Every function returns the matplotlib ``Figure`` and takes CPU tensors. Signed quantities use a diverging
colour map centred on zero (chapter 02's :func:`~mi_course.circuits.plots.draw_signed_heatmap`), and panels
that compare estimates share one scale; heads are labelled ``L{layer}H{head}``.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor

from ..circuits.plots import colour_limit, draw_signed_heatmap


def head_rows(n_layers: int, n_heads: int) -> list[str]:
    """Row labels of a [layers * heads, ...] table: L0H0, L0H1, ..."""
    return [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)]


def heads_by_position(table: Tensor) -> Tensor:
    """A [layers, pos, heads] sweep as one [layers * heads, pos] table (rows L0H0, L0H1, ...)."""
    L, T, H = table.shape
    return table.permute(0, 2, 1).reshape(L * H, T)


def plot_sweeps(tables: dict[str, Tensor], row_labels: Sequence[str], col_labels: Sequence[str],
                ylabel: str, colorbar: str = "normalised metric", xlabel: str = "position (token)",
                own_scale: Sequence[str] = (), sequential: bool = False) -> plt.Figure:
    """Several [rows, pos] sweeps side by side on one shared colour scale centred on 0, so that a panel
    whose values are smaller looks paler. Panels named in ``own_scale`` get their own scale (a score
    that is not an estimate of the others, say). ``sequential``: the tables are sizes (>= 0), drawn on a
    one-sided map."""
    shared = max((colour_limit(M) for t, M in tables.items() if t not in own_scale), default=1.0)
    width = max(4.2, 0.45 * len(col_labels) + 2.4)                  # per panel, colour bar included
    fig, axes = plt.subplots(1, len(tables), figsize=(width * len(tables), 2.3 + 0.28 * len(row_labels)), squeeze=False)
    for ax, (title, M) in zip(axes[0], tables.items()):
        limit = colour_limit(M) if title in own_scale else shared
        im = draw_signed_heatmap(ax, M.float(), row_labels, col_labels, title, xlabel, ylabel,
                                 annotate=M.numel() <= 40, limit=limit, sequential=sequential)
        fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar)
    fig.tight_layout()
    return fig


def plot_atp_scatter(exact: Tensor, estimates: dict[str, Tensor], title: str, highlight: int | None = None) -> plt.Figure:
    """Each estimate against exact patching, one point per node (with ``highlight`` circled); the diagonal is
    a perfect estimate."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    x = exact.flatten()
    for (name, est), marker in zip(estimates.items(), "os^"):
        ax.scatter(x, est.flatten(), s=14, alpha=0.7, marker=marker, label=name)
        if highlight is not None:
            ax.scatter(x[highlight], est.flatten()[highlight], s=120, facecolors="none", edgecolors="black")
    lo = min(x.min().item(), min(e.min().item() for e in estimates.values()))
    hi = max(x.max().item(), max(e.max().item() for e in estimates.values()))
    ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.8)
    ax.axhline(0, color="black", lw=0.5)
    ax.axvline(0, color="black", lw=0.5)
    ax.set_xlabel("exact patching (change of the metric)")
    ax.set_ylabel("estimate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_excess(excess: Tensor, title: str = "Non-linear excess of the sport logit, per person") -> plt.Figure:
    """A histogram of the non-linear excess, with 0 (an additive lookup) marked."""
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    ax.hist(excess.numpy(), bins=40, color="tab:purple")
    ax.axvline(0, color="black", lw=1, ls="--", label="additive (no AND)")
    ax.set_xlabel("E(A,B) - E(¬A,B) - E(A,¬B) + E(¬A,¬B)   (logit)")
    ax.set_ylabel("people")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_last_position_attention(pattern: Tensor, col_labels: Sequence[str], layer: int) -> plt.Figure:
    """Where each head of ``layer`` looks from the last position, averaged over prompts. pattern: [heads, key pos]"""
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(col_labels), 0.9 + 0.35 * pattern.shape[0]))
    im = ax.imshow(pattern.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(pattern.shape[0]), [f"L{layer}H{h}" for h in range(pattern.shape[0])], fontsize=8)
    ax.set_xlabel("key position (token)")
    ax.set_title(f"Attention from the last position, layer {layer}", fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention")
    fig.tight_layout()
    return fig


def plot_pattern_change(before: Tensor, after: Tensor, col_labels: Sequence[str], title: str) -> plt.Figure:
    """One head's attention from the last position, per prompt, before and after a patch. before/after: [batch, key pos]"""
    fig, axes = plt.subplots(1, 2, figsize=(2 + 1.0 * len(col_labels), 3.2), sharey=True)
    for ax, M, name in zip(axes, (before, after), ("corrupted run", "with the node restored")):
        im = ax.imshow(M.numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
        ax.set_xlabel("key position")
        ax.set_title(name, fontsize=10)
    axes[0].set_ylabel("prompt")
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_metric_path(ts: Sequence[float], values: Tensor, slope: float, exact: float) -> plt.Figure:
    """The metric along the straight path from the corrupted to the patched attention pattern, with the QK
    fix's tangent at t = 0 (its estimate is the tangent's value at t = 1)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    ts = torch.tensor(list(ts))
    ax.plot(ts, values, "o-", label="metric along the path (exact)")
    ax.plot([0, 1], [values[0], values[0] + slope], "--", label=f"QK fix: tangent at t = 0 (→ {slope:+.3f})")
    ax.scatter([1], [values[0] + exact], s=80, facecolors="none", edgecolors="black",
               label=f"exact patching ({exact:+.3f})")
    ax.set_xlabel("t: pattern = corrupted + t (patched - corrupted)")
    ax.set_ylabel("normalised metric")
    ax.set_title("Why the QK fix still underestimates", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
