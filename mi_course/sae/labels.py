"""The world's hidden labels, token by token, and how well each SAE feature matches each of them.

The zoo's text comes from a generated world in which every token has labels (its slot, the
attribute its sentence states, the person it is about, ...; see ``mi_course.zoo.world``). A
feature *matches* a label when the feature's activation separates the tokens that carry the
label from those that don't: its AUROC is near 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..zoo.world import ATTRIBUTES, SLOTS, SPORTS, World


def labelled_rows(world: World, n_rows: int, n_ctx: int, start_doc: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Documents packed into rows exactly as ``zoo.world.token_rows`` packs them, with their labels.

    returns (tokens [n_rows, n_ctx], {label name: [n_rows, n_ctx] int64}); besides the world's own
    labels there is ``person_sport``: the sport of the person a name token names (-1 elsewhere).
    """
    sport_of = np.array([p.sport for p in world.kb.people] + [-1])
    ids = np.empty((n_rows, n_ctx), dtype=np.int64)
    labels: dict[str, np.ndarray] = {}
    doc = start_doc
    for r in range(n_rows):
        filled = 0
        while filled < n_ctx:
            d = world.document(doc)
            doc += 1
            take = min(len(d.ids), n_ctx - filled)
            ids[r, filled:filled + take] = d.ids[:take]
            for name, values in d.labels.items():
                labels.setdefault(name, np.full((n_rows, n_ctx), -1, dtype=np.int64))
                labels[name][r, filled:filled + take] = values[:take]
            filled += take
    name_slot = np.isin(labels["slot"], [SLOTS.index("first_name"), SLOTS.index("last_name")])
    labels["person_sport"] = np.where(name_slot & (labels["person"] >= 0), sport_of[labels["person"]], -1)
    return torch.from_numpy(ids), {k: torch.from_numpy(v) for k, v in labels.items()}


def binary_labels(labels: dict[str, Tensor]) -> dict[str, Tensor]:
    """The yes/no labels features are scored against, each a bool tensor of the labels' shape:

    - ``sport word: <s>``: the word naming sport s;
    - ``states sport: <s>``: every token of a sentence that says someone plays sport s;
    - ``name of a <s> player``: a first or last name of a person who plays s (the fact to recall);
    - ``slot: <slot>``: the role a word fills; ``gender: male / female``.
    """
    out: dict[str, Tensor] = {}
    sport_attr = labels["attribute"] == ATTRIBUTES.index("sport")
    for i, sport in enumerate(SPORTS):
        out[f"sport word: {sport}"] = (labels["slot"] == SLOTS.index("sport")) & (labels["value"] == i)
        out[f"states sport: {sport}"] = sport_attr & (labels["value"] == i)
        out[f"name of a {sport} player"] = labels["person_sport"] == i
    for i, slot in enumerate(SLOTS):
        out[f"slot: {slot}"] = labels["slot"] == i
    out["gender: male"], out["gender: female"] = labels["gender"] == 0, labels["gender"] == 1
    return out


def auroc(scores: Tensor, positive: Tensor) -> Tensor:
    """Area under the ROC curve of each column of ``scores`` as a detector of ``positive``.

    The probability that a random positive token scores higher than a random negative one,
    ties counting one half (the Mann-Whitney U statistic); 0.5 for a feature that ignores
    the label, 1 for a perfect detector. NaN when one of the two classes is empty.

    scores: [n, k]; positive: [n] bool -> [k]
    """
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return torch.full((scores.shape[1],), float("nan"))
    out = torch.empty(scores.shape[1], dtype=torch.float64)
    for j in range(scores.shape[1]):
        values, inverse, counts = torch.unique(scores[:, j], return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        mean_rank = ends - (counts.double() - 1) / 2            # 1-based rank, averaged over ties
        rank_sum = mean_rank[inverse][positive].sum()
        out[j] = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out.float()


def auroc_table(f: Tensor, labels: dict[str, Tensor], population: Tensor | None = None) -> tuple[list[str], Tensor]:
    """AUROC of every feature against every binary label with both classes present.

    With ``population`` (a bool mask), only those tokens count: e.g. among the sport words only,
    does the feature tell baseball from the other sports? A feature that fires on every sport
    word scores near 1 for each sport against all tokens, and near 0.5 within the sport words.

    f: [n_tokens, d_sae]; labels: {name: [n_tokens] bool} -> (names, [n_labels, d_sae])
    """
    if population is not None:
        f, labels = f[population], {name: y[population] for name, y in labels.items()}
    names = [name for name, y in labels.items() if 0 < int(y.sum()) < y.numel()]
    return names, torch.stack([auroc(f, labels[name]) for name in names])


def clean_matches(f: Tensor, labels: dict[str, Tensor], population: Tensor, threshold: float = 0.9
                  ) -> dict[str, tuple[int, float, float]]:
    """For each label, the feature that best matches it both against all tokens and within ``population``.

    Returns {label: (feature, AUROC against all tokens, AUROC within the population)} for the
    feature with the largest smaller-of-the-two; a clean match has both above ``threshold``.
    """
    names, everywhere = auroc_table(f, labels)
    names_in, within = auroc_table(f, labels, population)
    out = {}
    for name in names:
        if name not in names_in:
            continue
        a, b = everywhere[names.index(name)], within[names_in.index(name)]
        worst = torch.minimum(a, b).nan_to_num(0.0)
        j = int(worst.argmax())
        out[name] = (j, float(a[j]), float(b[j]))
    return out
