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


def plot_width_sweep(widths: Sequence[int], scores: Tensor, n_true: int | None = None,
                     knee: int | None = None) -> plt.Figure:
    """MMCS against SAE width; the curve's knee (an estimate) and the true feature count when they are given."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(list(widths), scores.tolist(), "o-", label="trained SAEs")
    if knee is not None:
        ax.plot([knee], [float(scores[list(widths).index(knee)])], "o", ms=12, mfc="none", mec="C3",
                label=f"knee ({knee})")
    if n_true is not None:
        ax.axvline(n_true, color="gray", ls="--", label=f"true count ({n_true})")
    if knee is not None or n_true is not None:
        ax.legend(loc="lower right")
    ax.set(xlabel="SAE width (features)", ylabel="MMCS with the true features", ylim=(0, 1.02),
           title="Recovered features against width")
    fig.tight_layout()
    return fig


def plot_dead_features(histories: dict[str, dict[str, Tensor]], log_every: int, first_full_window: int
                       ) -> plt.Figure:
    """Dead features over training, one curve per run. A feature counts as dead once it has not fired for a
    whole window, so the curves start at the first step with a full window behind it (``first_full_window``)."""
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    for name, h in histories.items():
        steps = torch.arange(len(h["dead"])) * log_every
        keep = steps >= first_full_window
        ax.plot(steps[keep], h["dead"][keep], label=name)
    ax.set(xlabel="step", ylabel="dead features", title="Dead features during training", ylim=(0, None))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
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


def _tail(text: str, width: int) -> str:
    """The end of ``text`` in at most about ``width`` characters, starting at a word: "… of the ⟦Victor⟧"."""
    if len(text) <= width:
        return text
    cut = text[-width:]
    space = cut.find(" ")
    return "…" + (cut[space:] if 0 <= space < len(cut) - 1 else cut)


def plot_feature_card(card) -> plt.Figure:
    """A feature's dashboard: activation histogram, top contexts, promoted and suppressed tokens, labels."""
    fig, (ax_hist, ax_text, ax_logit) = plt.subplots(1, 3, figsize=(13, 3.6), width_ratios=(1, 1.6, 1))
    counts, edges = card.histogram
    ax_hist.stairs(counts.tolist(), edges.tolist(), fill=True)
    ax_hist.set(xlabel="activation (non-zero)", ylabel="tokens",
                title=f"Feature {card.feature}: fires on {card.frequency:.2%}")
    ax_text.axis("off")
    lines = [f"{a:6.2f}  {_tail(text, 48)}" for a, text in card.contexts] or ["(never fires)"]
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


def plot_label_matches(matches: dict[str, tuple[int, float, float]], title: str) -> plt.Figure:
    """For each label, its best feature's AUROC against all tokens and within the label's family
    (``labels.clean_matches``'s output); the dashed line is the 0.9 bar of a clean match."""
    names = list(matches)
    x = torch.arange(len(names)).float()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(names) + 1.5), 3.4))
    ax.bar((x - 0.2).tolist(), [m[1] for m in matches.values()], width=0.4, label="against all tokens")
    ax.bar((x + 0.2).tolist(), [m[2] for m in matches.values()], width=0.4, label="within its family")
    ax.axhline(0.9, color="gray", ls="--", lw=1)
    ax.set_xticks(x.tolist(), [f"{n}\nF{m[0]}" for n, m in matches.items()], fontsize=8)
    ax.set(ylim=(0.4, 1.02), ylabel="AUROC of the best feature", title=title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ito(target_l0: Sequence[int], curves: dict[str, Sequence[float]], encoder: tuple[float, float]) -> plt.Figure:
    """Variance explained against L0: each pursuit at several target L0s, the encoder as one point."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, ve in curves.items():
        ax.plot(list(target_l0), list(ve), "o-", label=name)
    ax.scatter([encoder[0]], [encoder[1]], marker="*", s=140, color="black", zorder=3, label="the SAE's encoder")
    ax.set(xlabel="L0 (features per token)", ylabel="variance explained",
           title="Same dictionary, different coefficients")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_steering(curves: dict[str, tuple[Tensor, Tensor]], coeffs: Sequence[float],
                  fronts: dict[str, Tensor] | None = None) -> plt.Figure:
    """Steering success against collateral loss, one curve per direction ({name: (cost, success)}) over
    the same coefficients; points on a direction's Pareto frontier (``fronts``) are filled, others hollow."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, (cost, success) in curves.items():
        line, = ax.plot(cost.tolist(), success.tolist(), "-", alpha=0.6, label=name)
        front = fronts[name] if fronts is not None else torch.ones_like(cost, dtype=torch.bool)
        ax.scatter(cost[front].tolist(), success[front].tolist(), color=line.get_color(), zorder=3)
        ax.scatter(cost[~front].tolist(), success[~front].tolist(), facecolors="none",
                   edgecolors=line.get_color(), zorder=3)
        k = int(success.argmax())
        ax.annotate(f"×{coeffs[k]:g}", (cost[k].item(), success[k].item()), textcoords="offset points",
                    xytext=(4, -10), fontsize=7, color=line.get_color())
    ax.set(xlabel="loss on positions not steered (nats)", ylabel="share of prompts steered to the target",
           title="Steering: success against damage (filled: Pareto frontier)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
