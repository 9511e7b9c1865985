"""Chapter 04's results recomputed from the shipped weights and checkpoints, its scores checked against
TransformerLens's head_detector, its offline circuitsvis view, and every function on a tiny GPT-2."""

from __future__ import annotations

import urllib.request

import pytest
import torch

import mi_course.device

from mi_course.circuits.factored import ov_matrix
from mi_course.induction import circuit, exercises, head_scores as hs, natural, phases, view
from mi_course.induction.widget import checkpoint_explorer, scores_at
from mi_course.residual_stream import prompts
from mi_course.zoo import models
from mi_course.zoo import world as W
from mi_course.zoo.training import RECIPES, held_out_tokens

N = 50


@pytest.fixture(scope="module", autouse=True)
def no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def model():
    return models.load("attn-only-2l", device="cpu")


@pytest.fixture(scope="module")
def repeated():
    return hs.repeated_random_tokens(torch.as_tensor(W.used_token_ids()), N, 16, bos_id=W.BOS_ID, seed=0)


@pytest.fixture(scope="module")
def patterns(model, repeated):
    return hs.attention_patterns(model, repeated)


def test_the_circuit_heads_and_what_ablating_them_does(model, repeated, patterns):
    assert hs.prev_token_scores(patterns)[0, 2] > 0.4
    ind = hs.induction_scores(patterns, N)
    assert ind[1, 0] > 0.4 and ind[1, 1] > 0.4
    assert hs.label_heads(hs.prev_token_scores(patterns), ind) == {"previous_token": {"L0H2"}, "induction": {"L1H0", "L1H1"}}
    first, second = hs.copy_losses(hs.per_token_loss(model, repeated), N)
    assert second < 0.25 * first
    ablated = hs.copy_losses(hs.per_token_loss(model, repeated, hs.head_ablation_hooks([(1, 0), (1, 1)])), N)[1]
    assert ablated > second + 5
    # the exercise's hooks ablate exactly what the library's do, on the real model
    mine = hs.copy_losses(hs.per_token_loss(model, repeated, exercises.ablation_hooks([(1, 0), (1, 1)])), N)[1]
    assert mine == pytest.approx(ablated, abs=1e-4)
    _, cache = model.run_with_cache(repeated[:4], names_filter=lambda name: name == "blocks.1.attn.hook_z")
    z = cache["blocks.1.attn.hook_z"]
    mean = z[:, :, 1].mean(dim=(0, 1))
    ours = hs.per_token_loss(model, repeated[:4], exercises.ablation_hooks([(1, 1)], {(1, 1): mean}))
    theirs = hs.per_token_loss(model, repeated[:4], hs.head_ablation_hooks([(1, 1)], mean_over=z))
    torch.testing.assert_close(ours, theirs)


def test_scores_agree_with_transformer_lens_head_detector(model):
    """Our scores on one sequence, rescaled to head_detector's normalisation (it averages over every query)."""
    from transformer_lens import head_detector

    n = 20
    tokens = hs.repeated_random_tokens(torch.as_tensor(W.used_token_ids()), n, 1, bos_id=W.BOS_ID, seed=3)
    text = model.to_string(tokens[0, 1:])
    assert torch.equal(model.to_tokens(text).cpu(), tokens)          # the same tokens reach head_detector
    seq = tokens.shape[1]
    p = hs.attention_patterns(model, tokens)
    q = torch.arange(seq)

    def detector(mask: torch.Tensor) -> torch.Tensor:
        return head_detector.detect_head(model, text, mask.float(), exclude_bos=False, exclude_current_token=False,
                                         error_measure="mul")

    prev = torch.zeros(seq, seq)
    prev[q[1:], q[1:] - 1] = 1
    torch.testing.assert_close(hs.prev_token_scores(p) * (seq - 1) / seq, detector(prev), atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(hs.current_token_scores(p), detector(torch.eye(seq)), atol=1e-4, rtol=1e-3)
    first = torch.zeros(seq, seq)
    first[1:, 0] = 1
    torch.testing.assert_close(hs.first_token_scores(p) * (seq - 1) / seq, detector(first), atol=1e-4, rtol=1e-3)
    ind = torch.zeros(seq, seq)
    qs = torch.arange(n + 1, 2 * n + 1)
    ind[qs, qs - (n - 1)] = 1
    torch.testing.assert_close(hs.induction_scores(p, n) * n / seq, detector(ind), atol=1e-4, rtol=1e-3)
    # and TL's own induction pattern finds the same heads
    theirs = head_detector.detect_head(model, text, "induction_head")
    assert set((theirs > 0.3).nonzero().flatten().tolist()) and theirs[1, :2].min() > theirs[0].max()


def test_checkpoints_show_the_phase_change_and_one_layer_has_no_induction_head(repeated):
    steps = models.checkpoints("attn-only-2l")
    first = hs.induction_scores(hs.attention_patterns(models.load("attn-only-2l", checkpoint=steps[0]), repeated[:8]), N)
    last = hs.induction_scores(hs.attention_patterns(models.load("attn-only-2l", checkpoint=steps[-1]), repeated[:8]), N)
    assert first.max() < 0.1 < 0.4 < last[-1].max()
    one = models.load("attn-only-1l")
    assert hs.induction_scores(hs.attention_patterns(one, repeated), N).max() < 0.2
    crossed = exercises.crossing_step([steps[0], steps[-1]], [first[-1].max(), last[-1].max()])
    assert steps[0] < crossed < steps[-1]


def test_in_context_learning_score_is_negative(model):
    loss = hs.per_token_loss(model, held_out_tokens(RECIPES["attn-only-2l"], 512))
    assert phases.in_context_learning_score(loss) < 0
    assert loss.shape == (512, 127)


def test_the_circuit_from_the_weights(model):
    from mi_course.circuits.full_circuits import positional_qk_circuit

    assert circuit.prev_token_offset_share(positional_qk_circuit(model, 0, 2, n_pos=60)) > 0.9
    used = torch.as_tensor(W.used_token_ids())
    for h in (0, 1):
        through_prev = circuit.k_composition_circuit(model.W_E[used], model.W_Q[1, h], model.W_K[1, h], ov_matrix(model, 0, 2))
        through_other = circuit.k_composition_circuit(model.W_E[used], model.W_Q[1, h], model.W_K[1, h], ov_matrix(model, 0, 3))
        assert circuit.diagonal_z_score(through_prev) > 1.0 > circuit.diagonal_z_score(through_other)
    M = torch.eye(5) * 3 + torch.rand(5, 5, generator=torch.Generator().manual_seed(0))
    assert circuit.diagonal_z_score(M) > circuit.diagonal_z_score(M.flip(0))


def test_induction_on_repeated_names_in_stories(model):
    mentions = natural.name_mentions(W.World(0).documents(2000, start=10**9, kind="story"),
                                     W.SLOTS.index("first_name"), W.SLOTS.index("last_name"), 64)
    assert len(mentions.repeat) > 50 and len(mentions.first) > 50
    d, q, k = mentions.repeat[0]
    assert mentions.tokens[d, q] == mentions.tokens[d, k - 1] and mentions.tokens[d, q + 1] == mentions.tokens[d, k]
    attention = natural.attention_to_previous_mention(hs.attention_patterns(model, mentions.tokens), mentions)
    assert attention.shape == (2, 4) and attention[1, 1] > 0.4
    clean = hs.per_token_loss(model, mentions.tokens)
    ablated = hs.per_token_loss(model, mentions.tokens, hs.head_ablation_hooks([(1, 0), (1, 1)]))
    repeat = natural.next_token_loss_at(clean, mentions.repeat[:, :2]).mean()
    assert repeat < 0.5 * natural.next_token_loss_at(clean, mentions.first).mean()
    assert natural.next_token_loss_at(ablated, mentions.repeat[:, :2]).mean() > repeat + 1


def test_find_heads_check_recomputes_the_truth(model):
    from mi_course import checks

    right = checks.run("04.find_heads", lambda: (model, {"previous_token": {"L0H2"}, "induction": ["L1H0", (1, 1)]}))
    assert right.passed, right.message
    wrong = checks.run("04.find_heads", lambda: (model, {"previous_token": {"L0H2", "L0H1"}, "induction": {"L1H0"}}))
    assert not wrong.passed and "L1H1" in wrong.message and "L0H1" in wrong.message
    assert not checks.run("04.find_heads", lambda: {"induction": set()}).passed


def test_attention_view_is_offline_and_sends_the_bundle_once(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the view must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    view.reset()
    pattern = torch.rand(2, 5, 5).tril()
    first = view.attention_view(pattern, list("abcde"), ["L0H0", "L0H1"])
    second = view.attention_view(pattern, list("abcde"), ["L0H0", "L0H1"])
    assert len(first._repr_html_()) > 1_000_000 > 100_000 > len(second._repr_html_())
    assert "window.CircuitsVis.render" in second._repr_html_() and "AttentionHeads" in second._repr_html_()
    assert repr(second) == "<attention patterns of 2 heads over 5 tokens>"
    assert first.html.count("</script>") == 2   # the bundle's own closing tags are escaped


def test_every_function_runs_on_a_tiny_gpt2(tiny_gpt2):
    gpt2 = models.load(str(tiny_gpt2[0]), device="cpu")
    tokens = hs.repeated_random_tokens(torch.arange(1, 200), 8, 3, bos_id=prompts.bos_id(gpt2))
    p = hs.attention_patterns(gpt2, tokens)
    assert p.shape == (2, 3, 2, 17, 17)
    for score in (hs.prev_token_scores(p), hs.current_token_scores(p), hs.first_token_scores(p), hs.induction_scores(p, 8)):
        assert score.shape == (2, 2) and ((score >= 0) & (score <= 1)).all()
    loss = hs.per_token_loss(gpt2, tokens)
    torch.testing.assert_close(loss, exercises.per_position_loss(gpt2(tokens), tokens), atol=1e-4, rtol=1e-4)
    assert hs.per_token_loss(gpt2, tokens, hs.head_ablation_hooks([(1, 1)])).shape == loss.shape
    K = circuit.k_composition_circuit(gpt2.W_E[:20], gpt2.W_Q[1, 0], gpt2.W_K[1, 0], ov_matrix(gpt2, 0, 1))
    assert K.shape == (20, 20)
    assert set(exercises.true_heads(gpt2)) == {"previous_token", "induction"}
    at = phases.checkpoint_scores(lambda step: gpt2, [0, 1], tokens, 8, tokens, early=2, late=12)
    assert all(v.shape == (2,) for v in at.values())
    assert scores_at(gpt2, tokens, 8)["induction"].shape == (2, 2)
    assert len(checkpoint_explorer(lambda step: gpt2, [0, 1], tokens, 8, (1, 0)).children) == 2
    assert "AttentionHeads" in view.attention_view(p[0, 0], [str(t) for t in tokens[0].tolist()], ["L0H0", "L0H1"]).html
    mentions = natural.name_mentions(W.World(0).documents(400, start=10**9, kind="story"),
                                     W.SLOTS.index("first_name"), W.SLOTS.index("last_name"), 8)
    assert natural.attention_to_previous_mention(hs.attention_patterns(gpt2, mentions.tokens), mentions).shape == (2, 2)


def test_path_ablation_removes_one_head_from_one_side_only(model, repeated):
    from mi_course.induction import paths

    # what the hooked run feeds L1H0's keys equals the frozen-LayerNorm formula, computed by hand
    _, cache = model.run_with_cache(repeated[:2])
    w = cache["blocks.0.attn.hook_z"][:, :, 2] @ model.W_O[0, 2]
    expected = cache["blocks.1.attn.hook_k"][:, :, 0] - (w / cache["blocks.1.ln1.hook_scale"]) @ model.W_K[1, 0]
    seen = {}
    hooks = paths.path_ablation_hooks(model, (0, 2), [0], "k") + [
        ("blocks.1.attn.hook_k", lambda k, hook: seen.setdefault("k", k.clone()))]
    model.run_with_hooks(repeated[:2], fwd_hooks=hooks)
    torch.testing.assert_close(seen["k"][:, :, 0], expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(seen["k"][:, :, 1], cache["blocks.1.attn.hook_k"][:, :, 1])      # other heads untouched
    # the roles: the previous-token head matters through the keys, not the values
    second = hs.copy_losses(hs.per_token_loss(model, repeated), N)[1]
    rise = {side: hs.copy_losses(hs.per_token_loss(model, repeated, paths.path_ablation_hooks(model, (0, 2), [0, 1], side)), N)[1]
            - second for side in paths.SIDES}
    assert rise["k"] > 3 > 0.3 > abs(rise["v"])
    with pytest.raises(ValueError):
        paths.path_ablation_hooks(model, (0, 2), [0], "o")
    with pytest.raises(ValueError):
        paths.path_ablation_hooks(model, (1, 2), [0], "q")


def test_windowed_icl_score_and_its_standard_error():
    loss = torch.zeros(4, 127)
    loss[:, 4:15] = 3.0                      # tokens 5..15 cost 3 nats
    loss[:, 89:110] = torch.tensor([1.0, 1.0, 2.0, 2.0])[:, None]
    score, se = phases.windowed_icl_score(loss, early=(5, 15), late=(90, 110))
    per_row = torch.tensor([-2.0, -2.0, -1.0, -1.0])
    assert score == pytest.approx(-1.5) and se == pytest.approx((per_row.std() / 2).item())
    assert phases.windowed_icl_score(loss, early=(1, 3), late=(20, 30)) == (0.0, 0.0)


def test_induction_attention_from_chosen_query_tokens():
    n = 4
    tokens = torch.tensor([[0, 7, 8, 9, 7, 7, 8, 9, 7]])           # BOS, then [7, 8, 9, 7] twice
    patterns = torch.zeros(1, 1, 2, 9, 9)
    q = torch.arange(n + 1, 2 * n + 1)
    patterns[0, 0, 0, q, q - (n - 1)] = torch.tensor([1.0, 0.2, 0.4, 0.6])   # head 0: on the stripe, by query
    patterns[0, 0, 1, q, 0] = 1.0                                           # head 1: never on the stripe
    got = natural.induction_attention_from(patterns, tokens, n, torch.tensor([7]))
    assert torch.allclose(got, torch.tensor([[(1.0 + 0.6) / 2, 0.0]]))
    assert torch.allclose(natural.induction_attention_from(patterns, tokens, n, torch.tensor([8, 9])), torch.tensor([[0.3, 0.0]]))


def test_find_heads_check_uses_the_learners_sequences(model, repeated):
    from mi_course import checks

    right = checks.run("04.find_heads", lambda: (model, repeated, {"previous_token": {"L0H2"}, "induction": {"L1H0", "L1H1"}}))
    assert right.passed and "your sequences" in right.message, right.message
    assert exercises.true_heads(model, repeated) == {"previous_token": {"L0H2"}, "induction": {"L1H0", "L1H1"}}
    # on sequences with no repetition to copy, nothing scores as an induction head: the truth follows the tokens given
    no_copy = torch.cat([repeated[:, :1], repeated[:, 1:N + 1], repeated[:, 1:N + 1].flip(1)], dim=1)
    assert exercises.true_heads(model, no_copy)["induction"] == set()
    assert not checks.run("04.find_heads", lambda: (model, repeated[:, :-1], {"previous_token": set(), "induction": set()})).passed


def test_checkpoint_figure_draws_the_induction_stripe_and_the_phase_change_plots():
    from mi_course.induction.plots import plot_checkpoint, plot_phase_change

    n = 5
    fig = plot_checkpoint(torch.rand(2 * n + 1, 2 * n + 1), n, torch.rand(2, 4), torch.rand(2, 4), "L1H1", 100)
    line = fig.axes[0].lines[0]
    q = torch.arange(n + 1, 2 * n + 1)
    assert line.get_xdata().tolist() == (q - (n - 1)).tolist() and line.get_ydata().tolist() == q.tolist()
    steps = [0, 3200, 3300, 8000]
    at = {k: torch.rand(4) for k in ("prev_token", "induction", "second_copy", "held_out", "icl")}
    curve = [dict(step=s, induction_score=0.5, prev_token_score=0.5, held_out_loss=3.0, loss_second_copy=1.0) for s in range(0, 8001, 100)]
    fig = plot_phase_change(steps, at, curve)
    assert len(fig.axes) == 6 and fig.axes[1].get_xlim() == (3000, 4000)


def test_find_heads_at_a_checkpoint_partway_through_training(repeated):
    """Exercise 4.7's target: at step 3,250 the previous-token head has formed and the induction heads have not."""
    from mi_course import checks

    target = models.load("attn-only-2l", checkpoint=3250)
    tokens = hs.repeated_random_tokens(torch.as_tensor(W.used_token_ids()), N, 8, bos_id=W.BOS_ID, seed=7)
    assert exercises.true_heads(target, tokens) == {"previous_token": {"L0H2"}, "induction": set()}
    copied = checks.run("04.find_heads", lambda: (target, tokens, {"previous_token": {"L0H2"}, "induction": {"L1H0", "L1H1"}}))
    assert not copied.passed and "L1H0, L1H1" in copied.message and "another model" in copied.message
    assert checks.run("04.find_heads", lambda: (target, tokens, {"previous_token": ["L0H2"], "induction": None})).passed
    for bad in (lambda: (target, tokens, {"previous_token": {"head two"}, "induction": set()}),
                lambda: (target, tokens, {"previous_token": {(0, "x")}, "induction": set()}),
                lambda: (target, tokens, [1, 2]), lambda: 1 / 0, 42):
        assert not checks.run("04.find_heads", bad).passed


def test_the_hook_exercises_tiny_model_has_the_real_models_hook_points(model, repeated):
    """The hooks the learner writes for 04.ablation_hooks and 04.path_ablation_hooks are checked on TinyAttnOnly;
    the same hooks must run on the notebook's model, with the same names and shapes."""
    from mi_course.seed import stream

    tiny = exercises.TinyAttnOnly(stream(0, "tiny model"))
    tokens = torch.randint(0, tiny.cfg.d_vocab, (2, 9), generator=stream(0, "tiny tokens"))
    shapes, real = {}, {}

    def recorder(name, into):
        def record(x, hook):
            into[name] = tuple(x.shape)
        return record
    torch.testing.assert_close(tiny.run_with_hooks(tokens, [(n, recorder(n, shapes)) for n in sorted(tiny.hook_names)]),
                               tiny(tokens))
    model.run_with_hooks(repeated[:2, :9], fwd_hooks=[(n, recorder(n, real)) for n in sorted(tiny.hook_names)])
    assert set(real) == set(shapes) == tiny.hook_names
    for name in ("blocks.0.attn.hook_z", "blocks.1.attn.hook_q", "blocks.1.ln1.hook_scale", "blocks.1.attn.hook_pattern"):
        assert len(real[name]) == len(shapes[name]) and real[name][0] == shapes[name][0], name
    assert tiny.W_Q.shape[:2] == (2, 3) and tiny.W_O.shape == (2, 3, 4, 12)
    # the path ablation the learner writes reproduces the library's on the real model
    from mi_course.induction import paths

    side_loss = lambda hooks: hs.per_token_loss(model, repeated[:4], hooks)
    torch.testing.assert_close(side_loss(paths.path_ablation_hooks(model, (0, 2), [0, 1], "k")),
                               side_loss(exercises.paths.path_ablation_hooks(model, (0, 2), [0, 1], "k")))


def test_the_questions_answers_follow_the_numbers():
    assert exercises.second_copy_share(6.4, 1.0) == "under a quarter of it"
    assert exercises.second_copy_share(6.2, 6.2) == "about the same as the first"
    assert exercises.bos_by_copy(0.89, 0.04) == "mostly from the first copy"
    assert exercises.bos_by_copy(0.3, 0.3) == "from both copies alike"
    assert exercises.worse_ablation(1.23, 3.36) == "mean-ablation" and exercises.worse_ablation(1.0, 1.1) == "about the same"
    assert exercises.second_copy_mean(1.39, 1.23, 3.36) == "about what zero-ablation costs"
    assert exercises.second_copy_mean(5.0, 1.0, 3.0) == "more than the whole-sequence mean"
    assert exercises.key_share(5.63, 5.66).startswith("about all") and exercises.key_share(1.0, 5.0).startswith("a small")
    assert exercises.ablated_mentions(4.54, 3.74) == "more than a first mention"
    from mi_course.checks import questions
    from mi_course.checks.prediction import get_question

    for qid in questions("04"):
        if qid.startswith("04.handbuilt"):
            continue
        q = get_question(qid)
        for answer in q.messages:
            assert q.parse(answer)[1] is None, (qid, answer)


def test_per_token_loss_in_chunks_is_the_loss_of_one_batch(model, repeated, monkeypatch):
    """A hub vocabulary's logits for a whole batch do not fit: rows go through in chunks, with the same losses."""
    whole = hs.per_token_loss(model, repeated[:6])
    monkeypatch.setattr(mi_course.device, "LOGITS_BUDGET", repeated.shape[1] * model.cfg.d_vocab * 4)   # 4 rows at a time
    chunked = hs.per_token_loss(model, repeated[:6])
    assert chunked.shape == whole.shape == (6, repeated.shape[1] - 1)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
