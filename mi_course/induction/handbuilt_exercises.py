"""Exercises of chapter 04's last section: an induction circuit written by hand (registered on import).

The learner writes two functions, ``previous_token_head(layout)`` and ``induction_head(layout)``, each
returning a :class:`~.handbuilt.Head` (or a dict with keys W_Q, W_K, W_V, W_O). The checks build them on
layouts of their own (two vocabularies and context lengths, so sizes cannot be hard-coded), run the two-layer
model on repeated random tokens of their own (two copy lengths on one layout, so a head that attends by
position rather than by content fails), and pass when the circuit predicts at least 90% of the second copy
after its first token. On a failure they say which part fails: where the attention goes instead of the
stripe, or what the head writes instead of the token it attends to.

A previous-token head is graded with the reference induction head on top; an induction head with the
learner's own previous-token head once that has passed its check in this session, else with the reference.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ..checks.exercise import CustomExercise, register
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout
from . import handbuilt as hb
from .handbuilt import Head, Layout

PASS_ACCURACY = 0.9
PASS_STRIPE = 0.5      # a head must also put at least this much attention on its stripe (the chapter labels at 0.4)
STRIPE = 0.9           # below this, the head's attention is reported as the problem
MATRICES = ("W_Q", "W_K", "W_V", "W_O")
BATCH = 32
# (layout, copy lengths): two sizes, and two copy lengths on the second layout
DATASETS = ((Layout(vocab=24, n_ctx=21), (10,)), (Layout(vocab=40, n_ctx=35), (16, 9)))

_passed_previous: dict[str, Callable] = {}      # the learner's previous-token head, once it has passed


# --- reading what the learner returned ----------------------------------------------------------

def _head(learner: Any, layout: Layout, what: str) -> tuple[Head | None, str | None]:
    """Call ``learner(layout)`` and turn its answer into a float :class:`Head`, or say what is wrong with it."""
    where = f"on the check's layout ({layout})"
    if not callable(learner):
        return None, f"Pass your function itself (e.g. `{what}`), not {type(learner).__name__}."
    out = call_with_timeout(learner, (layout,), timeout=10)
    if out.error:
        return None, f"{out.error}\n(Called {where}.)"
    value = out.value
    if value is None:
        return None, "Your function returned None: did you forget a `return`?"
    if isinstance(value, dict):
        missing = [m for m in MATRICES if m not in value]
        if missing:
            return None, f"Your dict has no {', '.join(missing)}: return the four matrices W_Q, W_K, W_V, W_O."
        value = [value[m] for m in MATRICES]
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        return None, (f"Return Head(W_Q=..., W_K=..., W_V=..., W_O=...) (or a dict with those keys), "
                      f"not {type(value).__name__}.")
    matrices = []
    for name, m in zip(MATRICES, value):
        if not isinstance(m, Tensor):
            return None, f"{name} is not a torch tensor but {type(m).__name__}; make it one (torch.as_tensor(...))."
        if m.dtype.is_complex or m.dtype == torch.bool:
            return None, f"{name} has dtype {m.dtype}; use real numbers (float)."
        if m.ndim != 2:
            return None, f"{name} has shape {tuple(m.shape)}; a head's matrices are 2-D."
        m = m.detach().float().cpu()
        if not torch.isfinite(m).all():
            return None, f"{name} contains NaN or inf."
        matrices.append(m)
    W_Q, W_K, W_V, W_O = matrices
    d = layout.d_model
    for name, m, dim in (("W_Q", W_Q, 0), ("W_K", W_K, 0), ("W_V", W_V, 0), ("W_O", W_O, 1)):
        if m.shape[dim] != d:
            shape = "[d_model, d_head]" if dim == 0 else "[d_head, d_model]"
            return None, (f"{name} has shape {tuple(m.shape)}, but {where} it must be {shape} with d_model {d}. "
                          "Build the matrices from `layout` (layout.d_model, layout.basis(...)), not from fixed sizes.")
    if W_Q.shape[1] != W_K.shape[1]:
        return None, f"W_Q {tuple(W_Q.shape)} and W_K {tuple(W_K.shape)} must have the same d_head (q and k are dotted)."
    if W_V.shape[1] != W_O.shape[0]:
        return None, f"W_V {tuple(W_V.shape)} ends with {W_V.shape[1]} but W_O {tuple(W_O.shape)} starts with {W_O.shape[0]}."
    return Head(*matrices), None


# --- running the circuit and describing what it does ---------------------------------------------

def _stripe(pattern: Tensor, offset: int, first: int) -> float:
    """Mean attention on key = query - offset, over queries >= first. pattern [batch, q, k]"""
    q = torch.arange(max(first, offset), pattern.shape[-1])
    return pattern[:, q, q - offset].mean().item()


def _measure(layout: Layout, heads: list[Head], n: int, seed: int) -> dict[str, Any]:
    tokens = hb.repeated_tokens(layout, n, BATCH, seed, name="check.handbuilt.tokens")
    logits, patterns, streams = hb.run(layout, heads, tokens)
    p0, p1 = patterns[0, :, 0], patterns[1, :, 0]
    second = slice(n + 1, 2 * n)                               # queries that predict t_2..t_n of the second copy
    return dict(
        n=n, layout=layout, tokens=tokens, finite=bool(torch.isfinite(logits).all() and torch.isfinite(patterns).all()),
        accuracy=hb.second_copy_accuracy(logits, tokens, n) if torch.isfinite(logits).all() else 0.0,
        predicted=logits[:, second].argmax(-1), current=tokens[:, second],
        prev=_stripe(p0, 1, 1), prev_current=_stripe(p0, 0, 1), prev_two=_stripe(p0, 2, 2),
        prev_first=p0[:, 1:, 0].mean().item(),
        prev_peak=(p0[:, 1:].argmax(-1) == torch.arange(p0.shape[-1] - 1)).float().mean().item(),
        ind=_stripe(p1, n - 1, n + 1), ind_dup=_stripe(p1, n, n + 1), ind_current=_stripe(p1, 0, n + 1),
        ind_first=p1[:, n + 1:, 0].mean().item(),
        ind_peak=(p1[:, n + 1:].argmax(-1) == torch.arange(2, n + 2)).float().mean().item(),
        out0=streams[1] - streams[0], out1=streams[2] - streams[1])


def _where_written(layout: Layout, out: Tensor) -> str:
    """The subspace that gets most of a head's output."""
    norms = {name: out[..., layout.span(name)].norm().item() for name in hb.SUBSPACES}
    return max(norms, key=norms.get) if max(norms.values()) > 1e-6 else "nothing"


def _runs(heads_for: Callable[[Layout], tuple[list[Head] | None, str | None]], seed: int):
    """Measure the circuit on every dataset; (measurements, None) or (None, a message)."""
    results = []
    for layout, lengths in DATASETS:
        heads, problem = heads_for(layout)
        if problem:
            return None, problem
        for n in lengths:
            results.append(_measure(layout, heads, n, seed))
    return results, None


def _share(results: list[dict], stripe: str) -> str:
    """The stripe's share of the attention over the test sets: "100%" or "93–100%"."""
    low, high = (f"{f(r[stripe] for r in results):.0%}" for f in (min, max))
    return low if low == high else f"{low}–{high}"


def _summary(results: list[dict]) -> str:
    return ", ".join(f"{r['accuracy']:.0%} (vocab {r['layout'].vocab}, n={r['n']})" for r in results)


def _previous_token_problem(r: dict) -> str:
    """What is wrong with layer 0, given a run whose accuracy is too low."""
    share = f"only {r['prev']:.0%} of layer 0's attention is on the previous token (key = query - 1)"
    if r["prev"] < STRIPE:
        if r["prev_peak"] > 0.9:
            return (f"Layer 0 attends most to the previous token, but softly: {share}. Make the scores sharper "
                    "(multiply W_Q by a larger number), so the softmax puts nearly all the weight there.")
        elsewhere = max(("prev_current", "prev_two", "prev_first"), key=r.get)
        if r[elsewhere] < 0.3:
            elsewhere = None
        if elsewhere == "prev_current":
            return (f"No previous-token stripe: {share}; {r['prev_current']:.0%} goes to the query's own position "
                    "(key = query). The query at position p must match the key of position p - 1, not p: shift "
                    "the position one-hot in W_Q (or in W_K) by one.")
        if elsewhere == "prev_two":
            return (f"No previous-token stripe: {share}; {r['prev_two']:.0%} goes two positions back (key = query - 2). "
                    "Shift by one position, not two.")
        if elsewhere == "prev_first":
            return (f"No previous-token stripe: {share}; {r['prev_first']:.0%} goes to the first position (BOS). "
                    "Match positions with positions: the query at p should light up the key at p - 1.")
        return (f"No previous-token stripe: {share}, and the rest is spread out. The query at position p must "
                "score the key at position p - 1 highest: read the position subspace in both W_Q and W_K, and "
                "shift one of them by one position (towards the past: a key after the query is masked).")
    written = _where_written(r["layout"], r["out0"])
    if written == "nothing":
        return (f"Layer 0 attends to the previous token ({r['prev']:.0%} on the stripe), but writes nothing: W_V reads "
                "a subspace that is still empty at layer 0 (only `token` and `position` hold something there), or "
                "W_O is zero. Read `token` and write it into `previous_token`.")
    if written != "previous_token":
        return (f"Layer 0 attends to the previous token ({r['prev']:.0%} on the stripe), but writes mostly into the "
                f"`{written}` subspace. The induction head reads the previous token from `previous_token`: "
                "W_O should write there.")
    norms = {name: r["out0"][..., r["layout"].span(name)].norm().item() for name in hb.SUBSPACES}
    stray = [name for name in hb.SUBSPACES if name != "previous_token" and norms[name] > 0.1 * norms["previous_token"]]
    if stray:
        return (f"Layer 0 attends to the previous token ({r['prev']:.0%} on the stripe) and writes into "
                f"`previous_token`, but also into {', '.join(f'`{name}`' for name in stray)}, which the rest of the "
                "circuit reads too (the unembedding reads `output`, the induction head's query reads `token`). "
                "W_O should write into `previous_token` only.")
    return (f"Layer 0 attends to the previous token ({r['prev']:.0%} on the stripe) and writes into "
            "`previous_token`, but not the one-hot of the token it attends to. W_V should read the `token` "
            "subspace and W_O write it, coordinate for coordinate, into `previous_token`.")


def _induction_problem(results: list[dict]) -> str:
    """What is wrong with layer 1, given runs of which at least one is not accurate enough."""
    bad = _worst(results, "ind")
    n = bad["n"]
    share = f"only {bad['ind']:.0%} of layer 1's attention from the second copy is on the stripe key = query - (n - 1)"
    if bad["ind"] < STRIPE:
        good = [r for r in results if r["ind"] >= STRIPE]
        if good:
            return (f"Layer 1 finds the stripe when n = {good[0]['n']} but not when n = {n} ({share}). It attends by "
                    "position, not by content: an induction head must find the earlier copy of the current token "
                    "wherever it is, so its query and key should read tokens, not positions.")
        if bad["ind_peak"] > 0.9:
            return (f"Layer 1 attends most to the right key, but softly: {share}. Make the scores sharper "
                    "(multiply W_Q by a larger number).")
        elsewhere = max(("ind_dup", "ind_current", "ind_first"), key=bad.get)
        if bad[elsewhere] < 0.3:
            elsewhere = None
        if elsewhere == "ind_dup":
            return (f"No induction stripe: {share}; {bad['ind_dup']:.0%} goes to key = query - n, the earlier copy "
                    "of the current token itself (a duplicate-token head). The induction head attends one further, "
                    "to the token *after* it: its key should read what layer 0 wrote, `previous_token`, not `token`.")
        if elsewhere == "ind_current":
            return (f"No induction stripe: {share}; {bad['ind_current']:.0%} goes to the query's own position. "
                    "The query should read the current token and the key the previous token (`previous_token`), "
                    "so that a key matches where the token before it is the current one.")
        if elsewhere == "ind_first":
            return (f"No induction stripe: {share}; {bad['ind_first']:.0%} goes to the first position (BOS).")
        return (f"No induction stripe: {share}. From the query at n + i (token t_i) the head must score highest "
                "the key at i + 1, the position whose previous token is t_i: the query reads `token`, the key reads "
                "`previous_token`, and the two must match coordinate for coordinate.")
    written = _where_written(bad["layout"], bad["out1"])
    if written == "nothing":
        return (f"Layer 1 attends to the right place ({bad['ind']:.0%} on the stripe), but writes nothing: "
                "check that W_V reads a subspace that holds something and W_O writes into `output`.")
    if written != "output":
        return (f"Layer 1 attends to the right place ({bad['ind']:.0%} on the stripe), but writes mostly into the "
                f"`{written}` subspace; the unembedding reads only `output`. W_O should write there.")
    copies_current = (bad["predicted"] == bad["current"]).float().mean().item()
    if copies_current > 0.5:
        return (f"Layer 1 attends to the right place ({bad['ind']:.0%} on the stripe), but predicts the current "
                f"token again ({copies_current:.0%} of the time). At the key it attends to, `previous_token` holds "
                "the current token; the token to copy is the key's own token: W_V should read `token`.")
    return (f"Layer 1 attends to the right place ({bad['ind']:.0%} on the stripe), but copies the wrong token "
            f"(accuracy {bad['accuracy']:.0%}). W_V should read the attended position's `token` and W_O write it, "
            "coordinate for coordinate, into `output`.")


# --- the two exercises ---------------------------------------------------------------------------

def _passes(r: dict, stripe: str) -> bool:
    return r["accuracy"] >= PASS_ACCURACY and r[stripe] >= PASS_STRIPE


def _worst(results: list[dict], stripe: str) -> dict:
    return min(results, key=lambda r: (_passes(r, stripe), r["accuracy"], r[stripe]))


def _judge_previous_token(learner: Any) -> tuple[bool, str]:
    _passed_previous.pop("head", None)          # the induction check uses the learner's head only while it passes

    def heads_for(layout: Layout):
        head, problem = _head(learner, layout, "previous_token_head")
        return ([head, hb.reference_induction_head(layout)] if head else None), problem

    results, problem = _runs(heads_for, EXERCISES["previous"].seed())
    if problem:
        return False, problem
    if not all(r["finite"] for r in results):
        return False, "The model's logits or attention contain NaN or inf: are your scores so large that they overflow?"
    if all(_passes(r, "prev") for r in results):
        _passed_previous["head"] = learner
        return True, (f"Your previous-token head puts {_share(results, 'prev')} of its attention on the previous "
                      "token; with the reference induction head on top, the circuit predicts "
                      f"{_summary(results)} of the second copy after its first token.")
    return False, (_previous_token_problem(_worst(results, "prev")) + f"\n(With the reference induction head on top, "
                   f"the circuit predicts {_summary(results)} of the second copy; {PASS_ACCURACY:.0%} is needed, with "
                   f"at least {PASS_STRIPE:.0%} of layer 0's attention on the previous token.)")


def _judge_induction(learner: Any) -> tuple[bool, str]:
    own = _passed_previous.get("head")
    under = ("your previous-token head (it passed its check)" if own else
             "the reference previous-token head (yours has not passed its check yet)")

    def heads_for(layout: Layout):
        head, problem = _head(learner, layout, "induction_head")
        if problem:
            return None, problem
        previous = None
        if own is not None:
            previous, _ = _head(own, layout, "previous_token_head")
        return [previous or hb.reference_previous_token_head(layout), head], None

    results, problem = _runs(heads_for, EXERCISES["induction"].seed())
    if problem:
        return False, problem
    if not all(r["finite"] for r in results):
        return False, "The model's logits or attention contain NaN or inf: are your scores so large that they overflow?"
    if all(_passes(r, "ind") for r in results):
        return True, (f"Your induction head puts {_share(results, 'ind')} of its attention from the second copy "
                      f"on the stripe key = query - (n - 1); under {under}, the circuit predicts "
                      f"{_summary(results)} of the second copy after its first token.")
    return False, (_induction_problem(results) + f"\n(Under {under}, the circuit predicts {_summary(results)} of the "
                   f"second copy; {PASS_ACCURACY:.0%} is needed, with at least {PASS_STRIPE:.0%} of layer 1's attention "
                   "on the stripe.)")


EXERCISES = {
    "previous": register(CustomExercise(
        id="04.handbuilt_previous_token", title="A previous-token head by hand",
        reference=hb.reference_previous_token_head, judge=_judge_previous_token,
        hints=["Only positions tell a head where 'one back' is. Let W_Q and W_K both read the `position` subspace "
               "(layout.basis('position') is [d_model, n_ctx]), with d_head = n_ctx.",
               "If W_K = E_pos, the key of position j is the one-hot e_j. Make the query of position p the one-hot "
               "e_(p-1): W_Q = E_pos @ S for an [n_ctx, n_ctx] matrix S whose row p has its 1 in column p - 1 "
               "(torch.diag(torch.ones(n_ctx - 1), -1)). Multiply W_Q by ~20 for a sharp softmax.",
               "The OV circuit copies the attended token: W_V = layout.basis('token') reads it, "
               "W_O = layout.basis('previous_token').T writes it."])),
    "induction": register(CustomExercise(
        id="04.handbuilt_induction", title="An induction head by hand",
        reference=hb.reference_induction_head, judge=_judge_induction,
        hints=["From the query at n + i (token t_i) the head must find position i + 1: the one position whose "
               "`previous_token` subspace holds t_i. So the query reads one subspace and the key another.",
               "W_Q = 20 * layout.basis('token'), W_K = layout.basis('previous_token'): q·k is 20 where the key's "
               "previous token equals the query's token, 0 elsewhere (K-composition: the key reads layer 0's output).",
               "The head should predict the token *at* the attended position: W_V = layout.basis('token'), "
               "W_O = layout.basis('output').T."])),
}


# --- predict, then check -------------------------------------------------------------------------

def _advise_first_copy(answer: float, truth: float, context: dict) -> str | None:
    chance = context.get("chance")
    if chance is not None and abs(answer - chance) < 0.03:
        return ("Chance would be right if the circuit guessed at random. It does not guess: finding no earlier copy "
                "of the current token, the induction head spreads its attention over the positions so far and "
                "copies their tokens, and in these sequences the next token is never one already seen.")
    if answer > 0.5:
        return ("On the first copy there is nothing to copy: no earlier position has the current token before it.")
    return None


register_question(Question(
    id="04.handbuilt_first_copy", title="The hand-built circuit on the first copy",
    prompt="Your circuit predicts the second copy. On the first copy (t_2..t_n, predicted before any repeat), "
           "what top-1 accuracy will it get? Answer with a fraction between 0 and 1.",
    kind="number", abs_tol=0.02, advise=_advise_first_copy,
    explain="Where the induction head finds no match, it copies tokens already in the context; a circuit that "
            "knows only 'copy' is wrong whenever the next token is new."))


def _advise_soft(answer: float, truth: float, context: dict) -> str | None:
    if answer < truth - 0.05:
        return ("Top-1 only needs the right token to get more attention than any *other single token*. The stripe "
                "gets the largest share, and the rest is spread over many positions that hold different tokens.")
    return None


register_question(Question(
    id="04.handbuilt_soft_induction", title="A soft induction head",
    prompt="Rebuild the induction head with scale 1 instead of 20: its stripe then gets only a small share of the "
           "attention (the cell below measures it). What top-1 accuracy will the circuit get on the second copy? "
           "Answer with a fraction between 0 and 1.",
    kind="number", abs_tol=0.05, advise=_advise_soft,
    explain="An attention score is not an accuracy: the stripe's share can be small while its token still wins "
            "the argmax."))
