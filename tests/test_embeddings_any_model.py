"""The puzzles' library on a model with its own tokenizer (issue 25): world words are read in the model's own
token ids, and forward passes send few enough rows that a hub vocabulary's logits stay small."""

from __future__ import annotations

import pytest
import torch

import mi_course.device

from mi_course import models
from mi_course.embeddings import position, vectors
from mi_course.seed import stream
from mi_course.zoo import world


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """A tiny random GPT-2 whose tokenizer numbers the world's words in reverse (tests/conftest.py)."""
    from conftest import make_tiny_gpt2

    folder = tmp_path_factory.mktemp("foreign-gpt2")
    make_tiny_gpt2(folder, n_positions=128, foreign_vocabulary=True)
    return models.load(str(folder), device="cpu")


def test_world_words_are_read_in_the_models_own_ids(foreign):
    ids = torch.tensor([world.TOKEN_ID["Paris"], world.TOKEN_ID["Kenya"], world.BOS_ID])
    own = vectors.model_token_ids(foreign, ids)
    assert own.tolist() == [len(world.VOCAB) - 1 - i for i in ids.tolist()]          # reversed numbering
    assert own[-1] == foreign.tokenizer.bos_token_id
    assert torch.equal(vectors.word_vectors(foreign, ids), foreign.W_E.detach()[own])
    assert torch.equal(vectors.word_vectors(foreign, ids, "unembed"), foreign.W_U.detach().T[own])
    facts = models.load("gelu-3l-facts", device="cpu")                                 # a zoo model: the same ids
    assert torch.equal(vectors.model_token_ids(facts, ids), ids)


def test_residuals_stop_early_and_match_a_full_pass(foreign):
    data = position.random_sentences(6, n_ctx=32, seed=0)
    own_tokens = vectors.model_token_ids(foreign, data.tokens)
    hooks = position.residual_hooks(foreign.cfg.n_layers)
    with torch.no_grad():
        _, cache = foreign.run_with_cache(own_tokens, names_filter=lambda name: name in hooks)
    acts = position.collect_residuals(foreign, data.tokens, hooks)
    assert list(acts) == hooks and all(torch.equal(acts[h], cache[h].expand_as(acts[h])) for h in hooks)
    V = vectors.word_vectors(foreign, torch.arange(20), "blocks.1.hook_resid_post")
    with torch.no_grad():
        _, cache = foreign.run_with_cache(vectors.model_token_ids(foreign, torch.stack(
            [torch.full((20,), world.BOS_ID), torch.arange(20)], dim=1)))
    assert torch.equal(V, cache["blocks.1.hook_resid_post"][:, 1])
    fired = []                                      # nothing after the last hook asked for was computed
    handle = foreign.ln_final.register_forward_hook(lambda *args: fired.append(1))
    position.collect_residuals(foreign, data.tokens, ["blocks.0.hook_resid_post"])
    foreign(own_tokens[:1])
    handle.remove()
    assert fired == [1]                             # only the full pass reached ln_final


def test_output_probabilities_in_chunks_are_the_models_own(foreign, monkeypatch):
    data = position.random_sentences(6, n_ctx=32, seed=0)
    own_tokens = vectors.model_token_ids(foreign, data.tokens)          # output_probabilities takes the model's tokens
    x_whole, p_whole = vectors.output_probabilities(foreign, own_tokens, torch.tensor([3, 7]))
    monkeypatch.setattr(mi_course.device, "LOGITS_BUDGET", 2 * 32 * foreign.cfg.d_vocab)   # two rows of 32 per pass
    assert mi_course.device.rows_that_fit(foreign, 32) == 2
    x, p = vectors.output_probabilities(foreign, own_tokens, torch.tensor([3, 7]))
    assert torch.allclose(x, x_whole, atol=1e-5) and torch.allclose(p, p_whole, atol=1e-7)
    with torch.no_grad():
        full = foreign(own_tokens[:1]).softmax(-1)[0]                                   # [n_ctx, d_vocab]
    own = vectors.model_token_ids(foreign, torch.tensor([3, 7]))                      # the words' own ids
    assert torch.allclose(p[:32], full[:, own], atol=1e-7)


def test_collect_residuals_reads_world_ids_in_the_models_tokens(foreign):
    tokens = torch.randint(len(world.VOCAB), (2, 16), generator=stream(0, "test.any_model"))
    acts = position.collect_residuals(foreign, tokens, ["hook_embed"])
    assert torch.allclose(acts["hook_embed"], foreign.W_E.detach()[vectors.model_token_ids(foreign, tokens)])
