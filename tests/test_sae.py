"""Chapter 05's library: the SAE recovers known features on synthetic data, the width sweep's
curve bends near the true feature count (and an SAE does not start there), the dead-feature remedies do what they claim, and every
function also runs on a language model's activations (the tiny local GPT-2) so that nothing
assumes the toy's sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mi_course import sae as S
from mi_course.sae import autointerp as A
from mi_course.sae import dashboard as dash
from mi_course.sae import evaluate as E
from mi_course.sae import ito as I
from mi_course.sae import labels as L
from mi_course.sae import saelens_format as SL
from mi_course.sae import steering as St
from mi_course.zoo import models

N_TRUE, D = 32, 16


@pytest.fixture(scope="module")
def data():
    return S.toy_data(N_TRUE, D, p=0.05, seed=0)


@pytest.fixture(scope="module")
def toy_sae(data):
    return S.train_toy_sae(data, N_TRUE, dataclasses.replace(S.TOY_CONFIG, progress=False))


@pytest.fixture(scope="module")
def gpt2_acts(tiny_gpt2):
    model = models.load(str(tiny_gpt2[0]), device="cpu")
    tokens = torch.randint(3, 400, (24, 32), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 0
    return model, tokens, S.collect_activations(model, tokens, "blocks.0.hook_resid_post")


# --- the SAE and its loss ---------------------------------------------------------------------

def test_module_matches_the_functional_forward_pass_and_loss():
    sae = S.SAE(6, 10, seed=1)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3)
        sae.b_dec.normal_(0, 0.3)
    x = torch.randn(5, 6)
    f, x_hat = sae(x)
    assert (f >= 0).all() and f.shape == (5, 10) and x_hat.shape == (5, 6)
    assert torch.allclose(f, torch.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc))
    assert torch.allclose(x_hat, sae.decode(f)) and torch.allclose(f, sae.encode(x))
    loss = S.sae_loss(x, x_hat, f, 0.5)
    by_token = [((x[i] - x_hat[i]) ** 2).sum() + 0.5 * f[i].abs().sum() for i in range(5)]
    assert torch.allclose(loss, torch.stack(by_token).mean())
    # per token: the loss of a batch repeated twice is the loss of the batch
    assert torch.allclose(S.sae_loss(x.repeat(2, 1), x_hat.repeat(2, 1), f.repeat(2, 1), 0.5), loss)


def test_projected_gradient_is_the_gradient_on_the_unit_sphere():
    """At unit-norm rows, the gradient of L(W / ||W||) is the gradient of L with its parallel part removed."""
    gen = torch.Generator().manual_seed(0)
    W = S.unit_rows(torch.randn(10, 6, generator=gen)).requires_grad_(True)
    target = torch.randn(10, 6, generator=gen)

    def loss(M):
        return (M * target).sum() + (M ** 2).sum(-1).mul(torch.arange(10.0)).sum()
    plain, = torch.autograd.grad(loss(W), W)
    on_sphere, = torch.autograd.grad(loss(W / W.norm(dim=-1, keepdim=True)), W)
    projected = S.remove_parallel_component(W.detach(), plain)
    assert torch.allclose(projected, on_sphere, atol=1e-5)
    assert (projected * W.detach()).sum(-1).abs().max() < 1e-5
    assert not torch.allclose(plain, on_sphere, atol=1e-3)      # the test can tell the difference


def test_the_sae_projects_its_decoder_gradient(data):
    sae = S.SAE(D, 24, seed=0)
    x = data.sample(64, torch.Generator().manual_seed(0))
    f, x_hat = sae(x)
    S.sae_loss(x, x_hat, f, 0.3).backward()
    raw = sae.W_dec.grad.clone()
    sae.project_decoder_grad()
    assert (sae.W_dec.grad * sae.W_dec.detach()).sum(-1).abs().max() < 1e-6
    assert (raw * sae.W_dec.detach()).sum(-1).abs().max() > 1e-3              # there was a parallel part to remove


def test_decoder_rows_stay_unit_norm_through_training(toy_sae):
    sae, history = toy_sae
    assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(N_TRUE), atol=1e-5)
    assert history["loss"][-1] < history["loss"][0] / 2


def test_fold_gives_identical_activations(data):
    sae, _ = S.train_toy_sae(data, 24, dataclasses.replace(S.TOY_CONFIG, steps=300, progress=False))
    x = data.sample(512, torch.Generator().manual_seed(1))
    assert sae.b_dec.abs().max() > 1e-3                          # there is a bias to fold
    folded = torch.relu(x @ sae.W_enc + sae.folded_encoder_bias())
    assert torch.allclose(folded, sae.encode(x), atol=1e-5)
    assert not torch.allclose(torch.relu(x @ sae.W_enc + sae.b_enc), sae.encode(x), atol=1e-3)


# --- known features ---------------------------------------------------------------------------

def test_toy_sae_recovers_the_true_features(data, toy_sae):
    sae, history = toy_sae
    assert S.mmcs(sae.W_dec.detach(), data.features) > 0.95
    # a random dictionary of the same width does not
    assert S.mmcs(S.SAE(D, N_TRUE, seed=3).W_dec, data.features) < 0.8
    assert 1.0 < history["l0"][-1] < 4.0                     # the truth has 32 * 0.05 = 1.6 features per token


def test_mmcs_counts_true_features_found():
    true = S.unit_rows(torch.randn(8, 5, generator=torch.Generator().manual_seed(0)))
    assert torch.isclose(S.mmcs(torch.cat([true.flip(0) * 3, torch.randn(4, 5)]), true), torch.tensor(1.0))
    half = S.mmcs(true[:4], true)
    assert 0.5 <= half < 1.0


def test_toy_sae_starts_far_from_the_true_features_and_training_finds_them(data, toy_sae):
    untrained = S.SAE(D, N_TRUE, seed=S.TOY_CONFIG.seed)          # the same seed as the data and the training
    before = S.mmcs(untrained.W_dec.detach(), data.features)
    assert before < 0.8
    assert S.mmcs(toy_sae[0].W_dec.detach(), data.features) > before + 0.3


def test_width_sweep_bends_near_the_true_count(data):
    widths = [8, 16, 24, 32, 40, 48, 64]
    scores = S.width_sweep(data, widths, dataclasses.replace(S.TOY_CONFIG, steps=1_000, progress=False),
                           progress=False)
    assert abs(S.knee(widths, scores) - N_TRUE) <= 8
    below = scores[widths.index(32)] - scores[widths.index(16)]
    above = scores[widths.index(64)] - scores[widths.index(32)]
    assert below > 3 * above and below > 0.08                     # fast below the true count, slow above it
    assert scores[0] < 0.8 and (scores[:4].diff() > 0.02).all()


def test_width_sweep_trains_each_width_as_it_would_alone(data):
    """The sweep trains its SAEs side by side in one module; each must end where training it alone ends."""
    widths, config = [8, 20], dataclasses.replace(S.TOY_CONFIG, steps=150, seed=3, progress=False)
    together = S.width_sweep(data, widths, config, progress=False)
    alone = torch.stack([S.mmcs(S.train_toy_sae(data, w, config)[0].W_dec.detach(), data.features) for w in widths])
    assert torch.allclose(together, alone, atol=1e-4)
    assert not torch.allclose(together, S.width_sweep(data, widths, dataclasses.replace(config, steps=10),
                                                      progress=False), atol=1e-3)   # training moved them


def test_knee_finds_the_bend_of_a_curve():
    widths = [8, 16, 24, 32, 40, 48, 64]
    bent = torch.tensor([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0])
    assert S.knee(widths, bent) == 32
    assert S.knee(widths, torch.tensor([0.5, 0.9, 0.92, 0.93, 0.94, 0.95, 0.97])) == 16
    assert S.knee(widths, torch.tensor([0.1, 0.11, 0.12, 0.13, 0.9, 0.95, 1.0])) != 32   # not a fixed answer


def test_training_is_seeded(data):
    config = dataclasses.replace(S.TOY_CONFIG, steps=50, progress=False)
    a, _ = S.train_toy_sae(data, 16, config)
    b, _ = S.train_toy_sae(data, 16, config)
    assert torch.equal(a.W_dec, b.W_dec) and torch.equal(a.b_enc, b.b_enc)


# --- dead features ------------------------------------------------------------------------------

def _ghost_by_hand(x, x_hat, pre, W_dec, dead, scales=None):
    """The ghost loss token by token; ``scales`` freezes the per-token rescaling (as .detach() does)."""
    r = x - x_hat
    loss, used = 0.0, []
    for t in range(x.shape[0]):
        g = sum(torch.exp(torch.clamp(pre[t, i], max=0)) * W_dec[i] for i in range(len(dead)) if dead[i])
        scale = (r[t].norm() / (2 * g.norm() + 1e-6)).detach() if scales is None else scales[t]
        used.append(scale)
        loss += ((g * scale - r[t]) ** 2).sum()
    return dead.float().mean() * loss / x.shape[0], used


def test_ghost_grads_loss_value_and_gradients():
    gen = torch.Generator().manual_seed(0)
    x, x_hat = (torch.randn(6, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    pre = torch.randn(6, 8, generator=gen, dtype=torch.float64) - 1.0
    W_dec = S.unit_rows(torch.randn(8, 5, generator=gen, dtype=torch.float64))
    dead = torch.tensor([True, False, True, False, False, True, False, False])
    value = S.ghost_grads_loss(x, x_hat, pre, W_dec, dead)
    expected, scales = _ghost_by_hand(x, x_hat, pre, W_dec, dead)
    assert torch.isclose(value, expected)
    # gradients: the rescaling is a constant for autograd, so they are those of the loss with the scale frozen
    frozen = lambda p, w: _ghost_by_hand(x, x_hat, p, w, dead, scales)[0]   # noqa: E731
    p, W, xh = (t.clone().requires_grad_(True) for t in (pre, W_dec, x_hat))
    assert torch.autograd.gradcheck(frozen, (p, W))                  # the frozen version is right...
    g_pre, g_W, g_xh = torch.autograd.grad(S.ghost_grads_loss(x, xh, p, W, dead), (p, W, xh), allow_unused=True)
    e_pre, e_W = torch.autograd.grad(frozen(p, W), (p, W))            # ...and the library agrees with it
    assert torch.allclose(g_pre, e_pre) and torch.allclose(g_W, e_W)
    # only the dead features move, and the live SAE's output gets no gradient
    assert g_pre[:, ~dead].abs().max() == 0 and g_W[~dead].abs().max() == 0
    assert g_pre[:, dead].abs().max() > 0 and g_W[dead].abs().max() > 0
    assert g_xh is None or g_xh.abs().max() == 0


def test_ghost_grads_loss_is_finite_at_large_pre_activations_and_zero_without_dead_features():
    gen = torch.Generator().manual_seed(1)
    x, x_hat = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    W_dec = S.unit_rows(torch.randn(7, 5, generator=gen))
    pre = (torch.randn(4, 7, generator=gen) + 1e4).requires_grad_(True)
    dead = torch.tensor([True] * 3 + [False] * 4)
    loss = S.ghost_grads_loss(x, x_hat, pre, W_dec, dead)
    grad, = torch.autograd.grad(loss, pre)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert not torch.isfinite(torch.exp(pre[:, dead])).all()        # uncapped exp would overflow
    none = S.ghost_grads_loss(x, x_hat, pre, W_dec, torch.zeros(7, dtype=torch.bool))
    grad, = torch.autograd.grad(none, pre)
    assert none.item() == 0.0 and grad.abs().max() == 0


def test_ghost_grads_loss_is_scaled_by_the_dead_fraction():
    gen = torch.Generator().manual_seed(2)
    x, x_hat, pre = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen), torch.randn(4, 6, generator=gen)
    W_dec = S.unit_rows(torch.randn(6, 5, generator=gen))
    dead = torch.tensor([True, False, False, False, False, False])
    wide = S.ghost_grads_loss(x, x_hat, torch.cat([pre, -torch.ones(4, 6)], 1), torch.cat([W_dec, W_dec]),
                              torch.cat([dead, torch.zeros(6, dtype=torch.bool)]))
    assert torch.isclose(wide, S.ghost_grads_loss(x, x_hat, pre, W_dec, dead) / 2)


@pytest.mark.parametrize("remedy", ["resample", "ghost"])
def test_dead_feature_remedies_bring_features_back(data, remedy):
    base = dataclasses.replace(S.TOY_CONFIG, progress=False)
    plain, treated = S.half_dead_sae(D, N_TRUE), S.half_dead_sae(D, N_TRUE)
    h_plain = S.train_sae(plain, data.sample, base)
    config = dataclasses.replace(base, resample_every=500) if remedy == "resample" else \
        dataclasses.replace(base, ghost_grads=True)
    h = S.train_sae(treated, data.sample, config)
    assert h_plain["dead"][-1] >= N_TRUE // 2 - 2                 # without a remedy they stay dead
    assert h["dead"][-1] <= N_TRUE // 4
    x = data.sample(4096, torch.Generator().manual_seed(99))      # held out: neither the data's nor the SAEs' stream

    def live_mmcs(sae):
        with torch.no_grad():
            live = E.feature_frequencies(sae.encode(x)) > 0
        return S.mmcs(sae.W_dec.detach()[live], data.features)

    assert live_mmcs(treated) > live_mmcs(plain) + 0.02          # the revived rows find true features
    if remedy == "resample":                                     # ghost grads' revived rows reconstruct less at 2,000 steps
        assert h["mse"][-1] < 0.75 * h_plain["mse"][-1]
    if remedy == "resample":
        assert h["resampled"][0] >= N_TRUE // 2 - 2
    else:
        assert h["ghost"].max() > 0 and h["resampled"].numel() == 0


def test_resampling_recipe():
    gen = torch.Generator().manual_seed(0)
    sae = S.SAE(6, 10, seed=0)
    x = torch.randn(200, 6, generator=gen)
    x[7] *= 50                                                    # one input the SAE reconstructs very badly
    dead = torch.zeros(10, dtype=torch.bool)
    dead[[2, 5]] = True
    optimizer = torch.optim.Adam(sae.parameters())
    S.sae_loss(x, sae(x)[1], sae(x)[0], 0.1).backward()
    optimizer.step()                                              # Adam now has moments to reset
    alive_norm = sae.W_enc[:, ~dead].detach().norm(dim=0).mean()
    before = sae.W_dec[~dead].detach().clone()
    assert S.resample_dead(sae, x, dead, gen, optimizer) == 2
    direction = S.unit_rows(x[7:8] - sae.b_dec).detach()
    assert torch.allclose(sae.W_dec[dead].detach(), direction.expand(2, -1), atol=1e-5)
    assert torch.allclose(sae.W_enc[:, dead].detach().norm(dim=0), 0.2 * alive_norm.expand(2), rtol=1e-3)
    assert (sae.b_enc[dead] == 0).all() and torch.equal(sae.W_dec[~dead], before)
    assert (optimizer.state[sae.W_dec]["exp_avg"][dead] == 0).all()
    assert (optimizer.state[sae.W_dec]["exp_avg"][~dead] != 0).any()


# --- on a language model: the tiny local GPT-2 ---------------------------------------------------

def test_collect_activations_matches_the_cache(gpt2_acts):
    model, tokens, acts = gpt2_acts
    _, cache = model.run_with_cache(tokens[:3])
    expected = cache["blocks.0.hook_resid_post"][:, 1:].reshape(-1, acts.shape[1])
    assert acts.shape == (24 * 31, model.cfg.d_model)
    assert torch.allclose(acts[: expected.shape[0]], expected, atol=1e-5)


def test_every_function_runs_on_the_tiny_gpt2(gpt2_acts):
    _, _, acts = gpt2_acts
    acts = acts / acts.norm(dim=-1).mean() * acts.shape[1] ** 0.5
    sae = S.SAE(acts.shape[1], 64, seed=0)
    config = S.SAETrainConfig(steps=300, batch_size=64, lr=3e-3, l1_coeff=0.05, resample_every=100,
                              ghost_grads=True, dead_window=640, progress=False)
    history = S.train_sae(sae, acts, config)
    with torch.no_grad():
        f, x_hat = sae(acts)
        assert S.variance_explained(acts, x_hat) > 0.5
        assert 0 < S.l0(f) < 64
        assert torch.allclose(torch.relu(acts @ sae.W_enc + sae.folded_encoder_bias()), f, atol=1e-4)
        assert torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(64), atol=1e-5)
        pre = sae.pre_acts(acts) + 1e4
        assert torch.isfinite(S.ghost_grads_loss(acts, x_hat, pre, sae.W_dec, torch.ones(64, dtype=torch.bool)))
    assert torch.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]


# --- part 2 foundations: metrics on a language model, and the world's labels ---------------------

def _exact_sae(d: int) -> S.SAE:
    """An SAE that reconstructs perfectly: features relu(x) and relu(-x), decoded back to x."""
    sae = S.SAE(d, 2 * d)
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
    return sae


def test_loss_recovered_formula():
    assert torch.isclose(E.loss_recovered(2.0, 2.0, 6.0), torch.tensor(1.0))
    assert torch.isclose(E.loss_recovered(2.0, 6.0, 6.0), torch.tensor(0.0))
    assert torch.isclose(E.loss_recovered(2.0, 3.0, 6.0), torch.tensor(0.75))


@pytest.mark.parametrize("model_name", ["tiny-gpt2", "gelu-3l-facts"])
def test_spliced_losses(model_name, tiny_gpt2):
    model = models.load(str(tiny_gpt2[0]) if model_name == "tiny-gpt2" else model_name, device="cpu")
    tokens = torch.randint(3, 400, (4, 20), generator=torch.Generator().manual_seed(0))
    tokens[:, 0] = 0
    hook = "blocks.0.hook_resid_post"
    exact = E.spliced_losses(model, _exact_sae(model.cfg.d_model), tokens, hook)
    assert abs(exact["spliced"] - exact["clean"]) < 1e-4 and abs(exact["recovered"] - 1) < 1e-3
    assert exact["ablated"] != pytest.approx(exact["clean"], abs=1e-3)
    broken = _exact_sae(model.cfg.d_model)
    with torch.no_grad():
        broken.W_dec.zero_()                                   # reconstructs 0: the same as zero-ablation
    zeroed = E.spliced_losses(model, broken, tokens, hook)
    assert zeroed["spliced"] == pytest.approx(zeroed["ablated"], abs=1e-4) and abs(zeroed["recovered"]) < 1e-3
    logits = model(tokens)
    by_hand = torch.nn.functional.cross_entropy(logits[:, 1:-1].reshape(-1, logits.shape[-1]),
                                                tokens[:, 2:].reshape(-1))
    assert exact["clean"] == pytest.approx(by_hand.item(), abs=1e-5)


def test_spliced_accuracy_on_the_sport_task():
    from mi_course.residual_stream import prompts
    model = models.load("gelu-3l-facts", device="cpu")
    facts = prompts.fact_prompts(model)
    tokens, answers = facts.tokens[:64], facts.answers[:64]
    hook = "blocks.1.hook_resid_post"
    exact = E.spliced_accuracy(model, _exact_sae(model.cfg.d_model), tokens, answers, hook, facts.sports)
    logits = model(tokens)[:, -1, facts.sports]
    by_hand = (facts.sports[logits.argmax(-1)] == answers).float().mean().item()
    assert exact["clean"] == pytest.approx(by_hand) and exact["spliced"] == pytest.approx(by_hand)
    assert by_hand > 0.5                                         # the model knows most of these facts
    broken = _exact_sae(model.cfg.d_model)
    with torch.no_grad():
        broken.W_dec.zero_()
    assert E.spliced_accuracy(model, broken, tokens, answers, hook, facts.sports)["spliced"] < 0.4


def test_frequencies_dead_and_dense():
    f = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0], [0.0, 1.0, 0.5, 0.0], [0.0, 2.0, 0.0, 0.0]])
    assert torch.equal(E.feature_frequencies(f), torch.tensor([0.0, 1.0, 0.25, 0.25]))
    assert E.dead_and_dense(E.feature_frequencies(f), dense_above=0.5) == (1, 1)


def test_auroc_matches_counting_pairs():
    gen = torch.Generator().manual_seed(0)
    scores = torch.relu(torch.randn(60, 3, generator=gen)).round(decimals=1)   # many ties, as SAE features have
    y = torch.rand(60, generator=gen) < 0.3
    scores[:, 2] = y.float() * 2 + scores[:, 2]                                 # a good detector
    pos, neg = scores[y], scores[~y]
    pairs = (pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()
    assert torch.allclose(L.auroc(scores, y), pairs.mean((0, 1)), atol=1e-6)
    assert L.auroc(scores, y)[2] > 0.9
    assert torch.isnan(L.auroc(scores, torch.zeros(60, dtype=torch.bool))).all()


def test_average_ranks_share_ties_in_every_block_of_columns():
    gen = torch.Generator().manual_seed(1)
    scores = torch.relu(torch.randn(50, 5, generator=gen)).round(decimals=1)
    for chunk in (1, 2, 256):
        ranks = L.average_ranks(scores, chunk=chunk)
        for j in range(5):
            col = scores[:, j]
            below = (col[None, :] < col[:, None]).sum(1).double()
            ties = (col[None, :] == col[:, None]).sum(1).double()
            assert torch.equal(ranks[:, j], below + (ties + 1) / 2)
    labels = {"a": torch.rand(50, generator=gen) < 0.2, "b": scores[:, 0] > 0, "none": torch.zeros(50, dtype=torch.bool)}
    names, table = L.auroc_table(scores, labels)
    assert names == ["a", "b"]
    assert torch.allclose(table[1], L.auroc(scores, labels["b"]))
    assert table[1, 0] == 1.0


def test_labelled_rows_pack_like_the_zoo():
    from mi_course.residual_stream.prompts import HELD_OUT_FIRST_DOC, world_of
    from mi_course.zoo.world import SLOTS, SPORTS, token_rows, vocabulary
    world = world_of("gelu-3l-facts")
    tokens, labels = L.labelled_rows(world, 8, 64, HELD_OUT_FIRST_DOC)
    assert torch.equal(tokens, torch.from_numpy(token_rows(world, 8, 64, HELD_OUT_FIRST_DOC)[0]))
    assert all(v.shape == (8, 64) for v in labels.values())
    sport_ids = {int(t) for t in tokens[labels["slot"] == SLOTS.index("sport")]}
    assert {vocabulary()[i] for i in sport_ids} <= set(SPORTS)
    named = labels["person_sport"] >= 0
    assert named.any()
    person = labels["person"][named]
    assert torch.equal(labels["person_sport"][named], torch.tensor([world.kb.people[p].sport for p in person.tolist()]))


def test_clean_matches_need_specificity():
    """A feature firing on every sport word matches each sport against all tokens, but not within the sport words."""
    gen = torch.Generator().manual_seed(0)
    sport = torch.randint(0, 3, (400,), generator=gen)
    sport[torch.rand(400, generator=gen) > 0.15] = -1                  # most tokens are not sport words
    labels = {f"sport {s}": sport == s for s in range(3)}
    any_sport = (sport >= 0).float()
    only_0 = (sport == 0).float() * (1 + torch.rand(400, generator=gen))
    f = torch.stack([any_sport, only_0, torch.rand(400, generator=gen)], 1)
    matches = L.clean_matches(f, labels, sport >= 0)
    assert matches["sport 0"][0] == 1 and min(matches["sport 0"][1:]) > 0.99
    assert matches["sport 1"][2] < 0.9                                 # feature 0 is not specific to sport 1
    _, everywhere = L.auroc_table(f, labels)
    assert everywhere[1, 0] > 0.8                                     # though against all tokens it looks good


# --- inference-time optimisation -------------------------------------------------------------------

@pytest.mark.parametrize("pursuit", [I.matched_pursuit, I.gradient_pursuit])
def test_pursuits_recover_an_exact_sparse_code(pursuit):
    gen = torch.Generator().manual_seed(0)
    W = torch.linalg.qr(torch.randn(12, 8, generator=gen)).Q.T       # 8 orthonormal rows in 12 dims
    code = torch.zeros(5, 8)
    for row in range(5):
        code[row, torch.randperm(8, generator=gen)[:3]] = 0.5 + torch.rand(3, generator=gen)
    coeffs = pursuit(code @ W, W, 3)
    assert torch.allclose(coeffs, code, atol=1e-5)
    fewer = pursuit(code @ W, W, torch.tensor([1, 2, 3, 0, 3]))          # a target per token
    assert torch.equal((fewer > 0).sum(-1), torch.tensor([1, 2, 3, 0, 3]))


def test_gradient_pursuit_refits_where_matched_pursuit_cannot():
    gen = torch.Generator().manual_seed(1)
    W = S.unit_rows(torch.randn(30, 8, generator=gen))                   # correlated, overcomplete
    x = torch.relu(torch.randn(200, 30, generator=gen)) * (torch.rand(200, 30, generator=gen) < 0.1) @ W
    err = {p.__name__: ((x - p(x, W, 4) @ W) ** 2).sum() for p in (I.matched_pursuit, I.gradient_pursuit)}
    assert err["gradient_pursuit"] < 0.9 * err["matched_pursuit"]
    assert (I.gradient_pursuit(x, W, 4) >= 0).all() and (I.matched_pursuit(x, W, 4) >= 0).all()


@pytest.fixture(scope="module")
def facts_sae():
    from mi_course.residual_stream.prompts import HELD_OUT_FIRST_DOC, world_of
    model = models.load("gelu-3l-facts", device="cpu")
    tokens, labels = L.labelled_rows(world_of("gelu-3l-facts"), 320, 64, HELD_OUT_FIRST_DOC)
    hook = "blocks.1.hook_resid_post"
    acts = S.collect_activations(model, tokens[:256], hook)
    sae = S.SAE(acts.shape[1], 512, seed=0)
    S.train_sae(sae, acts, S.SAETrainConfig(steps=1000, batch_size=256, lr=1e-3, l1_coeff=4.0, progress=False))
    return model, sae, tokens[256:], S.collect_activations(model, tokens[256:], hook), hook


def test_ito_beats_the_encoder_at_equal_l0(facts_sae, gpt2_acts):
    _, sae, _, acts, _ = facts_sae
    small = gpt2_acts[2] / gpt2_acts[2].norm(dim=-1).mean() * gpt2_acts[2].shape[1] ** 0.5
    small_sae = S.SAE(small.shape[1], 64, seed=0)
    S.train_sae(small_sae, small, S.SAETrainConfig(steps=300, batch_size=64, lr=3e-3, l1_coeff=0.1, progress=False))
    for model_sae, x in [(sae, acts), (small_sae, small)]:
        with torch.no_grad():
            f, x_hat = model_sae(x)
        k = (f > 0).sum(-1)                                              # the encoder's L0, token by token
        coeffs, ito_hat = I.ito_reconstruct(model_sae, x, k)
        assert ((coeffs > 0).sum(-1) <= k).all()
        ve_encoder = S.variance_explained(x, x_hat)
        assert 0.3 < ve_encoder < S.variance_explained(x, ito_hat) - 0.01


def test_a_live_sae_on_gelu_3l_facts(facts_sae):
    model, sae, tokens, acts, hook = facts_sae
    with torch.no_grad():
        f, x_hat = sae(acts)
    assert 5 < S.l0(f) < 40 and S.variance_explained(acts, x_hat) > 0.8
    losses = E.spliced_losses(model, sae, tokens, hook)
    assert losses["clean"] < losses["spliced"] < losses["ablated"] and losses["recovered"] > 0.9


# --- dashboards and explanation scores ------------------------------------------------------------

def test_logit_effects_on_the_tiny_gpt2(gpt2_acts):
    model = gpt2_acts[0]
    sae = S.SAE(model.cfg.d_model, 16, seed=0)
    effects = dash.logit_effects(sae.W_dec.detach(), model.W_U.detach())
    assert effects.shape == (16, model.cfg.d_vocab)
    assert effects.sum(-1).abs().max() < 1e-3
    raw = sae.W_dec.detach()[3] @ model.W_U.detach()
    assert torch.equal(effects[3].argsort(), (raw - raw.mean()).argsort())
    assert torch.allclose(effects[3], raw - raw.mean(), atol=1e-5)


def test_top_contexts_and_histogram():
    acts = torch.zeros(3, 10)
    acts[1, 7], acts[2, 0], acts[0, 4] = 5.0, 3.0, 1.0
    tokens = torch.arange(30).reshape(3, 10)
    top = dash.top_contexts(acts, tokens, k=5, before=2)
    assert [(c.row, c.pos, c.activation) for c in top] == [(1, 7, 5.0), (2, 0, 3.0), (0, 4, 1.0)]
    assert top[0].tokens == [15, 16, 17] and top[1].tokens == [20]
    counts, edges = dash.activation_histogram(acts, bins=4)
    assert counts.sum() == 3 and edges[0] == 1.0 and edges[-1] == 5.0
    assert dash.activation_histogram(torch.zeros(5), bins=4)[0].sum() == 0


def test_explanation_score_is_pearson_and_safe_on_constants():
    gen = torch.Generator().manual_seed(0)
    a, p = torch.randn(100, generator=gen), torch.randn(100, generator=gen)
    p = p + a
    import numpy as np
    assert A.explanation_score(p, a).item() == pytest.approx(np.corrcoef(p.numpy(), a.numpy())[0, 1], abs=1e-5)
    assert A.explanation_score(3 * p + 1, a) == pytest.approx(A.explanation_score(p, a).item(), abs=1e-5)
    assert A.explanation_score(torch.ones(100), a) == 0 and A.explanation_score(p, torch.zeros(100)) == 0


# --- SAELens's on-disk format ------------------------------------------------------------------------

def test_saelens_format_round_trip(tmp_path, gpt2_acts):
    import json
    _, _, acts = gpt2_acts
    sae = S.SAE(acts.shape[1], 48, seed=2)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.01)
        sae.b_dec.normal_(0, 0.01)
    folder = SL.save_saelens(sae, tmp_path / "sae", "tiny-gpt2", "blocks.0.hook_resid_post", context_size=32)
    assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == "standard" and cfg["metadata"]["hook_name"] == "blocks.0.hook_resid_post"
    assert (cfg["d_in"], cfg["d_sae"]) == (acts.shape[1], 48)
    loaded, flat = SL.load_saelens(folder)
    assert flat["hook_name"] == "blocks.0.hook_resid_post" and flat["model_name"] == "tiny-gpt2"
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(loaded, name), getattr(sae, name)), name
    with torch.no_grad():
        assert torch.equal(loaded(acts)[0], sae(acts)[0])


def test_reads_an_old_saelens_config_without_the_pre_encoder_bias(tmp_path):
    """Configs before SAELens 6 are flat, say hook_point, and may not subtract b_dec before the encoder."""
    import json

    from safetensors.torch import save_file
    gen = torch.Generator().manual_seed(0)
    w = {"W_enc": torch.randn(6, 10, generator=gen), "W_dec": S.unit_rows(torch.randn(10, 6, generator=gen)),
         "b_enc": torch.randn(10, generator=gen), "b_dec": torch.randn(6, generator=gen)}
    save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({
        "d_in": 6, "d_sae": 10, "hook_point": "blocks.1.hook_resid_post", "activation_fn_str": "relu",
        "apply_b_dec_to_input": False, "normalize_activations": False, "model_name": "gelu-3l-facts"}))
    sae, cfg = SL.load_saelens(tmp_path)
    x = torch.randn(20, 6, generator=gen)
    theirs = torch.relu(x @ w["W_enc"] + w["b_enc"])                  # SAELens without apply_b_dec_to_input
    assert cfg["hook_name"] == "blocks.1.hook_resid_post"
    assert torch.allclose(sae.encode(x), theirs, atol=1e-5)
    assert torch.allclose(sae.decode(theirs), theirs @ w["W_dec"] + w["b_dec"], atol=1e-5)
    (tmp_path / "cfg.json").write_text(json.dumps({"d_in": 6, "d_sae": 10, "architecture": "topk"}))
    with pytest.raises(ValueError, match="standard"):
        SL.load_saelens(tmp_path)


# --- steering -------------------------------------------------------------------------------------------

def test_steering_adds_the_direction_only_where_asked(gpt2_acts):
    model, tokens, _ = gpt2_acts
    tokens = tokens[:3, :12]
    where = torch.zeros_like(tokens, dtype=torch.bool)
    where[:, 5] = True
    direction = torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    hook = "blocks.0.hook_resid_post"
    seen = {}
    model.run_with_hooks(tokens, fwd_hooks=[(hook, St.add_direction_hook(direction, 2.0, where)),
                                            (hook, lambda act, hook: seen.update(steered=act.clone()))])
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook)
    diff = seen["steered"] - cache[hook]
    assert torch.allclose(diff[:, 5], 2.0 * direction.expand(3, -1), atol=1e-5)
    assert diff[:, :5].abs().max() == 0 and diff[:, 6:].abs().max() == 0
    clean, steered = model(tokens), St.steered_logits(model, tokens, hook, direction, 2.0, where)
    assert torch.allclose(clean[:, :5], steered[:, :5], atol=1e-5) and not torch.allclose(clean[:, 5:], steered[:, 5:])


def test_untouched_loss_skips_steered_positions():
    tokens = torch.tensor([[0, 1, 2, 3]])
    logits = torch.zeros(1, 4, 5)
    logits[0, 1, 2] = 10.0                                            # position 1 predicts token 2 well
    where = torch.tensor([[False, False, True, False]])
    assert St.untouched_loss(logits, tokens, where).item() == pytest.approx(
        -torch.log_softmax(logits[0, 1], -1)[2].item())
    assert St.untouched_loss(logits, tokens, torch.zeros_like(where)) > St.untouched_loss(logits, tokens, where)


def test_pareto_front():
    success, cost = torch.tensor([0.1, 0.5, 0.5, 0.9, 0.3]), torch.tensor([1.0, 2.0, 3.0, 4.0, 2.5])
    assert St.pareto_front(success, cost).tolist() == [True, True, False, True, False]


def test_steering_gelu_3l_facts_to_a_sport():
    """A difference of means for 'a sentence stating baseball' turns most other people's fact prompts to baseball,
    while the loss on held-out text, at positions not steered, barely moves."""
    from mi_course.residual_stream import prompts as P
    model = models.load("gelu-3l-facts", device="cpu")
    tokens, labels = L.labelled_rows(P.world_of("gelu-3l-facts"), 320, 64, P.HELD_OUT_FIRST_DOC)
    hook = "blocks.1.hook_resid_post"
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == hook)
    acts = cache[hook].reshape(-1, model.cfg.d_model)
    in_sport_sentence = labels["attribute"].reshape(-1) == 1
    baseball = (labels["value"].reshape(-1) == 0)[in_sport_sentence]
    direction = St.difference_of_means(acts[in_sport_sentence], baseball)
    direction = direction / direction.norm()
    facts = P.fact_prompts(model)
    prompts = facts.tokens[facts.labels != 0]
    last = torch.zeros_like(prompts, dtype=torch.bool)
    last[:, -1] = True
    text = tokens[:16]
    every_4th = torch.zeros_like(text, dtype=torch.bool)
    every_4th[:, 1::4] = True
    results = []
    for coeff in (0.0, 32.0):
        steered = St.steered_logits(model, prompts, hook, direction, coeff, last)
        success = St.steering_success(steered, facts.sports[0])
        cost = St.untouched_loss(St.steered_logits(model, text, hook, direction, coeff, every_4th), text, every_4th)
        results.append((success.item(), cost.item()))
    (s0, c0), (s1, c1) = results
    assert s0 < 0.05 and s1 > 0.9
    assert c0 < c1 < c0 + 0.15


# --- the feature browser, the figures, and training with autograd off ----------------------------------

def test_feature_card_and_browser(gpt2_acts):
    import matplotlib
    matplotlib.use("Agg")
    from mi_course.sae import plots
    from mi_course.sae.widget import as_rows, feature_browser, feature_card
    model, tokens, acts = gpt2_acts
    acts = acts / acts.norm(dim=-1).mean() * acts.shape[1] ** 0.5
    sae = S.SAE(acts.shape[1], 32, seed=0)
    S.train_sae(sae, acts, S.SAETrainConfig(steps=100, batch_size=64, lr=3e-3, l1_coeff=0.1, progress=False))
    with torch.no_grad():
        f = as_rows(sae.encode(acts), tokens.shape[0])
    body = tokens[:, 1:]                                                    # collect_activations dropped BOS
    positive = (body == body[0, 3]).reshape(-1)
    table = L.auroc_table(f.reshape(-1, 32), {"that token": positive})
    feature = int(f.reshape(-1, 32).gt(0).float().mean(0).argmax())
    card = feature_card(feature, f, body, sae.W_dec.detach(), model.W_U.detach(),
                        lambda ids: " ".join(str(i) for i in ids), table, k=4)
    strongest = f[..., feature].max()
    assert card.contexts[0][0] == pytest.approx(strongest.item())
    top_token = str(int(body.reshape(-1)[f[..., feature].reshape(-1).argmax()]))
    assert card.contexts[0][1].endswith(f"⟦{top_token}⟧")               # the activating token is marked
    assert card.frequency == pytest.approx(f[..., feature].gt(0).float().mean().item())
    assert len(card.promoted) == 4 and card.promoted[0][1] >= card.promoted[-1][1] > card.suppressed[0][1]
    assert card.labels[0][0] == "that token"
    fig = plots.plot_feature_card(card)
    assert len(fig.axes) == 3
    # restricted to a vocabulary: only those ids are promoted or suppressed, centred over them
    vocab = torch.arange(10, 60)
    narrow = feature_card(feature, f, body, sae.W_dec.detach(), model.W_U.detach(), lambda ids: str(int(ids[0])),
                          table, k=4, vocab=vocab)
    shown = [int(t) for t, _ in narrow.promoted + narrow.suppressed]
    assert all(10 <= t < 60 for t in shown)
    assert plots._tail("the quick brown fox ⟦jumps⟧", 14) == "… fox ⟦jumps⟧"
    box = feature_browser(f, body, sae.W_dec.detach(), model.W_U.detach(), lambda ids: str(list(ids)), table)
    picker, out = box.children
    picker.value = 5
    assert len(out.outputs) == 1


def test_figures_draw(data):
    import matplotlib
    matplotlib.use("Agg")
    from mi_course.sae import plots
    assert plots.plot_width_sweep([8, 16, 32], torch.tensor([0.4, 0.7, 0.99]), 32).axes[0].get_xlabel()
    history = S.train_sae(S.SAE(D, 8), data.sample, S.SAETrainConfig(steps=30, log_every=10, progress=False))
    assert len(plots.plot_training(history, 10).axes) == 3
    assert plots.plot_frequencies(torch.tensor([0.0, 0.01, 0.2, 0.5])).axes[0].get_title().endswith("(1 dead)")
    success, cost = torch.tensor([0.0, 0.5, 0.4]), torch.tensor([1.0, 1.2, 1.3])
    assert plots.plot_pareto(success, cost, [0, 8, 16], St.pareto_front(success, cost)).axes


def test_gradient_clipping_bounds_the_first_step(data):
    """With clip_grad_norm, the gradient Adam sees has total norm at most the bound at every step (SAELens clips
    at 1.0 always; benchmarks/saelens_compare.py shows what that does to the trained SAE)."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    seen = []
    for clip in (None, 1e-3):
        sae = S.SAE(D, 8, seed=0)
        config = S.SAETrainConfig(steps=3, batch_size=32, l1_coeff=0.1, clip_grad_norm=clip, progress=False)
        optimizer_steps = []
        handle = register_optimizer_step_pre_hook(
            lambda opt, *_: optimizer_steps.append(torch.sqrt(sum((p.grad ** 2).sum() for p in opt.param_groups[0]["params"]
                                                                  if p.grad is not None))))
        try:
            S.train_sae(sae, data.sample, config)
        finally:
            handle.remove()
        seen.append(torch.stack(optimizer_steps))
    assert (seen[0] > 1e-2).all() and (seen[1] <= 1e-3 + 1e-7).all()


def test_training_works_with_autograd_switched_off(data):
    sae = S.SAE(D, 8, seed=0)
    before = sae.W_dec.detach().clone()
    with torch.no_grad():
        S.train_sae(sae, data.sample, S.SAETrainConfig(steps=20, ghost_grads=True, progress=False))
    assert not torch.equal(sae.W_dec.detach(), before)


def test_the_ghost_grads_check_sees_gradients_with_autograd_off():
    """A notebook runs with autograd switched off; the check must still judge the gradients."""
    from mi_course import checks
    from mi_course.sae.exercises import _ghost_variant
    with torch.no_grad():
        assert checks.run("05.ghost_grads_loss", S.ghost_grads_loss).passed
        wrong = checks.run("05.ghost_grads_loss", _ghost_variant(detach_scale=False))
    assert not wrong.passed and "must be a constant for autograd" in wrong.message


# --- exercise 5.8: both readings of the seed's pseudo-code ---------------------------------------

@pytest.mark.parametrize("reading, lines, passes", [
    ("non-negative: line 3 is the sign bug", {3, 5, 7, 16, 20, 29, 35}, True),
    ("signed: line 5 is the sign bug (and the undefined name)", {5, 7, 16, 20, 29, 35}, True),
    ("one bug missed", {3, 5, 7, 16, 20, 29}, False),
    ("no sign bug and no undefined name", {7, 16, 20, 29, 35}, False),
])
def test_find_the_bugs_accepts_either_reading_of_the_sign(reading, lines, passes):
    from mi_course.checks.exercise import registry

    import mi_course.sae.exercises  # noqa: F401 (registers the chapter's exercises)
    def find_the_bugs():
        return set(lines)

    passed, message = registry()["05.find_the_bugs"].evaluate(find_the_bugs)
    assert passed is passes, (reading, message)


def test_held_out_matches_score_the_picked_feature_on_other_tokens():
    gen = torch.Generator().manual_seed(5)
    n = 400
    label = torch.zeros(n, dtype=torch.bool)
    label[::20] = True                                            # 20 positives, 10 in each half
    population = torch.ones(n, dtype=torch.bool)
    held_out = torch.arange(n) >= n // 2
    f = torch.rand(n, 300, generator=gen)                         # 300 features of pure noise ...
    f[:, 7] = label.float() + 0.1 * torch.rand(n, generator=gen)  # ... and one real detector
    real = L.held_out_matches(f, {"x": label}, population, held_out)["x"]
    assert real[0] == 7 and real[1] > 0.99
    noise = L.held_out_matches(f[:, 8:], {"x": label}, population, held_out)["x"]
    picked_in_sample = L.clean_matches(f[:, 8:][~held_out], {"x": label[~held_out]}, population[~held_out])["x"]
    assert picked_in_sample[1] > 0.65                             # the best of 292 noise features looks good ...
    assert noise[1] < 0.62 and noise[1] < picked_in_sample[1] - 0.1   # ... and is not, on tokens it was not picked on


# --- exercises 5.5, 5.7, 5.12, 5.13 (issue 24) -------------------------------------------------------

def test_resampled_weights_leave_their_inputs_alone_and_train_as_before(data):
    from mi_course.sae import dead as Dd
    gen = torch.Generator().manual_seed(0)
    sae = S.SAE(6, 10, seed=0)
    x = torch.randn(50, 6, generator=gen)
    dead_mask = torch.zeros(10, dtype=torch.bool)
    dead_mask[[1, 4]] = True
    weights = [t.detach().clone() for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)]
    with torch.no_grad():
        x_hat = sae(x)[1]
    W_enc, b_enc, W_dec = Dd.resampled_weights(*weights, x, x_hat, dead_mask, gen)
    assert torch.equal(weights[2], sae.W_dec.detach()) and not torch.equal(W_dec, weights[2])
    assert torch.equal(W_dec[~dead_mask], weights[2][~dead_mask]) and (b_enc[dead_mask] == 0).all()
    config = dataclasses.replace(S.TOY_CONFIG, steps=600, resample_every=200, progress=False)
    default, passed = S.half_dead_sae(D, N_TRUE), S.half_dead_sae(D, N_TRUE)
    h_default = S.train_sae(default, data.sample, config)
    h_passed = S.train_sae(passed, data.sample, config, resample=Dd.resampled_weights)   # the notebook's route
    assert torch.equal(h_default["resampled"], h_passed["resampled"]) and h_default["resampled"].sum() > 0
    assert torch.equal(default.W_dec, passed.W_dec)


def test_resample_check_names_each_mistake():
    from mi_course import checks

    def variant(**kw):
        def resample_dead(W_enc, b_enc, W_dec, b_dec, x, x_hat, dead_mask, generator):
            if kw.get("in_place"):
                W_dec.mul_(1.0)
                W_dec[0, 0] += 1
            W_enc, b_enc, W_dec = W_enc.clone(), b_enc.clone(), W_dec.clone()
            idx = dead_mask.nonzero().squeeze(-1)
            error = ((x - x_hat) ** 2).sum(-1)
            error = error.sqrt() if kw.get("norm") else torch.ones_like(error) if kw.get("uniform") else error
            picks = torch.multinomial(error, len(idx), replacement=True, generator=generator)
            d = x[picks] - (0 if kw.get("raw") else b_dec)
            d = d if kw.get("no_unit") else S.unit_rows(d)
            W_dec[idx] = d
            live = W_enc[:, ~dead_mask] if not kw.get("all_cols") else W_enc
            W_enc[:, idx] = d.T * live.norm(dim=0).mean() * (1.0 if kw.get("big") else 0.2)
            if not kw.get("keep_bias"):
                b_enc[idx] = 0
            if kw.get("touch_live"):
                W_dec[~dead_mask] *= 2
            return W_enc, b_enc, W_dec
        return resample_dead

    assert checks.run("05.resample_dead", variant()).passed
    for kw, phrase in [({"norm": 1}, "error's *norm*"), ({"uniform": 1}, "reconstructs perfectly"),
                       ({"raw": 1}, "x - b_dec"), ({"no_unit": 1}, "norm 1"), ({"big": 1}, "0.2 times"),
                       ({"keep_bias": 1}, "biases to 0"), ({"touch_live": 1}, "Only the dead features"),
                       ({"in_place": 1}, "in place")]:
        result = checks.run("05.resample_dead", variant(**kw))
        assert not result.passed and phrase in result.message, (kw, result.message)
    for bad in (None, lambda *a: None, lambda *a: (1, 2, 3), lambda *a: 1 / 0):
        assert not checks.run("05.resample_dead", bad).passed


@pytest.fixture(scope="module")
def tennis_setup():
    from mi_course.residual_stream.prompts import HELD_OUT_FIRST_DOC, world_of
    from mi_course.sae import recipes
    model = models.load("gelu-3l-facts", device="cpu")
    sae, cfg = recipes.load("sae-facts-l0")
    tokens, _ = L.labelled_rows(world_of("gelu-3l-facts"), 128, 64, HELD_OUT_FIRST_DOC)
    return model, sae, cfg["hook_name"], tokens


def test_the_tennis_check_scores_on_the_held_out_rows(tennis_setup):
    from mi_course import checks
    from mi_course.sae.exercises import tennis_scores
    model, sae, hook, tokens = tennis_setup
    first = torch.arange(len(tokens)) < len(tokens) // 2
    scores, n = tennis_scores(model, sae, hook, tokens, ~first)
    best = int(scores.argmax())
    assert n >= 5 and scores[best] > 0.95
    answer = lambda feature, picked=first, toks=tokens: (lambda: (model, sae, hook, toks, feature, picked))
    assert checks.run("05.tennis_feature", answer(best)).passed
    sport_word = int(scores.argsort(descending=True)[5])          # a near miss: well below the best held out
    result = checks.run("05.tennis_feature", answer(sport_word))
    assert not result.passed and "held out" in result.message
    result = checks.run("05.tennis_feature", answer(best, torch.ones(len(tokens), dtype=torch.bool)))
    assert not result.passed and "no token is left" in result.message
    result = checks.run("05.tennis_feature", answer(best, toks=tokens.flip(0)))
    assert not result.passed and "labels.labelled_rows" in result.message
    for bad in (None, lambda: None, lambda: (model, sae), answer("tennis"), answer(10**6), lambda: 1 / 0):
        result = checks.run("05.tennis_feature", bad)
        assert not result.passed and result.message


def test_the_tennis_check_needs_a_zoo_model(tennis_setup, gpt2_acts):
    from mi_course import checks
    _, sae, hook, tokens = tennis_setup
    model = gpt2_acts[0]
    result = checks.run("05.tennis_feature", lambda: (model, sae, hook, tokens, 0, torch.arange(len(tokens)) < 64))
    assert not result.passed and "world's hidden labels" in result.message
