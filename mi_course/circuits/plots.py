"""Figures for chapter 02: circuits as heatmaps, composition scores, path effects.

Every function returns the matplotlib ``Figure`` (notebooks display it) and takes CPU tensors.
Signed quantities use a diverging colour map centred on zero; heads are labelled ``L{layer}H{head}``.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Patch, Rectangle
from torch import Tensor


def head_labels(layer: int, n_heads: int) -> list[str]:
    return [f"L{layer}H{h}" for h in range(n_heads)]


def colour_limit(M: Tensor) -> float:
    """The largest finite |value| of ``M`` (1 if there is none): the end of a symmetric colour scale."""
    finite = M[torch.isfinite(M)]
    return max(finite.abs().max().item(), 1e-9) if finite.numel() else 1.0


def draw_signed_heatmap(ax: plt.Axes, M: Tensor, row_labels: Sequence[str], col_labels: Sequence[str],
                        title: str, xlabel: str, ylabel: str, annotate: bool = False,
                        limit: float | None = None, sequential: bool = False) -> plt.cm.ScalarMappable:
    """A heatmap of ``M`` [rows, cols] with a diverging colour map centred on 0.

    ``limit`` fixes the colour range to ±limit (to share one scale between panels; default: ``M``'s own
    largest size). ``sequential`` draws sizes (values >= 0) on a one-sided map from 0 to ``limit``.
    With ``annotate``, each cell shows its value, in white where the colour is dark (beyond half the range).
    """
    if limit is None:
        limit = colour_limit(M)
    im = ax.imshow(M.numpy(), cmap="Greys" if sequential else "RdBu_r", vmin=0 if sequential else -limit, vmax=limit)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if annotate:
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                value = M[i, j].item()
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(value) > 0.5 * limit else "black")
    return im


def plot_circuit(M: Tensor, row_labels: Sequence[str], col_labels: Sequence[str], title: str,
                 xlabel: str, ylabel: str, colorbar: str = "score", size: float = 5.0) -> plt.Figure:
    """One full circuit (or any token x token matrix) as a signed heatmap."""
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = draw_signed_heatmap(ax, M, row_labels, col_labels, title, xlabel, ylabel)
    fig.colorbar(im, ax=ax, shrink=0.8, label=colorbar)
    fig.tight_layout()
    return fig


def plot_pattern(P: Tensor, row_labels: Sequence[str], col_labels: Sequence[str], title: str,
                 xlabel: str = "key position", ylabel: str = "query position", size: float = 5.0) -> plt.Figure:
    """An attention pattern (rows sum to 1) [query, key] on a 0-to-1 sequential colour map."""
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(P.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention probability")
    fig.tight_layout()
    return fig


def plot_head_bars(values: Tensor, title: str, ylabel: str, reference: float | None = None) -> plt.Figure:
    """One bar per head, coloured by layer (a legend says which). values: [layer, head]"""
    n_layers, n_heads = values.shape
    fig, ax = plt.subplots(figsize=(6, 2.8))
    labels = [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)]
    colours = [plt.cm.tab10(l) for l in range(n_layers) for _ in range(n_heads)]
    ax.bar(labels, values.flatten().tolist(), color=colours)
    ax.legend(handles=[Patch(color=plt.cm.tab10(l), label=f"layer {l}") for l in range(n_layers)], fontsize=8,
              loc="best")
    ax.axhline(0, color="black", lw=0.8)
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("head")
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def plot_composition(scores: dict[str, Tensor], threshold: float | dict[str, Tensor], writer_layer: int = 0,
                     reader_layer: int = 1, baseline: str = "random baseline's 95th percentile") -> plt.Figure:
    """Q-, K- and V-composition heatmaps; cells above ``threshold`` are outlined.

    scores: kind -> [heads_writer, heads_reader]; threshold: one number, or kind -> [heads_writer, heads_reader]
    (a baseline per pair); baseline: what the threshold is, for the title
    """
    fig, axes = plt.subplots(1, len(scores), figsize=(3.4 * len(scores) + 1.2, 3.6), sharey=True,
                             layout="constrained")
    top = max(s.max().item() for s in scores.values())
    for k, (ax, (kind, S)) in enumerate(zip(axes, scores.items())):
        bar = torch.as_tensor(threshold[kind] if isinstance(threshold, dict) else threshold).expand_as(S)
        im = ax.imshow(S.numpy(), cmap="Blues", vmin=0, vmax=top)
        ax.set_xticks(range(S.shape[1]), head_labels(reader_layer, S.shape[1]), fontsize=8)
        ax.set_yticks(range(S.shape[0]), head_labels(writer_layer, S.shape[0]), fontsize=8)
        ax.set_title(f"{kind.upper()}-composition", fontsize=10)
        ax.set_xlabel(f"reader (layer {reader_layer})")
        if k == 0:
            ax.set_ylabel(f"writer (layer {writer_layer})")
        for i in range(S.shape[0]):
            for j in range(S.shape[1]):
                value = S[i, j].item()
                if value > bar[i, j].item():
                    ax.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, edgecolor="tab:orange", lw=2))
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if value > 0.6 * top else "black")
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="composition score")
    fig.suptitle(f"Composition scores (outlined: above the {baseline})", fontsize=10)
    return fig


def plot_path_effects(effects: dict[str, float], top: int = 12,
                      title: str = "Paths ranked by their effect on the correct logit") -> plt.Figure:
    """Horizontal bars for the ``top`` paths with the largest absolute effect."""
    ranked = sorted(effects.items(), key=lambda kv: -abs(kv[1]))[:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(ranked) + 1.2))
    ax.barh([name for name, _ in ranked], [v for _, v in ranked],
            color=["tab:red" if v < 0 else "tab:blue" for _, v in ranked])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("mean contribution to the correct next token's logit")
    ax.set_ylabel("path")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_score_terms(terms: Tensor, names: Sequence[str], title: str) -> plt.Figure:
    """Stripe contributions of each (query source, key source) pair. terms: [S, S]"""
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    im = draw_signed_heatmap(ax, terms, names, names, title, "key comes from", "query comes from", annotate=True)
    fig.colorbar(im, ax=ax, shrink=0.8, label="score above the row mean")
    fig.tight_layout()
    return fig
