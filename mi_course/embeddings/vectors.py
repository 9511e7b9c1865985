"""One vector per word: the embedding, the unembedding, or the residual stream at a layer (puzzles P1 and P2).

The zoo's tokenizer has one token per word, so a word's id is its token id
(:data:`mi_course.zoo.world.TOKEN_ID`). The puzzles name words by these *world ids* on any model: a model
with its own tokenizer (a hub model, a local folder) gets each world word translated to its own token id
(:func:`model_token_ids`). In the residual stream a word needs a context; here it is the shortest one,
``<bos> word``, and the vector is read at the word's position.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..device import rows_that_fit
from ..residual_stream.local import activations  # noqa: F401 (re-exported for the puzzles)
from ..residual_stream.prompts import bos_id, speaks_world
from ..zoo.world import BOS_ID, TOKEN_ID, VOCAB

def word_ids(words: Sequence[str]) -> Tensor:
    """World ids of ``words`` (each word is one token in the zoo's vocabulary). -> int64 [n]"""
    return torch.tensor([TOKEN_ID[w] for w in words], dtype=torch.long)


def _own_token(model: Any, word: str) -> int:
    """The model's token for one world word: the word as a single token, after a space (as in running text)
    or without one; a word the tokenizer splits is represented by its first token after a space."""
    forms = [model.tokenizer.encode(form, add_special_tokens=False) for form in (" " + word, word)]
    return next((ids[0] for ids in forms if len(ids) == 1), forms[0][0])


def model_token_ids(model: Any, ids: Tensor) -> Tensor:
    """The model's own token ids of world ids, any shape: the same ids on a zoo model; on a model with its own
    tokenizer each world word's token (see :func:`_own_token`), and ``<bos>`` its first token. -> int64, ids' shape"""
    if speaks_world(model):
        return ids
    table = torch.tensor([bos_id(model) if i == BOS_ID else _own_token(model, word) for i, word in enumerate(VOCAB)])
    return table[ids.cpu()]


def word_vectors(model: Any, ids: Tensor, where: str = "embed") -> Tensor:
    """The vector of each world word: ``where="embed"`` gives its row of ``W_E``, ``"unembed"`` its column of
    ``W_U``; a hook name such as ``"blocks.1.hook_resid_post"`` gives the residual stream there for the
    prompt ``<bos> word``.

    ids: int64 [n] world ids -> [n, d_model]
    """
    own = model_token_ids(model, ids)
    if where in ("embed", "unembed"):
        W = model.W_E.detach() if where == "embed" else model.W_U.detach().T      # [d_vocab, d_model]
        return W[own.to(W.device)]
    prompts = torch.stack([torch.full_like(own, bos_id(model)), own], dim=1).to(model.W_E.device)  # [n, 2]
    return activations(model, prompts, [where])[where][:, 1]


def output_probabilities(model: Any, tokens: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
    """The final residual stream (after ``ln_final``) at every position of ``tokens``, and the probability the
    model gives each of the world words ``ids`` as the next token there. Rows go through the model a few at a
    time (:func:`mi_course.device.rows_that_fit`): logits for a big vocabulary are never held for the whole batch.

    tokens: [rows, n_ctx] in the model's own tokens; ids: int64 [n] world ids
    -> (x [rows * n_ctx, d_model], p [rows * n_ctx, n])
    """
    own = model_token_ids(model, ids)
    xs, ps = [], []
    with torch.no_grad():
        for chunk in tokens.to(model.W_E.device).split(rows_that_fit(model, tokens.shape[1])):
            logits, cache = model.run_with_cache(chunk, names_filter=lambda name: name == "ln_final.hook_out")
            xs.append(cache["ln_final.hook_out"].flatten(0, 1).cpu())
            ps.append(logits.softmax(-1)[..., own.to(logits.device)].flatten(0, 1).cpu())
    return torch.cat(xs), torch.cat(ps)
