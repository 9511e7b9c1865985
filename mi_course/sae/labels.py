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


def average_ranks(scores: Tensor, chunk: int = 256) -> Tensor:
    """1-based ranks within each column, tied values sharing their average rank.

    Sorted in blocks of ``chunk`` columns; inside a block of equal values the first and last
    positions come from running maxima and minima, so there is no loop over columns.

    scores: [n, k] -> [n, k] float64
    """
    n, k = scores.shape
    out = torch.empty(n, k, dtype=torch.float64)
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    for start in range(0, k, chunk):
        values, order = scores[:, start:start + chunk].sort(dim=0)
        first_of_run = torch.ones_like(values, dtype=torch.bool)
        first_of_run[1:] = values[1:] != values[:-1]
        last_of_run = torch.ones_like(first_of_run)
        last_of_run[:-1] = first_of_run[1:]
        first = torch.where(first_of_run, pos, 0.0).cummax(dim=0).values
        last = torch.where(last_of_run, pos, float(n)).flip(0).cummin(dim=0).values.flip(0)
        out[:, start:start + chunk].scatter_(0, order, (first + last) / 2 + 1)
    return out


def auroc_many(scores: Tensor, positives: Tensor) -> Tensor:
    """AUROC of every column of ``scores`` for every label (see :func:`auroc`), from one ranking.

    The Mann-Whitney U statistic: the positives' rank sum, less its minimum, over n_pos * n_neg.

    scores: [n, k]; positives: [n, n_labels] bool -> [n_labels, k] (NaN for a label with one class)
    """
    ranks = average_ranks(scores)
    n_pos = positives.sum(0).double()                              # [n_labels]
    n_neg = positives.shape[0] - n_pos
    rank_sums = positives.double().T @ ranks                       # [n_labels, k]
    out = (rank_sums - (n_pos * (n_pos + 1) / 2)[:, None]) / (n_pos * n_neg)[:, None]
    out[(n_pos == 0) | (n_neg == 0)] = float("nan")
    return out.float()


def auroc(scores: Tensor, positive: Tensor) -> Tensor:
    """Area under the ROC curve of each column of ``scores`` as a detector of ``positive``.

    The probability that a random positive token scores higher than a random negative one,
    ties counting one half (the Mann-Whitney U statistic); 0.5 for a feature that ignores
    the label, 1 for a perfect detector. NaN when one of the two classes is empty.

    scores: [n, k]; positive: [n] bool -> [k]
    """
    return auroc_many(scores, positive[:, None])[0]


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
    if not names:
        return names, torch.empty(0, f.shape[1])
    return names, auroc_many(f, torch.stack([labels[name] for name in names], dim=1))


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


def held_out_matches(f: Tensor, labels: dict[str, Tensor], population: Tensor, held_out: Tensor
                     ) -> dict[str, tuple[int, float, float]]:
    """:func:`clean_matches` with the feature picked on the tokens outside ``held_out`` and scored on the
    tokens in it.

    Picking the best of thousands of features and scoring it on the same tokens flatters it (some feature
    fits a handful of positives by chance); scoring it on tokens it was not picked on does not.
    f: [tokens, d_sae]; labels: {name: bool [tokens]}; population, held_out: bool [tokens]
    -> {label: (feature, held-out AUROC against all tokens, held-out AUROC within the population)}
    """
    pick = ~held_out
    chosen = clean_matches(f[pick], {k: v[pick] for k, v in labels.items()}, population[pick])
    inside = held_out & population
    return {name: (j, float(auroc(f[held_out][:, j:j + 1], labels[name][held_out])[0]),
                   float(auroc(f[inside][:, j:j + 1], labels[name][inside])[0]))
            for name, (j, _, _) in chosen.items()}
