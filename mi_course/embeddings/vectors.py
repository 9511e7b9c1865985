"""One vector per word: the embedding, or the residual stream at a layer (puzzles P1 and P2).

The zoo's tokenizer has one token per word, so a word's id is its token id
(:data:`mi_course.zoo.world.TOKEN_ID`). In the residual stream a word needs a context; here it is the
shortest one, ``<bos> word``, and the vector is read at the word's position.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..zoo.world import BOS_ID, TOKEN_ID


def word_ids(words: Sequence[str]) -> Tensor:
    """Token ids of ``words`` (each word is one token in the zoo's vocabulary). -> int64 [n]"""
    return torch.tensor([TOKEN_ID[w] for w in words], dtype=torch.long)


def word_vectors(model, ids: Tensor, where: str = "embed") -> Tensor:
    """The vector of each token id: ``where="embed"`` gives rows of ``W_E``; a hook name such as
    ``"blocks.1.hook_resid_post"`` gives the residual stream there for the prompt ``<bos> word``.

    ids: int64 [n] -> [n, d_model]
    """
    if where == "embed":
        return model.W_E.detach()[ids.to(model.W_E.device)]
    prompts = torch.stack([torch.full_like(ids, BOS_ID), ids], dim=1).to(model.W_E.device)  # [n, 2]
    with torch.no_grad():
        _, cache = model.run_with_cache(prompts, names_filter=lambda name: name == where)
    return cache[where][:, 1]
