"""The prompts chapter 01 studies: one fact-recall prompt per person of the world, and held-out text.

For a model trained on the world (the zoo), every person gets the prompt
``"The sport that {first} {last} plays is"`` and the answer is their sport. For
any other model (GPT-2 small, say) a small built-in list of famous athletes
takes its place, so the same notebook runs on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..zoo.world import BOS_ID, SLOTS, SPORTS, TOKEN_ID, VOCAB, World

TEMPLATE = "The sport that {name} plays is"
HELD_OUT_FIRST_DOC = 10**9  # the zoo's held-out documents (beyond any training run)

# For models that do not speak the world's language: (athlete, sport), answered with " sport".
FAMOUS_ATHLETES = (
    ("Michael Jordan", "basketball"), ("LeBron James", "basketball"), ("Kobe Bryant", "basketball"),
    ("Tiger Woods", "golf"), ("Jack Nicklaus", "golf"), ("Serena Williams", "tennis"),
    ("Roger Federer", "tennis"), ("Rafael Nadal", "tennis"), ("Babe Ruth", "baseball"),
    ("Derek Jeter", "baseball"), ("Tom Brady", "football"), ("Peyton Manning", "football"),
    ("Wayne Gretzky", "hockey"), ("Sidney Crosby", "hockey"), ("Sachin Tendulkar", "cricket"),
    ("Jonny Wilkinson", "rugby"),
)


def athlete_words() -> list[str]:
    """The words of :data:`FAMOUS_ATHLETES`' names (for a stand-in hub tokenizer that knows them)."""
    return sorted({w for name, _ in FAMOUS_ATHLETES for w in name.split()})


@dataclass
class FactPrompts:
    """Prompts whose next token is a sport. tokens: [n, pos]; answers: token ids [n];
    sports: the candidate answers' token ids [k]; labels: index into ``sports`` [n]."""

    tokens: Tensor
    answers: Tensor
    sports: Tensor
    labels: Tensor
    names: list[str]
    sport_names: list[str]


def speaks_world(model: Any) -> bool:
    """Whether ``model`` uses the world's tokenizer (the zoo's models do)."""
    tok = model.tokenizer
    return len(tok) == len(VOCAB) and tok.convert_tokens_to_ids("tennis") == TOKEN_ID["tennis"]


def world_prompt_tokens(names: list[str], template: str = TEMPLATE) -> Tensor:
    """The template filled with each name, in the world's tokens (one per word), ``<bos>`` first. -> [n, pos]"""
    return torch.tensor([[TOKEN_ID[w] for w in ["<bos>", *template.format(name=name).split()]] for name in names])


def world_fact_prompts(world: World | None = None, template: str = TEMPLATE) -> FactPrompts:
    """One prompt per person of the world, answered by their sport."""
    world = world or World(0)
    people = world.kb.people
    sports = torch.tensor([TOKEN_ID[s] for s in SPORTS])
    labels = torch.tensor([p.sport for p in people])
    return FactPrompts(world_prompt_tokens([p.name for p in people], template), sports[labels], sports,
                       labels, [p.name for p in people], list(SPORTS))


def hub_fact_prompts(model: Any, template: str = TEMPLATE) -> FactPrompts:
    """The famous-athlete prompts, in the model's own tokens; only those of the most common length are kept
    (so they stack into one batch) and only sports that are a single token."""
    sport_names = sorted({s for _, s in FAMOUS_ATHLETES})
    sport_ids = {s: model.to_tokens(" " + s, prepend_bos=False)[0] for s in sport_names}
    sport_names = [s for s in sport_names if len(sport_ids[s]) == 1]
    rows = [(model.to_tokens(template.format(name=n))[0], s, n) for n, s in FAMOUS_ATHLETES if s in sport_names]
    length = max(set(len(t) for t, _, _ in rows), key=lambda L: sum(len(t) == L for t, _, _ in rows))
    rows = [r for r in rows if len(r[0]) == length]
    sports = torch.stack([sport_ids[s][0] for s in sport_names])
    labels = torch.tensor([sport_names.index(s) for _, s, _ in rows])
    return FactPrompts(torch.stack([t for t, _, _ in rows]).cpu(), sports[labels], sports, labels,
                       [n for _, _, n in rows], sport_names)


def fact_prompts(model: Any) -> FactPrompts:
    """The world's 400 prompts for a zoo model, the built-in famous athletes for any other."""
    return world_fact_prompts() if speaks_world(model) else hub_fact_prompts(model)


@dataclass
class TextSample:
    """Equal-length windows of held-out world text, for measuring what the last position depends on.

    tokens: [n, length] (each starts with BOS); slots: the world's slot label of the last token [n]."""

    tokens: Tensor
    slots: Tensor

    def slot_names(self) -> list[str]:
        return [SLOTS[i] for i in self.slots.tolist()]


def world_of(model_name: str) -> World:
    """The world (seed and mix of document kinds) a zoo model was trained on."""
    from ..zoo.training import RECIPES

    recipe = RECIPES[model_name]
    return World(recipe.world_seed, recipe.mix)


def held_out_windows(n: int = 256, length: int = 16, world: World | None = None, seed: int = 0) -> TextSample:
    """``n`` windows ``[BOS, w_1 .. w_{length-1}]`` from the starts of held-out documents, with labels."""
    world = world or world_of("gelu-3l-facts")
    rng = np.random.default_rng(seed)
    rows, slots, doc = [], [], HELD_OUT_FIRST_DOC + int(rng.integers(10**6))
    while len(rows) < n:
        d = world.document(doc)
        doc += 1
        if len(d.words) >= length:
            rows.append(d.ids[:length])
            slots.append(int(d.labels["slot"][length - 1]))
    return TextSample(torch.from_numpy(np.stack(rows)), torch.tensor(slots))


def held_out_text(model: Any, n_rows: int = 16, n_ctx: int = 64) -> Tensor:
    """Rows of held-out world text in the model's own tokens, each starting with BOS. -> [n_rows, n_ctx]

    A zoo model gets the zoo's packed held-out documents; any other model the same documents'
    text through its own tokenizer.
    """
    from ..zoo.world import token_rows

    world = world_of("gelu-3l-facts")
    if speaks_world(model):
        return torch.from_numpy(token_rows(world, n_rows, n_ctx, HELD_OUT_FIRST_DOC)[0])
    needed, ids, doc = n_rows * (n_ctx - 1), [], HELD_OUT_FIRST_DOC
    while len(ids) < needed:   # the tokenizer itself: model.to_tokens would truncate to the context length
        ids += model.tokenizer.encode(" " + world.document(doc).text, add_special_tokens=False)
        doc += 1
    body = torch.tensor(ids[:needed]).reshape(n_rows, n_ctx - 1)
    return torch.cat([torch.full((n_rows, 1), bos_id(model)), body], dim=1)


def bos_id(model: Any) -> int:
    """The token the model's prompts start with."""
    return BOS_ID if speaks_world(model) else int(model.tokenizer.bos_token_id)
