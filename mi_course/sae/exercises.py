"""Exercises for chapter 05, sparse autoencoders.

Each exercise is checked on small seeded random tensors with the shapes an SAE would give
(plus edge cases), known mistakes get their own message, and hints go from a nudge to most
of the answer. References are the functions of this package. The ghost-grads loss is
checked on its value *and* its gradients, since its mistakes (a missing ``detach``) often
leave the value unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from ..checks.compare import describe_mismatch
from ..checks.exercise import (Case, CustomExercise, FunctionExercise, Mistake, arg_names, call_answer_function,
                              changed_in_place, clone_args, randn, register)
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout
from ..seed import stream
from . import autointerp, dashboard, dead, evaluate, ito, labels, model, steering, toy



def _unit_rows(gen: torch.Generator, n: int, d: int) -> Tensor:
    return model.unit_rows(randn(gen, n, d))


def _sae_weights(gen: torch.Generator, d_in: int, d_sae: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    W_dec = _unit_rows(gen, d_sae, d_in)
    return randn(gen, d_in, d_sae, scale=0.5), randn(gen, d_sae, scale=0.3), W_dec, randn(gen, d_in, scale=0.5)


# --- 5.1 the forward pass ---------------------------------------------------------------

def _forward_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for batch, d_in, d_sae in [(8, 6, 10), (5, 4, 12), (1, 3, 7)]:
        cases.append(Case((randn(gen, batch, d_in), *_sae_weights(gen, d_in, d_sae)),
                          label=f"random x and weights (batch {batch}, d_in {d_in}, d_sae {d_sae})"))
    W_enc, _, W_dec, b_dec = _sae_weights(gen, 4, 6)
    cases.append(Case((randn(gen, 3, 4), W_enc, torch.full((6,), -50.0), W_dec, b_dec),
                      label="a very negative b_enc (no feature fires, so x_hat = b_dec)"))
    return cases


def _no_pre_bias(x, W_enc, b_enc, W_dec, b_dec):
    f = torch.relu(x @ W_enc + b_enc)
    return f, f @ W_dec + b_dec


def _no_dec_bias(x, W_enc, b_enc, W_dec, b_dec):
    f = torch.relu((x - b_dec) @ W_enc + b_enc)
    return f, f @ W_dec


def _no_relu(x, W_enc, b_enc, W_dec, b_dec):
    f = (x - b_dec) @ W_enc + b_enc
    return f, f @ W_dec + b_dec


register(FunctionExercise(
    id="05.sae_forward", title="The SAE's forward pass", reference=model.sae_forward, cases=_forward_cases,
    mistakes=[
        Mistake(_no_pre_bias, "The pre-encoder bias is missing: the encoder sees x - b_dec, "
                              "f = ReLU((x - b_dec) @ W_enc + b_enc)."),
        Mistake(_no_dec_bias, "The decoder bias is missing: x_hat = f @ W_dec + b_dec."),
        Mistake(_no_relu, "The ReLU is missing: feature activations are non-negative, f = ReLU(...)."),
    ],
    hints=["Shapes: x is [batch, d_in], W_enc [d_in, d_sae], W_dec [d_sae, d_in]; so x @ W_enc is [batch, d_sae].",
           "Subtract b_dec from x before the encoder, add b_enc, apply torch.relu: that is f.",
           "x_hat = f @ W_dec + b_dec. Return the tuple (f, x_hat)."]))


# --- 5.2 the loss -----------------------------------------------------------------------

def _loss_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for batch, d_in, d_sae, l1 in [(16, 6, 10, 0.3), (7, 4, 12, 1.0), (32, 8, 5, 0.05)]:
        x = randn(gen, batch, d_in)
        x_hat = x + randn(gen, batch, d_in, scale=0.3)
        f = torch.relu(randn(gen, batch, d_sae))
        cases.append(Case((x, x_hat, f, l1), label=f"random x, x_hat and f (batch {batch}, d_in {d_in}, "
                                                   f"d_sae {d_sae}, l1_coeff {l1})"))
    return cases


register(FunctionExercise(
    id="05.sae_loss", title="The SAE's loss", reference=model.sae_loss, cases=_loss_cases,
    mistakes=[
        Mistake(lambda x, x_hat, f, l1: ((x - x_hat) ** 2).sum(-1).mean() + l1 * f.abs().sum(),
                "The L1 term is summed over the whole batch, so it grows with the batch size while the "
                "reconstruction term does not. Normalise it per token: sum |f| over the features, then "
                "average over the batch."),
        Mistake(lambda x, x_hat, f, l1: ((x - x_hat) ** 2).sum(-1).mean() + l1 * f.abs().mean(),
                "The L1 term is averaged over the features too, so it shrinks as the SAE gets wider. It is "
                "Σ_i |f_i| per token: sum over the features, average over the batch."),
        Mistake(lambda x, x_hat, f, l1: ((x - x_hat) ** 2).mean() + l1 * f.abs().sum(-1).mean(),
                "The reconstruction error is averaged over d_in; it is the squared norm ||x - x_hat||² "
                "per token: sum over d_in, then average over the batch."),
        Mistake(lambda x, x_hat, f, l1: ((x - x_hat) ** 2).sum(-1).mean() + l1 * (f ** 2).sum(-1).mean(),
                "The sparsity penalty squares f (an L2 penalty); it is the L1 norm, Σ_i |f_i|."),
    ],
    hints=["Two terms, both per token and then averaged over the batch: the squared error and the L1 norm of f.",
           "((x - x_hat) ** 2).sum(-1) is [batch]; so is f.abs().sum(-1).",
           "loss = ((x - x_hat) ** 2).sum(-1).mean() + l1_coeff * f.abs().sum(-1).mean()"]))


# --- 5.3 keeping the decoder unit-norm ------------------------------------------------------

def _parallel_cases(gen: torch.Generator) -> list[Case]:
    W = _unit_rows(gen, 10, 6)
    parallel = W * randn(gen, 10, 1)
    return [
        Case((W, randn(gen, 10, 6)), label="unit-norm rows (10 features in 6 dims) and a random gradient"),
        Case((_unit_rows(gen, 5, 8), randn(gen, 5, 8)), label="unit-norm rows (5 features in 8 dims)"),
        Case((W, parallel), label="a gradient parallel to every row (nothing should be left)"),
        Case((randn(gen, 7, 4, scale=2.0), randn(gen, 7, 4)),
             label="rows that are not unit-norm (divide each row by its norm first)"),
    ]


def _parallel_unnormalised(W_dec, grad):
    return grad - (grad * W_dec).sum(-1, keepdim=True) * W_dec


def _parallel_columns(W_dec, grad):
    unit = W_dec / W_dec.norm(dim=0, keepdim=True)
    return grad - (grad * unit).sum(0, keepdim=True) * unit


def _only_parallel(W_dec, grad):
    unit = model.unit_rows(W_dec)
    return (grad * unit).sum(-1, keepdim=True) * unit


register(FunctionExercise(
    id="05.remove_parallel_component", title="Keep the decoder unit-norm",
    reference=model.remove_parallel_component, cases=_parallel_cases,
    mistakes=[
        Mistake(_parallel_unnormalised, "Use the unit vector ŵ_i = W_dec[i] / ||W_dec[i]|| to project: with a "
                                        "row that is not exactly unit-norm, (g · w) w is not the parallel part."),
        Mistake(_parallel_columns, "Each *row* of W_dec is a feature's direction: normalise and project along "
                                   "dim=-1, not along the columns."),
        Mistake(_only_parallel, "That is the parallel component itself; return the gradient *without* it: "
                                "grad - (grad · ŵ) ŵ."),
    ],
    hints=["For one row: ŵ = w / ||w||; the parallel part of g is (g · ŵ) ŵ.",
           "For all rows at once: unit = W_dec / W_dec.norm(dim=-1, keepdim=True); "
           "(grad * unit).sum(-1, keepdim=True) is each row's g · ŵ.",
           "return grad - (grad * unit).sum(-1, keepdim=True) * unit"]))


# --- 5.4 mean max cosine similarity --------------------------------------------------------

def _mmcs_cases(gen: torch.Generator) -> list[Case]:
    true = _unit_rows(gen, 12, 5)
    scaled_copy = true[torch.randperm(12, generator=gen)] * (0.5 + torch.rand(12, 1, generator=gen))
    return [
        Case((randn(gen, 20, 5), randn(gen, 12, 5, scale=3.0)),
             label="a random dictionary of 20 rows against 12 true features of norm about 3"),
        Case((torch.cat([scaled_copy, randn(gen, 6, 5)]), true),
             label="the true features shuffled, rescaled, plus 6 random rows (MMCS 1)"),
        Case((-true[:8], true), label="8 of the true features, negated (opposite directions are not matches)"),
        Case((randn(gen, 4, 5), true), label="a dictionary narrower than the truth (4 rows, 12 true features)"),
    ]


def _mmcs_dot(W_dec, true):
    return (true @ W_dec.T).max(dim=1).values.mean()


def _mmcs_over_learned(W_dec, true):
    return (model.unit_rows(true) @ model.unit_rows(W_dec).T).max(dim=0).values.mean()


def _mmcs_abs(W_dec, true):
    return (model.unit_rows(true) @ model.unit_rows(W_dec).T).abs().max(dim=1).values.mean()


register(FunctionExercise(
    id="05.mmcs", title="Mean max cosine similarity", reference=toy.mmcs, cases=_mmcs_cases,
    mistakes=[
        Mistake(_mmcs_dot, "Those are dot products: divide both sets of rows by their norms first, so each "
                           "entry is a cosine similarity."),
        Mistake(_mmcs_over_learned, "You took, for each decoder row, its best true feature. MMCS here takes, for "
                                    "each *true* feature, its best decoder row (max over the decoder rows), "
                                    "then averages over the true features."),
        Mistake(_mmcs_abs, "Don't take |cos|: a decoder row pointing opposite to a feature has cosine -1, and "
                           "with non-negative activations it cannot represent that feature."),
    ],
    hints=["Normalise the rows of both matrices; then true_unit @ W_unit.T is [n_true, d_sae] of cosines.",
           "For each true feature (row of that matrix) take the max over the decoder rows (dim=1).",
           "Average those maxima: cos.max(dim=1).values.mean()."]))


# --- 5.5 shrinkage: the best single factor for the reconstructions -------------------------------------

def best_scale(x: Tensor, x_hat: Tensor, b_dec: Tensor) -> Tensor:
    """The single factor ``s`` that brings ``b_dec + s (x_hat - b_dec)`` closest to ``x`` in summed squared
    error (least squares along one direction): ``<x - b_dec, x_hat - b_dec> / ||x_hat - b_dec||²``.

    x, x_hat: [batch, d]; b_dec: [d] -> a float32 scalar
    """
    written, target = x_hat - b_dec, x - b_dec
    return ((target * written).sum() / (written * written).sum().clamp_min(1e-12)).float()


def _scale_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for batch, d, shrink in [(64, 6, 0.8), (32, 10, 0.6), (16, 4, 1.0)]:
        b_dec = randn(gen, d, scale=2.0)
        x = b_dec + torch.relu(randn(gen, batch, d))
        x_hat = b_dec + shrink * (x - b_dec) + randn(gen, batch, d, scale=0.05)
        cases.append(Case((x, x_hat, b_dec), label=f"reconstructions {shrink:g} times too small around a large "
                                                   f"b_dec (batch {batch}, d {d})"))
    x = randn(gen, 20, 5)
    cases.append(Case((x, 1.5 * x + randn(gen, 20, 5, scale=0.1), torch.zeros(5)),
                      label="reconstructions too *large* and b_dec = 0 (the factor is below 1)"))
    return cases


def _scale_no_bias(x, x_hat, b_dec):
    return ((x * x_hat).sum() / (x_hat * x_hat).sum()).float()


def _scale_ratio_of_norms(x, x_hat, b_dec):
    return ((x - b_dec).norm() / (x_hat - b_dec).norm()).float()


def _scale_upside_down(x, x_hat, b_dec):
    w, t = x_hat - b_dec, x - b_dec
    return ((w * w).sum() / (t * w).sum()).float()


def _scale_per_token(x, x_hat, b_dec):
    w, t = x_hat - b_dec, x - b_dec
    return ((t * w).sum(-1) / (w * w).sum(-1).clamp_min(1e-12)).mean().float()


register(FunctionExercise(
    id="05.best_scale", title="Measure the shrinkage", reference=best_scale, cases=_scale_cases,
    mistakes=[
        Mistake(_scale_no_bias, "You scaled the whole reconstruction, b_dec included. b_dec is not an activation "
                                "and is not shrunk: scale only what the features write, x_hat - b_dec, and "
                                "compare it with x - b_dec."),
        Mistake(_scale_ratio_of_norms, "A ratio of norms ignores direction: the best factor is the least-squares "
                                       "one, the projection of (x - b_dec) on (x_hat - b_dec), summed over the "
                                       "batch."),
        Mistake(_scale_upside_down, "Upside down: the factor multiplies the reconstruction, so it is "
                                    "<x - b_dec, x_hat - b_dec> / ||x_hat - b_dec||², not its inverse."),
        Mistake(_scale_per_token, "One factor for the whole batch: sum both inner products over all tokens "
                                  "before dividing, not a mean of per-token factors (which over-weights the "
                                  "tokens the SAE barely reconstructs)."),
    ],
    hints=["Write the error as a function of s: Σ ||(x - b_dec) - s (x_hat - b_dec)||². It is a parabola in s.",
           "Set its derivative to 0: s = Σ <x - b_dec, x_hat - b_dec> / Σ ||x_hat - b_dec||², sums over every "
           "token and dimension.",
           "written = x_hat - b_dec; return ((x - b_dec) * written).sum() / (written * written).sum()."]))


# --- 5.6 the ghost-grads loss: value and gradients --------------------------------------------

_GRAD_ARGS = ("x_hat", "pre_acts", "W_dec")


def _value_and_grads(fn: Callable, args: tuple) -> tuple[Any, dict[str, Tensor | None]]:
    """Call ``fn`` on leaves that track gradients; return its value and the gradients it sends back."""
    x, x_hat, pre, W_dec, dead_mask = args
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in zip(_GRAD_ARGS, (x_hat, pre, W_dec))}
    with torch.enable_grad():                   # notebooks switch autograd off; the check needs it
        value = fn(x, leaves["x_hat"], leaves["pre_acts"], leaves["W_dec"], dead_mask)
        grads: dict[str, Tensor | None] = dict.fromkeys(_GRAD_ARGS)
        if isinstance(value, Tensor) and value.requires_grad and value.numel() == 1:
            got = torch.autograd.grad(value.sum(), list(leaves.values()), allow_unused=True)
            grads = dict(zip(_GRAD_ARGS, got))
    if isinstance(value, Tensor):
        value = value.detach()
    return value, grads


def _grad_mismatch(got: dict, expected: dict, atol: float, rtol: float) -> str | None:
    for name in _GRAD_ARGS:
        e, g = expected[name], got[name]
        e = torch.zeros(0) if e is None else e
        if g is None:
            if e.numel() == 0 or not e.abs().any():
                continue
            return (f"No gradient reaches `{name}` (expected a non-zero one): did you detach it, "
                    "call .item(), or build the loss outside autograd?")
        if e.numel() == 0:
            e = torch.zeros_like(g)
        problem = describe_mismatch(g, e, name=f"the gradient with respect to `{name}`", atol=atol, rtol=rtol)
        if problem:
            return problem
    return None


@dataclass
class ValueAndGradExercise(FunctionExercise):
    """A function exercise judged on its value and on the gradients it sends to ``x_hat``,
    ``pre_acts`` and ``W_dec``; known mistakes are recognised on both."""

    def _evaluate_case(self, learner: Callable, case: Case) -> str | None:
        expected, expected_grads = _value_and_grads(self.reference, clone_args(case.args))
        args = clone_args(case.args)
        outcome = call_with_timeout(lambda *a: _value_and_grads(learner, a), args, {}, self.timeout)
        if outcome.error:
            return f"On {case.label}: {outcome.error}"
        for name, before, after in zip(arg_names(self.reference, len(args)), case.args, args):
            if changed_in_place(before, after):
                return (f"Your function changed its input `{name}` in place (on {case.label}); "
                        "compute a new tensor instead.")
        value, grads = outcome.value
        problem = describe_mismatch(value, expected, name="the loss", atol=self.atol, rtol=self.rtol)
        if problem is None:
            problem = _grad_mismatch(grads, expected_grads, self.atol, self.rtol)
        if problem is None:
            return None
        for mistake in self.mistakes:
            try:
                wrong, wrong_grads = _value_and_grads(mistake.fn, clone_args(case.args))
            except Exception:
                continue
            if (describe_mismatch(value, wrong, atol=self.atol, rtol=self.rtol) is None
                    and _grad_mismatch(grads, wrong_grads, self.atol, self.rtol) is None):
                return f"{mistake.message}\n(On {case.label}: {problem})"
        return f"On {case.label}: {problem}"


def _ghost_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for batch, d_in, d_sae, n_dead in [(16, 6, 10, 3), (8, 4, 12, 7)]:
        x = randn(gen, batch, d_in)
        dead_mask = torch.zeros(d_sae, dtype=torch.bool)
        dead_mask[torch.randperm(d_sae, generator=gen)[:n_dead]] = True
        cases.append(Case((x, x + randn(gen, batch, d_in, scale=0.5), randn(gen, batch, d_sae),
                           _unit_rows(gen, d_sae, d_in), dead_mask),
                          label=f"random inputs, {n_dead} of {d_sae} features dead"))
    x = randn(gen, 8, 5)
    big = randn(gen, 8, 9) + 200.0
    dead_mask = torch.tensor([True, False] * 4 + [True])
    cases.append(Case((x, x + randn(gen, 8, 5, scale=0.5), big, _unit_rows(gen, 9, 5), dead_mask),
                      label="large pre-activations (about 200) on 'dead' features that suddenly fire"))
    cases.append(Case((x, x + randn(gen, 8, 5, scale=0.5), randn(gen, 8, 9), _unit_rows(gen, 9, 5),
                       torch.zeros(9, dtype=torch.bool)),
                      label="no dead features (the loss and its gradients must be 0)"))
    return cases


def _ghost_variant(*, cap: bool = True, scale_dead: bool = True, detach_scale: bool = True,
                   detach_residual: bool = True, only_dead: bool = True, act=None) -> Callable:
    def ghost(x, x_hat, pre, W_dec, dead_mask):
        mask = dead_mask if only_dead else torch.ones_like(dead_mask)
        if not mask.any():
            return (pre * 0).sum()
        residual = x - x_hat
        if detach_residual:
            residual = residual.detach()
        p = pre[:, mask]
        acts = act(p) if act else torch.exp(torch.clamp(p, max=0.0) if cap else p)
        g = acts @ W_dec[mask]
        scale = residual.norm(dim=-1) / (2 * g.norm(dim=-1) + 1e-6)
        g = g * (scale.detach() if detach_scale else scale)[:, None]
        loss = ((g - residual) ** 2).sum(-1).mean()
        return loss * mask.float().mean() if scale_dead else loss
    return ghost


register(ValueAndGradExercise(
    id="05.ghost_grads_loss", title="The ghost-grads loss", reference=dead.ghost_grads_loss, cases=_ghost_cases,
    mistakes=[
        Mistake(_ghost_variant(cap=False), "Use exp(min(pre, 0)), not exp(pre): a 'dead' feature that suddenly "
                                           "fires strongly makes exp(pre) overflow to inf (the seed's fix caps "
                                           "the activation at 1; torch.clamp(pre, max=0))."),
        Mistake(_ghost_variant(scale_dead=False), "Multiply the loss by the fraction of features that are dead "
                                                  "(dead.float().mean()): without it, one dead feature in a wide "
                                                  "SAE gets a huge update."),
        Mistake(_ghost_variant(detach_scale=False), "The value is right but the gradients are not: the rescaling "
                                                    "factor ||r|| / (2 ||g||) must be a constant for autograd "
                                                    "(.detach() it)."),
        Mistake(_ghost_variant(detach_residual=False), "The value is right but a gradient reaches x_hat: the "
                                                       "residual x - x_hat is the target, so detach it; the ghost "
                                                       "loss must only move the dead features."),
        Mistake(_ghost_variant(only_dead=False), "Only the dead features take part: select pre_acts[:, dead] and "
                                                 "W_dec[dead]."),
        Mistake(_ghost_variant(act=torch.relu), "Dead features have negative pre-activations, so ReLU gives 0 "
                                                "and no gradient: the ghost activation is exp(min(pre, 0))."),
    ],
    hints=["Four steps: the residual r = x - x_hat (detached); ghost activations exp(min(pre, 0)) of the dead "
           "features only; their output g = acts @ W_dec[dead]; g rescaled per token to half of ||r||.",
           "The rescaling factor is r.norm(dim=-1) / (2 * g.norm(dim=-1) + 1e-6), detached; multiply g by it "
           "(unsqueeze to [batch, 1]).",
           "loss = dead.float().mean() * ((g - r) ** 2).sum(-1).mean(). With no dead feature, return 0 "
           "(e.g. (pre_acts * 0).sum())."]))


# --- 5.7 resampling dead features --------------------------------------------------------------------

_ENC_SCALE = 0.2


def _resample_inputs(gen: torch.Generator, d: int, d_sae: int, n_dead: int, n: int) -> tuple:
    W_enc, b_enc, W_dec, b_dec = _sae_weights(gen, d, d_sae)
    dead_mask = torch.zeros(d_sae, dtype=torch.bool)
    dead_mask[torch.randperm(d_sae, generator=gen)[:n_dead]] = True
    x = randn(gen, n, d) + b_dec
    return W_enc, b_enc, W_dec, b_dec, x, dead_mask


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _which_inputs(rows: Tensor, candidates: dict[str, Tensor]) -> tuple[str | None, Tensor | None]:
    """Which family of candidate directions (each [n, d]) the rows [k, d] come from, and the index of each."""
    for name, dirs in candidates.items():
        cos = _unit(rows) @ _unit(dirs).T                     # [k, n]
        best = cos.max(-1)
        if bool((best.values > 1 - 1e-4).all()):
            return name, best.indices
    return None, None


def _judge_resample(learner: Any) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `resample_dead` itself."
    gen = stream(zlib.crc32(b"05.resample_dead"), "check.cases")
    # 1. the recipe, on a small SAE: what changes and what does not
    W_enc, b_enc, W_dec, b_dec, x, dead_mask = _resample_inputs(gen, 6, 12, 5, 48)
    x_hat = b_dec + 0.7 * (x - b_dec) + randn(gen, 48, 6, scale=0.2)
    args = (W_enc, b_enc, W_dec, b_dec, x, x_hat, dead_mask)
    copies = clone_args(args)
    out = call_with_timeout(learner, (*copies, stream(0, "check.resample")), {}, 10.0)
    if out.error:
        return False, f"On a small SAE (12 features in 6 dimensions, 5 dead): {out.error}"
    for name, before, after in zip(("W_enc", "b_enc", "W_dec", "b_dec", "x", "x_hat", "dead"), args, copies):
        if changed_in_place(before, after):
            return False, f"Your function changed its input `{name}` in place; return new tensors (clone first)."
    value = out.value
    if not (isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, Tensor) for v in value)):
        return False, "Return three tensors: the new `(W_enc, b_enc, W_dec)`."
    new_enc, new_benc, new_dec = value
    for name, got, want in (("W_enc", new_enc, W_enc), ("b_enc", new_benc, b_enc), ("W_dec", new_dec, W_dec)):
        if got.shape != want.shape:
            return False, f"The new {name} has shape {tuple(got.shape)}; it must keep the shape {tuple(want.shape)}."
    live = ~dead_mask
    if not (torch.equal(new_dec[live], W_dec[live]) and torch.equal(new_enc[:, live], W_enc[:, live])
            and torch.equal(new_benc[live], b_enc[live])):
        return False, "Only the dead features may change: the live features' encoder columns, biases and decoder rows must stay exactly as they were."
    rows = new_dec[dead_mask].float()
    if not torch.allclose(rows.norm(dim=-1), torch.ones(len(rows)), atol=1e-4):
        return False, "The new decoder rows must have norm 1 (the decoder is kept on the unit sphere): normalise the direction."
    kind, _ = _which_inputs(rows, {"right": x - b_dec, "raw x": x, "error": x - x_hat})
    if kind == "raw x":
        return False, ("The new rows point along x itself: they must point along x - b_dec, the input as the SAE "
                       "sees it (its decoder adds b_dec back).")
    if kind == "error":
        return False, ("The new rows point along the error x - x_hat. The recipe points a dead feature at the input "
                       "itself (x - b_dec): the error only decides which inputs are chosen.")
    if kind is None:
        return False, "Each dead feature's new decoder row must be the direction of one input, x[i] - b_dec (unit norm)."
    cols = new_enc[:, dead_mask].T.float()
    if _unit(cols).mul(rows).sum(-1).min() < 1 - 1e-4:
        return False, "Each dead feature's encoder column must point the same way as its new decoder row."
    want_norm = _ENC_SCALE * W_enc[:, live].norm(dim=0).mean()
    got_norm = cols.norm(dim=-1)
    if not torch.allclose(got_norm, want_norm.expand_as(got_norm), rtol=1e-3):
        return False, (f"The new encoder columns have norms {got_norm.mean():.3f} on average; they must be "
                       f"{_ENC_SCALE} times the mean norm of the *live* features' encoder columns "
                       f"({want_norm:.3f} here), small enough not to disturb the SAE at once.")
    if not torch.equal(new_benc[dead_mask], torch.zeros(int(dead_mask.sum()))):
        return False, "Set the dead features' encoder biases to 0 (theirs was what kept them from firing)."
    # 2. the sampling: in proportion to the squared error
    d, n_dead = 4, 3000
    W_enc, b_enc, W_dec, b_dec, _, dead_mask = _resample_inputs(gen, d, n_dead + 2, n_dead, 3)
    x = b_dec + torch.eye(d)[:3] * 2.0
    x_hat = x.clone()
    x_hat[1] += torch.tensor([0.0, 0.0, 1.0, 0.0])                  # squared error 1
    x_hat[2] += torch.tensor([0.0, 0.0, 0.0, 3.0 ** 0.5])           # squared error 3; input 0 is perfect
    out = call_with_timeout(learner, (W_enc, b_enc, W_dec, b_dec, x, x_hat, dead_mask, stream(1, "check.resample")),
                            {}, 10.0)
    if out.error:
        return False, f"On three inputs and {n_dead} dead features: {out.error}"
    rows = out.value[2][dead_mask].float()
    kind, picks = _which_inputs(rows, {"right": x - b_dec})
    if kind is None:
        return False, "On three inputs, some new decoder rows are not the direction of any input (x[i] - b_dec)."
    share = torch.bincount(picks, minlength=3).double() / n_dead
    if share[0] > 0:
        return False, (f"{share[0]:.0%} of the dead features went to an input the SAE reconstructs perfectly. "
                       "Draw inputs in proportion to their squared reconstruction error ||x - x_hat||², so a "
                       "perfect one is never drawn (torch.multinomial).")
    if abs(share[2] - 0.75) > 0.04:
        by_norm = 3 ** 0.5 / (1 + 3 ** 0.5)
        why = (" That is about what drawing in proportion to the error's *norm* gives; use its square."
               if abs(share[2] - by_norm) < 0.04 else "")
        return False, (f"Inputs with squared errors 1 and 3 were drawn {share[1]:.0%} and {share[2]:.0%} of the "
                       f"time; in proportion to the squared error they should be 25% and 75%.{why}")
    return True, ("Resampling: live features untouched; each dead feature points at an input (x - b_dec, unit norm), "
                  f"with an encoder {_ENC_SCALE} times the live ones' norm and bias 0; inputs drawn in proportion to "
                  f"the squared error ({share[1]:.0%} / {share[2]:.0%} for errors 1 and 3).")


register(CustomExercise(
    id="05.resample_dead", title="Resample dead features", reference=dead.resampled_weights,
    judge=_judge_resample,
    hints=["Three steps: weigh each input by its squared error; draw one input per dead feature with those weights "
           "(torch.multinomial(weights, n_dead, replacement=True, generator=generator)); write the new weights.",
           "The direction of input i is (x[i] - b_dec) / ||x[i] - b_dec||: it becomes the decoder row; times "
           "0.2 * W_enc[:, ~dead].norm(dim=0).mean() it becomes the encoder column.",
           "Clone W_enc, b_enc and W_dec first; then W_dec[idx] = directions, W_enc[:, idx] = directions.T * scale, "
           "b_enc[idx] = 0, with idx = dead.nonzero().squeeze(-1)."]))


# --- 5.8 folding the pre-encoder bias --------------------------------------------------------

def _fold_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for d_in, d_sae in [(6, 10), (4, 3), (8, 16)]:
        W_enc, b_enc, _, b_dec = _sae_weights(gen, d_in, d_sae)
        cases.append(Case((W_enc, b_enc, b_dec), label=f"random weights (d_in {d_in}, d_sae {d_sae})"))
    W_enc, b_enc, _, _ = _sae_weights(gen, 5, 7)
    cases.append(Case((W_enc, b_enc, torch.zeros(5)), label="b_dec = 0 (nothing to fold: b_enc comes back)"))
    return cases


register(FunctionExercise(
    id="05.fold_pre_encoder_bias", title="Fold the pre-encoder bias", reference=model.fold_pre_encoder_bias,
    cases=_fold_cases,
    mistakes=[
        Mistake(lambda W_enc, b_enc, b_dec: b_enc + b_dec @ W_enc,
                "The sign is flipped: the encoder sees x - b_dec, so (x - b_dec) @ W_enc + b_enc = "
                "x @ W_enc + (b_enc - b_dec @ W_enc)."),
        Mistake(lambda W_enc, b_enc, b_dec: -(b_dec @ W_enc),
                "The original encoder bias is missing: the new bias is b_enc - b_dec @ W_enc."),
    ],
    hints=["Expand (x - b_dec) @ W_enc + b_enc: which part depends on x and which does not?",
           "The part that does not depend on x is the new bias: b_enc - b_dec @ W_enc (shape [d_sae])."]))


# --- 5.9 cross-entropy loss recovered -------------------------------------------------------------

def _recovered_cases(gen: torch.Generator) -> list[Case]:
    clean = 2 + torch.rand(6, generator=gen)
    ablated = clean + 1 + 3 * torch.rand(6, generator=gen)
    spliced = clean + (ablated - clean) * torch.rand(6, generator=gen)
    return [
        Case((clean, spliced, ablated), label="six SAEs with losses clean < spliced < ablated"),
        Case((clean[:2], clean[:2], ablated[:2]), label="perfect splices (spliced = clean: 1 recovered)"),
        Case((clean[:2], ablated[:2] + 0.5, ablated[:2]), label="splices worse than ablation (negative)"),
    ]


register(FunctionExercise(
    id="05.loss_recovered", title="Cross-entropy loss recovered", reference=evaluate.loss_recovered,
    cases=_recovered_cases,
    mistakes=[
        Mistake(lambda c, s, a: (s - c) / (a - c),
                "That is the share of the loss *lost* by splicing (1 minus the answer): measure from the "
                "ablated loss, (L_ablate - L_spliced) / (L_ablate - L_clean)."),
        Mistake(lambda c, s, a: (a - s) / a,
                "Normalise by the gap between ablating and running clean, L_ablate - L_clean, not by L_ablate: "
                "the model's own loss is the best a splice can do."),
        Mistake(lambda c, s, a: (a - c) / (a - s),
                "Upside down: (L_ablate - L_spliced) / (L_ablate - L_clean)."),
    ],
    hints=["1 means the splice is as good as the clean run, 0 as bad as ablating the activation.",
           "How much of the damage of ablation the SAE avoids: (L_ablate - L_spliced), as a share of the "
           "whole damage (L_ablate - L_clean)."]))


# --- 5.10 find the bugs in the seed's pseudo-code -----------------------------------------------

def _line(snippet: str, after: int = 0) -> int:
    """The number of the first line of the seed's pseudo-code after line ``after`` containing ``snippet``."""
    lines = ito.SEED_PSEUDOCODE.splitlines()
    return next(n for n, text in enumerate(lines, start=1) if n > after and snippet in text)


_MP_END = _line("return coefs")
_GP_START = _line("def grad_pursuit(")
# (lines that count as finding it, what is wrong); line numbers as ito.show_seed_pseudocode() prints them
SEED_BUGS: list[tuple[frozenset[int], str]] = [
    (frozenset({_line("abs("), _line("a = inner")}),
     f"lines {_line('abs(')} and {_line('a = inner')}: the sign. The seed's pursuit can be read two ways. Signed "
     f"(the post picks the largest |inner product|): then line {_line('abs(')} is right, and the bug is that line "
     f"{_line('a = inner')} takes the coefficient from the absolute values, so a feature pointing against the "
     "residual gets a positive coefficient and the subtraction moves the residual the wrong way; the coefficient "
     f"must be the signed inner product. Non-negative (as this chapter's SAEs are): then line {_line('abs(')} is the "
     "bug, because it must pick the largest inner product, not the largest |.|. Either line counts."),
    (frozenset({_line("a = inner"), _line("residual - a")}),
     f"line {_line('a = inner')}: `chosen_idx` is never defined; the line before called it `idx`."),
    (frozenset({_line("weights[chosen_idx]")}), f"line {_line('weights[chosen_idx]')}: `weights[idx] = a` "
     "overwrites. Matched pursuit may pick a feature again later; its coefficient must accumulate (`+=`), or "
     "the weights no longer match the residual."),
    (frozenset({_MP_END}), f"line {_MP_END}: returns `coefs`, which does not exist; the coefficients are `weights`."),
    (frozenset({_line("weights * dictionary")}), f"line {_line('weights * dictionary')}: `weights * dictionary` "
     "multiplies element-wise: weights [n] against dictionary [n, d] raises unless n = d (and then scales columns, "
     "not rows). The reconstruction is the weighted sum of rows, `weights @ dictionary` (einsum 'n,nd->d')."),
    (frozenset({_line("max(weights")}), f"line {_line('max(weights')}: Python's `max(weights, 0)` compares a "
     "whole vector with 0 (an error, or one of the two returned whole); clipping is element-wise: "
     "`weights.clamp_min(0)`."),
    (frozenset(range(_GP_START, len(ito.SEED_PSEUDOCODE.splitlines()) + 2)),
     f"lines {_GP_START}-{len(ito.SEED_PSEUDOCODE.splitlines())}: `grad_pursuit` never returns anything: return the "
     "weights (and the reconstruction `weights @ dictionary`)."),
]
_FINE = {
    _line("selected_features = (weights"): "line {n} is fine: a coefficient clipped to 0 drops out of the selected "
                                           "set, which is one reasonable choice",
    _line("inner_products = einsum('nd"): "line {n} is fine: in the non-negative version the inner products are "
                                          "*not* made absolute",
    _line("step_size ="): "line {n} is fine: that is the optimal step size, (c · r) / (c · c), derived in the post",
}


def _judge_bugs(learner: Any) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass the function `find_the_bugs` itself."
    outcome = call_with_timeout(learner, (), {}, 5.0)
    if outcome.error:
        return False, outcome.error
    try:
        lines = {int(n) for n in outcome.value}
    except (TypeError, ValueError):
        return False, (f"Return a set of line numbers (ints), e.g. {{3, 17}}; got {type(outcome.value).__name__}.")
    found = [message for accepted, message in SEED_BUGS if accepted & lines]
    flagged = set().union(*(accepted for accepted, _ in SEED_BUGS))
    wrong = sorted(lines - flagged)
    problems = []
    if wrong:
        problems.append("; ".join(_FINE.get(n, "no bug on line {n}").format(n=n) for n in wrong))
    if len(found) < len(SEED_BUGS):
        left = len(SEED_BUGS) - len(found)
        in_matched = sum(1 for accepted, _ in SEED_BUGS if min(accepted) <= _MP_END and not accepted & lines)
        problems.append(f"{len(found)} of {len(SEED_BUGS)} bugs found; {left} to go "
                        f"({in_matched} in matched pursuit, lines 1-{_MP_END}; {left - in_matched} in gradient pursuit, "
                        f"lines {_MP_END + 2}-{len(ito.SEED_PSEUDOCODE.splitlines())})")
    if problems:
        return False, "Not yet: " + "; ".join(problems) + "."
    return True, "All the bugs:\n- " + "\n- ".join(message for _, message in SEED_BUGS)


register(CustomExercise(
    id="05.find_the_bugs", title="Find the bugs in the seed's pseudo-code", reference=None, judge=_judge_bugs,
    hints=["Read it as Python with torch: which names are used before they are defined? What does each "
           "expression's shape come out as?",
           "Two bugs are about names, two about shapes or element-wise operations, one about a sign, one about "
           "accumulating, one about a missing line."]))


# --- 5.11 inference-time optimisation: gradient pursuit ----------------------------------------------

def _pursuit_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for batch, d, d_sae, k in [(12, 6, 20, 3), (8, 10, 15, 5), (5, 4, 9, 1)]:
        W = _unit_rows(gen, d_sae, d)
        truth = torch.relu(randn(gen, batch, d_sae)) * (torch.rand(batch, d_sae, generator=gen) < 0.25)
        cases.append(Case((truth @ W + randn(gen, batch, d, scale=0.05), W, k),
                          label=f"sparse sums of {d_sae} unit directions in {d} dims, target L0 {k}"))
    W = _unit_rows(gen, 6, 3).abs()                                 # every feature in the positive orthant
    cases.append(Case((-randn(gen, 2, 3).abs(), W, 2),
                      label="inputs every feature points away from (the coefficients must stay >= 0)"))
    return cases


def _pursuit_variant(*, clip: bool = True, optimal_step: bool = True, refit: bool = True,
                     absolute: bool = False) -> Callable:
    def pursuit(x, W_dec, target_l0):
        coeffs = torch.zeros(x.shape[0], W_dec.shape[0])
        selected = torch.zeros_like(coeffs, dtype=torch.bool)
        for _ in range(target_l0):
            residual = x - coeffs @ W_dec
            inner = residual @ W_dec.T
            pick = (inner.abs() if absolute else inner).argmax(-1, keepdim=True)
            new = torch.zeros_like(selected).scatter_(-1, pick, True)
            selected |= new
            direction = torch.where(selected if refit else new, inner, 0.0)
            c = direction @ W_dec
            size = (c * residual).sum(-1) / (c * c).sum(-1).clamp_min(1e-12) if optimal_step else torch.ones(len(x))
            coeffs = coeffs + size[:, None] * direction
            if clip:
                coeffs = coeffs.clamp_min(0)
        return coeffs
    return pursuit


register(FunctionExercise(
    id="05.gradient_pursuit", title="Gradient pursuit", reference=ito.gradient_pursuit, cases=_pursuit_cases,
    mistakes=[
        Mistake(_pursuit_variant(clip=False), "Some coefficients are negative: SAE activations are non-negative, "
                                              "so clip the coefficients at 0 after each step (clamp_min(0))."),
        Mistake(_pursuit_variant(optimal_step=False), "The step size is not the optimal one: along direction v, "
                                                      "with c = v @ W_dec, the best step is (c · r) / (c · c)."),
        Mistake(_pursuit_variant(refit=False), "Only the newest feature was updated (that is matched pursuit): the "
                                               "gradient step moves every selected coefficient, using the inner "
                                               "products restricted to the selected set."),
        Mistake(_pursuit_variant(absolute=True), "Choose the feature with the largest inner product, not the largest "
                                                 "|inner product|: with non-negative coefficients a feature pointing "
                                                 "away from the residual cannot help."),
    ],
    hints=["Keep two [batch, d_sae] tensors: the coefficients (start at 0) and a bool mask of selected features.",
           "Each step: r = x - coeffs @ W_dec; inner = r @ W_dec.T; add inner.argmax(-1) to the mask; the direction "
           "is inner where selected, 0 elsewhere.",
           "c = direction @ W_dec; step = (c * r).sum(-1) / (c * c).sum(-1); "
           "coeffs = (coeffs + step[:, None] * direction).clamp_min(0)."]))


# --- 5.12 AUROC from ranks -----------------------------------------------------------------------------

def auroc_of(scores: Tensor, positive: Tensor) -> Tensor:
    """AUROC of one score vector as a detector of ``positive`` (ties count one half), a float32 scalar."""
    return labels.auroc(scores.reshape(-1, 1).float(), positive.reshape(-1).bool())[0]


def _auroc_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for n, p_fire in [(200, 0.3), (500, 0.1)]:
        positive = torch.rand(n, generator=gen) < 0.2
        fires = torch.rand(n, generator=gen) < torch.where(positive, 0.8, p_fire)
        scores = torch.relu(randn(gen, n) + positive.float()) * fires
        cases.append(Case((scores, positive), label=f"SAE-like activations on {n} tokens, most of them exactly 0 "
                                                    "(ties)"))
    positive = torch.rand(300, generator=gen) < 0.3
    scores = torch.randint(0, 4, (300,), generator=gen).float() + positive.float()
    cases.append(Case((scores, positive), label="scores with only five distinct values (many ties)"))
    positive = torch.tensor([False, True, False, True, False, False])
    cases.append(Case((torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.05]), positive),
                      label="a perfect detector on 6 tokens (AUROC 1)"))
    cases.append(Case((torch.zeros(10), torch.arange(10) < 3), label="a feature that never fires (AUROC 0.5)"))
    scores = randn(gen, 50)
    cases.append(Case((scores, scores < -0.5), label="a feature lower on the labelled tokens (AUROC 0)"))
    return cases


def _auroc_pairs(scores, positive, tie):
    pos, neg = scores[positive.bool()], scores[~positive.bool()]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).double() + tie * (diff == 0).double()).mean().float()


def _auroc_ordinal(scores, positive):
    ranks = torch.empty(len(scores), dtype=torch.float64)
    ranks[scores.argsort(stable=True)] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    n_pos = positive.sum().double()
    return ((ranks[positive.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(scores) - n_pos))).float()


def _auroc_misaligned(scores, positive):
    ranks = labels.average_ranks(scores.sort().values[:, None])[:, 0]      # ranks in sorted order ...
    n_pos = positive.sum().double()                                          # ... summed at the original positions
    return ((ranks[positive.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(scores) - n_pos))).float()


register(FunctionExercise(
    id="05.auroc", title="AUROC from ranks", reference=auroc_of, cases=_auroc_cases, atol=1e-4,
    mistakes=[
        Mistake(lambda s, y: _auroc_pairs(s, y, 0.0), "Ties count as losses here. An SAE feature is exactly 0 on "
                "most tokens, so most pairs are ties: a tie is a coin flip and counts one half (tied scores share "
                "their average rank)."),
        Mistake(lambda s, y: _auroc_pairs(s, y, 1.0), "Ties count as wins here (>=). A feature that never fires "
                "would then score 1 against every label: a tie counts one half."),
        Mistake(lambda s, y: 1 - auroc_of(s, y), "Upside down: that is the probability that an *unlabelled* token "
                "scores higher. Sum the ranks of the labelled tokens."),
        Mistake(_auroc_ordinal, "Tied scores got different ranks (their order in the sort): give each group of ties "
                "the average of the ranks it spans."),
        Mistake(_auroc_misaligned, "The ranks were computed in sorted order but picked out with the labels in the "
                "original order: each token's rank must be written back at its own position (scatter with the "
                "sort's indices)."),
    ],
    hints=["The Mann-Whitney statistic: if the positives' ranks (1 = lowest score) sum to R, then "
           "AUROC = (R - n_pos (n_pos + 1) / 2) / (n_pos n_neg).",
           "Ties: a group of equal scores that would occupy ranks i..j all get (i + j) / 2. With sorted = "
           "scores.sort().values, torch.searchsorted(sorted, scores) and torch.searchsorted(sorted, scores, "
           "right=True) give each score's first and last position.",
           "ranks = (torch.searchsorted(sorted, scores) + torch.searchsorted(sorted, scores, right=True) + 1) / 2, "
           "as float64; then the formula of hint 1."]))


# --- 5.13 name the tennis feature, judged on held-out tokens ---------------------------------------------

def tennis_scores(model: Any, sae: Any, hook: str, tokens: Tensor, scored_on: Tensor) -> tuple[Tensor, int]:
    """For every feature of ``sae`` at ``hook``, the smaller of its two AUROCs for the word *tennis* on the rows
    ``scored_on``: against all tokens, and within the sport words. Recomputed from the world's labels.

    -> ([d_sae] scores, 0 for features that never fire on a held-out tennis; the number of tennis words scored on)
    """
    from ..residual_stream import prompts
    from ..zoo.world import SLOTS
    from .activations import collect_activations

    world = prompts.world_of(model.cfg.model_name)
    ids, row_labels = labels.labelled_rows(world, len(tokens), tokens.shape[1], prompts.HELD_OUT_FIRST_DOC)
    if not torch.equal(ids, tokens.cpu()):
        raise ValueError("tokens")
    body = {k: v[scored_on, 1:].reshape(-1) for k, v in row_labels.items()}
    is_tennis = labels.binary_labels(body)["sport word: tennis"]
    is_sport = body["slot"] == SLOTS.index("sport")
    with torch.no_grad():
        acts = collect_activations(model, tokens[scored_on.to(tokens.device)], hook)
        f = sae.encode(acts.to(sae.W_dec.device)).float().cpu()
    out = torch.zeros(f.shape[1])
    candidates = (f[is_tennis] > 0).any(0).nonzero().squeeze(1)
    if len(candidates):
        everywhere = labels.auroc(f[:, candidates], is_tennis)
        within = labels.auroc(f[is_sport][:, candidates], is_tennis[is_sport])
        out[candidates] = torch.minimum(everywhere, within).nan_to_num(0.0)
    return out, int(is_tennis.sum())


def _judge_tennis(learner: Any) -> tuple[bool, str]:
    value, problem = call_answer_function(learner, "tennis_feature")
    if problem is not None:
        return False, problem
    shape = ("Return `model, sae, hook, tokens, feature, picked_on`: the model, the SAE, the hook it reads, the "
             "[rows, pos] tokens from labels.labelled_rows, your feature (an int) and a bool [rows] mask of the rows "
             "you picked it on.")
    if not (isinstance(value, tuple) and len(value) == 6):
        return False, shape
    model_, sae, hook, tokens, feature, picked_on = value
    if not (hasattr(model_, "cfg") and hasattr(sae, "encode") and isinstance(hook, str) and isinstance(tokens, Tensor)
            and tokens.ndim == 2 and isinstance(picked_on, Tensor) and picked_on.dtype == torch.bool
            and picked_on.shape == tokens.shape[:1]):
        return False, shape
    from ..zoo.training import RECIPES
    if getattr(model_.cfg, "model_name", None) not in RECIPES:
        return False, ("This exercise needs the world's hidden labels: a model of the course's zoo "
                       "(gelu-3l-facts), not " + repr(getattr(model_.cfg, "model_name", "this model")) + ".")
    try:
        feature = int(feature)
    except (TypeError, ValueError, RuntimeError):
        return False, f"Name one feature by its index (an int); got {type(feature).__name__}."
    if not 0 <= feature < sae.W_dec.shape[0]:
        return False, f"This SAE has features 0 to {sae.W_dec.shape[0] - 1}; there is no feature {feature}."
    held_out = ~picked_on
    if int(held_out.sum()) == 0:
        return False, ("You picked the feature on every row, so no token is left to score it on: the best of "
                       f"{sae.W_dec.shape[0]} features, scored on the tokens it was picked on, looks better than it "
                       "is (some feature fits a handful of mentions by chance). Pick on one half, keep the other.")
    try:
        scores, n_held = tennis_scores(model_, sae, hook, tokens, held_out)
    except ValueError:
        return False, ("The check reads the world's labels for the rows labels.labelled_rows(world, rows, 64, "
                       "prompts.HELD_OUT_FIRST_DOC) returns: return exactly those tokens.")
    if n_held < 5:
        return False, (f"Only {n_held} mentions of tennis in the rows you held out: keep at least half the rows "
                       "(and enough of them) to score on.")
    best = int(scores.argmax())
    mine, top = float(scores[feature]), float(scores[best])
    if mine >= top - 0.02:
        note = "the best" if feature == best else f"within 0.02 of the best (feature {best}, {top:.3f})"
        return True, (f"Feature {feature}: on the {int(held_out.sum())} rows you held out ({n_held} mentions of "
                      f"tennis) it tells the word tennis from every other token and from the other sports with "
                      f"AUROC at least {mine:.3f}, {note}; recomputed from the SAE now.")
    picked_scores, _ = tennis_scores(model_, sae, hook, tokens, picked_on) if picked_on.any() else (None, 0)
    fits = (picked_scores is not None and int(picked_scores.argmax()) == feature)
    why = (" It is the best on the rows you picked it on, so it fits those mentions and not the word: selection "
           "on a few examples flatters." if fits else "")
    return False, (f"On the rows you held out, feature {feature} scores {mine:.3f} (the smaller of its AUROC against "
                   f"all tokens and within the sport words), and feature {best} scores {top:.3f}.{why} A tennis "
                   "feature must fire on tennis and not on the other sports: score both ways.")


register(CustomExercise(
    id="05.tennis_feature", title="Name the tennis feature", reference=None, judge=_judge_tennis,
    hints=["Encode the activations at the SAE's hook, label every token with labels.binary_labels (the word: "
           "'sport word: tennis'; the sport words: the slot 'sport'), and split the rows in two.",
           "On the first half, score each feature twice with your `auroc`: against all tokens, and among the sport "
           "words only; keep the smaller of the two. Only features that fire on some tennis token can score well.",
           "Return the feature with the best score on the first half, and picked_on = the mask of that half; the "
           "check scores it on the other."]))


# --- 5.14 logit effects -------------------------------------------------------------------------------

def _logit_cases(gen: torch.Generator) -> list[Case]:
    return [Case((_unit_rows(gen, 12, 6), randn(gen, 6, 30)), label="12 features, d_model 6, a vocabulary of 30"),
            Case((_unit_rows(gen, 3, 8), randn(gen, 8, 5) + 2.0),
                 label="an unembedding with a large shared offset (centring removes it)")]


register(FunctionExercise(
    id="05.logit_effects", title="A feature's logit effects", reference=dashboard.logit_effects, cases=_logit_cases,
    mistakes=[
        Mistake(lambda W_dec, W_U: W_dec @ W_U,
                "Centre each feature's effects over the vocabulary (subtract the mean over dim=-1): adding the "
                "same amount to every logit changes no prediction."),
        Mistake(lambda W_dec, W_U: W_dec @ W_U - (W_dec @ W_U).mean(0, keepdim=True),
                "You centred over the features; centre each feature's row over the vocabulary (dim=-1)."),
    ],
    hints=["The direct effect of feature i on the logits is its decoder row through the unembedding: W_dec[i] @ W_U.",
           "For all features at once: W_dec @ W_U is [d_sae, d_vocab]; subtract its mean over the last dimension."]))


# --- 5.15 scoring an explanation ------------------------------------------------------------------------

def _score_cases(gen: torch.Generator) -> list[Case]:
    actual = torch.relu(randn(gen, 200)) * (torch.rand(200, generator=gen) < 0.2)
    return [
        Case((actual * 2 + randn(gen, 200, scale=0.3), actual), label="a good, noisy prediction on 200 tokens"),
        Case(((actual > 0).float() * 5.0, actual), label="a prediction on another scale (correlation ignores scale)"),
        Case((randn(gen, 200), actual), label="an unrelated prediction"),
        Case((torch.full((200,), 3.0), actual), label="a constant prediction (it explains nothing: 0, not NaN)"),
        Case((actual, torch.zeros(200)), label="a feature that never fires (0, not NaN)"),
    ]


def _score_no_guard(predicted, actual):
    p, a = predicted - predicted.mean(), actual - actual.mean()
    return (p * a).sum() / (p.norm() * a.norm())


register(FunctionExercise(
    id="05.explanation_score", title="Score an explanation", reference=autointerp.explanation_score,
    cases=_score_cases, atol=1e-4,
    mistakes=[
        Mistake(_score_no_guard, "A constant prediction gives 0 / 0 = NaN: return 0 when either side does not vary."),
        Mistake(lambda p, a: ((p - p.mean()) * (a - a.mean())).mean(),
                "That is the covariance: divide by both standard deviations (norms of the centred vectors) so "
                "the score does not depend on the scale of the prediction."),
        Mistake(lambda p, a: (p * a).sum() / (p.norm() * a.norm()).clamp_min(1e-12),
                "That is the cosine of the raw vectors: centre both (subtract their means) first."),
    ],
    hints=["Pearson correlation: centre both vectors, then cosine similarity.",
           "p = predicted - predicted.mean(); a = actual - actual.mean(); r = (p * a).sum() / (p.norm() * a.norm()).",
           "If p.norm() * a.norm() == 0, return torch.tensor(0.0)."]))


# --- 5.16 the Pareto frontier of steering ---------------------------------------------------------------

def _pareto_cases(gen: torch.Generator) -> list[Case]:
    success, cost = torch.rand(12, generator=gen), torch.rand(12, generator=gen)
    ordered = torch.linspace(0, 1, 8)
    return [
        Case((success, cost), label="12 random (success, cost) points in no particular order"),
        Case((ordered ** 0.5, ordered + 0.1 * torch.rand(8, generator=gen)),
             label="a sweep where more success costs more (most points are on the frontier)"),
        Case((torch.tensor([0.5, 0.5, 0.9, 0.2]), torch.tensor([1.0, 2.0, 1.0, 1.0])),
             label="equal success at different costs, and equal cost at different success"),
        Case((torch.tensor([0.7, 0.7, 0.1]), torch.tensor([0.3, 0.3, 0.9])),
             label="two identical points (neither beats the other: both stay)"),
    ]


def _pareto_strict(success, cost):
    return ~((success[None, :] > success[:, None]) & (cost[None, :] < cost[:, None])).any(1)


def _pareto_in_given_order(success, cost):
    best = torch.cummax(success, 0).values
    return success >= best


register(FunctionExercise(
    id="05.pareto_front", title="The Pareto frontier", reference=steering.pareto_front, cases=_pareto_cases,
    mistakes=[
        Mistake(_pareto_strict, "A point is also beaten by one that is as good on one count and strictly better on "
                                "the other (equal success at a lower cost): use >= and <=, with at least one strict."),
        Mistake(_pareto_in_given_order, "The points do not come sorted by cost: compare every point with every other "
                                        "(or sort by cost first)."),
        Mistake(lambda s, c: s == s.max(), "The frontier is not just the most successful point: a cheaper point "
                                           "that no other point beats on both counts is on it too."),
    ],
    hints=["Point i is dominated if some j has success[j] >= success[i] and cost[j] <= cost[i], and is strictly "
           "better in at least one of them.",
           "Broadcast: success[None, :] >= success[:, None] is an [n, n] table of 'j at least as successful as i'.",
           "dominated = (at_least_as_good & strictly_better_somewhere).any(1); return ~dominated."]))


# --- predict, then check -------------------------------------------------------------------------------

register_question(Question(
    id="05.shrinkage", title="What is wrong with the reconstructions?",
    prompt="The width-48 SAE has nearly every true feature, yet explains only about 87% of the variance. Find the "
           "single factor that, multiplying what the features write (x̂ − b_dec), best reconstructs x. It is ...",
    choices=["below 1: the activations are too large", "about 1: the error is in the directions",
             "above 1: the activations are too small"],
    messages={
        "about 1: the error is in the directions": "The directions are nearly right (MMCS near 1); the L1 penalty "
        "charges for the size of every activation, so the encoder reports them smaller than they are.",
        "below 1: the activations are too large": "Nothing in the loss rewards large activations; the L1 term "
        "charges for every unit of size, so the trained encoder errs the other way."},
    explain="L1 shrinkage: the penalty trades a little reconstruction for smaller activations."))

register_question(Question(
    id="05.which_remedy", title="Which remedy finds more?",
    prompt="Three SAEs start with half their features dead: no remedy, resampling every 500 steps, ghost grads. "
           "After the same number of steps, whose *firing* rows will have found the true features best (MMCS over "
           "the rows that fire)?",
    choices=["no remedy", "resampling", "ghost grads"],
    messages={
        "no remedy": "Without a remedy the dead half stays dead, and the SAE must cover the true features with "
        "only the rows that fire: some true features are left without a close row, and MMCS over the firing rows "
        "counts each of them.",
        "ghost grads": "Ghost grads revives features, but slowly: it only pulls dead rows towards the residual, a "
        "little each step. Resampling points each dead row straight at an input the SAE gets wrong."},
    explain="Resampling does the work in one jump, at the moment it resamples; ghost grads over many steps."))

register_question(Question(
    id="05.best_kind_of_label", title="Which labels do features match?",
    prompt="For each sport, three kinds of label: the word naming it, a name of a person who plays it, every token "
           "of a sentence stating it. For which kind will the shipped block-0 SAE's best features match best "
           "(highest mean AUROC)?",
    choices=["the word naming a sport", "a name of a player of a sport", "a sentence stating a sport"],
    messages={
        "a name of a player of a sport": "A person's sport is a fact the model must look up; after block 0 the "
        "residual stream at a name holds mostly the name itself, not yet the fact.",
        "a sentence stating a sport": "A sentence's topic is spread over its tokens; at block 0 each token's "
        "residual stream is mostly that token, so no single direction marks every token of the sentence."},
    explain="Early in the model the residual stream is mostly the current token: words are easy, facts and "
            "context come later."))

register_question(Question(
    id="05.steering_winner", title="Which direction steers?",
    prompt="Steering every test prompt towards one sport: which reaches 90% success at the smaller coefficient, the "
           "difference of means or one of the three SAE features closest to it?",
    choices=["the difference of means", "a single feature", "both at the same coefficient"],
    messages={
        "a single feature": "The features closest to the difference of means are still only parts of it: the "
        "difference is fitted to move exactly these prompts, while a feature was learnt to reconstruct all text.",
        "both at the same coefficient": "They would tie only if a feature were the difference itself; the printed "
        "cosines are well below 1."},
    explain="A direction fitted to the behaviour against directions learnt to reconstruct all text; on GPT-2 XL "
            "seed 002 found both outcomes (a single feature sometimes won)."))
