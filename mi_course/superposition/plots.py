"""Figures for chapter 03: feature directions, W^T W, dimensionality, the phase diagram.

Every function returns the matplotlib ``Figure`` (notebooks display it), and
takes tensors already on the CPU.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import ListedColormap
from torch import Tensor

from .geometry import PHASES, STICKY_VALUES, dimensions_per_feature, feature_dimensionality


def _grid(n: int, max_cols: int = 5, size: float = 2.4) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.5), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def draw_directions(ax: plt.Axes, W2: Tensor, importance: Tensor | None = None, title: str = "",
                    label_below: float = 0.3) -> None:
    """Draw each feature's 2-D direction (a column of W2: [2, features]) as a line from the origin.

    Each feature whose norm is at least ``label_below`` is labelled with its index at its tip.
    """
    n = W2.shape[1]
    colours = plt.cm.viridis(torch.linspace(0, 0.9, n).tolist())
    if importance is not None:  # most important feature darkest, as in the paper
        order = torch.argsort(importance, descending=True).tolist()
        colours = [colours[order.index(i)] for i in range(n)]
    ax.add_patch(plt.Circle((0, 0), 1, fill=False, ls=":", color="grey", lw=0.8))
    for i in range(n):
        x, y = W2[0, i].item(), W2[1, i].item()
        ax.plot([0, x], [0, y], color=colours[i], lw=2)
        ax.scatter([x], [y], color=colours[i], s=18, zorder=3)
        norm = math.hypot(x, y)
        if norm >= label_below:
            ax.annotate(str(i), (x, y), xytext=(x * (norm + 0.25) / norm, y * (norm + 0.25) / norm),
                        ha="center", va="center", fontsize=8, color=colours[i])
    ax.set_xlim(-1.6, 1.6)
    ax.set_ylim(-1.6, 1.6)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def plot_features_2d(W: Tensor, titles: Sequence[str], importance: Tensor | None = None,
                     suptitle: str = "Feature directions W_i in the 2-D hidden space") -> plt.Figure:
    """One panel per instance, features labelled by index. W: [instances, 2, features]."""
    fig, axes = _grid(W.shape[0])
    for ax, Wi, title in zip(axes, W, titles):
        draw_directions(ax, Wi, importance, title)
    fig.suptitle(suptitle + " (darker = more important)" if importance is not None else suptitle)
    return fig


def plot_wtw_and_bias(W: Tensor, b: Tensor, titles: Sequence[str]) -> plt.Figure:
    """W^T W (features x features, diverging colours centred on 0) above the bias b, per instance.

    The bias has its own colour scale (its entries are much smaller than ``W^T W``'s diagonal).
    W: [instances, hidden, features]; b: [instances, features].
    """
    n, n_features = W.shape[0], W.shape[-1]
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n + 1.2, 2.2 + 0.9 + 0.6), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [n_features, 1]})
    b_max = max(b.abs().max().item(), 1e-3)
    for k in range(n):
        wtw = (W[k].T @ W[k]).numpy()
        im = axes[0, k].imshow(wtw, cmap="RdBu", vmin=-1.2, vmax=1.2)
        axes[0, k].set_title(titles[k], fontsize=9)
        axes[0, k].set_ylabel("feature i" if k == 0 else "")
        axes[0, k].set_xticks([])
        im_b = axes[1, k].imshow(b[k][None].numpy(), cmap="PuOr", vmin=-b_max, vmax=b_max)
        axes[1, k].set_yticks([0], ["b" if k == 0 else ""])
        axes[1, k].set_xlabel("feature j")
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.9, label="W^T W entry")
    fig.colorbar(im_b, ax=axes[1, :].tolist(), shrink=0.9, label="bias", aspect=5)
    fig.suptitle("W^T W: diagonal = ||W_i||^2 (represented?), off-diagonal = interference; bias below")
    return fig


def plot_dimensionality(W: Tensor, feature_probability: Tensor,
                        title: str = "Feature dimensionality sticks to special values") -> plt.Figure:
    """Each feature's dimensionality D_i (dots) and m/||W||_F^2 (line) against 1/(1-S).

    W: [instances, hidden, features]; feature_probability: [instances]. Dashed
    lines mark the sticky values with the geometry each stands for.
    """
    x = (1 / feature_probability).tolist()
    D = feature_dimensionality(W)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, xk in enumerate(x):
        ax.scatter([xk] * D.shape[1], D[k].tolist(), s=8, color="tab:blue", alpha=0.35)
    ax.plot(x, dimensions_per_feature(W).tolist(), color="black", lw=2, label="m / ||W||_F^2")
    for value, name in STICKY_VALUES.items():
        ax.axhline(value, ls="--", lw=0.8, color="tab:red")
        ax.text(1.01, value, f"{value:.3g} {name}", va="center", fontsize=8, color="tab:red",
                transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("1 / (1 - S)  =  1 / feature probability  (log scale)")
    ax.set_ylabel("dimensions per feature")
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def plot_phase_diagram(phases: Tensor, densities: Tensor, rel_importance: Tensor) -> plt.Figure:
    """The 2-features-in-1-dimension phase diagram. phases: long [n_importance, n_density]."""
    fig, ax = plt.subplots(figsize=(7.6, 3.4), layout="constrained")
    cmap = ListedColormap(["#d9d9d9", "#4c72b0", "#dd8452"])
    ax.pcolormesh(densities.numpy(), rel_importance.numpy(), phases.numpy(), cmap=cmap,
                  vmin=-0.5, vmax=2.5, shading="nearest")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("feature density 1 - S (log scale)")
    ax.set_ylabel("importance of feature 2\n/ feature 1 (log scale)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(i)) for i in range(3)]
    fig.legend(handles, PHASES, loc="outside right upper", fontsize=8, frameon=False)
    ax.set_title("2 features in 1 dimension: which solution wins", fontsize=10)
    return fig


def plot_order_parameter(densities: Tensor, w2_norm: Tensor, rel_importance: float) -> plt.Figure:
    """|w_2| (feature 2's weight) against density at one relative importance: a continuous order parameter.

    densities, w2_norm: [settings].
    """
    fig, ax = plt.subplots(figsize=(5.6, 3.0), layout="constrained")
    ax.plot(densities.numpy(), w2_norm.numpy(), "o-", ms=4, color="#dd8452")
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.15)
    ax.set_xlabel("feature density 1 - S (log scale)")
    ax.set_ylabel("|w_2|")
    ax.set_title(f"feature 2's weight at relative importance {rel_importance:g}", fontsize=10)
    return fig
