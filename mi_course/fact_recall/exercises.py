"""Exercises for chapter 06, fact recall.

The formula exercises are checked on seeded random tensors of the shapes a model gives, with the
known mistakes named. "Find it yourself" is checked against the model the notebook runs: the
check patches that model's MLP outputs itself and compares the learner's answer with what
it finds (nothing is hard-coded).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from ..checks.compare import describe_mismatch, values_match
from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, randn, register
from ..checks.sandbox import call_with_timeout
from . import atp, lookup, neurons, pairs, patching


# --- 6.1 the contexts that trigger a neuron (its key) ------------------------------------------------

def _top_cases(gen: torch.Generator) -> list[Case]:
    acts = randn(gen, 6, 9)
    ties = torch.zeros(3, 4)
    ties[1, 2], ties[2, 0] = 5.0, 4.0
    return [Case((acts, 5), label="activations [6 rows, 9 positions], k = 5"),
            Case((acts, 1), label="k = 1"),
            Case((ties, 2), label="mostly zeros, two clear maxima")]


register(FunctionExercise(
    id="06.top_positions", title="A neuron's top activating positions", reference=neurons.top_positions,
    cases=_top_cases,
    mistakes=[Mistake(lambda acts, k: torch.stack([acts.flatten().topk(k).indices % acts.shape[0],
                                                   acts.flatten().topk(k).indices // acts.shape[0]], dim=1),
                      "Row and position are mixed up: a flat index i of [rows, pos] is row i // pos, position i % pos."),
              Mistake(lambda acts, k: torch.stack([acts.flatten().topk(k, largest=False).indices // acts.shape[1],
                                                   acts.flatten().topk(k, largest=False).indices % acts.shape[1]], dim=1),
                      "Those are the smallest activations: topk is largest-first by default.")],
    hints=["acts.flatten().topk(k).indices gives flat indices, largest first.",
           "torch.stack([flat // acts.shape[1], flat % acts.shape[1]], dim=1)"]))


# --- 6.2 next-token neurons: the top neuron per token -----------------------------------------------

def _neuron_cases(gen: torch.Generator) -> list[Case]:
    cong = randn(gen, 20, 30)
    cong[7, 4] = 9.0                                                   # a planted next-token neuron
    return [Case((cong, torch.tensor([4, 10, 11])), label="congruence [20 neurons, 30 tokens], 3 tokens of interest"),
            Case((randn(gen, 5, 8), torch.tensor([0])), label="one token")]


register(FunctionExercise(
    id="06.top_neuron_per_token", title="The top neuron per token", reference=neurons.top_neuron_per_token,
    cases=_neuron_cases, atol=1e-4,
    mistakes=[Mistake(lambda cong, tokens: (cong[:, tokens].argmax(0), cong[:, tokens].max(0).values),
                      "The second output is a z-score, not the raw congruence: how far the token stands out "
                      "among all the tokens of that neuron, (value - mean) / std over the neuron's row."),
              Mistake(lambda cong, tokens: (cong[:, tokens].argmax(0),
                                            (cong[cong[:, tokens].argmax(0)].gather(-1, tokens[:, None])[:, 0]
                                             - cong[:, tokens].mean(0)) / cong[:, tokens].std(0)),
                      "The z-score is over the best neuron's own row (all the tokens it could promote), "
                      "not over the neurons for this token.")],
    hints=["best = cong[:, tokens].argmax(0): for each token, the neuron with the largest congruence.",
           "row = cong[best] is [k, vocab]; z = (row.gather(-1, tokens[:, None])[:, 0] - row.mean(-1)) / row.std(-1)."]))


# --- 6.3 head attribution for a neuron -------------------------------------------------------------

def _attribution_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 4, 6, 8), torch.rand(6, 1, generator=gen) + 0.5, randn(gen, 8)),
                 label="4 heads, 6 prompts, d_model 8")]


register(FunctionExercise(
    id="06.head_attribution", title="Head attribution for a neuron", reference=neurons.head_attribution,
    cases=_attribution_cases,
    mistakes=[Mistake(lambda head_out, scale, w_in: head_out @ w_in,
                      "The neuron reads the residual stream after the MLP's LayerNorm: divide each head's output "
                      "by that prompt's LayerNorm scale before the dot product."),
              Mistake(lambda head_out, scale, w_in: (head_out * scale) @ w_in,
                      "LayerNorm divides by its scale (the residual stream's norm), it does not multiply.")],
    hints=["head_out is [heads, batch, d_model] and scale [batch, 1]: they broadcast.",
           "(head_out / scale) @ w_in"]))


# --- 6.4 the non-linear excess --------------------------------------------------------------------

def _excess_cases(gen: torch.Generator) -> list[Case]:
    return [Case(tuple(randn(gen, 10) for _ in range(4)), label="10 people")]


register(FunctionExercise(
    id="06.nonlinear_excess", title="The non-linear excess", reference=lookup.nonlinear_excess,
    cases=_excess_cases,
    mistakes=[Mistake(lambda a, b, c, d: a - b - c - d,
                      "The last term's sign: both middle terms already contain the baseline E(¬A,¬B), so it is "
                      "added back: E(A,B) - E(¬A,B) - E(A,¬B) + E(¬A,¬B)."),
              Mistake(lambda a, b, c, d: a - b - c,
                      "Without + E(¬A,¬B) an additive model does not score 0; add the baseline back.")],
    hints=["If the logit were f(A) + g(B) + c, the excess must be exactly 0: check your signs on that case."]))


# --- 6.5 the normalised metric -------------------------------------------------------------------

def _metric_cases(gen: torch.Generator) -> list[Case]:
    clean, corrupt = randn(gen, 8) + 4, randn(gen, 8) - 4
    return [Case((randn(gen, 8), clean, corrupt), label="8 prompts"),
            Case((clean.clone(), clean, corrupt), label="the clean run itself (must give 1)"),
            Case((corrupt.clone(), clean, corrupt), label="the corrupted run itself (must give 0)")]


register(FunctionExercise(
    id="06.normalised_metric", title="The normalised logit difference", reference=patching.normalised_metric,
    cases=_metric_cases,
    mistakes=[Mistake(lambda v, c, r: ((v - c) / (r - c)).mean(),
                      "Clean and corrupted are swapped: the corrupted run must score 0 and the clean run 1."),
              Mistake(lambda v, c, r: (v.mean() - r.mean()) / (c.mean() - r.mean()),
                      "You normalised the batch's mean logit difference. That is a common convention too (ARENA and "
                      "TransformerLens's attribution-patching demo do it), but this chapter normalises each pair and "
                      "then averages, so that every pair counts equally. Normalise per pair, then take the mean. "
                      "(Per pair is unstable when a pair's clean and corrupted logit differences are close.)")],
    hints=["(value - corrupt) / (clean - corrupt), per prompt, then .mean()."]))


# --- 6.6 a residual-stream sweep, one patch at a time ----------------------------------------------

_SWEEP_SETUP: dict[str, Any] = {}


def _sweep_setup() -> tuple[Any, Tensor, Any, Any]:
    """The fact model, 4 corrupted prompts, the clean run's cache and the normalised metric (built once)."""
    if not _SWEEP_SETUP:
        from ..residual_stream.prompts import world_fact_prompts
        from ..zoo import models

        model = models.load("gelu-3l-facts", device="cpu")
        p = pairs.make_pairs(world_fact_prompts(), 4, seed=1)
        metric, cache = pairs.normalised_logit_diff(model, p)
        _SWEEP_SETUP.update(model=model, corrupt=p.corrupt, cache=cache, metric=metric)
    s = _SWEEP_SETUP
    return s["model"], s["corrupt"], s["cache"], s["metric"]


def _sweep_at(model: Any, corrupt: Tensor, cache: Any, metric: Any, hook: str) -> Tensor:
    L, T = model.cfg.n_layers, corrupt.shape[1]
    sites = [patching.Site(hook.format(l), p) for l in range(L) for p in range(T)]
    return patching.patch_sweep(model, corrupt, cache, sites, metric).view(L, T)


def _whole_layer(model: Any, corrupt: Tensor, cache: Any, metric: Any) -> Tensor:
    """The mistake of restoring every position of a layer at once (one value per layer, repeated)."""
    L, T = model.cfg.n_layers, corrupt.shape[1]
    sites = [patching.Site(f"blocks.{l}.hook_resid_pre") for l in range(L)]
    return patching.patch_sweep(model, corrupt, cache, sites, metric)[:, None].expand(L, T)


def _patch_residual_reference(model: Any, corrupt: Tensor, clean_cache: Any, metric: Any) -> Tensor:
    """The sweep, batched by the library: ``resid_pre`` of each layer restored at each position. -> [layers, pos]"""
    return _sweep_at(model, corrupt, clean_cache, metric, "blocks.{}.hook_resid_pre")


_SWEEP_MISTAKES = (
    (lambda *a: _sweep_at(*a, "blocks.{}.hook_resid_post"),
     "Those are the streams *after* each block (`hook_resid_post`): the sweep restores `blocks.{layer}.hook_resid_pre`, "
     "the stream each block reads."),
    (_whole_layer, "Each row has one value: you restored every position of the layer at once. Restore one position "
                   "at a time: `act[:, pos] = clean_cache[name][:, pos]`."),
)


def _judge_patch_residual(learner: Any) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `patch_residual` itself."
    model, corrupt, cache, metric = _sweep_setup()
    expected = _patch_residual_reference(model, corrupt, cache, metric)
    before = corrupt.clone()
    out = call_with_timeout(learner, (model, corrupt, cache, metric), timeout=60)
    if out.error:
        return False, f"On gelu-3l-facts with 4 prompt pairs: {out.error}"
    if not torch.equal(before, corrupt):
        corrupt.copy_(before)
        return False, "Your function changed `corrupt` in place: clone the activation inside the hook instead."
    got = out.value
    problem = describe_mismatch(got, expected, atol=1e-4, rtol=1e-4)
    if problem is None:
        return True, (f"Residual-stream sweep: matches the library's batched sweep on gelu-3l-facts "
                      f"({expected.shape[0]} layers x {expected.shape[1]} positions, 4 prompt pairs).")
    for wrong, message in _SWEEP_MISTAKES:
        if values_match(got, wrong(model, corrupt, cache, metric), atol=1e-4, rtol=1e-4):
            return False, f"{message}\n({problem})"
    if isinstance(got, Tensor) and got.shape == expected.shape and values_match(got, 1 - expected, atol=1e-4, rtol=1e-4):
        return False, "The values are 1 minus the right ones: return the metric itself (0 corrupted, 1 clean)."
    return False, f"On gelu-3l-facts with 4 prompt pairs: {problem}"


register(CustomExercise(
    id="06.patch_residual", title="A residual-stream patching sweep", reference=_patch_residual_reference,
    judge=_judge_patch_residual,
    hints=["For each layer l and position p: run the corrupted prompts with a hook on `blocks.{l}.hook_resid_pre` "
           "that returns a copy of the activation with `[:, p]` taken from `clean_cache`; record `metric(logits)`.",
           "`model.run_with_hooks(corrupt, fwd_hooks=[(name, hook)])`; the hook is `def hook(act, hook): act = "
           "act.clone(); act[:, p] = clean_cache[name][:, p]; return act`. Return a [layers, pos] tensor."]))


# --- 6.7 attribution patching ----------------------------------------------------------------------

def _atp_reference(clean: Tensor, corrupt: Tensor, grad: Tensor) -> Tensor:
    """AtP per head and position: (a_clean - a_corrupt) · grad, summed over batch and d_head.
    clean, corrupt, grad: [batch, pos, heads, d_head] -> [pos, heads]"""
    return atp.attribution_patching({"z": clean}, {"z": corrupt}, {"z": grad}, "z", (0, 3))


def _atp_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 3, 5, 4, 6), randn(gen, 3, 5, 4, 6), randn(gen, 3, 5, 4, 6)),
                 label="hook_z of 3 prompts, 5 positions, 4 heads, d_head 6")]


register(FunctionExercise(
    id="06.attribution_patching", title="Attribution patching", reference=_atp_reference, cases=_atp_cases,
    mistakes=[Mistake(lambda c, r, g: ((r - c) * g).sum(dim=(0, 3)),
                      "The sign: denoising moves the corrupted activation to the clean one, so the change is "
                      "a_clean - a_corrupt."),
              Mistake(lambda c, r, g: (c * g).sum(dim=(0, 3)),
                      "The estimate is the *change* of the activation times the gradient: (a_clean - a_corrupt) · grad."),
              Mistake(lambda c, r, g: ((c - r) * g).mean(dim=(0, 3)),
                      "Sum over d_head (it is a dot product) and over the batch (the metric sums the prompts' "
                      "contributions), do not average.")],
    hints=["A first-order Taylor expansion: M(a_clean) ≈ M(a_corrupt) + (a_clean - a_corrupt) · ∂M/∂a.",
           "((clean - corrupt) * grad).sum(dim=(0, 3))"]))


# --- 6.8 GradDrop: combining the dropped-layer estimates ---------------------------------------------

def _graddrop_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 3, 3, 4),), label="3 dropped layers, estimates for 3 x 4 heads"),
            Case((randn(gen, 1, 5),), label="a one-layer model (L - 1 = 0: divide by 1)")]


register(FunctionExercise(
    id="06.graddrop_combine", title="GradDrop", reference=atp.graddrop_combine, cases=_graddrop_cases,
    mistakes=[Mistake(lambda e: e.sum(0).abs() / max(e.shape[0] - 1, 1),
                      "Take the absolute value of each run before summing: the point is that a node whose effects "
                      "cancel in one run can show up large in another."),
              Mistake(lambda e: e.abs().mean(0),
                      "AtP* divides the sum by L - 1, not L (and by 1 for a single layer).")],
    hints=["estimates.abs().sum(0) / max(L - 1, 1)"]))


# --- 6.9 find it yourself ------------------------------------------------------------------------

def _parse_site(site: Any) -> tuple[int, int] | None:
    if isinstance(site, str):
        m = re.fullmatch(r"\s*\(?\s*(\d+)\s*,\s*(-?\d+)\s*\)?\s*", site)
        return (int(m.group(1)), int(m.group(2))) if m else None
    try:
        layer, pos = site
        return int(layer), int(pos)
    except (TypeError, ValueError):
        return None


def _judge_lookup(learner: Any) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `find_lookup` itself (it returns the model and your answer)."
    out = call_with_timeout(learner, timeout=60)
    if out.error:
        return False, out.error
    if not (isinstance(out.value, tuple) and len(out.value) == 2 and hasattr(out.value[0], "cfg")):
        return False, "Return `model, sites`: the model you studied and a set of (layer, position) pairs."
    model, sites = out.value
    try:
        parsed = [_parse_site(s) for s in sites]
    except TypeError:
        return False, "`sites` must be a set of (layer, position) pairs, e.g. {(1, 7), (2, 7)}."
    if None in parsed:
        return False, "Write each site as a (layer, position) pair of ints, e.g. (1, 7)."
    T = None
    try:
        truth = pairs.true_lookup_sites(model)
        T = pairs.fact_prompts(model).tokens.shape[1]
    except Exception as exc:                                         # a model the check cannot patch
        return False, f"The check could not patch this model: {type(exc).__name__}: {exc}"
    named = {(l, p % T) for l, p in parsed}
    missing, extra = sorted(truth - named), sorted(named - truth)
    problems = []
    if missing:
        problems.append("missing (restoring that MLP output alone brings back more than half): "
                        + ", ".join(map(str, missing)))
    if extra:
        problems.append("not lookup sites (half or less comes back): " + ", ".join(map(str, extra)))
    if problems:
        return False, "Not quite: " + "; ".join(problems) + ". Look again at the MLP sweep."
    return True, f"Right: {', '.join(map(str, sorted(truth)))} (recomputed by patching the model)."


register(CustomExercise(
    id="06.find_lookup", title="Find where the sport is looked up", reference=None, judge=_judge_lookup,
    hints=["Use the MLP-output sweep (layers x positions): a site counts when restoring that MLP's output there "
           "alone brings back more than half of the clean behaviour (normalised metric > 0.5).",
           "Positions count from 0 at BOS; negative positions count from the end."]))
