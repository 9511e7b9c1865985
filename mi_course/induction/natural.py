"""Induction in the world's own text: who is "Daniel" this time?

Stories mention people by first name, often followed by their last name, and
the same first name belongs to several people. After "Daniel", only the story
so far says whether "Wright" follows, so predicting the last name on a *repeat*
mention is an induction task: find the earlier "Daniel" and copy what came next.
The world's labels (slot and person) find these places exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
from torch import Tensor


@dataclass
class NameMentions:
    """Positions (in ``tokens``) of first names followed by their last name.

    tokens: [docs, length]; repeat: (doc, query position, key position of the last name after the
    previous mention of the same person) [m, 3]; first: (doc, position) of first mentions [f, 2].
    """

    tokens: Tensor
    repeat: Tensor
    first: Tensor


def name_mentions(documents: Iterable[Any], first_slot: int, last_slot: int, n_docs: int = 128,
                  length: int = 48) -> NameMentions:
    """The first ``n_docs`` documents of at least ``length`` tokens, cut to ``length``, with their first-name
    positions sorted into repeat and first mentions.

    documents: the world's labelled documents (``.ids``, ``.labels["slot"]``, ``.labels["person"]``);
    first_slot, last_slot: the slot labels of first and last names. (This package takes the world's
    data as arguments: the zoo imports chapter 04's head scores, so chapter 04 never imports the zoo.)
    """
    rows, repeat, first = [], [], []
    for d in documents:
        if len(rows) == n_docs:
            break
        if len(d.ids) < length:
            continue
        slot, person = d.labels["slot"][:length], d.labels["person"][:length]
        seen: dict[int, int] = {}   # person -> position of the last name after their latest full mention
        r = len(rows)
        for i in range(length - 1):
            if slot[i] == first_slot and slot[i + 1] == last_slot and person[i + 1] == person[i]:
                if int(person[i]) in seen:
                    repeat.append((r, i, seen[int(person[i])]))
                else:
                    first.append((r, i))
                seen[int(person[i])] = i + 1
        rows.append(d.ids[:length])
    if len(rows) < n_docs:
        raise ValueError(f"only {len(rows)} documents of {length} tokens or more; pass more, or a smaller length")
    return NameMentions(torch.from_numpy(np.stack(rows)), torch.tensor(repeat), torch.tensor(first))


def attention_to_previous_mention(patterns: Tensor, mentions: NameMentions) -> Tensor:
    """Each head's mean attention from a repeated first name to the last name that followed its previous
    mention. patterns: [layer, docs, head, q, k] -> [layer, head]"""
    d, q, k = mentions.repeat.T
    return patterns.permute(1, 3, 4, 0, 2)[d, q, k].mean(0)        # [m, layer, head] -> [layer, head]


def next_token_loss_at(loss: Tensor, where: Tensor) -> Tensor:
    """Loss of predicting the token after each (doc, position). loss: [docs, length - 1] -> [m]"""
    return loss[where[:, 0], where[:, 1]]


def induction_attention_from(patterns: Tensor, tokens: Tensor, n: int, query_ids: Tensor) -> Tensor:
    """Each head's mean attention on the induction stripe, from the second-copy queries whose token is in
    ``query_ids`` (e.g. the first names). patterns: [layer, batch, head, q, k] of ``tokens`` [batch, 1 + 2n]
    (BOS, then n tokens twice)   returns: [layer, head]"""
    q = torch.arange(n + 1, 2 * n + 1)
    chosen = torch.isin(tokens[:, q], torch.as_tensor(query_ids))                    # [batch, n]
    stripe = patterns[..., q, q - (n - 1)]                                             # [layer, batch, head, n]
    return stripe.permute(1, 3, 0, 2)[chosen].mean(0)                                  # [m, layer, head] -> [layer, head]
