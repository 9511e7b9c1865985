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
