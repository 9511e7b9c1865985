"""Exercises and predict-then-check questions for chapter 04, induction heads.

Most exercises are checked on random attention patterns, losses and weights of the shapes a model gives, so they
are fast and model-independent. The two that return hooks (ablating heads, ablating one path) are checked by
running a small random attention-only model (:class:`TinyAttnOnly`, TransformerLens's hook names) with the
learner's hooks and with the reference's. "Name the heads" is checked against the model the learner returns: the
check recomputes the truth from that model's attention on the sequences returned with it. The questions' answers
are computed in the notebook from the loaded model, with the small functions below (``second_copy_share``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks.compare import describe_mismatch, values_match
from ..checks.exercise import (Case, CustomExercise, FunctionExercise, Mistake, call_answer_function, clone_args, randn,
                               register)
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout
from . import circuit, head_scores, paths, phases



def _patterns(gen: torch.Generator, layers: int, batch: int, heads: int, seq: int) -> Tensor:
    """Random causal attention patterns [layer, batch, head, q, k] (rows sum to 1)."""
    scores = randn(gen, layers, batch, heads, seq, seq, scale=2.0)
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1)


# --- 4.1 loss per position ------------------------------------------------------------------

def per_position_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Cross-entropy of predicting each next token. logits: [batch, seq, vocab], tokens: [batch, seq] -> [batch, seq - 1]"""
    logp = F.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logp.gather(-1, tokens[:, 1:, None])[..., 0]


def _loss_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 3, 7, 11, scale=3.0), torch.randint(0, 11, (3, 7), generator=gen)), label="3 rows of 7 tokens"),
            Case((randn(gen, 1, 2, 5), torch.tensor([[4, 0]])), label="a single prediction")]


register(FunctionExercise(
    id="04.per_position_loss", title="Loss at every position", reference=per_position_loss, cases=_loss_cases, atol=1e-4,
    mistakes=[
        Mistake(lambda lg, t: -F.log_softmax(lg, -1)[:, 1:].gather(-1, t[:, 1:, None])[..., 0],
                "The logits at position i predict token i + 1: pair logits[:, :-1] with tokens[:, 1:]."),
        Mistake(lambda lg, t: F.log_softmax(lg[:, :-1], -1).gather(-1, t[:, 1:, None])[..., 0],
                "That is the log-probability; the loss is its negative."),
        Mistake(lambda lg, t: -F.softmax(lg[:, :-1], -1).gather(-1, t[:, 1:, None])[..., 0],
                "Take the log of the probability (log_softmax), not the probability itself."),
    ],
    hints=["logits[:, i] is the prediction for tokens[:, i + 1]; the last position predicts nothing we know.",
           "log_softmax over the vocabulary, then .gather(-1, next_tokens[..., None]) picks each true token's log-probability.",
           "return -F.log_softmax(logits[:, :-1], -1).gather(-1, tokens[:, 1:, None])[..., 0]"]))


# --- 4.2 scoring a head against a template ---------------------------------------------------

def template_score(patterns: Tensor, template: Tensor) -> Tensor:
    """How much attention each head puts where ``template`` says, averaged over the queries it scores.

    patterns: [layer, batch, head, q, k]; template: [q, k], True (or 1) on the keys a query should attend to.
    Each query's score is its attention summed over its template keys; a head's score is the mean over the batch
    and over the queries whose template row has at least one key (the others are left out). -> [layer, head]
    """
    template = template.to(patterns.dtype)
    rows = template.sum(-1) > 0
    return (patterns * template).sum(-1)[..., rows].mean(dim=(1, 3))


def _template_cases(gen: torch.Generator) -> list[Case]:
    p = _patterns(gen, 2, 3, 4, 9)
    prev = torch.zeros(9, 9, dtype=torch.bool)
    prev[torch.arange(1, 9), torch.arange(0, 8)] = True
    two_keys = torch.zeros(9, 9, dtype=torch.bool)
    two_keys[5:, 0] = True
    two_keys[torch.arange(5, 9), torch.arange(1, 5)] = True
    return [Case((p, prev), label="the previous-token template (query 0 has no key)"),
            Case((p, two_keys), label="a template with two keys per row, on queries 5..8 only"),
            Case((_patterns(gen, 1, 1, 2, 3), torch.eye(3, dtype=torch.bool)), label="1 layer, the diagonal of 3 positions")]


register(FunctionExercise(
    id="04.template_score", title="Score heads against a template", reference=template_score, cases=_template_cases,
    mistakes=[
        Mistake(lambda p, t: (p * t.to(p.dtype)).sum(-1).mean(dim=(1, 3)),
                "Average only over the queries your template scores (rows with at least one key): a query with no "
                "key in the template says nothing about the head, and counting it as 0 pulls every score down."),
        Mistake(lambda p, t: (p * t.to(p.dtype)).sum(-1)[..., t.sum(-1) > 0].mean(dim=(1, 3))
                / t.to(p.dtype).sum(-1)[t.sum(-1) > 0].mean(),
                "Sum the attention over a row's template keys; do not average it over them: a query that puts all "
                "its attention on its template keys should score 1, however many keys there are."),
        Mistake(lambda p, t: (p * t.to(p.dtype)).sum(-1)[..., t.sum(-1) > 0].mean(dim=3),
                "Average over the batch too (dimension 1): return one score per head, [layer, head]."),
    ],
    hints=["Multiply the patterns by the template (as floats): what is left is the attention each query puts on its "
           "template keys. Sum over the keys.",
           "rows = template.sum(-1) > 0 marks the queries the template scores; index the query dimension with it.",
           "(patterns * template.float()).sum(-1)[..., rows].mean(dim=(1, 3))"]))


# --- 4.3 where each kind of head looks -------------------------------------------------------

KINDS = ("previous-token", "current-token", "first-token", "induction")


def head_templates(n: int) -> dict[str, Tensor]:
    """The [1 + 2n, 1 + 2n] boolean templates of the four kinds of head on BOS + n random tokens repeated twice."""
    seq = 2 * n + 1
    q = torch.arange(seq)
    out = {kind: torch.zeros(seq, seq, dtype=torch.bool) for kind in KINDS}
    out["previous-token"][q[1:], q[1:] - 1] = True
    out["current-token"][q, q] = True
    out["first-token"][q[1:], 0] = True
    second = torch.arange(n + 1, 2 * n + 1)
    out["induction"][second, second - (n - 1)] = True
    return out


def _templates_with(n: int, kind: str, fill) -> dict[str, Tensor]:
    out = head_templates(n)
    out[kind] = torch.zeros_like(out[kind])
    fill(out[kind], n)
    return out


def _diag(t: Tensor, queries: Tensor, offset: int) -> None:
    t[queries, queries - offset] = True


register(FunctionExercise(
    id="04.head_templates", title="Where each kind of head looks", reference=head_templates,
    cases=lambda gen: [Case((5,), label="n = 5 (sequences of 11 tokens)"), Case((2,), label="n = 2"),
                       Case((1,), label="n = 1 (BOS, one token, the token again)")],
    mistakes=[
        Mistake(lambda n: _templates_with(n, "induction", lambda t, n: _diag(t, torch.arange(n + 1, 2 * n + 1), n)),
                "Your induction template points at the earlier copy of the *same* token (n back): that is a "
                "duplicate-token head. An induction head looks at the token *after* it, n - 1 back."),
        Mistake(lambda n: _templates_with(n, "induction", lambda t, n: _diag(t, torch.arange(n - 1, 2 * n + 1), n - 1)),
                "Only queries of the second copy (positions n + 1 .. 2n) have an earlier occurrence to look back to; "
                "in the first copy an induction head has nothing to find. Leave those rows empty."),
        Mistake(lambda n: _templates_with(n, "first-token", lambda t, n: t[:, 0].fill_(True)),
                "Leave query 0 out of the first-token template: BOS can only attend to itself, so it would score 1 "
                "for every head."),
        Mistake(lambda n: _templates_with(n, "previous-token", lambda t, n: _diag(t, torch.arange(2 * n), -1)),
                "Rows are queries and columns keys: a query at q looks back to key q - 1 (below the diagonal), "
                "not forward to q + 1."),
    ],
    hints=["Positions: 0 is BOS, 1..n the first copy, n + 1..2n the second; token t_i sits at i and at n + i.",
           "Three templates are diagonals of the [query, key] grid (key = query - offset, for some queries), and one "
           "is a column. Which offset takes a query in the second copy to the token after its earlier occurrence?",
           "Previous: key = q - 1 for q ≥ 1. Current: key = q. First: key 0 for q ≥ 1. Induction: key = q - (n - 1) "
           "for q in n + 1 .. 2n. Index with two aranges: t[q, q - offset] = True."]))


# --- 4.4 ablation hooks (and the tiny model their checks run on) ------------------------------------------------------------------------

class _HookPoint:
    """What a hook function receives as its ``hook`` argument (its ``name``, as in TransformerLens)."""

    def __init__(self, name: str):
        self.name = name


class TinyAttnOnly:
    """A small attention-only transformer with TransformerLens's hook names and weight layout, to run
    a learner's hooks on: ``run_with_hooks(tokens, fwd_hooks=[(name, fn), ...])`` -> logits.

    LayerNorm without gain (as in models folded by ``models.load``), writing weights centred."""

    def __init__(self, gen: torch.Generator, n_layers: int = 2, n_heads: int = 3, d_model: int = 12, d_head: int = 4,
                 d_vocab: int = 17, n_ctx: int = 16):
        from types import SimpleNamespace

        self.cfg = SimpleNamespace(n_layers=n_layers, n_heads=n_heads, d_model=d_model, d_head=d_head,
                                   d_vocab=d_vocab, n_ctx=n_ctx, attn_only=True)
        L, H, d, e = n_layers, n_heads, d_model, d_head
        self.W_E, self.W_pos = randn(gen, d_vocab, d), randn(gen, n_ctx, d)
        self.W_Q, self.W_K, self.W_V = (randn(gen, L, H, d, e, scale=d ** -0.5 * 2) for _ in range(3))
        self.b_Q, self.b_K, self.b_V = (randn(gen, L, H, e, scale=0.1) for _ in range(3))
        W_O = randn(gen, L, H, e, d, scale=e ** -0.5)
        self.W_O = W_O - W_O.mean(-1, keepdim=True)
        self.b_O = torch.zeros(L, d)
        self.W_U = randn(gen, d, d_vocab)
        self.hook_names = {"hook_embed", "hook_pos_embed", "ln_final.hook_scale"} | {
            f"blocks.{l}.{x}" for l in range(L) for x in (
                "hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v",
                "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_post")}

    def __call__(self, tokens: Tensor) -> Tensor:
        return self.run_with_hooks(tokens)

    def run_with_hooks(self, tokens: Tensor, fwd_hooks: Any = ()) -> Tensor:
        hooks: dict[str, list] = {}
        for name, fn in fwd_hooks:
            hooks.setdefault(name, []).append(fn)

        def at(name: str, x: Tensor) -> Tensor:
            for fn in hooks.get(name, []):
                out = fn(x, _HookPoint(name))
                if out is not None and not (isinstance(out, Tensor) and out.shape == x.shape):
                    raise ValueError(f"the hook at {name!r} returned "
                                     f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}, "
                                     f"expected a tensor of the shape it was given, {tuple(x.shape)}")
                x = x if out is None else out
            return x

        def ln(x: Tensor, name: str) -> Tensor:
            x = x - x.mean(-1, keepdim=True)
            return x / at(f"{name}.hook_scale", (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt())

        seq = tokens.shape[1]
        x = at("hook_embed", self.W_E[tokens]) + at("hook_pos_embed", self.W_pos[:seq])
        future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
        for l in range(self.cfg.n_layers):
            x = at(f"blocks.{l}.hook_resid_pre", x)
            xn = at(f"blocks.{l}.ln1.hook_normalized", ln(x, f"blocks.{l}.ln1"))
            q, k, v = (at(f"blocks.{l}.attn.hook_{s}", torch.einsum("bpd,hde->bphe", xn, W[l]) + b[l])
                       for s, W, b in (("q", self.W_Q, self.b_Q), ("k", self.W_K, self.b_K), ("v", self.W_V, self.b_V)))
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / self.cfg.d_head ** 0.5
            scores = at(f"blocks.{l}.attn.hook_attn_scores", scores.masked_fill(future, float("-inf")))
            pattern = at(f"blocks.{l}.attn.hook_pattern", scores.softmax(-1))
            z = at(f"blocks.{l}.attn.hook_z", torch.einsum("bhqk,bkhe->bqhe", pattern, v))
            x = at(f"blocks.{l}.hook_resid_post", x + at(f"blocks.{l}.hook_attn_out",
                                                          torch.einsum("bqhe,hed->bqd", z, self.W_O[l]) + self.b_O[l]))
        return ln(x, "ln_final") @ self.W_U


@dataclass
class HookCase(Case):
    """A case for a function that returns hooks: the model and tokens to run them on."""

    model: Any = None
    tokens: Tensor | None = None


def _hooks_problem(hooks: Any, model: TinyAttnOnly) -> str | None:
    if hooks is None:
        return "Your function returned None. Did you forget a `return` statement? Return a list of (hook name, function)."
    if not isinstance(hooks, (list, tuple)):
        return f"Return a list of (hook name, function) pairs, not {type(hooks).__name__}."
    for item in hooks:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str) and callable(item[1])):
            return (f"Each hook is a pair (hook name, function), like ('blocks.0.attn.hook_z', fn); got {item!r:.80}.")
        if item[0] not in model.hook_names:
            return (f"There is no hook point {item[0]!r}. Names look like 'blocks.1.attn.hook_q' or "
                    "'blocks.1.ln1.hook_scale' (layer number, then the hook).")
    return None


@dataclass
class HookExercise(FunctionExercise):
    """A function that returns hooks ``[(hook name, fn), ...]``: judged by the logits of a small model run with
    them (:class:`TinyAttnOnly`), against the reference's hooks; known mistakes are recognised the same way."""

    def _logits(self, hooks: Any, case: HookCase) -> Tensor:
        return case.model.run_with_hooks(case.tokens.clone(), fwd_hooks=list(hooks))

    def _evaluate_case(self, learner: Callable, case: Case) -> str | None:
        expected = self._logits(self.reference(*clone_args(case.args), **clone_args(case.kwargs)), case)
        outcome = call_with_timeout(learner, clone_args(case.args), clone_args(case.kwargs), self.timeout)
        if outcome.error:
            return f"On {case.label}: {outcome.error}"
        problem = _hooks_problem(outcome.value, case.model)
        if problem:
            return f"On {case.label}: {problem}"
        run = call_with_timeout(self._logits, (outcome.value, case), {}, self.timeout)
        if run.error:
            return f"On {case.label}, running the model with your hooks: {run.error}"
        problem = describe_mismatch(run.value, expected, name="the logits with your hooks", atol=self.atol, rtol=self.rtol)
        if problem is None:
            return None
        for mistake in self.mistakes:
            try:
                wrong = self._logits(mistake.fn(*clone_args(case.args), **clone_args(case.kwargs)), case)
            except Exception:
                continue
            if values_match(run.value, wrong, atol=self.atol, rtol=self.rtol):
                return f"{mistake.message}\n(On {case.label}: {problem})"
        return f"On {case.label}: {problem}"


def ablation_hooks(heads: list, means: dict | None = None) -> list:
    """Hooks that replace each (layer, head) in ``heads``'s output ``z`` by zeros, or by ``means[(layer, head)]``
    [d_head] when ``means`` is given. -> [(hook name, fn), ...]"""
    def make(head: int, mean: Tensor | None):
        def hook(z: Tensor, hook: Any) -> Tensor:
            z = z.clone()
            z[:, :, head] = 0.0 if mean is None else mean
            return z
        return hook

    return [(f"blocks.{layer}.attn.hook_z", make(head, None if means is None else means[(layer, head)]))
            for layer, head in heads]


def _late_binding(heads, means=None):
    hooks = []
    for layer, head in heads:
        hooks.append((f"blocks.{layer}.attn.hook_z", lambda z, hook: ablation_hooks([(0, head)])[0][1](z, hook)))
    return hooks


def _whole_layer(heads, means=None):
    def zero(z, hook):
        return torch.zeros_like(z)
    return [(f"blocks.{layer}.attn.hook_z", zero) for layer, _ in heads]


def _ablation_cases(gen: torch.Generator) -> list[Case]:
    model = TinyAttnOnly(gen)
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 10), generator=gen)
    means = {(0, 1): randn(gen, 4), (1, 2): randn(gen, 4), (1, 0): randn(gen, 4)}
    return [HookCase(([(1, 0)],), label="zero-ablating L1H0", model=model, tokens=tokens),
            HookCase(([(0, 1), (1, 2)],), label="zero-ablating L0H1 and L1H2", model=model, tokens=tokens),
            HookCase(([(1, 0), (1, 2)], means), label="mean-ablating L1H0 and L1H2 (means given)", model=model, tokens=tokens),
            HookCase(([],), label="no heads at all", model=model, tokens=tokens)]


register(HookExercise(
    id="04.ablation_hooks", title="Hooks that ablate heads", reference=ablation_hooks, cases=_ablation_cases,
    mistakes=[
        Mistake(_late_binding,
                "Every hook ablates the same head: a function defined in a loop looks up `head` when it *runs*, after "
                "the loop has ended, so all of them see the last value. Build each hook in a helper function that "
                "takes the head as an argument (or bind it as a default argument, `head=head`)."),
        Mistake(_whole_layer, "Replace only the listed head's slice z[:, :, head], not every head of the layer."),
        Mistake(lambda heads, means=None: ablation_hooks(heads),
                "With `means` given, put each head's mean in place of its output (mean-ablation), not zeros."),
    ],
    hints=["A hook is a pair (name, fn): the model calls fn(z, hook) with the activation at that name and uses what "
           "fn returns. Heads' outputs before W_O are at f'blocks.{layer}.attn.hook_z', [batch, pos, head, d_head].",
           "One hook per (layer, head): inside it, clone z and set z[:, :, head] to 0.0 or to the mean (it broadcasts).",
           "Make each hook in a helper, `def make(head, mean): def hook(z, hook): ...; return hook`, so that each "
           "remembers its own head."]))


# --- 4.5 the K-composition circuit --------------------------------------------------------------

def _kcomp_cases(gen: torch.Generator) -> list[Case]:
    d, e = 8, 3
    return [Case((randn(gen, 12, d), randn(gen, d, e), randn(gen, d, e), randn(gen, d, e) @ randn(gen, e, d)),
                 label="12 tokens, d_model 8, d_head 3")]


register(FunctionExercise(
    id="04.k_composition_circuit", title="The K-composition circuit", reference=circuit.k_composition_circuit,
    cases=_kcomp_cases, atol=1e-3, rtol=1e-3,
    mistakes=[
        Mistake(lambda W_E, W_Q, W_K, W_OV: (W_E @ W_Q) @ (W_E @ W_K).T,
                "The previous-token head's OV circuit is missing: the induction head's keys read what that head wrote, "
                "W_E @ W_OV_prev, not the token embeddings themselves."),
        Mistake(lambda W_E, W_Q, W_K, W_OV: ((W_E @ W_Q) @ (W_E @ W_OV @ W_K).T).T,
                "Rows are query tokens and columns key-side tokens: transpose your result."),
    ],
    hints=["A query token t reads as W_E[t] @ W_Q. A key position whose previous token was s holds, from the "
           "previous-token head, W_E[s] @ W_OV_prev; the induction head reads it with W_K.",
           "Queries: W_E @ W_Q [vocab, d_head]. Keys: W_E @ W_OV_prev @ W_K [vocab, d_head].",
           "The scores are queries @ keys.T."]))


# --- 4.6 path ablation ---------------------------------------------------------------------------

def _path_variant(*, side_of=None, all_readers=False, no_scale=False, writer_scale=False, whole_head=False,
                  residual=False):
    def hooks(model, writer, readers, side, reader_layer=1):
        if whole_head:
            return ablation_hooks([writer])
        layer, head = writer
        seen: dict[str, Tensor] = {}
        used = side_of.get(side, side) if side_of else side
        W_side = {"q": model.W_Q, "k": model.W_K, "v": model.W_V}[used][reader_layer]
        heads = range(model.cfg.n_heads) if all_readers else readers

        def keep_output(z, hook):
            seen["out"] = z[:, :, head] @ model.W_O[layer, head]
            return z

        def keep_scale(scale, hook):
            seen["scale"] = scale
            return scale

        def remove(x, hook):
            x = x.clone()
            removed = seen["out"] if no_scale else seen["out"] / seen["scale"]
            for h in heads:
                x[:, :, h] = x[:, :, h] - removed @ W_side[h]
            return x

        def remove_from_input(x, hook):
            return x - seen["out"] / seen["scale"]

        scale_at = f"blocks.{layer if writer_scale else reader_layer}.ln1.hook_scale"
        if residual:
            return [(f"blocks.{layer}.attn.hook_z", keep_output), (scale_at, keep_scale),
                    (f"blocks.{reader_layer}.ln1.hook_normalized", remove_from_input)]
        return [(f"blocks.{layer}.attn.hook_z", keep_output), (scale_at, keep_scale),
                (f"blocks.{reader_layer}.attn.hook_{used}", remove)]
    return hooks


def _path_cases(gen: torch.Generator) -> list[Case]:
    model = TinyAttnOnly(gen)
    tokens = torch.randint(0, model.cfg.d_vocab, (2, 12), generator=gen)
    return [HookCase((model, (0, 2), [0, 1], "k"), label="L0H2 out of the keys of L1H0 and L1H1", model=model, tokens=tokens),
            HookCase((model, (0, 1), [1], "q"), label="L0H1 out of the queries of L1H1", model=model, tokens=tokens),
            HookCase((model, (0, 0), [0, 2], "v"), label="L0H0 out of the values of L1H0 and L1H2", model=model, tokens=tokens),
            HookCase((model, (0, 1), [2], "k"), label="L0H1 out of the keys of L1H2", model=model, tokens=tokens)]


register(HookExercise(
    id="04.path_ablation_hooks", title="Remove one head from one side of the readers", reference=paths.path_ablation_hooks,
    cases=_path_cases, atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake(_path_variant(whole_head=True),
                "That ablates the whole head: every reader loses it, on every side (and the later layers too). Keep "
                "the writer's output where it is and subtract it only from what the readers read on `side`."),
        Mistake(_path_variant(residual=True),
                "Subtracting the writer's output from the reader layer's input removes it from every side of every "
                "head of that layer at once. Remove it from one side of the readers only: at hook_q, hook_k or hook_v."),
        Mistake(_path_variant(side_of={"q": "k", "k": "q"}),
                "You removed the head from the wrong side: queries are hook_q read through W_Q, keys hook_k through "
                "W_K, values hook_v through W_V."),
        Mistake(_path_variant(all_readers=True),
                "Only the heads in `readers` should lose the writer; the other heads of the reader layer keep it."),
        Mistake(_path_variant(no_scale=True),
                "The readers see the residual stream through their LayerNorm: divide the writer's output by the "
                "readers' LayerNorm scale (blocks.{reader_layer}.ln1.hook_scale) before W_Q, W_K or W_V."),
        Mistake(_path_variant(writer_scale=True),
                "That is the writer's LayerNorm scale (its own layer's ln1). The readers divide by theirs: "
                "blocks.{reader_layer}.ln1.hook_scale."),
    ],
    hints=["Three hooks, in the order the model runs them: one at the writer's hook_z that keeps its output "
           "z[:, :, head] @ W_O[layer, head] (and returns z unchanged), one at the readers' ln1.hook_scale that keeps "
           "the scale, and one at the readers' hook_q, hook_k or hook_v that subtracts.",
           "A reader h sees the writer's output through its LayerNorm and its W_side: what it reads from the writer is "
           "(out / scale) @ W_side[reader_layer, h], [batch, pos, d_head].",
           "q'_h = q_h - (out / scale) @ W_Q[reader_layer, h] (likewise for k with W_K, v with W_V). Keep what the "
           "earlier hooks saw in a dict the later hook reads; clone x before you change it."]))


# --- 4.7 name the heads ---------------------------------------------------------------------------

def _parse_head(name: Any) -> str | None:
    if isinstance(name, (tuple, list)) and len(name) == 2:
        try:
            return head_scores.head_name(int(name[0]), int(name[1]))
        except (TypeError, ValueError):
            return None
    m = re.fullmatch(r"\s*[Ll]?(\d+)\s*[Hh.:,\s]\s*(\d+)\s*", str(name))
    return head_scores.head_name(int(m.group(1)), int(m.group(2))) if m else None


def true_heads(model: Any, tokens: Tensor | None = None, n: int = 30, batch: int = 8, seed: int = 0,
               threshold: float = 0.4) -> dict[str, set[str]]:
    """The heads above ``threshold``, measured on ``tokens`` [batch, 1 + 2n'] (BOS, then n' tokens twice):
    the sequences the learner's score table used. Without them: BOS + ``n`` random tokens repeated (any token
    but BOS)."""
    if tokens is None:
        bos = int(getattr(model.tokenizer, "bos_token_id", 0) or 0)
        pool = torch.tensor([t for t in range(model.cfg.d_vocab) if t != bos])
        tokens = head_scores.repeated_random_tokens(pool, n, batch, bos_id=bos, seed=seed)
    n = (tokens.shape[1] - 1) // 2
    patterns = head_scores.attention_patterns(model, tokens)
    return head_scores.label_heads(head_scores.prev_token_scores(patterns), head_scores.induction_scores(patterns, n),
                                   threshold)


def _judge_heads(learner) -> tuple[bool, str]:
    value, problem = call_answer_function(learner, "find_heads")
    if problem is not None:
        return False, problem
    if not (isinstance(value, tuple) and len(value) in (2, 3) and hasattr(value[0], "cfg")):
        return False, "Return `target, tokens, heads`: the model you studied, the sequences you scored and a dict of head names."
    model, heads = value[0], value[-1]
    tokens = value[1] if len(value) == 3 else None
    if tokens is not None and not (isinstance(tokens, Tensor) and tokens.ndim == 2 and tokens.shape[1] % 2 == 1):
        return False, "The sequences should be the `[batch, 1 + 2n]` tensor you scored (`tokens`)."
    if not isinstance(heads, dict) or set(heads) != {"previous_token", "induction"}:
        return False, 'Answer with a dict {"previous_token": {...}, "induction": {...}} of head names like "L0H2".'
    named: dict[str, set[str]] = {}
    for kind, names in heads.items():
        if names is None:
            names = []
        names = [names] if isinstance(names, (str, tuple)) else list(names) if hasattr(names, "__iter__") else [names]
        parsed = [_parse_head(x) for x in names]
        if None in parsed:
            return False, f"Could not read {names[parsed.index(None)]!r} as a head: write heads as 'L1H0' (layer 1, head 0)."
        named[kind] = set(parsed)
    truth = true_heads(model, tokens)
    problems = []
    for kind, label in (("previous_token", "previous-token"), ("induction", "induction")):
        missing, extra = truth[kind] - named[kind], named[kind] - truth[kind]
        if missing:
            problems.append(f"{label} heads missing: {', '.join(sorted(missing))}")
        if extra:
            problems.append(f"not {label} heads (score at most 0.4 here): {', '.join(sorted(extra))}")
    if problems:
        return False, ("Not quite: " + "; ".join(problems) + ". Score the heads of this model on these sequences; "
                       "the table of section 3 is another model's answer.")
    where = "on your sequences" if tokens is not None else "on random tokens"
    return True, (f"Right: previous-token {', '.join(sorted(truth['previous_token'])) or 'none'}; "
                  f"induction {', '.join(sorted(truth['induction'])) or 'none'} (recomputed from the model {where}).")


register(CustomExercise(
    id="04.find_heads", title="Name the heads of a model in training", reference=None, judge=_judge_heads,
    hints=["Run `target` on `tokens` (head_scores.attention_patterns) and score every head with your template_score "
           "and head_templates. A head is labelled when its score is above 0.4.",
           "The sequences are BOS + N tokens twice, so head_templates(N) fits them.",
           "Answer with the sets of names above 0.4; an empty set is an answer too."]))


# --- 4.8 the in-context learning score, over windows ----------------------------------------------

def _icl_cases(gen: torch.Generator) -> list[Case]:
    loss = torch.rand(6, 120, generator=gen) * 5
    return [Case((loss,), label="6 rows of 120 losses, default windows (tokens 5-15 and 90-110)"),
            Case((loss, (2, 4), (50, 52)), label="windows of tokens 2-4 and 50-52"),
            Case((torch.rand(3, 30, generator=gen), (1, 1), (29, 30)), label="3 rows; windows of one token and of the last two")]


def _icl_variant(*, shift=0, end=1, tokens_se=False, biased=False, sign=1, no_sqrt=False):
    def score(loss, early=(5, 15), late=(90, 110)):
        window = lambda w: loss[:, w[0] - 1 + shift: w[1] - 1 + shift + end]
        per_row = sign * (window(late).mean(-1) - window(early).mean(-1))
        if tokens_se:
            spread = (window(late) - window(late).mean()).std() / window(late).numel() ** 0.5
        else:
            spread = per_row.std(correction=0 if biased else 1) / (1 if no_sqrt else len(per_row) ** 0.5)
        return per_row.mean().item(), spread.item()
    return score


register(FunctionExercise(
    id="04.windowed_icl_score", title="The in-context learning score, over windows",
    reference=phases.windowed_icl_score, cases=_icl_cases, atol=1e-4,
    mistakes=[
        Mistake(_icl_variant(shift=1), "Off by one: loss[:, i] is the loss on token i + 1, so token t's loss is loss[:, t - 1]."),
        Mistake(_icl_variant(end=0), "Both ends of each window are included: tokens a..b are loss[:, a - 1 : b]."),
        Mistake(_icl_variant(sign=-1), "The other way round: late minus early, so that learning from context gives a negative score."),
        Mistake(_icl_variant(no_sqrt=True),
                "That is the spread of the rows' scores, not the standard error of their mean: divide by √(number of rows)."),
        Mistake(_icl_variant(biased=True), "Use the sample standard deviation (n - 1 in the denominator, torch's default)."),
    ],
    hints=["loss[:, i] is the loss on token i + 1 (BOS is token 0 and is never predicted), so tokens a..b (both "
           "included) are loss[:, a - 1 : b].",
           "First one number per row: its mean loss in the late window minus its mean loss in the early window. The "
           "score is their mean.",
           "The rows are the independent samples: the standard error is per_row.std() / √len(per_row). Return "
           "(score, standard error) as two floats."]))


# --- 4.9 when did the circuit form? -------------------------------------------------------------

def crossing_step(steps: list, scores: Any, threshold: float = 0.4) -> float | None:
    """The training step at which ``scores`` (one per checkpoint in ``steps``) first rises above ``threshold``,
    interpolated linearly between the two checkpoints around the crossing; ``steps[0]`` if it starts above, None if
    it never gets there."""
    s = [float(x) for x in scores]
    if s[0] > threshold:
        return float(steps[0])
    for i in range(1, len(s)):
        if s[i] > threshold:
            return steps[i - 1] + (threshold - s[i - 1]) / (s[i] - s[i - 1]) * (steps[i] - steps[i - 1])
    return None


def _crossing_cases(gen: torch.Generator) -> list[Case]:
    return [Case(([0, 100, 200, 400], torch.tensor([0.0, 0.2, 0.6, 0.9])), label="one crossing between steps 100 and 200"),
            Case(([0, 10, 20, 30, 40], [0.1, 0.5, 0.3, 0.7, 0.8]), label="scores that cross, dip below and cross again"),
            Case(([0, 50, 300], [0.1, 0.6, 0.9], 0.5), label="threshold 0.5, checkpoints unevenly spaced"),
            Case(([5, 6], [0.45, 0.9]), label="a score already above at the first checkpoint"),
            Case(([0, 1, 2], [0.0, 0.1, 0.2]), label="a score that never gets there")]


def _crossing_variant(kind: str):
    def f(steps, scores, threshold=0.4):
        s = [float(x) for x in scores]
        if kind == "next":
            return next((float(st) for st, v in zip(steps, s) if v > threshold), None)
        if kind == "last":
            for i in range(len(s) - 1, 0, -1):
                if s[i] > threshold >= s[i - 1]:
                    return steps[i - 1] + (threshold - s[i - 1]) / (s[i] - s[i - 1]) * (steps[i] - steps[i - 1])
            return float(steps[0]) if s[0] > threshold else None
        if kind == "index":
            for i in range(1, len(s)):
                if s[i] > threshold:
                    return (i - 1) + (threshold - s[i - 1]) / (s[i] - s[i - 1])
            return 0.0 if s[0] > threshold else None
    return f


register(FunctionExercise(
    id="04.crossing_step", title="When did the circuit form?", reference=crossing_step, cases=_crossing_cases,
    mistakes=[
        Mistake(_crossing_variant("next"),
                "That is the first checkpoint above the threshold; the score crossed somewhere before it. "
                "Interpolate linearly between that checkpoint and the one before."),
        Mistake(_crossing_variant("last"), "Return the *first* time the score rises above the threshold, not the last."),
        Mistake(_crossing_variant("index"), "Interpolate between the checkpoints' steps, not their positions in the list."),
    ],
    hints=["Walk through the checkpoints until the score is above the threshold; the crossing lies between that "
           "checkpoint and the previous one.",
           "On the straight line from (step_a, score_a) to (step_b, score_b), the threshold is reached at "
           "step_a + (threshold - score_a) / (score_b - score_a) * (step_b - step_a).",
           "Two edge cases: a score above the threshold at the first checkpoint (return that step), and one that never "
           "gets there (return None)."]))


# --- predict, then check ------------------------------------------------------------------------

SECOND_COPY = ["about the same as the first", "lower, but more than half of it", "a quarter to a half of it",
               "under a quarter of it"]


def second_copy_share(first: float, second: float) -> str:
    """The answer to 04.second_copy_loss from the two copies' mean losses."""
    ratio = second / first
    return SECOND_COPY[0] if ratio > 0.9 else SECOND_COPY[1] if ratio > 0.5 else SECOND_COPY[2] if ratio > 0.25 \
        else SECOND_COPY[3]


register_question(Question(
    id="04.second_copy_loss", title="The loss on the second copy",
    prompt="The model reads BOS, 50 random words, then the same 50 words again. Its mean loss on the second copy "
           "will be ... (of the first copy's)",
    choices=SECOND_COPY,
    messages={
        SECOND_COPY[0]: "That is what a model without induction heads does (section 9's one-layer model): the words "
        "are random, so nothing in the weights predicts them. But the context does: each word of the second copy "
        "follows the same word as in the first.",
        SECOND_COPY[1]: "The repetition is exact, so a model that uses it can predict almost every word of the "
        "second copy, not just some."},
    explain="Only the context can predict random words, and it predicts the second copy almost completely."))

BOS_BY_COPY = ["mostly from the first copy", "mostly from the second copy", "from both copies alike"]


def bos_by_copy(first: float, second: float) -> str:
    """The answer to 04.first_token_by_copy from a head's attention to BOS from each copy."""
    return BOS_BY_COPY[0] if first > 2 * second else BOS_BY_COPY[1] if second > 2 * first else BOS_BY_COPY[2]


register_question(Question(
    id="04.first_token_by_copy", title="An induction head that rests on the first token",
    prompt="L1H1 scores as an induction head and as a first-token head. Where do its queries that attend to the first "
           "token sit?",
    choices=BOS_BY_COPY,
    messages={
        BOS_BY_COPY[1]: "In the second copy L1H1 has a token to copy, and its attention there goes to the induction "
                        "stripe (its induction score is near 0.9).",
        BOS_BY_COPY[2]: "The two scores average over different queries: the induction score only over the second "
                        "copy, the first-token score over every query. Ask where the head has something to do."},
    explain="In the first copy an induction head has nothing to copy, and L1H1 parks its attention on the first "
            "token there; in the second copy it leaves it."))

MEAN_VS_ZERO = ["zero-ablation", "mean-ablation", "about the same"]


def worse_ablation(zero: float, mean: float, tol: float = 0.25) -> str:
    """The answer to 04.mean_or_zero from the loss rise of each ablation."""
    return MEAN_VS_ZERO[2] if abs(mean - zero) <= tol else MEAN_VS_ZERO[0] if zero > mean else MEAN_VS_ZERO[1]


register_question(Question(
    id="04.mean_or_zero", title="Mean- or zero-ablation?",
    prompt="Ablate L1H1 alone. Which raises the loss on the second copy more: replacing its output with zeros, or with "
           "its average output over the sequences?",
    choices=MEAN_VS_ZERO,
    messages={
        MEAN_VS_ZERO[0]: "Usually, yes: the mean keeps what the head writes everywhere. But the average is taken over "
                         "the whole sequence, and half of it is the first copy. What does L1H1 do there?",
        MEAN_VS_ZERO[2]: "The two differ by more than a nat here: the average of a head that does different things "
                         "in different places is not neutral anywhere."},
    explain="A mean is only a gentle replacement if it is typical of the positions it replaces."))

SECOND_MEAN = ["about what zero-ablation costs", "as much as the whole-sequence mean", "more than the whole-sequence mean"]


def second_copy_mean(rise: float, zero: float, whole: float) -> str:
    """The answer to 04.mean_over_second_copy from the loss rises."""
    if abs(rise - zero) <= 0.5:
        return SECOND_MEAN[0]
    return SECOND_MEAN[2] if rise > whole + 0.5 else SECOND_MEAN[1] if abs(rise - whole) <= 0.5 else SECOND_MEAN[0]


register_question(Question(
    id="04.mean_over_second_copy", title="A mean taken where the head works",
    prompt="Mean-ablate L1H1 again, but with its average over the second copy only. What will that cost?",
    choices=SECOND_MEAN,
    messages={
        SECOND_MEAN[1]: "The whole-sequence mean is mostly what L1H1 writes in the first copy, where it parks on "
                        "the first token. The second copy's mean is what it writes when it copies.",
        SECOND_MEAN[2]: "The harm came from writing the first copy's 'nothing to do' signal into the second copy; "
                        "the second copy's own average carries no such signal."},
    explain="The whole-sequence mean was mostly the first copy's: what L1H1 writes when it has nothing to copy. "
            "Written into every position of the second copy, that signal does more harm than silence."))

KEY_SHARE = ["a small part of it (under half)", "most of it (half to 90%)", "about all of it, or more (over 90%)"]


def key_share(path: float, whole: float) -> str:
    """The answer to 04.previous_token_head_through_keys from the two loss rises."""
    ratio = path / whole if whole > 0 else float("inf")
    return KEY_SHARE[0] if ratio < 0.5 else KEY_SHARE[1] if ratio < 0.9 else KEY_SHARE[2]


register_question(Question(
    id="04.previous_token_head_through_keys", title="The previous-token head, through the keys only",
    prompt="Remove the previous-token head L0H2 from the induction heads' keys only, and from nothing else. Compared "
           "with ablating L0H2 whole (section 4), how much of the loss rise will that cause?",
    choices=KEY_SHARE,
    messages={
        KEY_SHARE[0]: "Removing only one path leaves L0H2 everywhere else: in the queries, the values and the "
                      "direct path. But which of them needs the previous token?"},
    explain="K-composition: what the model needs from the previous-token head is the previous token in the induction "
            "heads' keys."))


def _head_of(context: dict, key: str) -> str:
    x = context.get(key)
    return head_scores.head_name(*x) if isinstance(x, tuple) else str(x)


register_question(Question(
    id="04.best_query_route", title="What the query reads",
    prompt="Read the keys through the previous-token head. Through which layer-0 head (a name like 'L0H3', or "
           "'embeddings') should the query be read for the diagonal to be clearest?",
    kind="name", pattern=r"L0H\d+|embeddings", example="L0H3",
    advise=lambda answer, truth, context: (
        "The previous-token head writes the word *before* each position. The query has to hold the current word."
        if answer == _head_of(context, "prev_head") else
        "The embedding is in the query's input, but chapter 02 found it a small part of what the induction heads' "
        "queries read." if answer == "embeddings" else None),
    explain="The current-token heads write the word itself at its own position, in the subspace the induction "
            "heads' queries read."))

STORY_CAUSE = ["the names: it does not do induction from first names", "the stories: inside them it rests elsewhere"]


register_question(Question(
    id="04.l1h0_in_stories", title="An induction head that skips the names",
    prompt="L1H0 has an induction score near 0.9 on random words, yet from a repeated first name in a story it hardly "
           "looks at the earlier mention. Is it the names or the stories?",
    choices=STORY_CAUSE,
    messages={STORY_CAUSE[0]: "First names are words like any other in the random sequences; test it there."},
    explain="On repeated random words L1H0 does induction from first names as from other words; in stories it puts "
            "almost all its attention on the first token."))

ABLATED_MENTIONS = ["less than a first mention", "about the same as a first mention", "more than a first mention"]


def ablated_mentions(repeat: float, first: float, tol: float = 0.2) -> str:
    """The answer to 04.ablated_repeat_mentions from the two ablated losses."""
    return ABLATED_MENTIONS[1] if abs(repeat - first) <= tol else ABLATED_MENTIONS[2] if repeat > first \
        else ABLATED_MENTIONS[0]


register_question(Question(
    id="04.ablated_repeat_mentions", title="Repeat mentions without induction heads",
    prompt="Ablate both induction heads. The last name after a repeated first name will then cost ...",
    choices=ABLATED_MENTIONS,
    messages={
        ABLATED_MENTIONS[0]: "Without induction heads nothing brings the earlier last name forward: the earlier "
                             "mention is in the context, but nothing reads it.",
        ABLATED_MENTIONS[1]: "Without the copy, both are guesses. But is the rest of the model guessing the same way "
                             "after a repeat mention?"},
    explain="Ablated, repeat mentions cost more than first mentions: something downstream still expects a copy and "
            "is left without it, as on the random tokens."))


# The hand-built induction circuit (section "Build one by hand") registers its exercises in its own module.
from . import handbuilt_exercises  # noqa: E402,F401
