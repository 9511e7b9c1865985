"""The puzzles' figures (matplotlib; each returns its figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor

from .geometry import cosine_matrix, off_diagonal
from .position import ProbeResult


def cosine_histograms(sets: dict[str, Tensor], title: str = "Pairwise cosine similarity"):
    """One histogram per set of vectors, of the cosines of all pairs of distinct rows. sets: {label: [n, d]}"""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.linspace(-1, 1, 81)
    for label, X in sets.items():
        values = off_diagonal(cosine_matrix(X)).cpu().numpy()
        ax.hist(values, bins=bins, alpha=0.6, density=True, label=f"{label} (mean {values.mean():.3f})")
    ax.set(title=title, xlabel="cosine similarity", ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def short_place(hook: str) -> str:
    """A place's short label: ``blocks.1.hook_resid_post`` -> ``1.resid_post``, ``hook_embed`` -> ``embed``."""
    return hook.replace("blocks.", "").replace("hook_", "")


def explained_bars(results: dict[str, tuple[Tensor, Tensor]], title: str):
    """Mean held-out fraction explained by the relation vector and by a random vector, per place.

    results: {place: (relation [n_pairs], random [n_pairs])}, as :func:`~.relations.held_out_explained` returns.
    """
    places = list(results)
    x = np.arange(len(places))
    relation = [results[p][0].mean().item() for p in places]
    random = [results[p][1].mean().item() for p in places]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(x - 0.2, relation, 0.4, label="relation vector (other pairs' mean difference)")
    ax.bar(x + 0.2, random, 0.4, label="random direction")
    ax.set_xticks(x, [short_place(p) for p in places], fontsize=8)
    ax.set(title=title, xlabel="place (embedding, or residual stream after block L)",
           ylabel="fraction of |d|² explained", ylim=(0, 1.05))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def probe_bars(results: list[ProbeResult], title: str = "Linear probe for the word's position in its sentence",
               baseline: dict[str, float] | None = None):
    """Held-out probe accuracy at each place, one bar per group of tokens; ``baseline`` ({group: accuracy},
    e.g. :func:`~.position.majority_baseline`) is drawn as one dashed line per group, in the group's colour."""
    groups = list(results[0].accuracy)
    x = np.arange(len(results))
    width = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(9, 3.4))
    for k, group in enumerate(groups):
        bars = ax.bar(x + (k - (len(groups) - 1) / 2) * width, [r.accuracy[group] for r in results], width,
                      label=group)
        if baseline is not None and group in baseline:
            ax.axhline(baseline[group], color=bars.patches[0].get_facecolor(), ls="--", lw=1,
                       label=f"{group}: commonest position")
    ax.set_xticks(x, [short_place(r.hook) for r in results], rotation=30, ha="right", fontsize=8)
    ax.set(title=title, xlabel="place in the model (L.resid_mid: after block L's attention)",
           ylabel="held-out accuracy", ylim=(0, 1.05))
    ax.legend(fontsize=8, title="tokens", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return fig
