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
from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, call_answer_function, randn, register
from ..checks.prediction import Question, register_question
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
    hints=["The neuron reads the residual stream after the MLP's LayerNorm. With folded weights and centred "
           "writers, that LayerNorm only divides the stream by its scale, and the stream is a sum of what each "
           "component writes: so each head's share is what it writes, normalised, read by the neuron's key.",
           "Divide each head's output by that prompt's scale, then take the dot product with w_in; head_out "
           "[heads, batch, d_model] and scale [batch, 1] broadcast."]))


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


# --- 6.5 the linearity-break ratio ------------------------------------------------------------------

def _break_cases(gen: torch.Generator) -> list[Case]:
    known, swapped, unknown = randn(gen, 6, 2, 10), randn(gen, 6, 2, 10), randn(gen, 6, 2, 10)
    a, b, c = randn(gen, 4, 2, 8), randn(gen, 4, 2, 8), randn(gen, 4, 2, 8)       # f(first) + f(last): linear
    lin = lambda i, j: a[:, i] + b[:, j]
    linear = (torch.stack([lin(0, 0), lin(1, 1)], 1), torch.stack([lin(0, 1), lin(1, 0)], 1), c)
    return [Case((known, swapped, unknown), label="6 pairs of people, outputs of size 10"),
            Case(linear, label="a linear function of the two names (must give 0)")]


register(FunctionExercise(
    id="06.linearity_break", title="The linearity-break ratio", reference=lookup.linearity_break,
    cases=_break_cases,
    mistakes=[
        Mistake(lambda k, s, u: (k.sum(1) - s.sum(1)).norm(dim=-1),
                "Divide by the baseline, the same distance to two unrelated unknown names: a distance alone has "
                "no scale (it grows with the size of the outputs)."),
        Mistake(lambda k, s, u: (k.sum(1) - s.sum(1)).norm(dim=-1) ** 2 / (k.sum(1) - u.sum(1)).norm(dim=-1) ** 2,
                "Compare distances, not squared distances."),
        Mistake(lambda k, s, u: (k.sum(1) - s.sum(1)).norm(dim=-1) / (s.sum(1) - u.sum(1)).norm(dim=-1),
                "The baseline compares the *known* names' midpoint with the unknown names' midpoint: the same "
                "reference point as the numerator."),
        Mistake(lambda k, s, u: ((k[:, 0] - k[:, 1]) - (s[:, 0] - s[:, 1])).norm(dim=-1)
                / ((k[:, 0] - k[:, 1]) - (u[:, 0] - u[:, 1])).norm(dim=-1),
                "Compare the *midpoints* (the sums of the two outputs), not the differences between them: for a linear "
                "f, f(A1 B1) + f(A2 B2) = f(A1 B2) + f(A2 B1)."),
    ],
    hints=["If f adds up what each name contributes, f(A1 B1) + f(A2 B2) = f(A1 B2) + f(A2 B1): the four points form "
           "a parallelogram, and the two midpoints coincide.",
           "Numerator: the distance between (known[:, 0] + known[:, 1]) and the same sum for the swapped names; "
           "denominator: the same distance with the unknown names instead. Both per pair: [n]."]))


# --- 6.6 the normalised metric -------------------------------------------------------------------

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
    hints=["Look for an affine map of `value`, one per pair, that sends the corrupted run's logit difference to 0 "
           "and the clean run's to 1. What must you subtract so that the corrupted value becomes 0?",
           "After subtracting, divide by the gap that the clean value has to cover, pair by pair; average over the "
           "pairs only at the end."]))


# --- 6.7 a residual-stream sweep, one patch at a time ----------------------------------------------

_SWEEP_SETUP: dict[str, Any] = {}


def _sweep_setup() -> tuple[Any, Tensor, Any, Any]:
    """The fact model, 4 corrupted prompts, the clean run's cache and the normalised metric (built once)."""
    if not _SWEEP_SETUP:
        from ..residual_stream.prompts import world_fact_prompts
        from ..zoo import models

        model = models.load("gelu-3l-facts", device="cpu")
        p = pairs.make_pairs(world_fact_prompts(), 4, seed=1)
        metric, cache = pairs.normalised_logit_diff(model, p)
        with torch.no_grad():
            _, corrupt_cache = model.run_with_cache(p.corrupt)
        _SWEEP_SETUP.update(model=model, corrupt=p.corrupt, cache=cache, metric=metric, clean=p.clean,
                            corrupt_cache=corrupt_cache)
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


# --- 6.8 attribution patching ----------------------------------------------------------------------

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
    hints=["A first-order Taylor expansion around the corrupted run: the metric moves by the change of the "
           "activation dotted with the gradient there.",
           "The dot product runs over d_head (one head's vector); the metric already averages the pairs, so the "
           "batch is summed, not averaged. What is left is [pos, heads]."]))


# --- 6.9 attribution patching for noising ------------------------------------------------------------

def _model_judge(name: str, reference: Any, mistakes: Any, setup_args: Any, shape_note: str, atol: float = 1e-4):
    """A judge that runs the learner's ``fn(model, ...)`` on 4 prompt pairs of gelu-3l-facts and compares it
    with ``reference`` on the same arguments; ``mistakes(args)`` yields (wrong value, message)."""
    def judge(learner: Any) -> tuple[bool, str]:
        if not callable(learner):
            return False, f"Pass your function `{name}` itself."
        args = setup_args()
        expected = reference(*args)
        out = call_with_timeout(learner, args, timeout=60)
        if out.error:
            return False, f"On gelu-3l-facts with 4 prompt pairs: {out.error}"
        got = out.value
        problem = describe_mismatch(got, expected, atol=atol, rtol=1e-3)
        if problem is None:
            return True, f"{name}: matches the library on gelu-3l-facts ({shape_note}, 4 prompt pairs)."
        for wrong, message in mistakes(args):
            if values_match(got, wrong, atol=atol, rtol=1e-3):
                return False, f"{message}\n({problem})"
        return False, f"On gelu-3l-facts with 4 prompt pairs: {problem}"
    return judge


def _noising_reference(model: Any, clean: Tensor, corrupt_cache: Any, metric: Any) -> Tensor:
    """AtP for noising per head and position: (a_corrupt - a_clean) · ∂M/∂a at the clean run. -> [layers, pos, heads]"""
    names = [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    acts, grads = atp.gradients(model, clean, names, metric)
    return torch.stack([atp.attribution_patching(corrupt_cache, acts, grads, n, (0, 3)) for n in names]).cpu()


def _noising_args() -> tuple:
    model, _, _, metric = _sweep_setup()
    s = _SWEEP_SETUP
    return model, s["clean"], s["corrupt_cache"], metric


def _noising_mistakes(args: tuple):
    model, clean, corrupt_cache, metric = args
    names = [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    right = _noising_reference(*args)
    yield -right, ("The sign: noising moves the clean activation to the corrupted one, so the change is "
                   "a_corrupt - a_clean.")
    corrupt_tokens = _SWEEP_SETUP["corrupt"]
    acts, grads = atp.gradients(model, corrupt_tokens, names, metric)
    at_corrupt = torch.stack([((corrupt_cache[n] - _SWEEP_SETUP["cache"][n]) * grads[n]).sum((0, 3)) for n in names])
    yield at_corrupt.cpu(), ("That gradient was taken on the corrupted run. Noising starts from the clean run: "
                             "linearise there, with the gradient of the metric on the clean prompts.")
    yield -at_corrupt.cpu(), ("That is denoising AtP (gradient on the corrupted run). Noising starts from the clean "
                              "run: run the clean prompts, take the gradient there, and move towards a_corrupt.")


register(CustomExercise(
    id="06.atp_noising", title="Attribution patching for noising", reference=_noising_reference,
    judge=_model_judge("atp_noising", _noising_reference, _noising_mistakes, _noising_args,
                       "layers x positions x heads"),
    hints=["Noising patches a corrupted activation into the *clean* run: write down the same Taylor expansion, "
           "but around the point where that run starts.",
           "`atp.gradients(model, clean, names, metric)` gives the clean run's `hook_z` and their gradients; the "
           "change is `corrupt_cache[name] - a_clean`.",
           "`atp.attribution_patching(corrupt_cache, acts, grads, name, (0, 3))` computes (a_corrupt - a) · grad for one "
           "layer, [pos, heads]; stack the layers."]))


# --- 6.10 the QK fix for queries ------------------------------------------------------------------

def _softmax_rows(q: Tensor, k: Tensor, scale: float, mask: bool = True) -> Tensor:
    T = q.shape[1]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / scale
    if mask:
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1)


def _query_fix_cases(gen: torch.Generator) -> list[Case]:
    def case(b, T, H, e, label, sharp=1.0):
        q, k = randn(gen, b, T, H, e, scale=sharp), randn(gen, b, T, H, e)
        A = _softmax_rows(q, k, e ** 0.5)                       # the corrupted run's pattern
        return Case((randn(gen, b, T, H, e, scale=sharp), k, A, randn(gen, b, H, T, T), e ** 0.5), label=label)
    return [case(2, 5, 3, 4, "2 prompts, 5 positions, 3 heads, d_head 4"),
            case(1, 4, 2, 8, "saturated attention (large queries)", sharp=6.0)]


register(FunctionExercise(
    id="06.query_fix", title="The QK fix for queries", reference=atp.query_fix, cases=_query_fix_cases, atol=1e-4,
    mistakes=[
        Mistake(lambda q, k, A, G, s: ((_softmax_rows(q, k, s, mask=False) - A) * G).sum(-1).sum(0),
                "A query cannot attend to later keys: mask the scores above the diagonal with -inf before the "
                "softmax, as the model does."),
        Mistake(lambda q, k, A, G, s: ((_softmax_rows(q, k, 1.0) - A) * G).sum(-1).sum(0),
                "Divide the scores by `scale` (√d_head) before the softmax, as the model does."),
        Mistake(lambda q, k, A, G, s: (_softmax_rows(q, k, s) * G).sum(-1).sum(0),
                "The estimate is the *change* of the pattern times its gradient: subtract the corrupted pattern."),
        Mistake(lambda q, k, A, G, s: ((_softmax_rows(q, k, s) - A) * G).sum(-2).sum(0),
                "Sum over the keys (the last dimension: one query's row of the pattern), so that what is left is "
                "one value per query position."),
        Mistake(lambda q, k, A, G, s: ((_softmax_rows(q, k, s) - A) * G).sum(-1).mean(0),
                "Sum over the batch: the metric already averages the pairs."),
    ],
    hints=["Restoring the clean query at position p changes only row p of the pattern (the softmax over keys "
           "for that query), and every query position is its own row: all positions can be patched at once.",
           "New scores: the clean queries against the corrupted keys, divided by `scale`, future keys masked with "
           "-inf; softmax over the keys gives the new pattern.",
           "Then linearise from the pattern on: (new pattern - pattern) * grad, summed over the keys and the "
           "batch -> [heads, pos]."]))


# --- 6.11 GradDrop: the runs with one layer's gradient dropped ----------------------------------------

def _graddrop_reference(model: Any, clean_cache: Any, corrupt: Tensor, metric: Any) -> Tensor:
    """GradDrop per head: AtP rerun once per layer with that layer's writes cut from the backward pass,
    combined as sum_l |estimate_l| / (L - 1). -> [layers, heads]"""
    return atp.graddrop_head_attribution(model, clean_cache, corrupt, metric)


def _graddrop_args() -> tuple:
    model, corrupt, cache, metric = _sweep_setup()
    return model, cache, corrupt, metric


def _graddrop_mistakes(args: tuple):
    runs = atp.graddrop_estimates(*args)
    L = runs.shape[0]
    yield runs.sum(0).abs() / max(L - 1, 1), ("Take the absolute value of each run before summing: a node whose effects "
                                             "cancel in one run must be able to show up large in another.")
    yield runs.abs().mean(0), "AtP* divides the sum by L - 1, not L."
    yield (atp.graddrop_combine(atp.graddrop_estimates(*args, parts=("attn",))),
           "Drop the gradient through everything the layer writes to the residual stream: its attention output "
           "*and* its MLP output (`blocks.{l}.hook_mlp_out`).")
    plain = atp.head_attribution(*args).abs()
    yield plain, "That is plain AtP's |estimate|: rerun it once per layer with that layer's writes detached."
    yield plain * L / max(L - 1, 1), ("Every run gives plain AtP's estimate: the gradient was not dropped. Detach the "
                                     "layer's writes *inside* the hooked run (`with model.hooks(fwd_hooks=...)`), so that "
                                     "the backward pass of that run sees the cut.")


register(CustomExercise(
    id="06.graddrop", title="GradDrop", reference=_graddrop_reference,
    judge=_model_judge("graddrop", _graddrop_reference, _graddrop_mistakes, _graddrop_args, "layers x heads"),
    hints=["A forward hook that returns `act.detach()` passes the same numbers on but lets no gradient through. "
           "Put one on what layer l writes to the stream (`blocks.{l}.hook_attn_out` and `blocks.{l}.hook_mlp_out`).",
           "For each l: `with model.hooks(fwd_hooks=cut): acts, grads = atp.gradients(model, corrupt, names, metric)` "
           "with names the layers' `attn.hook_z`; then `atp.attribution_patching(clean_cache, acts, grads, name, "
           "(0, 1, 3))` per layer gives [heads].",
           "Stack the L runs into [L, layers, heads] and combine them with the formula above."]))


# --- 6.12 find it yourself ------------------------------------------------------------------------

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


# --- 6.13 the neurons that carry the fact ------------------------------------------------------------

def _parse_neuron(neuron: Any) -> int | None:
    if isinstance(neuron, str):
        m = re.fullmatch(r"\s*(?:L0N)?(\d+)\s*", neuron.upper())
        return int(m.group(1)) if m else None
    if isinstance(neuron, bool):
        return None
    try:
        value = int(neuron)
    except (TypeError, ValueError, RuntimeError):
        return None
    return value if value == neuron else None


def single_neuron_effects(model: Any, p: pairs.Pairs, layer: int = 0,
                          also: tuple[int, ...] = ()) -> tuple[Tensor, Any, Any]:
    """Exact patching of MLP ``layer``'s neurons one at a time at the last position: every neuron when the MLP has
    at most ``atp.SHORTLIST``, else AtP's shortlist and the neurons in ``also`` (the rest are NaN).
    -> ([d_mlp], metric, clean cache)"""
    metric, cache = pairs.normalised_logit_diff(model, p)
    _, swept, exact = atp.neuron_sweep(model, p.corrupt.to(model.W_E.device), cache, metric, layer, also)
    effects = torch.full((model.cfg.d_mlp,), float("nan"))
    effects[swept] = exact
    return effects, metric, cache


def _judge_lookup_neuron(learner: Any) -> tuple[bool, str]:
    value, problem = call_answer_function(learner, "lookup_neuron")
    if problem is not None:
        return False, problem
    if not (isinstance(value, tuple) and len(value) == 3 and hasattr(value[0], "cfg")
            and isinstance(value[1], pairs.Pairs)):
        return False, "Return `model, p, neuron`: the model, the prompt pairs you patched (a `pairs.Pairs`) and a neuron."
    model, p, named = value
    n = _parse_neuron(named)
    d_mlp = model.cfg.d_mlp
    if n is None or not 0 <= n < d_mlp:
        return False, f"Name one neuron of MLP 0 by its index, an int from 0 to {d_mlp - 1} (or 'L0N123')."
    try:
        effects, metric, cache = single_neuron_effects(model, p, also=(n,))
    except Exception as exc:                                         # a model the check cannot patch
        return False, f"The check could not patch this model: {type(exc).__name__}: {exc}"
    if not torch.isfinite(effects).any():
        return False, ("On your pairs the normalised metric is not a number: a pair's clean and corrupted logit "
                       "differences are equal (its two answers may be one token on this model), so no neuron can be "
                       "ranked. Use pairs whose answers differ.")
    patched = (f"each of MLP 0's {d_mlp} neurons" if d_mlp <= atp.SHORTLIST else
               f"yours and the {atp.SHORTLIST} of MLP 0's {d_mlp} neurons that attribution patching ranks highest")
    swept = int(effects.isfinite().sum())
    effects = effects.nan_to_num(nan=-float("inf"))
    best = int(effects.argmax())
    if effects[n] >= effects[best] - 1e-4:
        second = effects.topk(2).values[1]
        return True, (f"Right: L0N{n} alone brings back {effects[n]:.3f} of the answer (the next best {second:.3f}), "
                      f"recomputed by patching {patched} on your {len(p.clean)} pairs.")
    rank = int((effects > effects[n]).sum()) + 1
    message = (f"L0N{n} brings back {effects[n]:.3f} and ranks {rank} of {swept}; L0N{best} brings back "
               f"{effects[best]:.3f} (the check patched {patched}).")
    try:
        name = "blocks.0.mlp.hook_post"
        acts, grads = atp.gradients(model, p.corrupt.to(model.W_E.device), [name], metric)
        delta = (cache[name] - acts[name])[:, -1]
        if n == int((delta * grads[name][:, -1]).sum(0).argmax()):
            message += (" That is attribution patching's top neuron: a good guide here, but the check asks for the "
                        "exact effect; verify AtP's few best candidates by patching them.")
        elif n == int(delta.abs().mean(0).argmax()):
            message += (" That neuron's activation changes most between the runs, but what matters is what the "
                        "change does downstream, through W_out and the later layers: patch and measure.")
    except Exception:
        pass
    return False, message + " Restore one neuron of `blocks.0.mlp.hook_post` at the last position at a time."


register(CustomExercise(
    id="06.lookup_neuron", title="The neuron that carries the most", reference=None, judge=_judge_lookup_neuron,
    hints=["Restore `blocks.0.mlp.hook_post` from the clean run at the last position, one neuron at a time, and "
           "record the normalised metric; the neuron with the largest value wins.",
           "`patching.neuron_patch_effects(model, p.corrupt, clean_cache, 0, -1, masks, metric)` restores one set "
           "of neurons per row of `masks` ([sets, d_mlp], bool): `torch.eye(d_mlp, dtype=torch.bool)` is one neuron "
           "per row. `pairs.normalised_logit_diff(model, p)` gives the metric and the clean cache."]))


# --- predict, then check -------------------------------------------------------------------------

register_question(Question(
    id="06.denoise_layer", title="Where the answer can be restored",
    prompt="Restore the clean residual stream at the last position only, before one block. From which block's "
           "input on (0, 1, 2, ...) does that alone bring back more than half of the answer?",
    kind="number", abs_tol=0.0,
    advise=lambda answer, truth, context: (
        "Before block 0 the last position holds only its token and its position, the same in both runs: "
        "restoring it changes nothing. The person is somewhere else then." if answer == 0 and truth > 0 else
        f"Earlier: by the input of block {int(truth)} the heads before it have already brought both names to the "
        "last position, so the whole answer can be restored there." if answer > truth else
        "Later: at that point the names have not reached the last position yet." if answer < truth else None),
    explain="Attention has to carry the names to the last position before the stream there holds the person."))

register_question(Question(
    id="06.mlps_over_half", title="How many MLPs restore most of the answer",
    prompt="Restore one MLP's output at the last position from the clean run. How many of the MLPs bring back more "
           "than half of the answer, each on its own?",
    kind="number", abs_tol=0.0,
    advise=lambda answer, truth, context: (
        "One AND, one MLP? A later MLP's clean output was computed *from* MLP 0's clean AND: restoring it copies "
        "that AND in, already amplified. The MLPs form a chain, and patching finds every link."
        if answer < truth else
        "Fewer than that: look at which MLP cannot bring it back." if answer > truth else None),
    explain="Patching one component at a time finds every link of a serial chain, not only the one that makes "
            "the AND."))

register_question(Question(
    id="06.atp_worst_head", title="The head AtP underestimates most",
    prompt="At the last position, which head's exact effect will AtP underestimate most (a head like 'L1H2')?",
    kind="name", pattern=r"L\d+H\d+", example="L1H2",
    advise=lambda answer, truth, context: (
        "Close: both name movers are badly underestimated, and which one is missed more depends on the sample "
        "of pairs." if answer in context.get("name_movers", ()) else
        "A later head moves little of the person: its exact effect is small, so AtP cannot miss much of it. Look "
        "for a large exact effect that sits before a switch." if answer.startswith("L") and answer != truth
        else None),
    explain="The name movers feed MLP 0's AND, which is flat around the corrupted run: the tangent there sees "
            "little of what the exact patch does."))

register_question(Question(
    id="06.atp_worst_mlp", title="The MLP AtP underestimates most",
    prompt="At the last position, which MLP's exact effect will AtP underestimate most (an MLP like 'MLP 2')?",
    kind="name", pattern=r"MLP\d+", example="MLP 2",
    advise=lambda answer, truth, context: (
        "The last MLP has the least network after it, so a tangent describes its effect best." if
        answer == context.get("last") and answer != truth else None),
    explain="The more non-linear network lies after a component, the less of its effect a tangent taken at the "
            "corrupted run can see; the MLP that makes the AND has the whole chain after it."))

register_question(Question(
    id="06.graddrop_change", title="What GradDrop changes",
    prompt="GradDrop reruns AtP with one layer's gradient cut at a time. Its rank agreement with exact patching, per "
           "head, compared with plain AtP's, will ...",
    choices=["rise by more than 0.15", "change by less than 0.15 either way", "fall by more than 0.15"],
    messages={"rise by more than 0.15": "GradDrop rescues nodes whose direct and indirect effects cancel. The "
              "name movers are missed for another reason: their effect passes through a switch (the AND) that is "
              "flat at the corrupted run, and every GradDrop run still linearises there."},
    explain="GradDrop targets cancellation; it cannot fix a tangent taken on the flat side of a switch."))

register_question(Question(
    id="06.neurons_for_half", title="How many neurons the fact needs",
    prompt="Restore MLP 0's neurons at the last position together, the one with the largest effect alone first, "
           "then the next, and so on. How many neurons does it take to bring back half of the answer?",
    kind="number", rel_tol=0.3,
    advise=lambda answer, truth, context: (
        f"Far more: the best single neuron brings back only {context['best']:.3f}. The AND is spread over many "
        "neurons, each contributing a little." if "best" in context and answer < truth / 1.3 else
        "Fewer: the neurons' effects grow together (restoring several does more than the sum of each alone)."
        if answer > truth * 1.3 else None),
    explain="A distributed code: no neuron holds the fact, and the neurons' effects are not additive."))
