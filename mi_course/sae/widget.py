"""The feature browser: pick a feature, see its dashboard and the world's label it matches best.

The computation is :func:`feature_card`, a plain function (tests call it); the widget only
wires a feature picker to it and redraws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

from .dashboard import activation_histogram, logit_effects, top_contexts


@dataclass
class FeatureCard:
    """What the browser shows for one feature."""

    feature: int
    frequency: float                           # share of tokens it fires on
    contexts: list[tuple[float, str]]          # (activation, text ending with the activating token in ⟦ ⟧), strongest first
    histogram: tuple[Tensor, Tensor]           # counts, bin edges of its non-zero activations
    promoted: list[tuple[str, float]]          # tokens its decoder direction pushes up most (centred logits)
    suppressed: list[tuple[str, float]]        # ... and down most
    labels: list[tuple[str, float]] = field(default_factory=list)   # best-matching labels by AUROC, best first


def feature_card(feature: int, f: Tensor, tokens: Tensor, W_dec: Tensor, W_U: Tensor,
                 decode: Callable[[Sequence[int]], str], auroc: tuple[list[str], Tensor] | None = None,
                 k: int = 8, before: int = 8, vocab: Tensor | None = None) -> FeatureCard:
    """The dashboard of ``feature``.

    f: [rows, pos, d_sae] activations on ``tokens`` [rows, pos]; W_dec: [d_sae, d_model];
    W_U: [d_model, d_vocab]; ``decode`` turns token ids into text; ``auroc`` is
    ``labels.auroc_table``'s (names, [n_labels, d_sae]) on the same tokens, if there is one; ``vocab``
    restricts the promoted and suppressed tokens to those ids (e.g. the words a model was trained on: the
    untrained rows of the unembedding would otherwise top both lists).
    """
    acts = f[..., feature]
    contexts = [(c.activation, f"{decode(c.tokens[:-1]) if len(c.tokens) > 1 else ''} ⟦{decode(c.tokens[-1:]).strip()}⟧")
                for c in top_contexts(acts, tokens, k, before)]
    ids = torch.arange(W_U.shape[1]) if vocab is None else torch.as_tensor(vocab, dtype=torch.long)
    effects = logit_effects(W_dec[feature:feature + 1], W_U[:, ids])[0]
    up, down = effects.topk(min(k, len(ids))), (-effects).topk(min(k, len(ids)))
    card = FeatureCard(feature, float((acts > 0).float().mean()), contexts, activation_histogram(acts),
                       [(decode([int(ids[i])]), float(v)) for v, i in zip(up.values, up.indices)],
                       [(decode([int(ids[i])]), -float(v)) for v, i in zip(down.values, down.indices)])
    if auroc is not None:
        names, table = auroc
        scores = table[:, feature].nan_to_num(0.5)
        best = scores.argsort(descending=True)[:3]
        card.labels = [(names[int(i)], float(scores[i])) for i in best]
    return card


def feature_browser(f: Tensor, tokens: Tensor, W_dec: Tensor, W_U: Tensor, decode: Callable[[Sequence[int]], str],
                    auroc: tuple[list[str], Tensor] | None = None, start: int = 0, vocab: Tensor | None = None):
    """A feature picker above the chosen feature's card (contexts, histogram, logit effects, labels)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from .plots import plot_feature_card

    picker = w.BoundedIntText(value=start, min=0, max=f.shape[-1] - 1, description="feature",
                              continuous_update=False)
    out = w.Output()

    def redraw(*_):
        card = feature_card(picker.value, f, tokens, W_dec, W_U, decode, auroc, vocab=vocab)
        fig = plot_feature_card(card)
        plt.close(fig)                    # shown inside the widget only, not again below the cell
        out.outputs = ()
        out.append_display_data(fig)

    picker.observe(redraw, names="value")
    redraw()
    return w.VBox([picker, out])


def strongest_features(auroc: tuple[list[str], Tensor], label: str, n: int = 5) -> list[int]:
    """The ``n`` features with the highest AUROC for ``label`` (to choose where to start browsing)."""
    names, table = auroc
    return table[names.index(label)].nan_to_num(0.0).argsort(descending=True)[:n].tolist()


def as_rows(f: Tensor, rows: int) -> Tensor:
    """Flat activations [rows * pos, d_sae] back into [rows, pos, d_sae]."""
    return f.reshape(rows, -1, f.shape[-1])

