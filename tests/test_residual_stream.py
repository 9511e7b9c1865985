"""Chapter 01's library, recomputed from the shipped weights, checked against TransformerLens,
and run on other shapes of model (the tiny local GPT-2, an attention-only model) so that nothing
assumes gelu-3l-facts's vocabulary, sizes or tied embeddings."""

from __future__ import annotations

import pytest
import torch

from mi_course import checks
from mi_course.residual_stream import attribution as at
from mi_course.residual_stream import decompose as dc
from mi_course.residual_stream import local, memory, prompts
from mi_course.residual_stream import weights as rw
from mi_course.residual_stream.widget import (SORTS, explain, lens_top_table, people_order, people_table,
                                              residual_explorer)
from mi_course.zoo import models


@pytest.fixture(scope="module", autouse=True)
def no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def facts():
    return models.load("gelu-3l-facts", device="cpu")


@pytest.fixture(scope="module")
def facts_run(facts):
    P = prompts.fact_prompts(facts)
    logits, cache = facts.run_with_cache(P.tokens)
    return P, logits, cache


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2):
    return models.load(str(tiny_gpt2[0]), device="cpu")


@pytest.fixture(scope="module")
def text(facts):
    return prompts.held_out_text(facts, 16)


def _logit_diff_parts(model, P, logits, cache):
    comps = dc.decompose_residual(cache, model.W_O, model.b_O)[:, :, -1]
    direction = at.logit_diff_direction(model.W_U, P.answers, P.sports)
    dla = at.direct_logit_attribution(comps, cache["ln_final.hook_scale"][:, -1], direction)
    bias = at.logit_diff(model.b_U.expand(len(P.answers), -1), P.answers, P.sports)
    return dla, bias, at.logit_diff(logits[:, -1], P.answers, P.sports)


# --- the published results, from the shipped weights ----------------------------------------

def test_every_person_gets_a_prompt_answered_by_their_sport(facts_run):
    P, logits, _ = facts_run
    assert P.tokens.shape == (400, 8) and len(set(P.names)) == 400
    assert (P.sports[P.labels] == P.answers).all()
    assert facts_run[0].names.index("Nora Taylor") >= 0


def test_decomposition_sums_to_the_residual_and_matches_transformer_lens(facts, facts_run):
    _, _, cache = facts_run
    comps = dc.decompose_residual(cache, facts.W_O, facts.b_O)
    labels = dc.component_labels(3, 4)
    assert comps.shape == (len(labels), 400, 8, 128)
    torch.testing.assert_close(comps.sum(0), cache["blocks.2.hook_resid_post"], atol=1e-4, rtol=0)
    theirs, their_labels = cache.get_full_resid_decomposition(layer=-1, pos_slice=-1, return_labels=True,
                                                              expand_neurons=False)
    rename = {"pos_embed": "pos", "bias": "attn bias", **{f"{l}_mlp_out": f"MLP{l}" for l in range(3)}}
    for their, label in zip(theirs, their_labels):
        torch.testing.assert_close(comps[labels.index(rename.get(label, label)), :, -1], their, atol=1e-4, rtol=0)


def test_embedding_by_hand_matches_the_hooks(facts, facts_run):
    P, _, cache = facts_run
    torch.testing.assert_close(dc.embed(P.tokens, facts.W_E, facts.W_pos),
                               cache["hook_embed"] + cache["hook_pos_embed"], atol=1e-6, rtol=0)


def test_dla_sums_exactly_to_the_logit_difference_and_the_mlps_carry_the_answer(facts, facts_run):
    P, logits, cache = facts_run
    dla, bias, diff = _logit_diff_parts(facts, P, logits, cache)
    torch.testing.assert_close(dla.sum(0) + bias, diff, atol=1e-4, rtol=0)
    labels = dc.component_labels(3, 4)
    mean = dla.mean(1)
    mlps = [labels.index(f"MLP{l}") for l in range(3)]
    assert mean[mlps].sum() > 0.8 * diff.mean()          # what the chapter's prose says
    assert labels[int(mean.argmax())] == "MLP2"
    # TransformerLens's LayerNorm-on-a-stack agrees with dividing by the frozen scale
    comps = dc.decompose_residual(cache, facts.W_O, facts.b_O)[:, :, -1]
    ln_stack = cache.apply_ln_to_stack(comps, layer=-1, pos_slice=-1)
    torch.testing.assert_close(ln_stack, comps / cache["ln_final.hook_scale"][:, -1], atol=1e-5, rtol=1e-4)


def test_mean_dla_matches_the_decomposition_and_names_the_strongest_head(facts, facts_run):
    P, logits, cache = facts_run
    dla, _, _ = _logit_diff_parts(facts, P, logits, cache)
    means = at.mean_dla(facts, P.tokens, P.answers, P.sports)
    assert list(means) == dc.component_labels(3, 4)
    torch.testing.assert_close(torch.tensor(list(means.values())), dla.mean(1), atol=1e-5, rtol=1e-5)
    kinds = at.dla_by_kind(dla, list(means))
    assert max(kinds, key=kinds.get) == "the MLPs" and abs(sum(kinds.values()) - sum(means.values())) < 1e-4


def test_the_strongest_head_check_recomputes_the_truth_from_the_model(facts, facts_run, gpt2):
    P = facts_run[0]
    means = at.mean_dla(facts, P.tokens, P.answers, P.sports)
    heads = sorted((k for k in means if k.startswith("L")), key=means.get)
    best, other = heads[-1], heads[0]
    assert checks.run("01.strongest_head", lambda: (facts, P, best.lower())).passed
    wrong = checks.run("01.strongest_head", lambda: (facts, P, other))
    assert not wrong.passed and f"{means[other]:+.3f}" in wrong.message and best not in wrong.message
    for answer, phrase in [("MLP2", "Name one attention head"), ("L7H0", "no head L7H0"), (3, "Name one")]:
        result = checks.run("01.strongest_head", lambda: (facts, P, answer))
        assert not result.passed and phrase in result.message, result.message
    assert "Return `model, P, answer`" in checks.run("01.strongest_head", lambda: ("MLP2",)).message
    # on another model the truth is that model's own strongest head, not the zoo model's
    Pg = prompts.fact_prompts(gpt2)
    g = at.mean_dla(gpt2, Pg.tokens, Pg.answers, Pg.sports)
    g_best = max((k for k in g if k.startswith("L")), key=g.get)
    assert checks.run("01.strongest_head", lambda: (gpt2, Pg, g_best)).passed


def test_logit_lens_puts_the_right_sport_first_at_the_last_layer(facts, facts_run):
    P, logits, cache = facts_run
    acc = dc.accumulated_residual(cache, 3)[:, :, -1]
    theirs = cache.accumulated_resid(layer=-1, pos_slice=-1, apply_ln=False)
    torch.testing.assert_close(acc, theirs, atol=1e-5, rtol=0)
    lens = at.logit_lens(acc, facts.W_U, facts.b_U)
    torch.testing.assert_close(lens[-1], logits[:, -1], atol=1e-3, rtol=0)
    top1 = (at.answer_rank(lens, P.answers) == 0).float().mean(1)
    assert top1[-1] >= 0.95
    assert top1[0] < top1[-1]


def test_our_folding_and_centring_reproduce_transformer_lens_processing(facts):
    raw = rw.weights_of(models.load("gelu-3l-facts", device="cpu", processed=False))
    ours = rw.center_unembed(rw.fold_value_biases(rw.center_writing_weights(rw.fold_layernorm(raw))))
    theirs = rw.weights_of(facts)
    assert set(ours) == set(theirs)
    for k in theirs:
        torch.testing.assert_close(ours[k], theirs[k], atol=1e-4, rtol=0, msg=k)


def test_rotation_keeps_logits_and_neurons_changes_kurtosis(facts, text):
    w = rw.weights_of(facts)
    clean = rw.run(w, text)
    torch.testing.assert_close(clean["logits"], facts(text), atol=1e-3, rtol=0)
    R = rw.random_rotation(128, torch.Generator().manual_seed(0))
    rotated = rw.run(rw.rotate_residual(w, R), text)
    assert (rotated["logits"] - clean["logits"]).abs().max() < 1e-3
    assert (rotated["neurons"] - clean["neurons"]).abs().max() < 1e-3
    before, after = rw.kurtosis(clean["resid"]).mean((1, 2)), rw.kurtosis(rotated["resid"]).mean((1, 2))
    assert (before[1:] - after[1:]).abs().min() > 1.0      # after every block, the statistic moved
    assert (after - 3).abs().max() < 0.5                   # rotated coordinates look Gaussian
    # without folding, the same rotation changes the model
    raw = rw.weights_of(models.load("gelu-3l-facts", device="cpu", processed=False))
    broken = rw.forward(rw.rotate_residual(raw, R), text).log_softmax(-1)
    assert (broken - clean["logits"].log_softmax(-1)).abs().max() > 1.0


def test_rotating_the_neurons_breaks_the_model(facts, text):
    w = rw.weights_of(facts)

    def loss(logits):
        return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), text[:, 1:].flatten()).item()

    clean = loss(rw.forward(w, text))
    gen = torch.Generator().manual_seed(0)
    for layer in range(3):
        rotated = loss(rw.forward(rw.rotate_neurons(w, layer, rw.random_orthogonal(512, gen)), text))
        assert rotated > clean + 0.5, (layer, clean, rotated)
    identity = loss(rw.forward(rw.rotate_neurons(w, 1, torch.eye(512)), text))
    assert abs(identity - clean) < 1e-5


def test_null_direction_is_orthogonal_to_the_columns_and_to_ones():
    W = torch.randn(24, 6, generator=torch.Generator().manual_seed(5))
    v = dc.null_direction(W, torch.Generator().manual_seed(6))
    assert v.shape == (24,) and abs(float(v.norm()) - 1) < 1e-5
    assert (W.T @ v).abs().max() < 1e-5 and abs(float(v.sum())) < 1e-5
    other = dc.null_direction(W, torch.Generator().manual_seed(7))
    assert (v - other).abs().max() > 0.1                       # random, not a fixed vector


def test_a_head_reads_through_a_projection_and_an_mlp_sees_everything(facts, text):
    layer, head = 1, 2
    W_V = facts.W_V[layer, head]
    length = 10.0
    v = dc.null_direction(W_V, torch.Generator().manual_seed(3))
    blind = dc.null_space_test(facts, text, length * v, layer, head)
    assert blind["values_same_scale"].shape == text.shape
    assert blind["values_same_scale"].max() < 1e-4             # unseen, once the LayerNorm's scale is undone
    assert blind["values"].median() > 1e-2                      # ... but the scale itself moves
    assert blind["mlp_pre"].min() > 0.01                        # the MLP reads it
    # the control: a direction inside W_V's column space does change the values
    seen = W_V[:, 0] - W_V[:, 0].mean()
    moved = dc.null_space_test(facts, text, length * seen / seen.norm(), layer, head)
    assert moved["values_same_scale"].median() > 0.01


def test_null_space_test_on_an_attention_only_model():
    model = models.load("attn-only-2l", device="cpu")
    tokens = prompts.held_out_text(model, 4, 32)
    out = dc.null_space_test(model, tokens, 5 * dc.null_direction(model.W_V[0, 1]), layer=0, head=1)
    assert "mlp_pre" not in out and out["values_same_scale"].max() < 1e-4


def test_erasing_neurons_are_weak_but_beyond_initialisation(facts, text):
    cos = torch.stack([memory.in_out_cosine(facts.W_in[l], facts.W_out[l]) for l in range(3)])
    init = memory.untrained_weights(facts, "gelu-3l-facts")
    cos0 = torch.stack([memory.in_out_cosine(init["W_in"][l], init["W_out"][l]) for l in range(3)])
    assert cos.min() > -0.7 and cos[1].min() < -0.6      # the numbers the chapter quotes
    assert cos[1].min() < cos0.min() - 0.2
    layer, neuron = divmod(int(cos.argmin()), 512)
    _, cache = facts.run_with_cache(text)
    acts = cache[f"blocks.{layer}.mlp.hook_post"][..., neuron].flatten()
    top = acts.topk(50).indices
    e = memory.erasure(cache[f"blocks.{layer}.hook_resid_mid"].flatten(0, 1)[top], acts[top],
                       facts.W_in[layer][:, neuron], facts.W_out[layer][neuron])
    assert e["written"].median() < 0 < e["before"].median()   # it pushes against what it read
    assert 0 < e["erased"].median() < 1


def test_early_layers_process_locally(facts):
    windows = prompts.held_out_windows(128)
    assert windows.tokens.shape == (128, 16) and (windows.tokens[:, 0] == prompts.BOS_ID).all()
    profile = local.local_processing(facts, windows.tokens, [1, 5, 10], prompts.BOS_ID)
    assert profile.shape == (3, 3, 128)
    assert profile[1, 0].mean() > profile[1, -1].mean()      # at k = 5, layer 0 above the last layer
    assert profile[2, 0].mean() > profile[0, 0].mean()       # more context kept, more similar
    full = local.last_position_resid(facts, windows.tokens)
    short, positions = local.truncate(windows.tokens, 15, prompts.BOS_ID)
    assert torch.equal(short, windows.tokens)                # k = T - 1 keeps everything: identical
    torch.testing.assert_close(local.last_position_resid(facts, short, positions), full)


def test_last_position_resid_stops_before_the_unembedding_and_leaves_no_hook(facts):
    """It equals the cached residual stream at the last position, although the forward pass stops after the
    last block; the model is left as it was (no hook, the same logits)."""
    tokens = prompts.held_out_windows(8).tokens
    before = facts(tokens)
    names = [f"blocks.{layer}.hook_resid_post" for layer in range(facts.cfg.n_layers)]
    _, cache = facts.run_with_cache(tokens, names_filter=names)
    torch.testing.assert_close(local.last_position_resid(facts, tokens), torch.stack([cache[n][:, -1] for n in names]))
    assert not any(module._forward_hooks for module in facts.modules())
    torch.testing.assert_close(facts(tokens), before)


def test_the_widget_function_adds_up(facts, facts_run):
    P = facts_run[0]
    info = explain(facts, P.tokens[3], int(P.answers[3]), P.sports)
    assert info["rank"][-1] == 0 and len(info["dla"]) == len(info["labels"]) == 18
    assert abs(float(info["dla"].sum()) + info["bias"] - info["logit_diff"]) < 1e-4
    free = explain(facts, facts.to_tokens("Anna Smith lives in")[0])
    assert free["rank"][-1] == 0                                # the model's own top prediction
    # the lens's top tokens: after the last block the model's own top prediction leads, with the lens's probability
    assert info["lens_top"][-1][0][0] == info["answer"]
    assert len(info["lens_top"]) == len(info["layer_names"]) and all(len(top) == 3 for top in info["lens_top"])
    assert all(a[1] >= b[1] for top in info["lens_top"] for a, b in zip(top, top[1:]))
    assert abs(info["lens_top"][-1][0][1] - float(info["prob"][-1])) < 1e-5
    html = lens_top_table(info)
    assert html.count("<tr>") == len(info["layer_names"]) + 1 and f"<b>{info['answer']!r}" in html
    box = residual_explorer(facts, P)
    assert len(box.children) == 3


def test_the_widget_sorts_and_filters_people(facts, facts_run):
    P, logits, cache = facts_run
    table = people_table(facts, P)
    dla, _, diff = _logit_diff_parts(facts, P, logits, cache)
    torch.testing.assert_close(table["logit_diff"], diff, atol=1e-4, rtol=0)
    torch.testing.assert_close(table["dla"], dla, atol=1e-4, rtol=0)
    assert table["leader"][P.names.index("Nora Taylor")] == "MLP0"     # the chapter's example
    sport_of = [P.sport_names[j] for j in P.labels.tolist()]
    assert people_order(table, sport_of) == list(range(400))
    rising = people_order(table, sport_of, SORTS[1])
    assert sorted(rising) == list(range(400)) and (diff[rising][1:] >= diff[rising][:-1]).all()
    falling = people_order(table, sport_of, SORTS[2])
    assert sorted(falling) == list(range(400)) and (diff[falling][1:] <= diff[falling][:-1]).all()
    mlp0 = people_order(table, sport_of, leader="MLP0")
    assert 0 < len(mlp0) < 400 and all(table["leader"][i] == "MLP0" for i in mlp0)
    assert all(int(dla[:, i].argmax()) == dc.component_labels(3, 4).index("MLP0") for i in mlp0)
    tennis = people_order(table, sport_of, SORTS[1], leader="MLP2", sport="tennis")
    assert tennis and all(sport_of[i] == "tennis" and table["leader"][i] == "MLP2" for i in tennis)
    assert len(tennis) < sum(s == "tennis" for s in sport_of)


# --- any model: the tiny GPT-2 (hub path) and an attention-only zoo model ---------------------

def test_every_function_runs_on_a_tiny_gpt2(gpt2, tiny_gpt2):
    cfg = gpt2.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.act_fn) == (2, 2, 32, "gelu_new")
    P = prompts.hub_fact_prompts(gpt2)                          # the athletes, in its own tokens
    assert len(P.names) >= 4 and P.tokens.shape[0] == len(P.names)
    logits, cache = gpt2.run_with_cache(P.tokens)
    comps = dc.decompose_residual(cache, gpt2.W_O, gpt2.b_O)
    assert comps.shape[0] == len(dc.component_labels(2, 2))
    torch.testing.assert_close(comps.sum(0), cache["blocks.1.hook_resid_post"], atol=1e-4, rtol=0)
    dla, bias, diff = _logit_diff_parts(gpt2, P, logits, cache)
    torch.testing.assert_close(dla.sum(0) + bias, diff, atol=1e-4, rtol=0)
    lens = at.logit_lens(dc.accumulated_residual(cache, 2)[:, :, -1], gpt2.W_U, gpt2.b_U, cfg.eps)
    torch.testing.assert_close(lens[-1], logits[:, -1], atol=1e-3, rtol=0)
    # the weights-level model: forward, processing, rotation
    w = rw.weights_of(gpt2)
    torch.testing.assert_close(rw.forward(w, P.tokens, cfg.act_fn, cfg.eps), logits, atol=1e-4, rtol=0)
    raw_model = models.load(str(tiny_gpt2[0]), device="cpu", processed=False)
    raw = rw.weights_of(raw_model)
    assert torch.equal(raw["W_E"], raw["W_U"].T)                # GPT-2 ties its embeddings too
    ours = rw.center_unembed(rw.fold_value_biases(rw.center_writing_weights(rw.fold_layernorm(raw))))
    for k in w:
        torch.testing.assert_close(ours[k], w[k], atol=1e-4, rtol=0, msg=k)
    R = rw.random_rotation(32, torch.Generator().manual_seed(1))
    torch.testing.assert_close(rw.forward(rw.rotate_residual(w, R), P.tokens, cfg.act_fn, cfg.eps), logits,
                               atol=1e-3, rtol=0)
    # memory, local processing, the widget function
    init = memory.untrained_weights(gpt2, "tiny-gpt2")          # not a zoo recipe: Gaussian weights
    assert init["W_in"].shape == w["W_in"].shape
    text = prompts.held_out_text(gpt2, 4, 16)
    assert local.local_processing(gpt2, text, [1, 3], prompts.bos_id(gpt2)).shape == (2, 2, 4)
    assert len(explain(gpt2, P.tokens[0])["dla"]) == len(dc.component_labels(2, 2))


def test_attention_only_model_has_no_mlp_components():
    model = models.load("attn-only-2l", device="cpu")
    tokens = prompts.held_out_text(model, 4, 32)
    logits, cache = model.run_with_cache(tokens)
    comps = dc.decompose_residual(cache, model.W_O, model.b_O)
    labels = dc.component_labels(2, model.cfg.n_heads, has_mlp=False)
    assert comps.shape[0] == len(labels) and not any(lab.startswith("MLP") for lab in labels)
    torch.testing.assert_close(comps.sum(0), cache["blocks.1.hook_resid_post"], atol=1e-4, rtol=0)
    w = rw.weights_of(model)
    assert "W_in" not in w
    torch.testing.assert_close(rw.forward(w, tokens), logits, atol=1e-3, rtol=0)
    R = rw.random_rotation(model.cfg.d_model, torch.Generator().manual_seed(2))
    torch.testing.assert_close(rw.forward(rw.rotate_residual(w, R), tokens), logits, atol=1e-3, rtol=0)


def test_random_rotation_fixes_ones_and_is_orthogonal():
    R = rw.random_rotation(16, torch.Generator().manual_seed(0))
    torch.testing.assert_close(R.T @ R, torch.eye(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(R @ torch.ones(16), torch.ones(16), atol=1e-5, rtol=0)
    assert (R - torch.eye(16)).abs().max() > 0.1
    assert torch.equal(R, rw.random_rotation(16, torch.Generator().manual_seed(0)))


def test_top_predictions_in_chunks_are_the_dense_argmax():
    """A hub vocabulary's W_E W_U is taken a chunk of rows at a time: the answer is the dense argmax's."""
    gen = torch.Generator().manual_seed(11)
    x, W_U, b_U = torch.randn(37, 8, generator=gen), torch.randn(8, 50, generator=gen), torch.randn(50, generator=gen)
    dense = (x @ W_U + b_U).argmax(-1)
    assert torch.equal(at.top_predictions(x, W_U, b_U, chunk=5), dense)          # 8 chunks, the last one short
    assert torch.equal(at.top_predictions(x, W_U, chunk=64), (x @ W_U).argmax(-1))
    assert not torch.equal(at.top_predictions(x, W_U, chunk=5), dense)           # the bias matters on this data
    assert at.top_predictions(x[:0], W_U).shape == (0,)


def test_scored_tokens_are_all_words_of_a_small_vocabulary_and_a_seeded_sample_of_a_big_one():
    assert torch.equal(at.scored_tokens(510, seed=0), torch.arange(510))
    big = at.scored_tokens(50_257, seed=0)
    assert len(big) == 2_000 and len(big.unique()) == 2_000 and big.max() < 50_257
    assert torch.equal(big, big.sort().values)
    assert torch.equal(big, at.scored_tokens(50_257, seed=0))
    assert not torch.equal(big, at.scored_tokens(50_257, seed=1))
