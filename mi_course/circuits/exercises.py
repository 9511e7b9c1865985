"""Exercises for chapter 02, virtual weights and circuits.

Each exercise lists its test cases (seeded random inputs plus edge cases), known mistakes with
the message that explains them, and progressive hints. References are the functions of
:mod:`.heads`, :mod:`.factored`, :mod:`.full_circuits`, :mod:`.composition` and :mod:`.paths`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..seed import stream

from .. import circuits
from .factored import factored_matrix
from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, call_answer_function, randn, register
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout

if TYPE_CHECKING:
    from transformer_lens import FactoredMatrix


def _low_rank(gen: torch.Generator, n: int, k: int) -> tuple[Tensor, Tensor]:
    return randn(gen, n, k, scale=0.5), randn(gen, k, n, scale=0.5)


# --- 2.1 each head's output -----------------------------------------------------------

def _head_output_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for (b, p, h, e, d, label) in [(2, 5, 4, 8, 16, "4 heads of 8 dims into d_model 16"),
                                   (1, 3, 3, 5, 7, "3 heads of 5 dims into d_model 7"),
                                   (2, 4, 1, 6, 6, "a single head")]:
        cases.append(Case((randn(gen, b, p, h, e), randn(gen, h, e, d)), label=f"random z and W_O ({label})"))
    return cases


register(FunctionExercise(
    id="02.head_outputs", title="Each head's output", reference=circuits.head_outputs, cases=_head_output_cases,
    mistakes=[
        Mistake(lambda z, W_O: torch.einsum("bphe,hed->bpd", z, W_O),
                "You summed over the heads: return each head's output separately, [batch, pos, head, d_model]. "
                "Summing them is the next step."),
        Mistake(lambda z, W_O: circuits.concatenated_output(z, W_O)[:, :, None].expand(-1, -1, z.shape[2], -1),
                "Every head got the whole layer's output. Head h writes only its own z[:, :, h] @ W_O[h]."),
        Mistake(lambda z, W_O: torch.einsum("bphe,ed->bphd", z, W_O[0]),
                "Every head used W_O[0]: head h has its own output matrix W_O[h]."),
        Mistake(lambda z, W_O: torch.einsum("bpge,hed->bphd", z, W_O),
                "Each head's W_O was applied to the sum of all heads' z. Pair z[:, :, h] with W_O[h] only."),
    ],
    hints=["Head h writes z[:, :, h] @ W_O[h]: [batch, pos, d_head] @ [d_head, d_model].",
           "One einsum does every head at once: the head index appears in z, in W_O and in the output.",
           "torch.einsum('bphe,hed->bphd', z, W_O)."]))


# --- 2.2 eigenvalues of a low-rank product ----------------------------------------------

def _matched(got: Tensor, expected: Tensor, tol: float) -> bool:
    """Whether two lists of complex numbers are the same multiset, up to ``tol`` (greedy matching)."""
    remaining = list(range(len(got)))
    for value in expected.tolist():
        if not remaining:
            return False
        distances = [abs(got[i].item() - value) for i in remaining]
        best = min(range(len(remaining)), key=distances.__getitem__)
        if distances[best] > tol * (1 + abs(value)):
            return False
        remaining.pop(best)
    return not remaining


def _eigen_cases(gen: torch.Generator) -> list[tuple[Tensor, Tensor, str]]:
    A1, B1 = _low_rank(gen, 40, 5)
    A2, B2 = _low_rank(gen, 64, 8)
    A3 = randn(gen, 30, 4)
    A4, B4 = _low_rank(gen, 20, 3)
    A4[:, 1] = 0.0
    return [(A1, B1, "A [40, 5], B [5, 40]"), (A2, B2, "A [64, 8], B [8, 64]"),
            (A3, A3.T.clone(), "B = Aᵀ (a symmetric product, real eigenvalues)"),
            (A4, B4, "A with an all-zero column (rank 2, one eigenvalue 0)")]


def _judge_eigenvalues(learner) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `low_rank_eigenvalues` itself."
    gen = stream(20202, "check.circuits")
    for A, B, label in _eigen_cases(gen):
        A_before, B_before = A.clone(), B.clone()
        out = call_with_timeout(learner, (A, B))
        if out.error:
            return False, f"On {label}: {out.error}"
        if not (torch.equal(A, A_before) and torch.equal(B, B_before)):
            return False, f"Your function changed A or B in place (on {label}); compute new tensors instead."
        got, k, n = out.value, A.shape[1], A.shape[0]
        if got is None:
            return False, f"On {label}: the output is None. Did you forget a `return` statement?"
        if not isinstance(got, Tensor):
            return False, f"On {label}: return a torch.Tensor of {k} eigenvalues, not {type(got).__name__}."
        expected = circuits.low_rank_eigenvalues(A, B).to(torch.complex128)
        if got.shape == (n,):
            return False, (f"On {label}: you returned {n} values, the eigenvalues of the {n} x {n} product AB. "
                           f"Only {k} can be non-zero, and they are the eigenvalues of the {k} x {k} matrix BA: "
                           "no need to build the big one.")
        if got.shape != (k,):
            return False, f"On {label}: the output has shape {tuple(got.shape)}; expected ({k},), one per column of A."
        if not torch.isfinite(torch.view_as_real(got.to(torch.complex128))).all():
            return False, f"On {label}: the output contains NaN or inf."
        got_c = got.detach().to(torch.complex128)
        if _matched(got_c, expected, 1e-3):
            continue
        if _matched(got_c, torch.linalg.svdvals(B @ A).to(torch.complex128), 1e-3):
            return False, f"On {label}: those are singular values; the exercise asks for eigenvalues (torch.linalg.eigvals)."
        if _matched(got_c, expected.abs().to(torch.complex128), 1e-3):
            return False, f"On {label}: those are the eigenvalues' absolute values; keep the complex eigenvalues."
        if not got.is_complex() and expected.imag.abs().max() > 1e-4:
            return False, (f"On {label}: your eigenvalues are real, but BA is not symmetric and has complex ones. "
                           "Use torch.linalg.eigvals (not eigvalsh, which assumes a symmetric matrix, and keep the "
                           "imaginary parts).")
        return False, f"On {label}: these are not the eigenvalues of BA (compared as a set, in any order)."
    return True, "Low-rank eigenvalues: match the eigenvalues of BA on all 4 cases (any order)."


register(CustomExercise(
    id="02.low_rank_eigenvalues", title="Eigenvalues of a low-rank product",
    reference=circuits.low_rank_eigenvalues, judge=_judge_eigenvalues,
    hints=["If AB v = λ v with λ ≠ 0, multiply both sides by B: BA (Bv) = λ (Bv). So λ is an eigenvalue of BA too.",
           "BA is only k x k. torch.linalg.eigvals returns complex eigenvalues of any square matrix.",
           "return torch.linalg.eigvals(B @ A)"]))


# --- 2.3 singular values of a low-rank product -------------------------------------------

def _svd_cases(gen: torch.Generator) -> list[Case]:
    A1, B1 = _low_rank(gen, 40, 5)
    A2, B2 = _low_rank(gen, 64, 8)
    A3, B3 = _low_rank(gen, 25, 4)
    A3 = A3 * torch.tensor([10.0, 1.0, 0.1, 0.01])          # very different scales per direction
    return [Case((A1, B1), label="A [40, 5], B [5, 40]"), Case((A2, B2), label="A [64, 8], B [8, 64]"),
            Case((A3, B3), label="A [25, 4] with columns of very different sizes")]


register(FunctionExercise(
    id="02.low_rank_singular_values", title="Singular values of a low-rank product",
    reference=circuits.low_rank_singular_values, cases=_svd_cases, atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake(lambda A, B: torch.linalg.svdvals(B @ A),
                "Those are the singular values of BA. Unlike eigenvalues, singular values of AB and BA differ: "
                "AB = Q_A (R_A R_Bᵀ) Q_Bᵀ with A = Q_A R_A and Bᵀ = Q_B R_B; take the singular values of R_A R_Bᵀ."),
        Mistake(lambda A, B: torch.linalg.svdvals(A) * torch.linalg.svdvals(B),
                "Multiplying the singular values of A and of B works only when their singular vectors line up; "
                "in general it does not. Use the QR factorisations of A and Bᵀ."),
        Mistake(lambda A, B: torch.linalg.eigvals(B @ A).abs().sort(descending=True).values,
                "Those are the eigenvalues' absolute values. For a non-symmetric matrix they differ from the "
                "singular values."),
        Mistake(lambda A, B: circuits.low_rank_singular_values(A, B).flip(0),
                "Right values, wrong order: return them largest first (as torch.linalg.svdvals does)."),
    ],
    hints=["Write A = Q_A R_A and Bᵀ = Q_B R_B (torch.linalg.qr, reduced). Then AB = Q_A (R_A R_Bᵀ) Q_Bᵀ.",
           "Q_A and Q_B have orthonormal columns, so they do not change singular values: AB and the k x k "
           "R_A R_Bᵀ have the same non-zero singular values.",
           "R_A = torch.linalg.qr(A).R; R_B = torch.linalg.qr(B.T).R; return torch.linalg.svdvals(R_A @ R_B.T)."]))


# --- 2.4 top-k accuracy of a full OV circuit ----------------------------------------------

def _accuracy_cases(gen: torch.Generator) -> list[Case]:
    def circuit(n: int, boost: float) -> Tensor:
        M = randn(gen, n, n)
        return M + boost * torch.eye(n) + 0.5 * randn(gen, 1, n)         # column offsets: not symmetric
    M = circuit(30, 1.5)
    negative = circuit(25, 1.0)
    negative[torch.arange(25), (torch.arange(25) + 1) % 25] = -8.0         # big negative entries off the diagonal
    return [Case((M,), {"k": 1}, label="a random 30 x 30 circuit, k=1"),
            Case((M,), {"k": 5}, label="the same circuit, k=5"),
            Case((circuit(50, 2.0),), {"k": 3}, label="a random 50 x 50 circuit, k=3"),
            Case((negative,), {"k": 2}, label="a circuit with large negative entries, k=2"),
            Case((circuit(8, 0.0),), {"k": 8}, label="k equal to the number of tokens (accuracy 1)")]


def _topk_columns(M: Tensor, k: int = 1) -> float:
    top = M.topk(k, dim=0).indices
    return (top == torch.arange(M.shape[0])[None]).any(dim=0).float().mean().item()


register(FunctionExercise(
    id="02.top_k_accuracy", title="Top-k accuracy of a full circuit", reference=circuits.top_k_accuracy,
    cases=_accuracy_cases,
    mistakes=[
        Mistake(_topk_columns,
                "You ranked the columns. Each row is one attended (source) token and its entries are the logits "
                "the head raises: rank within each row (dim=-1)."),
        Mistake(lambda M, k=1: circuits.top_k_accuracy(M.abs(), k),
                "You ranked absolute values: a large *negative* logit suppresses a token. Rank the signed values."),
        Mistake(lambda M, k=1: circuits.top_k_accuracy(M, k) * M.shape[0],
                "That is a count; return the fraction of rows (a number between 0 and 1)."),
        Mistake(lambda M, k=1: circuits.top_k_accuracy(M, 1),
                "That is the top-1 accuracy whatever k is: check whether the diagonal entry is among the k largest."),
        Mistake(lambda M, k=1: circuits.top_k_accuracy(M, k + 1),
                "Off by one: the diagonal entry must be among the k largest, not k + 1."),
    ],
    hints=["Row i is what the head does when it attends to token i; the exercise asks whether token i itself is "
           "among the k tokens it promotes most.",
           "M.topk(k, dim=-1).indices has shape [n, k]; compare it with torch.arange(n)[:, None].",
           "(top == rows).any(dim=-1).float().mean().item()"]))


# --- 2.5 copying score ----------------------------------------------------------------------

def _copying_cases(gen: torch.Generator) -> list[Case]:
    A1, B1 = _low_rank(gen, 40, 6)
    A2 = randn(gen, 30, 4)
    rot = torch.tensor([[0.0, -1.0], [1.0, 0.0]])                         # eigenvalues ±i
    Q = torch.linalg.qr(randn(gen, 20, 2)).Q                            # [20, 2]
    mixed = torch.diag(torch.tensor([3.0, -1.0, 0.5]))
    P = torch.linalg.qr(randn(gen, 15, 3)).Q
    return [Case((factored_matrix(A1, B1),), label="a random FactoredMatrix [40, 40] of rank 6"),
            Case((factored_matrix(A2, A2.T.clone()),), label="A Aᵀ (a pure copying circuit: score 1)"),
            Case((factored_matrix(-A2, A2.T.clone()),), label="-A Aᵀ (a pure suppressing circuit: score -1)"),
            Case((factored_matrix(Q @ rot, Q.T.clone()),), label="a rotation by 90° (eigenvalues ±i: score 0)"),
            Case((factored_matrix(P @ mixed, P.T.clone()),), label="eigenvalues 3, -1 and 0.5")]


def _copy_real_parts(M: FactoredMatrix) -> float:
    ev = M.eigenvalues.real
    return (ev.sum() / ev.abs().sum()).item()


register(FunctionExercise(
    id="02.copying_score", title="Copying score", reference=circuits.copying_score, cases=_copying_cases,
    atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake(lambda M: (M.S.sum() / M.S.abs().sum()).item(),
                "Singular values are never negative, so their ratio is always 1. Use the eigenvalues: their sign "
                "says whether a token is mapped to itself (copying) or away from itself."),
        Mistake(lambda M: (M.eigenvalues.sum().abs() / M.eigenvalues.abs().sum()).item(),
                "You took |Σλ|: the sign is the point (negative means the head suppresses the token). Take the real "
                "part of Σλ instead."),
        Mistake(_copy_real_parts,
                "The denominator uses |Re λ|; it is Σ|λ|, the absolute values of the complex eigenvalues "
                "(a rotation has eigenvalues ±i and should score 0)."),
        Mistake(lambda M: (M.eigenvalues.abs().sum() / M.eigenvalues.sum().real).item(),
                "Upside down: the score is Σλ / Σ|λ|, between -1 and 1."),
    ],
    hints=["A FactoredMatrix has .eigenvalues: the eigenvalues of the small BA, the non-zero ones of AB.",
           "Eigenvalues are complex; conjugate pairs cancel their imaginary parts in the sum, so take .real of Σλ.",
           "ev = circuit.eigenvalues; return (ev.sum().real / ev.abs().sum()).item()"]))


# --- 2.6 composition score ----------------------------------------------------------------------

def _composition_cases(gen: torch.Generator) -> list[Case]:
    A1, B1 = _low_rank(gen, 16, 4)
    A2, B2 = _low_rank(gen, 16, 4)
    return [Case((A1 @ B1, A2 @ B2), label="two random rank-4 matrices [16, 16]"),
            Case((randn(gen, 12, 12), randn(gen, 12, 12, scale=3.0)), label="two random full-rank [12, 12]"),
            Case((A1 @ B1, torch.zeros(16, 16)), label="a reader that is all zeros (score 0, not NaN)")]


register(FunctionExercise(
    id="02.composition_score", title="Composition score", reference=circuits.composition_score,
    cases=_composition_cases,
    mistakes=[
        Mistake(lambda W_A, W_B: (W_A @ W_B).norm().item(),
                "Divide by ‖W_A‖_F ‖W_B‖_F: without it the score grows with the size of the weights."),
        Mistake(lambda W_A, W_B: ((W_B @ W_A).norm() / (W_A.norm() * W_B.norm())).item(),
                "Order matters: in the row-vector convention the writer acts first, x W_A W_B: multiply W_A @ W_B."),
        Mistake(lambda W_A, W_B: (torch.linalg.matrix_norm(W_A @ W_B, ord=2)
                                  / (torch.linalg.matrix_norm(W_A, ord=2) * torch.linalg.matrix_norm(W_B, ord=2))).item(),
                "Those are spectral norms (largest singular value); the score uses Frobenius norms (.norm())."),
        Mistake(lambda W_A, W_B: ((W_A @ W_B).norm() ** 2 / (W_A.norm() ** 2 * W_B.norm() ** 2)).item(),
                "Squared norms: use ‖·‖_F itself, not its square."),
    ],
    hints=["‖M‖_F is M.norm() (the square root of the sum of squares).",
           "Guard the division: if a matrix is all zeros, return 0.0 (clamp the denominator, e.g. .clamp_min(1e-12)).",
           "((W_A @ W_B).norm() / (W_A.norm() * W_B.norm()).clamp_min(1e-12)).item()"]))


# --- 2.7 Q-, K- and V-composition of every pair ----------------------------------------------------

def _scores_cases(gen: torch.Generator) -> list[Case]:
    def stack(h: int, d: int = 12, k: int = 3) -> Tensor:
        return torch.stack([a @ b for a, b in (_low_rank(gen, d, k) for _ in range(h))])
    W_OV0, W_QK1, W_OV1 = stack(3), stack(2), stack(2)
    return [Case((W_OV0, W_QK1, W_OV1, kind), label=f"3 writers, 2 readers, kind={kind!r}") for kind in ("q", "k", "v")]


def _swap_qk(W_OV0, W_QK1, W_OV1, kind):
    return circuits.composition_scores(W_OV0, W_QK1, W_OV1, {"q": "k", "k": "q"}.get(kind, kind))


register(FunctionExercise(
    id="02.composition_scores", title="Q-, K- and V-composition scores", reference=circuits.composition_scores,
    cases=_scores_cases,
    mistakes=[
        Mistake(lambda W_OV0, W_QK1, W_OV1, kind: circuits.composition_scores(W_OV0, W_QK1, W_OV1, "q"),
                "Every kind gave the Q-composition scores: choose the reader's matrix by kind (W_QK for q, "
                "W_QKᵀ for k, W_OV for v)."),
        Mistake(_swap_qk,
                "Q and K are swapped. Q-composition: the writer's output is in the query, so pair W_OV with W_QK. "
                "K-composition: it is in the key, y W_QK (x W_OV)ᵀ, so pair W_OV with W_QKᵀ."),
        Mistake(lambda W_OV0, W_QK1, W_OV1, kind: circuits.composition_scores(W_OV0, W_QK1, W_OV1, kind).T,
                "Transposed: rows are the writers (layer 0), columns the readers (layer 1)."),
        Mistake(lambda W_OV0, W_QK1, W_OV1, kind: torch.tensor(
                    [[circuits.composition_score(B, A) for B in {"q": W_QK1, "k": W_QK1.transpose(-1, -2),
                                                                 "v": W_OV1}[kind]] for A in W_OV0]),
                "Order matters: the writer's W_OV comes first, W_OV @ W_reader."),
    ],
    hints=["The reader's matrix depends on where it reads: queries (W_QK), keys (W_QKᵀ) or values (W_OV).",
           "Two loops over heads, each calling your composition_score, fill a [heads_0, heads_1] tensor.",
           "reader = {'q': W_QK1, 'k': W_QK1.transpose(-1, -2), 'v': W_OV1}[kind]"]))


# --- 2.8 a virtual attention head -------------------------------------------------------------

def _pattern(gen: torch.Generator, batch: int, pos: int) -> Tensor:
    scores = randn(gen, batch, pos, pos, scale=2.0)
    future = torch.triu(torch.ones(pos, pos, dtype=torch.bool), diagonal=1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def _virtual_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for (b, p, d, label) in [(2, 6, 8, "batch 2, 6 positions, d_model 8"), (1, 9, 5, "1 sequence of 9 positions")]:
        args = (randn(gen, b, p, d), _pattern(gen, b, p), _pattern(gen, b, p), randn(gen, d, d, scale=0.5),
                randn(gen, d, d, scale=0.5), 0.5 + 2 * torch.rand(b, p, generator=gen))
        cases.append(Case(args, label=f"random patterns and weights ({label})"))
    return cases


register(FunctionExercise(
    id="02.virtual_head_output", title="A virtual attention head", reference=circuits.virtual_head_output,
    cases=_virtual_cases, atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake(lambda x, A0, A1, W0, W1, s: A1 @ A0 @ x @ W0 @ W1,
                "The layer-1 LayerNorm is missing: with its scale frozen, it divides each position by scale1 "
                "before layer 1 reads it."),
        Mistake(lambda x, A0, A1, W0, W1, s: (A1 @ A0 @ x @ W0 @ W1) / s[..., None],
                "You divided at the destination. The LayerNorm acts where layer 1 *reads*, on layer 0's output at "
                "each source position, before A¹ mixes positions."),
        Mistake(lambda x, A0, A1, W0, W1, s: A0 @ ((A1 @ x @ W0) / s[..., None]) @ W1,
                "The patterns are in the wrong order: layer 0 moves information first, so A⁰ acts before A¹ "
                "(A¹ (D A⁰ x W_OV⁰) W_OV¹)."),
        Mistake(lambda x, A0, A1, W0, W1, s: A1 @ ((A0 @ x @ W1) / s[..., None]) @ W0,
                "The OV matrices are in the wrong order: layer 0's W_OV⁰ acts first (row vectors: x W_OV⁰ W_OV¹)."),
        Mistake(lambda x, A0, A1, W0, W1, s: A1 @ ((A0 @ x @ W0) * s[..., None]) @ W1,
                "A LayerNorm divides by its scale; you multiplied."),
    ],
    hints=["First what layer 0's head writes at every position: A0 @ x @ W_OV0, [batch, pos, d_model].",
           "The frozen LayerNorm of layer 1 divides each position by its scale: layer0 / scale1[..., None].",
           "Then layer 1's head moves and transforms it: A1 @ (...) @ W_OV1."]))




# --- 2.4b the pattern of the positions ----------------------------------------------------------

def _positional_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 12, 16), randn(gen, 16, 4), randn(gen, 16, 4), 1.0), label="12 positions, ln_scale 1"),
            Case((randn(gen, 7, 8, scale=3.0), randn(gen, 8, 2), randn(gen, 8, 2), 2.5), label="7 positions, ln_scale 2.5"),
            Case((randn(gen, 1, 8), randn(gen, 8, 2), randn(gen, 8, 2), 1.0), label="a single position")]


def _positions_variant(mask: bool = True, root: bool = True, scale_power: int = 2, dim: int = -1):
    def pattern(W_pos, W_Q, W_K, ln_scale=1.0):
        P = W_pos
        scores = (P @ W_Q) @ (P @ W_K).T / ln_scale ** scale_power / (W_Q.shape[-1] ** 0.5 if root else 1)
        if mask:
            scores = scores.masked_fill(torch.triu(torch.ones_like(scores, dtype=torch.bool), 1), float("-inf"))
        return scores.softmax(dim=dim)
    return pattern


register(FunctionExercise(
    id="02.positional_pattern", title="The pattern of the positions alone", reference=circuits.pattern_of_positions,
    cases=_positional_cases, atol=1e-5,
    mistakes=[
        Mistake(_positions_variant(mask=False), "A query cannot attend to later positions: mask the scores above the "
                "diagonal with -inf before the softmax, as the model does."),
        Mistake(_positions_variant(root=False), "The model divides the attention scores by √d_head before the softmax."),
        Mistake(_positions_variant(scale_power=1), "Both the query and the key side read P = W_pos / ln_scale, so the "
                "scores carry ln_scale twice."),
        Mistake(_positions_variant(scale_power=0), "The head reads its input after a LayerNorm, which divides by the "
                "scale: use P = W_pos / ln_scale on both sides."),
        Mistake(_positions_variant(dim=0), "Each *row* (a query position) is a distribution over keys: softmax over "
                "the last dimension."),
    ],
    hints=["Scores of query position i and key position j: (P[i] W_Q) · (P[j] W_K), with P = W_pos / ln_scale.",
           "Then the model's steps: divide by √d_head, mask the future (torch.triu(..., diagonal=1)) with -inf, and "
           "softmax over the keys."]))


# --- 2.9 the composition score on real inputs ---------------------------------------------------------

def _data_score_cases(gen: torch.Generator) -> list[Case]:
    A, B = _low_rank(gen, 12, 3)
    W_A, W_B = A @ B, randn(gen, 12, 12)
    return [Case((randn(gen, 40, 12), W_A, W_B), label="40 inputs in 12 dimensions, a rank-3 writer"),
            Case((randn(gen, 5, 12) * torch.tensor([3.0] * 2 + [0.1] * 10), W_A, W_B),
                 label="inputs that use two directions much more than the rest"),
            Case((torch.eye(12), W_A, W_B), label="X = the identity (the weight-only score)")]


register(FunctionExercise(
    id="02.data_composition_score", title="The composition score on real inputs",
    reference=circuits.data_composition_score, cases=_data_score_cases, atol=1e-5,
    mistakes=[
        Mistake(lambda X, W_A, W_B: circuits.composition_score(W_A, W_B), "That is the weight-only score: it weighs "
                "every direction equally. Put the inputs in first, X W_A, so that directions count as much as they "
                "are used."),
        Mistake(lambda X, W_A, W_B: ((X @ W_A @ W_B).norm() / (W_A.norm() * W_B.norm())).item(),
                "Normalise by what the writer really writes, ‖X W_A‖_F, not by ‖W_A‖_F: otherwise the score "
                "grows with the size of the inputs."),
        Mistake(lambda X, W_A, W_B: ((X @ W_A @ W_B).norm() / (X @ W_A).norm()).item(),
                "Divide by ‖W_B‖_F too, so that the reader's size does not count: only how much of what is written "
                "it reads."),
    ],
    hints=["The writer writes X W_A (one row per input); the reader reads that through W_B.",
           "Score = ‖X W_A W_B‖_F / (‖X W_A‖_F ‖W_B‖_F), returned as a Python float (.item())."]))


# --- 2.3b name the layer-0 heads ------------------------------------------------------------------

def _parse_layer0(name: Any) -> int | None:
    if isinstance(name, str) and re.fullmatch(r"L0H\d+", name.strip().upper()):
        return int(name.strip().upper()[3:])
    return None


def _judge_layer0_heads(learner) -> tuple[bool, str]:
    value, problem = call_answer_function(learner, "layer0_heads")
    if problem is not None:
        return False, problem
    if not (isinstance(value, tuple) and len(value) == 3 and hasattr(value[0], "cfg")
            and isinstance(value[1], Tensor) and value[1].ndim == 2):
        return False, "Return `model, repeated, heads`: the model, the [batch, pos] sequences you looked at, and a dict."
    model, tokens, heads = value
    if not isinstance(heads, dict) or set(heads) != {"previous_token", "current_token"}:
        return False, 'Answer with a dict {"previous_token": [...], "current_token": [...]} of names like "L0H2".'
    named = {}
    for role, names in heads.items():
        names = [names] if isinstance(names, str) else list(names)
        parsed = [_parse_layer0(n) for n in names]
        if None in parsed:
            return False, f"Could not read {names[parsed.index(None)]!r} as a layer-0 head: write 'L0H2' (layer 0, head 2)."
        named[role] = set(parsed)
    truth = circuits.layer_head_roles(circuits.frozen_run(model, tokens).patterns[0])    # recomputed now
    problems = []
    for role, label, rule in (("previous_token", "previous-token", "more than 0.4 on the previous position"),
                              ("current_token", "current-token", "more than 0.5 on its own position")):
        missing, extra = truth[role] - named[role], named[role] - truth[role]
        if missing:
            problems.append(f"{len(missing)} {label} head(s) missing")
        for h in sorted(extra):
            problems.append(f"L0H{h} is not a {label} head (it does not put {rule}, on average)")
    if problems:
        return False, "Not quite: " + "; ".join(problems) + ". Look at the attention printed above."
    name = lambda hs: ", ".join(f"L0H{h}" for h in sorted(hs)) or "none"
    return True, (f"Right: previous-token {name(truth['previous_token'])}; current-token "
                  f"{name(truth['current_token'])} (recomputed from the model on your sequences).")


register(CustomExercise(
    id="02.layer0_heads", title="Name the layer-0 heads", reference=None, judge=_judge_layer0_heads,
    hints=["On the repeated sequences, measure each layer-0 head's mean attention to the previous position and to "
           "its own position (the diagonals of its pattern).",
           "A previous-token head puts more than 0.4 on the previous position, a current-token head more than 0.5 on "
           "its own (BOS left out, since it can only attend to itself)."]))


# --- 2.10 split the attention scores by source -----------------------------------------------------

def _score_terms_cases(gen: torch.Generator) -> list[Case]:
    def case(S, batch, pos, d, e, label):
        return Case((randn(gen, S, batch, pos, d), 0.5 + torch.rand(batch, pos, generator=gen), randn(gen, d, e),
                     randn(gen, d, e), randn(gen, e), randn(gen, e)), label=label)
    return [case(3, 2, 5, 8, 4, "3 sources, 2 sequences of 5 positions"), case(6, 1, 7, 6, 2, "6 sources, d_head 2"),
            case(1, 1, 1, 4, 2, "a single source and position")]


def _split_variant(bias: str = "last", root: bool = True, normalise: bool = True):
    def split(sources, scale, W_Q, W_K, b_Q, b_K):
        x = circuits.frozen_layer_norm(sources, scale) if normalise else sources
        q, k = x @ W_Q, x @ W_K
        if bias == "last":
            q[-1], k[-1] = q[-1] + b_Q, k[-1] + b_K
        elif bias == "every":
            q, k = q + b_Q, k + b_K
        elif bias == "query":
            q[-1] = q[-1] + b_Q
        return torch.einsum("ibqe,jbke->ijbqk", q, k) / (W_Q.shape[-1] ** 0.5 if root else 1)
    return split


register(FunctionExercise(
    id="02.score_terms", title="Split the attention scores by source", reference=circuits.score_terms_by_source,
    cases=_score_terms_cases, atol=1e-4,
    mistakes=[
        Mistake(_split_variant(bias="none"), "The biases b_Q and b_K are part of every score: add them to the last "
                "source's query and key, so that the terms still add up to the scores."),
        Mistake(_split_variant(bias="every"), "Added to every source, b_Q and b_K are counted S times in the sum. Add "
                "them once, to the last source (the biases)."),
        Mistake(_split_variant(bias="query"), "The key side has a bias too: add b_K to the last source's key."),
        Mistake(_split_variant(root=False), "The model divides the scores by √d_head."),
        Mistake(_split_variant(normalise=False), "The head reads its input after the LayerNorm: centre each source "
                "and divide it by the frozen scale (circuits.frozen_layer_norm) before W_Q and W_K. Centring is "
                "linear, so it splits over the sources too."),
    ],
    hints=["With the scale frozen, LN(Σ_i s_i) = Σ_i LN(s_i): each source gets its own query q_i and key k_j.",
           "q_i = frozen_layer_norm(sources[i], scale) @ W_Q, k_j likewise with W_K; add b_Q, b_K to the last source's.",
           "terms[i, j] = q_i @ k_jᵀ / √d_head for every pair: torch.einsum('ibqe,jbke->ijbqk', q, k)."]))


# --- 3.5 the induction pattern in the weights ------------------------------------------------------

def _composed_qk_cases(gen: torch.Generator) -> list[Case]:
    def case(n, d, e, label):
        return Case((randn(gen, n, d), randn(gen, d, d, scale=0.3), randn(gen, d, d, scale=0.3), randn(gen, d, e),
                     randn(gen, d, e)), label=label)
    return [case(10, 8, 2, "10 tokens, d_model 8, d_head 2"), case(3, 6, 3, "3 tokens, d_model 6, d_head 3")]


register(FunctionExercise(
    id="02.composed_qk", title="The induction pattern in the weights", reference=circuits.composed_qk,
    cases=_composed_qk_cases, atol=1e-4, rtol=1e-3,
    mistakes=[
        Mistake(lambda E, q_ov, k_ov, W_Q, W_K: (E @ k_ov @ W_Q) @ (E @ q_ov @ W_K).T,
                "The two heads are on the wrong sides: the query reads its own token through the query-side head "
                "(the current-token head), the key reads what the key-side head (the previous-token head) wrote."),
        Mistake(lambda E, q_ov, k_ov, W_Q, W_K: (E @ W_Q) @ (E @ W_K).T,
                "That is the plain full QK circuit, from the embeddings: put each layer-0 head's OV circuit between "
                "the embedding and W_Q (query side) or W_K (key side)."),
        Mistake(lambda E, q_ov, k_ov, W_Q, W_K: ((E @ q_ov @ W_Q) @ (E @ k_ov @ W_K).T).T,
                "Rows are queries and columns keys: (queries) @ (keys)ᵀ, not the other way round."),
    ],
    hints=["A layer-1 head reads x; if layer-0 head a wrote E[t] W_OV^a at a position, the query there is "
           "E[t] W_OV^a W_Q.",
           "Queries: E @ query_ov @ W_Q ([n, d_head]); keys: E @ key_ov @ W_K; the circuit: queries @ keys.T."]))


# --- 2.7a a baseline that keeps each pair's spectra -------------------------------------------------

def _run_baseline(learner, W_A: Tensor, W_B: Tensor, n: int, seed: int) -> tuple[Tensor | None, str | None]:
    out = call_with_timeout(learner, (W_A.clone(), W_B.clone(), n, stream(seed, "check.rotated_baseline")), timeout=30)
    if out.error:
        return None, out.error
    value = out.value
    if not isinstance(value, Tensor) or value.shape != (n,):
        return None, f"Return a tensor of the {n} sampled scores, shape [{n}]; got {type(value).__name__} " \
                     f"{tuple(getattr(value, 'shape', ()))}."
    if not torch.isfinite(value).all() or (value < -1e-6).any() or (value > 1 + 1e-6).any():
        return None, "Every composition score lies between 0 and 1; some of yours do not (or are NaN)."
    return value.double(), None


def _judge_rotated_baseline(learner) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `rotated_scores` itself."
    d, gen = 16, stream(0, "check.rotated_baseline.weights")
    flat, problem = _run_baseline(learner, torch.eye(d), torch.randn(d, d, generator=gen), 40, 1)
    if problem:
        return False, problem
    if (flat - d ** -0.5).abs().max() > 1e-4:
        return False, (f"With W_A the identity, W_A Q is a rotation for every sample, so every score is 1/√d = "
                       f"{d ** -0.5:.4f}; yours range from {flat.min():.4f} to {flat.max():.4f}. The random matrices must "
                       "be rotations (the Q of a QR decomposition), which keep the writer's singular values.")
    W_A, W_B = torch.diag(torch.arange(1.0, d + 1)), torch.randn(d, d, generator=gen)
    first, again, other = (_run_baseline(learner, W_A, W_B, 40, seed)[0] for seed in (1, 1, 2))
    if first is None or again is None or other is None or not torch.equal(first, again) or torch.equal(first, other):
        return False, ("Draw every random number from `generator`: the same generator state must give the same samples, "
                       "and another one other samples.")
    u, v, a, b = (torch.randn(d, 1, generator=gen) for _ in range(4))
    peaked, problem = _run_baseline(learner, u @ v.T, a @ b.T, 3000, 3)
    if problem:
        return False, problem
    mean_square, spread = (peaked ** 2).mean().item(), peaked.std().item()
    if not 0.85 / d < mean_square < 1.15 / d:
        return False, (f"For any spectra the mean squared score of a randomly turned pair is 1/d = {1 / d:.4f}; yours is "
                       f"{mean_square:.4f} (rank-1 writer and reader, 3000 samples).")
    if spread < 0.1:
        return False, (f"For a rank-1 writer and reader the score is |cos| between two directions, one of them random: it "
                       f"spreads from 0 to 1 (standard deviation about 0.2); yours only {spread:.3f}. Turn the given W_A; "
                       "do not draw fresh random matrices, whose spectra are not the pair's.")
    return True, (f"A baseline that keeps the spectra: exactly 1/√d for a flat writer, mean square {mean_square:.4f} "
                  f"(1/d = {1 / d:.4f}) and a wide spread ({spread:.2f}) for a rank-1 pair.")


register(CustomExercise(
    id="02.rotated_scores", title="A baseline that keeps each pair's spectra", reference=circuits.rotated_pair_scores,
    judge=_judge_rotated_baseline,
    hints=["A rotation Q keeps singular values: W_A Q has W_A's spectrum, with its output subspace turned. (A rotation "
           "on the left, Q' W_A, changes no composition score: try to see why.)",
           "A uniformly random rotation: Q, R = torch.linalg.qr(torch.randn(d, d, generator=generator)), then "
           "Q * torch.sign(torch.diagonal(R)).",
           "Loop n_samples times: composition_score(W_A @ Q, W_B); return torch.tensor of the list."]))


# --- predict, then check -------------------------------------------------------------------

def _head(context: dict, key: str) -> str:
    return f"L0H{context[key]}" if key in context else "\0"


register_question(Question(
    id="02.current_token_head", title="Current-token or token-matching?",
    prompt="In the second copy of a repeated sequence, where does L0H1 put its attention?",
    choices=["on its own position", "split between its own position and the earlier copy",
             "on the earlier copy", "spread over many positions"],
    advise=lambda answer, truth, context: (
        "That is what a token-matching head would do. This one attends by position first: its own position wins "
        "over the same word n positions back." if truth == "on its own position" and answer.startswith("split")
        else "That would be an induction-like head in layer 0, which has nothing earlier to compose with; its "
        "token circuit only says it likes its own word, wherever that word is." if answer == "on the earlier copy"
        else None),
    explain="The token circuit leaves two readings open; behaviour on inputs where they differ decides."))

register_question(Question(
    id="02.best_route_for_copying", title="The route the copy takes",
    prompt="Through which layer-0 head do the induction heads copy best (a head like 'L0H1')?",
    kind="name", pattern=r"L0H\d+", example="L0H1",
    advise=lambda answer, truth, context: (
        "What the previous-token head writes at a position is the word *before* it, so the composed map "
        "copies the wrong word." if answer == _head(context, "prev_head") else None),
    explain="A layer-1 head reads what layer 0 wrote at the position it attends to; the current-token heads write "
            "the word itself there, in the subspace the induction heads' OV circuits read."))

register_question(Question(
    id="02.aligned_composition_score", title="The score of a perfect alignment",
    prompt="Two rank-d_head maps of the residual stream with equal singular values, the reader reading exactly "
           "the subspace the writer writes into: what is their composition score?",
    kind="number", rel_tol=0.05,
    advise=lambda answer, truth, context: (
        "1 would need ‖W_A W_B‖_F = ‖W_A‖_F ‖W_B‖_F, which only rank-1 maps reach. For flat rank-r maps the "
        "product keeps all of W_A, scaled by one singular value of W_B, which is ‖W_B‖_F / √r."
        if abs(answer - 1) < 0.05 else
        "Close to the square of the answer: the score divides norms, not squared norms, so it is 1/√r."
        if abs(answer - truth ** 2) < 0.2 * truth ** 2 else None),
    explain="So a score near 1/√d_head is as aligned as two flat maps get."))

register_question(Question(
    id="02.random_composition_score", title="The score of a random pair",
    prompt="And when the reader's subspace is drawn at random: what is the mean composition score?",
    kind="number", rel_tol=0.1,
    advise=lambda answer, truth, context: (
        "Random subspaces are not orthogonal: in d_model dimensions a random unit vector has about 1/√d_model of "
        "its length along any fixed direction, and that is the typical score." if answer < truth / 2 else None),
    explain="This is the chance level that every score in the next cells is measured against: 1/√d_model."))

register_question(Question(
    id="02.largest_composition", title="The largest composition score",
    prompt="Of all Q-, K- and V-composition scores between a layer-0 and a layer-1 head, which kind has the "
           "largest single score?",
    choices=["Q", "K", "V"],
    advise=lambda answer, truth, context: (
        "K-composition is the textbook induction circuit, so it is tempting. But a score measures how much two "
        "subspaces overlap, weighted by their singular values: a pair with an uneven spectrum can score far above "
        "any pair of flat, perfectly aligned maps." if answer == "K" else None),
    explain="A large score says that two subspaces overlap, weighted by the singular values; it does not say that "
            "the path carries anything. Section 6 weighs the paths by what they do."))

register_question(Question(
    id="02.strongest_virtual_head", title="The path that carries the copy",
    prompt="Which virtual head (a path like 'L0H1→L1H0') raises the correct word's logit most in the second copy?",
    kind="name", pattern=r"L\d+H\d+→L\d+H\d+", example="L0H1→L1H0",
    advise=lambda answer, truth, context: (
        "The previous-token head has the strongest K-composition: it decides *where* the induction heads look. "
        "A virtual head is an OV path: it moves what is written, and what the previous-token head writes is the "
        "previous word."
        if answer.startswith(_head(context, "prev_head") + "→") else
        "The largest V-composition score says that two subspaces overlap, not that the path moves the right word; "
        "its effect on the correct logit is about nothing." if answer == context.get("largest_v") else None),
    explain="The copy travels through the current-token heads into the induction heads' values."))
