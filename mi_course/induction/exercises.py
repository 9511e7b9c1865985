"""Exercises for chapter 04, induction heads.

Most exercises are checked on random attention patterns, losses and weights of
the shapes a model gives, so they are fast and model-independent. "Name the
heads" is checked against the model the notebook runs: the check recomputes
the truth from that model's attention on repeated random tokens.
"""

from __future__ import annotations

import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, call_answer_function, randn, register
from ..checks.sandbox import call_with_timeout
from . import circuit, head_scores, phases



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


# --- 4.2-4.5 head scores -----------------------------------------------------------------------

def _score_cases(gen: torch.Generator) -> list[Case]:
    return [Case((_patterns(gen, 2, 3, 4, 9),), label="2 layers, 4 heads, 9 positions"),
            Case((_patterns(gen, 1, 1, 2, 3),), label="1 layer, 3 positions")]


def _stripe(p: Tensor, offset: int, first: int) -> Tensor:
    q = torch.arange(first, p.shape[-1])
    return p[..., q, q - offset].mean(dim=(1, 3))


register(FunctionExercise(
    id="04.prev_token_scores", title="Previous-token scores", reference=head_scores.prev_token_scores,
    cases=_score_cases,
    mistakes=[
        Mistake(lambda p: _stripe(p, 0, 0),
                "That is attention to the query's own position (the current token); the previous token is one to the left (key = query - 1)."),
        Mistake(lambda p: p.diagonal(offset=-1, dim1=-2, dim2=-1).sum(dim=-1).mean(1) / p.shape[-1],
                "Average over the queries that have a previous token (queries 1..end), not over all positions."),
    ],
    hints=["patterns[l, b, h, q, k]: for each head, look at the entries with k = q - 1.",
           "patterns.diagonal(offset=-1, dim1=-2, dim2=-1) gives them, shape [layer, batch, head, seq - 1].",
           "Average over the batch and over the queries: .mean(dim=(1, 3))."]))

register(FunctionExercise(
    id="04.current_token_scores", title="Current-token scores", reference=head_scores.current_token_scores,
    cases=_score_cases,
    mistakes=[Mistake(lambda p: _stripe(p, 1, 1), "That is the previous token; the current token is the query's own position (k = q).")],
    hints=["The diagonal of each pattern: patterns.diagonal(dim1=-2, dim2=-1), shape [layer, batch, head, seq].",
           "Average over the batch and the queries."]))

register(FunctionExercise(
    id="04.first_token_scores", title="First-token scores", reference=head_scores.first_token_scores,
    cases=_score_cases,
    mistakes=[Mistake(lambda p: p[..., :, 0].mean(dim=(1, 3)),
                      "Leave out query 0: the first token can only attend to itself, so it always scores 1.")],
    hints=["Attention to the first position is the column k = 0: patterns[..., 0].",
           "Skip query 0 and average the rest: patterns[..., 1:, 0].mean(dim=(1, 3))."]))


def _induction_cases(gen: torch.Generator) -> list[Case]:
    return [Case((_patterns(gen, 2, 3, 2, 11), 5), label="2 layers, sequences of BOS + 5 tokens repeated"),
            Case((_patterns(gen, 1, 2, 3, 7), 3), label="BOS + 3 tokens repeated")]


register(FunctionExercise(
    id="04.induction_scores", title="Induction scores", reference=head_scores.induction_scores, cases=_induction_cases,
    mistakes=[
        Mistake(lambda p, n: _stripe(p, n, n + 1),
                "That stripe (key = query - n) is the earlier copy of the *same* token: a duplicate-token head. "
                "An induction head attends to the token *after* it: key = query - (n - 1)."),
        Mistake(lambda p, n: _stripe(p, n - 1, n - 1),
                "Only queries in the second copy (positions n + 1 .. 2n) have an earlier copy to look at; start there."),
    ],
    hints=["Positions: 0 is BOS, 1..n the first copy, n+1..2n the second. Token t_i sits at i and at n + i.",
           "From the query at n + i (token t_i) an induction head attends to position i + 1, the token that followed t_i: "
           "key = query - (n - 1).",
           "q = torch.arange(n + 1, 2 * n + 1); patterns[..., q, q - (n - 1)].mean(dim=(1, 3))."]))


# --- 4.6 ablating a head -------------------------------------------------------------------------

def ablate_head(z: Tensor, head: int, mean: Tensor | None = None) -> Tensor:
    """``z`` with one head's output replaced: by zeros, or by ``mean`` [d_head]. z: [batch, pos, heads, d_head]"""
    z = z.clone()
    z[:, :, head] = 0.0 if mean is None else mean
    return z


def _ablate_cases(gen: torch.Generator) -> list[Case]:
    z = randn(gen, 2, 5, 3, 4)
    return [Case((z, 1), label="zero-ablating head 1 of 3"), Case((z, 2, randn(gen, 4)), label="mean-ablating head 2"),
            Case((randn(gen, 1, 1, 1, 2), 0), label="a single head")]


register(FunctionExercise(
    id="04.ablate_head", title="Ablate a head", reference=ablate_head, cases=_ablate_cases,
    mistakes=[
        Mistake(lambda z, head, mean=None: torch.zeros_like(z), "Only head `head` is replaced; leave the other heads as they are."),
        Mistake(lambda z, head, mean=None: ablate_head(z, head), "With `mean` given, put it in place of the head's output (mean-ablation) instead of zeros."),
    ],
    hints=["Clone z first (z.clone()), so the model's own activations are not changed in place.",
           "z[:, :, head] selects that head at every batch row and position; assign 0.0 or `mean` (it broadcasts)."]))


# --- 4.7 the K-composition circuit --------------------------------------------------------------

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


# --- 4.8 name the heads ---------------------------------------------------------------------------

def _parse_head(name: Any) -> str | None:
    if isinstance(name, (tuple, list)) and len(name) == 2:
        return head_scores.head_name(int(name[0]), int(name[1]))
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
        return False, "Return `model, repeated, heads`: the model you studied, the sequences you scored and a dict of head names."
    model, heads = value[0], value[-1]
    tokens = value[1] if len(value) == 3 else None
    if tokens is not None and not (isinstance(tokens, Tensor) and tokens.ndim == 2 and tokens.shape[1] % 2 == 1):
        return False, "The sequences should be the `[batch, 1 + 2n]` tensor your score table used (`repeated`)."
    if not isinstance(heads, dict) or set(heads) != {"previous_token", "induction"}:
        return False, 'Answer with a dict {"previous_token": {...}, "induction": {...}} of head names like "L0H2".'
    named: dict[str, set[str]] = {}
    for kind, names in heads.items():
        names = [names] if isinstance(names, str) else list(names)
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
            problems.append(f"not {label} heads (score below 0.4): {', '.join(sorted(extra))}")
    if problems:
        return False, "Not quite: " + "; ".join(problems) + ". Look again at the score table above."
    where = "on your sequences" if tokens is not None else "on random tokens"
    return True, (f"Right: previous-token {', '.join(sorted(truth['previous_token'])) or 'none'}; "
                  f"induction {', '.join(sorted(truth['induction'])) or 'none'} (recomputed from the model {where}).")


register(CustomExercise(
    id="04.find_heads", title="Name the heads", reference=None, judge=_judge_heads,
    hints=["Use the score table of section 3: a head is labelled when its score is above 0.4. Return the sequences "
           "that table scored (`repeated`), so that the check measures the same thing.",
           "The previous-token head is in layer 0 (it has nothing earlier to compose with); the induction heads in layer 1."]))


# --- 4.9 the in-context learning score ------------------------------------------------------------

def _icl_cases(gen: torch.Generator) -> list[Case]:
    loss = torch.rand(6, 120, generator=gen) * 5
    return [Case((loss,), label="6 rows of 120 losses, defaults (early=10, late=100)"),
            Case((loss, 5, 50), label="early=5, late=50")]


register(FunctionExercise(
    id="04.in_context_learning_score", title="In-context learning score",
    reference=phases.in_context_learning_score, cases=_icl_cases, atol=1e-4,
    mistakes=[
        Mistake(lambda loss, early=10, late=100: (loss[:, early - 1] - loss[:, late - 1]).mean().item(),
                "The other way round: late minus early, so that learning from context gives a negative score."),
        Mistake(lambda loss, early=10, late=100: (loss[:, late] - loss[:, early]).mean().item(),
                "Off by one: loss[:, i] is the loss of predicting token i + 1, so token t's loss is loss[:, t - 1]."),
    ],
    hints=["loss[:, i] is the loss on token i + 1 (BOS is token 0 and is never predicted).",
           "(loss[:, late - 1] - loss[:, early - 1]).mean().item()"]))


# --- 4.10 scores over the checkpoints -------------------------------------------------------------

def checkpoint_summary(patterns: list[Tensor], n: int) -> Tensor:
    """For each checkpoint's patterns [layer, batch, head, q, k]: the best previous-token score in layer 0
    and the best induction score in the last layer. -> [checkpoints, 2]"""
    return torch.stack([torch.stack([head_scores.prev_token_scores(p)[0].max(), head_scores.induction_scores(p, n)[-1].max()])
                        for p in patterns])


def _summary_cases(gen: torch.Generator) -> list[Case]:
    return [Case(([_patterns(gen, 2, 2, 3, 11) for _ in range(4)], 5), label="4 checkpoints of a 2-layer model")]


register(FunctionExercise(
    id="04.checkpoint_summary", title="Scores over the checkpoints", reference=checkpoint_summary, cases=_summary_cases,
    mistakes=[
        Mistake(lambda ps, n: torch.stack([torch.stack([head_scores.prev_token_scores(p).max(), head_scores.induction_scores(p, n).max()])
                                          for p in ps]),
                "Take the previous-token score from layer 0 and the induction score from the last layer, not the best over all layers."),
        Mistake(lambda ps, n: torch.stack([torch.stack([head_scores.prev_token_scores(p)[0].mean(), head_scores.induction_scores(p, n)[-1].mean()])
                                          for p in ps]),
                "Use the best head of the layer (max), not the layer's average: one head is enough to form the circuit."),
    ],
    hints=["Reuse your score functions on each checkpoint's patterns.",
           "prev_token_scores(p)[0].max() and induction_scores(p, n)[-1].max(); stack them into [checkpoints, 2]."]))


# The hand-built induction circuit (section "Build one by hand") registers its exercises in its own module.
from . import handbuilt_exercises  # noqa: E402,F401
