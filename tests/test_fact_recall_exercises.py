"""Chapter 06's "find it yourself" check: it patches the model it is given, names what is missing or extra,
and never crashes on an answer it cannot read or a model it cannot patch."""

from __future__ import annotations

import torch

from mi_course import checks
from mi_course.fact_recall import pairs, patching
from mi_course.zoo import models


def test_the_lookup_is_found_by_patching_the_mlps():
    model = models.load("gelu-3l-facts", device="cpu")
    P = pairs.make_pairs(pairs.fact_prompts(model), 16)
    mlp = pairs.sweep(model, P, "mlp")
    truth = pairs.true_lookup_sites(model)
    assert truth == patching.lookup_sites(mlp) and truth                 # the same sweep, above one half
    T = P.clean.shape[1]
    assert all(p == T - 1 for _, p in truth)                             # the sport is computed at the last position
    assert checks.run("06.find_lookup", lambda: (model, truth)).passed
    as_negative = {(l, p - T) for l, p in truth}                         # positions from the end are accepted
    assert checks.run("06.find_lookup", lambda: (model, as_negative)).passed
    first, *rest = sorted(truth)
    missing = checks.run("06.find_lookup", lambda: (model, set(rest) | {(0, 1)}))
    assert not missing.passed and str(first) in missing.message and "(0, 1)" in missing.message
    for bad in ("x", 3, None):
        result = checks.run("06.find_lookup", lambda: (model, bad))
        assert not result.passed and "(layer, position)" in result.message


def test_find_lookup_runs_on_a_hub_like_model(tiny_gpt2):
    model = models.load(str(tiny_gpt2[0]), device="cpu")
    truth = pairs.true_lookup_sites(model, n=4)
    assert checks.run("06.find_lookup", lambda: (model, truth)).passed


def test_pairs_differ_in_sport():
    from mi_course.residual_stream.prompts import world_fact_prompts
    P = world_fact_prompts()
    p = pairs.make_pairs(P, 32, seed=1)
    assert (p.answer != p.wrong).all() and p.clean.shape == p.corrupt.shape == (32, P.tokens.shape[1])
    assert torch.equal(pairs.make_pairs(P, 32, seed=1).clean, p.clean)


def _loop_sweep(hook_name: str):
    """A learner's residual sweep, one hooked forward pass per (layer, position), at ``hook_name``."""
    def patch_residual(model, corrupt, clean_cache, metric):
        L, T = model.cfg.n_layers, corrupt.shape[1]
        out = torch.zeros(L, T)
        for layer in range(L):
            name = hook_name.format(layer)
            for pos in range(T):
                def restore(act, hook, pos=pos, name=name):
                    act = act.clone()
                    act[:, pos] = clean_cache[name][:, pos]
                    return act
                out[layer, pos] = metric(model.run_with_hooks(corrupt, fwd_hooks=[(name, restore)])).item()
        return out
    return patch_residual


def test_the_residual_sweep_check_knows_the_usual_mistakes():
    assert checks.run("06.patch_residual", _loop_sweep("blocks.{}.hook_resid_pre")).passed
    after = checks.run("06.patch_residual", _loop_sweep("blocks.{}.hook_resid_post"))
    assert not after.passed and "hook_resid_post" in after.message

    def whole_layer(model, corrupt, clean_cache, metric):
        rows = []
        for layer in range(model.cfg.n_layers):
            name = f"blocks.{layer}.hook_resid_pre"
            logits = model.run_with_hooks(corrupt, fwd_hooks=[(name, lambda act, hook, name=name: clean_cache[name])])
            rows.append(metric(logits).item())
        return torch.tensor(rows)[:, None].expand(-1, corrupt.shape[1])

    result = checks.run("06.patch_residual", whole_layer)
    assert not result.passed and "one position at a time" in result.message

    def mutates(model, corrupt, clean_cache, metric):
        corrupt[:, 1] = 0
        return torch.zeros(model.cfg.n_layers, corrupt.shape[1])

    result = checks.run("06.patch_residual", mutates)
    assert not result.passed and "in place" in result.message
    assert checks.run("06.patch_residual", _loop_sweep("blocks.{}.hook_resid_pre")).passed   # the inputs were restored
    for bad in (lambda *a: 1 / 0, lambda *a: None, "not a function"):
        assert not checks.run("06.patch_residual", bad).passed


# --- issue 24: the neuron that carries the most, the model-level AtP exercises, the QK fix ------------

def test_restoring_neurons_matches_hooked_patching():
    """The batched neuron patch (an edit of the stream after the MLP, resumed) gives the numbers of a plain
    hooked sweep over `mlp.hook_post`, for single neurons and for sets of them."""
    model = models.load("gelu-3l-facts", device="cpu")
    p = pairs.make_pairs(pairs.fact_prompts(model), 4, seed=2)
    metric, cache = pairs.normalised_logit_diff(model, p)
    T, d = p.clean.shape[1], model.cfg.d_mlp
    chosen = [0, 7, 100, d - 1]
    single = patching.neuron_patch_effects(model, p.corrupt, cache, 0, -1, torch.eye(d, dtype=torch.bool)[chosen], metric)
    hooked = patching.patch_sweep(model, p.corrupt, cache, [patching.Site("blocks.0.mlp.hook_post", T - 1, n)
                                                            for n in chosen], metric)
    assert torch.allclose(single, hooked, atol=1e-5)
    every = patching.neuron_patch_effects(model, p.corrupt, cache, 1, T - 1, torch.ones(1, d, dtype=torch.bool), metric)
    whole = patching.patch_sweep(model, p.corrupt, cache, [patching.Site("blocks.1.hook_mlp_out", T - 1)], metric)
    assert torch.allclose(every, whole, atol=1e-5)              # all neurons restored = the MLP's output restored


def test_the_neuron_check_patches_the_model_it_is_given():
    from mi_course.fact_recall.exercises import single_neuron_effects
    model = models.load("gelu-3l-facts", device="cpu")
    p = pairs.make_pairs(pairs.fact_prompts(model), 8, seed=3)
    effects, _, _ = single_neuron_effects(model, p)
    best, second = effects.topk(2).indices.tolist()
    for answer in (best, f"L0N{best}", torch.tensor(best)):
        assert checks.run("06.lookup_neuron", lambda a=answer: (model, p, a)).passed
    near = checks.run("06.lookup_neuron", lambda: (model, p, second))
    assert not near.passed and "ranks 2" in near.message and f"L0N{best}" in near.message
    for bad in (None, "x", -1, model.cfg.d_mlp, 2.5, True):
        result = checks.run("06.lookup_neuron", lambda b=bad: (model, p, b))
        assert not result.passed and "index" in result.message
    for bad_return in (lambda: None, lambda: (model, None, best), lambda: 1 / 0, "not a function"):
        assert not checks.run("06.lookup_neuron", bad_return).passed


def test_the_neuron_check_runs_on_a_hub_like_model(tiny_gpt2):
    from mi_course.fact_recall.exercises import single_neuron_effects
    model = models.load(str(tiny_gpt2[0]), device="cpu")
    p = pairs.make_pairs(pairs.fact_prompts(model), 4)
    effects, _, _ = single_neuron_effects(model, p)
    assert effects.shape == (model.cfg.d_mlp,)
    assert checks.run("06.lookup_neuron", lambda: (model, p, int(effects.argmax()))).passed


def test_graddrop_and_noising_checks_name_their_mistakes():
    from mi_course.fact_recall import exercises as E
    for exercise, mistakes, args in (("06.graddrop", E._graddrop_mistakes, E._graddrop_args()),
                                     ("06.atp_noising", E._noising_mistakes, E._noising_args())):
        assert checks.run(exercise, checks.get(exercise).reference).passed
        for wrong, message in mistakes(args):
            result = checks.run(exercise, lambda *a, w=wrong: w.clone())
            assert not result.passed and message in result.message, (exercise, message)
        for bad in (lambda *a: None, lambda *a: 1 / 0, "x", lambda *a: torch.zeros(2), lambda *a: float("nan")):
            assert not checks.run(exercise, bad).passed


def test_graddrop_runs_cut_the_gradient():
    """Each GradDrop run differs from plain AtP (the cut is real), and their combination is the library's score."""
    from mi_course.fact_recall import atp
    from mi_course.fact_recall.exercises import _graddrop_args
    args = _graddrop_args()
    runs = atp.graddrop_estimates(*args)
    plain = atp.head_attribution(*args)
    assert runs.shape == (3, 3, 4) and all(not torch.allclose(r, plain) for r in runs[:-1])
    assert torch.allclose(atp.graddrop_combine(runs), atp.graddrop_head_attribution(*args))


def test_the_neuron_check_says_when_the_metric_is_not_a_number():
    model = models.load("gelu-3l-facts", device="cpu")
    p = pairs.make_pairs(pairs.fact_prompts(model), 4, seed=3)
    same = pairs.Pairs(p.clean, p.corrupt, p.answer, p.answer)         # answer == wrong: 0 / 0 on every pair
    result = checks.run("06.lookup_neuron", lambda: (model, same, 0))
    assert not result.passed and "not a number" in result.message


def test_on_a_large_mlp_the_neuron_check_patches_atps_shortlist_and_the_answer(monkeypatch):
    from mi_course.fact_recall import atp
    from mi_course.fact_recall.exercises import single_neuron_effects
    model = models.load("gelu-3l-facts", device="cpu")
    p = pairs.make_pairs(pairs.fact_prompts(model), 8, seed=5)
    full, _, _ = single_neuron_effects(model, p)                   # 512 neurons: every one is patched
    assert full.isfinite().all()
    monkeypatch.setattr(atp, "SHORTLIST", 32)                       # now MLP 0 counts as large
    listed, _, _ = single_neuron_effects(model, p)
    assert int(listed.isfinite().sum()) == 32
    outside = int((~listed.isfinite()).nonzero()[0])                # a neuron AtP does not shortlist
    short, _, _ = single_neuron_effects(model, p, also=(outside,))
    patched = short.isfinite()
    assert int(patched.sum()) == 33 and patched[outside]
    assert torch.allclose(short[patched], full[patched], atol=1e-6)  # the same exact effects, only fewer
    assert full[patched].max() >= full.topk(5).values[-1]            # AtP's shortlist holds a top-5 neuron
    wrong = checks.run("06.lookup_neuron", lambda: (model, p, outside))
    assert not wrong.passed and "of 33;" in wrong.message and "attribution patching ranks highest" in wrong.message
