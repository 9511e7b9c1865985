"""AtP*'s QK fix on the shipped fact model: a saturated key that plain AtP misses, recomputed from the
weights (nothing hard-coded), and the node tables on the tiny GPT-2."""

from __future__ import annotations

import pytest
import torch

from mi_course.fact_recall import atp, saturation
from mi_course.fact_recall.pairs import Pairs, make_pairs, normalised_logit_diff
from mi_course.residual_stream import prompts
from mi_course.zoo import models


def _name_positions(P: prompts.FactPrompts) -> list[int]:
    """Where the prompts differ from one another: the first and the last name."""
    return (P.tokens != P.tokens[0]).any(0).nonzero()[:, 0].tolist()


@pytest.fixture(scope="module")
def setup():
    """16 clean prompts; each corrupted prompt is another person (another sport) with the names swapped."""
    model = models.load("gelu-3l-facts", device="cpu")
    P = prompts.world_fact_prompts()
    first, last = _name_positions(P)
    p = make_pairs(P, 16, seed=0)
    pairs = Pairs(p.clean, saturation.swap_positions(p.corrupt, first, last), p.answer, p.wrong)
    metric, cache = normalised_logit_diff(model, pairs)
    tables = [f(model, cache, pairs.corrupt, metric) for f in
              (saturation.exact_qk_effects, saturation.plain_qk_atp, saturation.qk_fix_atp)]
    return model, P, pairs, metric, cache, tables


def _saturated_heads(model, tokens: torch.Tensor) -> dict[int, int]:
    """Layer-0 heads whose attention from the last position is nearly one-hot: head -> where it looks."""
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    rows = cache["blocks.0.attn.hook_pattern"][:, :, -1]                     # [batch, heads, key pos]
    saturated = [h for h in range(rows.shape[1]) if rows[:, h].max(-1).values.mean() > 0.95]
    return {h: int(rows[:, h].mean(0).argmax()) for h in saturated}


def test_the_name_movers_are_saturated_and_find_names_by_content(setup):
    """Two layer-0 heads look (almost only) at one name each; with the names swapped they follow the names,
    and the model still answers the person's sport: the corrupted runs know the other person's sport."""
    model, P, pairs, *_ = setup
    first, last = _name_positions(P)
    normal = _saturated_heads(model, P.tokens)
    swapped_tokens = saturation.swap_positions(P.tokens, first, last)
    swapped = _saturated_heads(model, swapped_tokens)
    assert sorted(normal.values()) == [first, last] and normal.keys() == swapped.keys()
    assert all(swapped[h] == (last if normal[h] == first else first) for h in normal)
    with torch.no_grad():
        answers = model(swapped_tokens)[:, -1, P.sports].argmax(-1)
    assert (answers == P.labels).float().mean() > 0.95


def test_atp_misses_a_saturated_key_that_exact_patching_finds(setup):
    model, P, pairs, metric, cache, (exact, plain, fixed) = setup
    node = saturation.missed_node(exact, plain)
    assert node is not None
    layer, kind, head, pos = node
    # the largest effect of any query or key, a key of a name mover at a name's slot
    assert exact[node].abs() == exact.abs().max() and exact[node] > 0.25
    assert (layer, kind) == (0, 1) and head in _saturated_heads(model, P.tokens) and pos in _name_positions(P)
    assert plain[node].abs() < exact[node] / 10                                # AtP: "nothing here"
    # the QK fix puts it first of all 2 x layers x heads x positions nodes, plain AtP far down the list
    assert saturation.verification_rank(fixed, node) == 1
    assert saturation.verification_rank(plain, node) > 5
    assert fixed[node] > 5 * plain[node].abs()
    # ... but it is still several times too small (see the next test for why)
    assert fixed[node] < exact[node] / 3


def test_the_qk_fix_is_the_slope_of_the_exact_pattern_path(setup):
    """The QK fix gets the patched pattern exactly and linearises only after it: it is the slope at t = 0 of the
    metric along corrupted pattern -> patched pattern, and exact patching is the value at t = 1. The path is
    convex (the MLPs and LayerNorms after the head are not linear over so large a change), so the slope
    underestimates."""
    model, P, pairs, metric, cache, (exact, plain, fixed) = setup
    node = saturation.missed_node(exact, plain)
    layer, _, head, _ = node
    before, after = saturation.patterns_before_after(model, cache, pairs.corrupt, node)
    moved = (after - before).abs()
    assert moved[:, [h for h in range(model.cfg.n_heads) if h != head]].max() == 0     # only this head moves
    assert moved[:, head, -1].sum(-1).mean() > 1.0                                     # ... and a long way
    eps = 1e-2
    m0, m1, m_minus, m_plus, m_half = saturation.metric_along_pattern(model, pairs.corrupt, metric, layer, before,
                                                                      after, (0.0, 1.0, -eps, eps, 0.5))
    assert m1 - m0 == pytest.approx(exact[node].item(), abs=1e-4)
    assert (m_plus - m_minus) / (2 * eps) == pytest.approx(fixed[node].item(), rel=0.02)
    assert m_half - m0 < 0.5 * (m1 - m0)


def test_the_qk_fix_tracks_exact_better_than_plain_atp(setup):
    *_, (exact, plain, fixed) = setup

    def pearson(a, b):
        return torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()

    assert pearson(fixed, exact) > pearson(plain, exact) + 0.3
    assert atp.spearman(fixed, exact) > atp.spearman(plain, exact)
    assert (fixed - exact).abs().sum() < (plain - exact).abs().sum()


def test_qk_tables_on_a_tiny_gpt2(tiny_gpt2):
    gpt2 = models.load(str(tiny_gpt2[0]), device="cpu")
    L, H, T = gpt2.cfg.n_layers, gpt2.cfg.n_heads, 6
    corrupt = torch.randint(1, 400, (3, T), generator=torch.Generator().manual_seed(0))
    names = [f"blocks.{l}.attn.hook_{x}" for l in range(L) for x in saturation.QK]
    with torch.no_grad():
        _, cache = gpt2.run_with_cache(corrupt, names_filter=names)

    def metric(logits):
        return logits[:, -1, 5].mean()

    tables = [saturation.exact_qk_effects, saturation.plain_qk_atp, saturation.qk_fix_atp]
    # restoring what is already there changes nothing
    for f in tables:
        result = f(gpt2, cache, corrupt, metric)
        assert result.shape == (L, 2, H, T)
        assert result.abs().max() < 1e-5
    # moving every query and key a little, all three agree; moving them far, the QK fix stays close to exact
    # patching and plain AtP drifts off (in this random model later layers are close to linear)
    errors = {}
    for size in (0.1, 1.0):                                  # queries and keys have a spread of about 0.1
        gen = torch.Generator().manual_seed(1)
        nearby = {n: cache[n] + size * torch.randn(cache[n].shape, generator=gen) for n in names}
        exact, plain, fixed = (f(gpt2, nearby, corrupt, metric) for f in tables)
        scale = exact.abs().max().item()
        assert scale > 1e-5
        errors[size] = ((plain - exact).abs().max().item() / scale, (fixed - exact).abs().max().item() / scale)
    assert max(errors[0.1]) < 0.02
    assert errors[1.0][1] < errors[1.0][0] / 10
    assert saturation.verification_rank(exact, saturation.missed_node(exact, torch.zeros_like(exact))) == 1


def test_atp_misses_the_name_movers_whatever_the_sample():
    """AtP against exact patching per head, on 32 pairs drawn from two seeds. The rank agreement is not a stable
    number on this model (Spearman from -0.01 to 0.87 over four samples of 32 pairs; it was once asserted >= 0.8
    on the one sample that gave it). What holds on every sample: the two heads that matter most, the name movers
    L0H0 and L0H3, get AtP estimates under half their exact effect, because the AND that uses their output
    sits downstream, where a tangent at the corrupted run sees nothing."""
    from mi_course.fact_recall import patching

    model = models.load("gelu-3l-facts", device="cpu")
    L, H = model.cfg.n_layers, model.cfg.n_heads
    for seed in (0, 1):
        p = make_pairs(prompts.world_fact_prompts(), 32, seed)
        metric, cache = normalised_logit_diff(model, p)
        exact = patching.patch_sweep(model, p.corrupt, cache, patching.head_sites(L, H), metric).view(L, H)
        estimate = atp.head_attribution(model, cache, p.corrupt, metric)
        top = {(int(i) // H, int(i) % H) for i in exact.flatten().topk(2).indices}
        assert top == {(0, 0), (0, 3)}, (seed, top)
        for layer, head in top:
            assert exact[layer, head] > 0.3
            assert estimate[layer, head].abs() < 0.5 * exact[layer, head], (seed, layer, head)
