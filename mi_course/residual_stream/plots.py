"""Figures for chapter 01. Every function takes CPU tensors and returns the matplotlib ``Figure``."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torch import Tensor


def plot_read_write(spectra: dict[str, Tensor], d_head: int, d_model: int) -> plt.Figure:
    """Singular values of what a few components write (and of the stream they write into), over many positions.

    ``spectra``: name -> singular values (descending). A head writes through ``W_O [d_head, d_model]``:
    its outputs fill only a ``d_head``-dimensional subspace of the residual stream (writing is an
    embedding); an MLP's ``W_out [d_mlp, d_model]`` can fill all of it.
    """
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, s in spectra.items():
        s = s / s[0]
        ax.semilogy(range(1, len(s) + 1), s.clamp_min(1e-9), marker=".", ms=3, lw=1.2, label=name)
    ax.axvline(d_head, color="grey", ls="--", lw=0.8)
    ax.text(d_head + 1, 1e-7, f"d_head = {d_head}", fontsize=8, color="grey")
    ax.set_xlim(0, d_model + 1)
    ax.set_ylim(1e-9, 2)
    ax.set_xlabel("singular value index (of d_model = %d)" % d_model)
    ax.set_ylabel("singular value / largest")
    ax.set_title("A head writes into a d_head-dimensional subspace of the residual stream", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_dla(dla: Tensor, labels: Sequence[str], title: str = "Direct logit attribution") -> plt.Figure:
    """Mean (bars) and spread (whiskers: 10th-90th percentile) of each component's DLA. dla: [components, n]"""
    mean = dla.mean(1)
    lo, hi = dla.quantile(0.1, dim=1), dla.quantile(0.9, dim=1)
    fig, ax = plt.subplots(figsize=(max(6, 0.38 * len(labels)), 3.4))
    colours = ["tab:blue" if m >= 0 else "tab:red" for m in mean.tolist()]
    ax.bar(range(len(labels)), mean.numpy(), color=colours,
           yerr=torch.stack([mean - lo, hi - mean]).clamp_min(0).numpy(), capsize=2, error_kw={"lw": 0.8})
    ax.axhline(0, color="black", lw=0.6)
    ax.text(0.01, 0.97, "bars: mean over prompts\nwhiskers: 10th to 90th percentile", transform=ax.transAxes,
            ha="left", va="top", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=8)
    ax.set_ylabel("contribution to the logit difference")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_lens_ranks(ranks: Tensor, layer_names: Sequence[str], title: str = "Logit lens") -> plt.Figure:
    """The answer's rank after each layer, over all prompts. ranks: [n_layers + 1, n] (0 = top-1)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = torch.arange(len(layer_names))
    for i in range(ranks.shape[1]):
        ax1.plot(x, ranks[:, i] + 1, color="tab:blue", alpha=0.05, lw=0.8)
    ax1.plot(x, ranks.float().median(1).values + 1, color="black", lw=2, label="median")
    ax1.set_yscale("log")
    ax1.set_xticks(x, layer_names, fontsize=8)
    ax1.set_ylabel("rank of the answer + 1 (log)")
    ax1.set_title("each line is one prompt")
    ax1.legend(fontsize=8)
    ax2.bar(x, (ranks == 0).float().mean(1) * 100, color="tab:green")
    ax2.set_xticks(x, layer_names, fontsize=8)
    ax2.set_ylabel("% of prompts where the answer is top-1")
    ax2.set_ylim(0, 100)
    ax2.set_title("top-1 accuracy of the lens")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_kurtosis(before: Tensor, after: Tensor, layer_names: Sequence[str],
                  neurons_before: Tensor, neurons_after: Tensor) -> plt.Figure:
    """Mean kurtosis of residual-stream vectors (per layer) and of MLP activations, before and after a rotation."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [len(layer_names), len(neurons_before)]})
    for ax, b, a, names, what in ((ax1, before, after, layer_names, "residual stream"),
                                  (ax2, neurons_before, neurons_after, [f"MLP{l}" for l in range(len(neurons_before))],
                                   "MLP neurons")):
        x = torch.arange(len(names)).float()
        ax.bar(x - 0.2, b, width=0.4, label="original")
        ax.bar(x + 0.2, a, width=0.4, label="residual stream rotated")
        ax.axhline(3, color="grey", ls="--", lw=0.8)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_ylabel("mean kurtosis (3 = Gaussian)")
        ax.set_title(what)
    ax1.legend(fontsize=8)
    fig.suptitle("Basis statistics: the residual stream has no privileged basis, the neurons do")
    fig.tight_layout()
    return fig


def plot_in_out_cosine(trained: Tensor, untrained: Tensor) -> plt.Figure:
    """Histogram, per layer, of the cosine between each neuron's input and output weights. [layers, d_mlp]"""
    n = trained.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), sharey=True, squeeze=False)
    bins = torch.linspace(-1, 1, 41)
    for l, ax in enumerate(axes[0]):
        ax.hist(untrained[l], bins=bins, alpha=0.5, color="grey", label="at initialisation")
        ax.hist(trained[l], bins=bins, alpha=0.7, color="tab:purple", label="trained")
        ax.set_yscale("log")
        ax.set_xlabel("cos(W_in[:, i], W_out[i])")
        ax.set_title(f"MLP{l}: min {trained[l].min():.2f}")
    axes[0][0].set_ylabel("neurons (log)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Erasing neurons would sit near -1")
    fig.tight_layout()
    return fig


def plot_local_processing(profile: Tensor, ks: Sequence[int], groups: dict[str, Tensor]) -> plt.Figure:
    """Centred cosine, full window vs BOS + last k tokens. profile: [len(ks), layers, n]; groups: name -> bool [n].

    The left panel averages all windows; the others split them by the last token's slot, with a band of
    two standard errors of the mean around each group's curve (at size "small" a group has only tens of windows).
    """
    n_layers = profile.shape[1]
    fig, axes = plt.subplots(1, 1 + n_layers, figsize=(3.1 * (1 + n_layers), 3), sharey=True)
    for l in range(n_layers):
        axes[0].plot(ks, profile[:, l].mean(-1), marker="o", ms=3, label=f"after block {l}")
    axes[0].set_title("all tokens")
    axes[0].legend(fontsize=7)
    for l, ax in enumerate(axes[1:]):
        for name, mask in groups.items():
            if mask.sum() > 1:
                mean, sem = profile[:, l, mask].mean(-1), profile[:, l, mask].std(-1) / mask.sum().sqrt()
                line, = ax.plot(ks, mean, marker=".", ms=3, label=f"{name} ({int(mask.sum())})")
                ax.fill_between(ks, mean - 2 * sem, mean + 2 * sem, color=line.get_color(), alpha=0.15, lw=0)
        ax.set_title(f"after block {l}, by the last token's slot\n(bands: ±2 standard errors)", fontsize=9)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("k (tokens kept)")
        ax.set_ylim(-1.02, 1.02)
    axes[0].set_ylabel("centred cosine")
    fig.tight_layout()
    return fig
