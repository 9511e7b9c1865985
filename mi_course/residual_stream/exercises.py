"""Exercises for chapter 01, the residual stream.

Each exercise is checked on small random tensors with the shapes a model
would give (plus edge cases), so the checks are fast and do not depend on the
model a notebook runs. Known mistakes get their own message; hints go from a
nudge to most of the answer. References are the functions of this package.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from ..seed import stream
from ..checks.compare import describe_mismatch
from ..checks.exercise import Case, CustomExercise, FunctionExercise, Mistake, call_answer_function, randn, register
from ..checks.prediction import Question, register_question
from ..checks.sandbox import call_with_timeout
from . import attribution, decompose, local, memory, weights



def _centred(x: Tensor) -> Tensor:
    return x - x.mean(-1, keepdim=True)


# --- 1.1 embedding by hand -------------------------------------------------------

def _embed_cases(gen: torch.Generator) -> list[Case]:
    W_E, W_pos = randn(gen, 20, 8), randn(gen, 12, 8)
    return [
        Case((torch.randint(0, 20, (3, 5), generator=gen), W_E, W_pos), label="3 prompts of 5 tokens"),
        Case((torch.randint(0, 20, (2, 12), generator=gen), W_E, W_pos), label="prompts as long as the context"),
        Case((torch.tensor([[7]]), W_E, W_pos), label="a single token"),
    ]


register(FunctionExercise(
    id="01.embed", title="Embed a prompt by hand", reference=decompose.embed, cases=_embed_cases,
    mistakes=[
        Mistake(lambda t, W_E, W_pos: W_E[t], "The position embedding is missing: add W_pos's row for each position."),
        Mistake(lambda t, W_E, W_pos: W_E[t] + W_pos[1: t.shape[-1] + 1],
                "Positions start at 0 (the BOS token sits at position 0): use W_pos[:n_tokens]."),
        Mistake(lambda t, W_E, W_pos: W_E[t] + W_pos[t.clamp_max(W_pos.shape[0] - 1)],
                "W_pos is indexed by the token's position in the prompt, not by its token id."),
    ],
    hints=["The embedding of token id t is the row W_E[t]; indexing with a whole tensor of ids works: W_E[tokens].",
           "Position p adds the row W_pos[p]. For a prompt of n tokens, W_pos[:n] has shape [n, d_model] and "
           "broadcasts over the batch.",
           "return W_E[tokens] + W_pos[:tokens.shape[-1]]"]))


# --- 2.1 the residual stream as a sum -------------------------------------------------

def _fake_cache(gen: torch.Generator, layers: int, heads: int, batch: int, pos: int, d: int, d_head: int,
                mlp: bool = True) -> dict[str, Tensor]:
    cache = {"hook_embed": randn(gen, batch, pos, d), "hook_pos_embed": randn(gen, batch, pos, d)}
    for l in range(layers):
        cache[f"blocks.{l}.attn.hook_z"] = randn(gen, batch, pos, heads, d_head)
        if mlp:
            cache[f"blocks.{l}.hook_mlp_out"] = randn(gen, batch, pos, d)
    return cache


def _decompose_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for layers, heads, mlp, label in [(2, 3, True, "2 layers of 3 heads and an MLP"),
                                      (3, 2, True, "3 layers of 2 heads and an MLP"),
                                      (2, 2, False, "an attention-only model (no hook_mlp_out in the cache)")]:
        cache = _fake_cache(gen, layers, heads, 2, 4, 6, 3, mlp)
        cases.append(Case((cache, randn(gen, layers, heads, 3, 6), randn(gen, layers, 6)), label=label))
    return cases


def _no_bias(cache, W_O, b_O):
    return decompose.decompose_residual(cache, W_O, b_O)[:-1]


def _heads_then_mlps(cache, W_O, b_O):
    parts = decompose.decompose_residual(cache, W_O, b_O)
    L, H = W_O.shape[:2]
    if "blocks.0.hook_mlp_out" not in cache:
        return None
    heads = [parts[2 + l * (H + 1) + h] for l in range(L) for h in range(H)]
    mlps = [parts[2 + l * (H + 1) + H] for l in range(L)]
    return torch.stack([parts[0], parts[1], *heads, *mlps, parts[-1]])


def _bias_per_layer(cache, W_O, b_O):
    parts = decompose.decompose_residual(cache, W_O, b_O)
    return torch.cat([parts[:-1], b_O[:, None, None, :].expand(-1, *parts.shape[1:])])


register(FunctionExercise(
    id="01.decompose_residual", title="The residual stream as a sum", reference=decompose.decompose_residual,
    cases=_decompose_cases, atol=1e-4,
    mistakes=[
        Mistake(_no_bias, "The attention output bias is missing: each layer adds b_O once (not per head). "
                          "Add one last component, the sum of b_O over layers, broadcast to [batch, pos, d_model]."),
        Mistake(_bias_per_layer, "Put the attention biases in one component (b_O summed over layers), after everything else."),
        Mistake(_heads_then_mlps, "Right pieces, wrong order: go layer by layer, and within a layer the heads "
                                  "first and then the MLP (L0H0, L0H1, ..., MLP0, L1H0, ...)."),
    ],
    hints=["Head h of layer l writes z[..., h, :] @ W_O[l, h]: z from cache[f'blocks.{l}.attn.hook_z'] is "
           "[batch, pos, heads, d_head]; einsum('bphe,hed->hbpd', z, W_O[l]) gives every head at once.",
           "Collect in a list: embed, pos, then for each layer its heads and (if the key is in the cache) "
           "cache[f'blocks.{l}.hook_mlp_out'], and finally b_O.sum(0) expanded to the embed's shape. torch.stack it.",
           "The attention bias is added once per layer, after the heads are summed, so it belongs to no head."]))


# --- 3.1 the logit-difference direction ---------------------------------------------------

def _direction_cases(gen: torch.Generator) -> list[Case]:
    W_U = randn(gen, 6, 30)
    candidates = torch.tensor([3, 7, 11, 19, 25])
    return [Case((W_U, candidates[torch.randint(0, 5, (4,), generator=gen)], candidates), label="4 prompts, 5 candidates"),
            Case((W_U, torch.tensor([7, 3]), candidates[:2]), label="2 candidates only"),
            Case((randn(gen, 4, 10), torch.tensor([9]), torch.tensor([0, 9, 4])), label="the answer last in the vocabulary")]


register(FunctionExercise(
    id="01.logit_diff_direction", title="The logit-difference direction", reference=attribution.logit_diff_direction,
    cases=_direction_cases,
    mistakes=[
        Mistake(lambda W_U, a, c: W_U[:, a].T, "Subtract the mean unembedding of the *other* candidates: the "
                                               "direction is W_U[:, answer] - mean over c != answer of W_U[:, c]."),
        Mistake(lambda W_U, a, c: W_U[:, a].T - W_U[:, c].mean(-1), "The mean is over the other candidates only: "
                                                                     "leave the answer out of it."),
    ],
    hints=["W_U[:, answers] has shape [d_model, batch]; transpose it to [batch, d_model].",
           "A [batch, k] mask `candidates[None] == answers[:, None]` marks each prompt's answer among the candidates.",
           "Average W_U[:, candidates] over the candidates where the mask is False (weights (1 - mask) / (k - 1))."]))


# --- 3.2 direct logit attribution ------------------------------------------------------

def _dla_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for c, b, d, label in [(5, 3, 8, "5 components, 3 prompts"), (1, 1, 4, "a single component")]:
        comps = _centred(randn(gen, c, b, d))
        scale = torch.rand(b, 1, generator=gen) * 3 + 0.5
        cases.append(Case((comps, scale, randn(gen, b, d)), label=label))
    return cases


register(FunctionExercise(
    id="01.direct_logit_attribution", title="Direct logit attribution", reference=attribution.direct_logit_attribution,
    cases=_dla_cases,
    mistakes=[
        Mistake(lambda comps, scale, d: torch.einsum("cbd,bd->cb", comps, d),
                "The final LayerNorm's scale is missing: the logits see LN(x) = x / scale, so divide each component by it."),
        Mistake(lambda comps, scale, d: torch.einsum("cbd,bd->cb", comps * scale, d),
                "Divide by the scale, do not multiply: LayerNorm divides the residual by its RMS."),
    ],
    hints=["The logit difference is LN(x) · direction (+ a bias term), and LN(x) = (x - mean) / scale with "
           "scale from the run; x is the sum of the components.",
           "So component i contributes (components[i] / scale) · direction; scale is [batch, 1] and broadcasts.",
           "torch.einsum('cbd,bd->cb', components / scale, direction)"]))


# --- 4.1 the logit lens ---------------------------------------------------------------------

def _lens_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 4, 3, 8, scale=3.0) + 2.0, _centred(randn(gen, 8, 12).T).T, randn(gen, 12)),
                 label="4 layers, 3 prompts (residuals with a non-zero mean)"),
            Case((randn(gen, 2, 1, 6, scale=0.1), randn(gen, 6, 5), torch.zeros(5)), label="small residuals, no bias")]


def _rms_only(resid, W_U, b_U):
    return resid / resid.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt() @ W_U + b_U


register(FunctionExercise(
    id="01.logit_lens", title="The logit lens", reference=attribution.logit_lens, cases=_lens_cases, atol=1e-4,
    mistakes=[
        Mistake(lambda resid, W_U, b_U: resid @ W_U + b_U,
                "Apply the final LayerNorm first: the unembedding reads LN(x), not x (in this processed model LN "
                "only centres and divides by the RMS, with eps = 1e-5)."),
        Mistake(_rms_only, "LayerNorm also centres: subtract each vector's mean over d_model before dividing by its RMS."),
        Mistake(lambda resid, W_U, b_U: (resid - resid.mean(-1, keepdim=True)) / (resid - resid.mean(-1, keepdim=True))
                .pow(2).mean(-1, keepdim=True).add(1e-5).sqrt() @ W_U,
                "The unembedding bias b_U is missing."),
    ],
    hints=["For each layer's residual, do what the final LayerNorm does, then unembed: LN(x) @ W_U + b_U.",
           "LN(x) = (x - mean) / sqrt(mean((x - mean)^2) + eps) over the last dimension, eps = 1e-5 "
           "(the weights were folded, so there is no gain or bias).",
           "Everything broadcasts: resid is [layers, batch, d_model] and W_U [d_model, vocab]."]))


# --- 5.1 a rotation that fixes the all-ones direction ----------------------------------

def _is_permutation_like(R: Tensor) -> bool:
    return bool((R.abs().max(dim=1).values > 0.999).all())


def _judge_random_rotation(learner) -> tuple[bool, str]:
    if not callable(learner):
        return False, "Pass your function `random_rotation` itself."
    for d in (6, 16):
        out = call_with_timeout(learner, (d, stream(1, "check.random_direction")))
        if out.error:
            return False, out.error
        R = out.value
        problem = describe_mismatch(R, torch.zeros(d, d), name=f"random_rotation({d}, generator)")
        if problem and not (isinstance(R, Tensor) and R.shape == (d, d) and R.is_floating_point()):
            return False, problem
        R = R.detach().double()
        if not torch.isfinite(R).all():
            return False, f"random_rotation({d}, generator) contains NaN or inf."
        gram = R.T @ R
        if not torch.allclose(gram, torch.eye(d, dtype=R.dtype), atol=1e-4):
            bad = (gram - torch.eye(d, dtype=R.dtype)).abs().max().item()
            return False, (f"Not orthogonal: R^T R differs from the identity by up to {bad:.3g} (d = {d}). A rotation "
                           "keeps lengths and angles; build it from an orthonormal basis (torch.linalg.qr).")
        ones = torch.ones(d, dtype=R.dtype)
        if not torch.allclose(R @ ones, ones, atol=1e-4):
            return False, (f"R does not fix the all-ones direction: R @ 1 should be 1 (d = {d}). LayerNorm subtracts "
                           "the mean, i.e. the component along 1; only a rotation that keeps 1 where it is commutes "
                           "with that. Rotate only the hyperplane orthogonal to 1.")
        if _is_permutation_like(R):
            return False, ("Every row of R has a single ±1: a permutation (or sign flips) moves each basis direction "
                           "onto another basis direction, so per-coordinate statistics cannot change. Mix the "
                           "coordinates with a random rotation of the hyperplane.")
    again = call_with_timeout(learner, (6, stream(1, "check.random_direction")))
    other = call_with_timeout(learner, (6, stream(2, "check.random_direction")))
    if again.error or other.error:
        return False, again.error or other.error
    first = call_with_timeout(learner, (6, stream(1, "check.random_direction"))).value
    if not torch.allclose(again.value, first):
        return False, ("Two calls with the same generator state gave different matrices: draw every random "
                       "number from `generator` (torch.randn(..., generator=generator)) so the notebook is reproducible.")
    if torch.allclose(other.value, first, atol=1e-6):
        return False, "Different generators gave the same matrix: R should be random (drawn with `generator`)."
    return True, "Random rotation: orthogonal, fixes the all-ones direction, mixes the coordinates, and is reproducible."


register(CustomExercise(
    id="01.random_rotation", title="A rotation that fixes the all-ones direction", reference=weights.random_rotation,
    judge=_judge_random_rotation,
    hints=["Start from an orthonormal basis whose first vector is 1/sqrt(d): QR-decompose the matrix whose first "
           "column is ones and whose other columns are random.",
           "The other d - 1 basis vectors span the hyperplane orthogonal to 1. Draw a random (d-1) x (d-1) orthogonal "
           "matrix Q (QR of a Gaussian matrix) and rotate inside the hyperplane: plane @ Q @ plane.T.",
           "Add back the identity on the ones direction: R = plane @ Q @ plane.T + outer(u, u) with u = 1/sqrt(d)."]))


# --- 5.2 rotating the residual stream -----------------------------------------------------

def _random_weights(gen: torch.Generator, mlp: bool = True, L: int = 2, H: int = 2, d: int = 6, e: int = 3,
                    m: int = 8, vocab: int = 11, ctx: int = 7) -> weights.Weights:
    w = {"W_E": randn(gen, vocab, d), "W_pos": randn(gen, ctx, d), "W_Q": randn(gen, L, H, d, e),
         "W_K": randn(gen, L, H, d, e), "W_V": randn(gen, L, H, d, e), "b_Q": randn(gen, L, H, e),
         "b_K": randn(gen, L, H, e), "b_V": randn(gen, L, H, e), "W_O": randn(gen, L, H, e, d),
         "b_O": randn(gen, L, d), "W_U": randn(gen, d, vocab), "b_U": randn(gen, vocab),
         "ln1_w": torch.ones(L, d), "ln1_b": torch.zeros(L, d), "lnf_w": torch.ones(d), "lnf_b": torch.zeros(d)}
    if mlp:
        w.update({"W_in": randn(gen, L, d, m), "b_in": randn(gen, L, m), "W_out": randn(gen, L, m, d),
                  "b_out": randn(gen, L, d), "ln2_w": torch.ones(L, d), "ln2_b": torch.zeros(L, d)})
    return w


def _rotate_cases(gen: torch.Generator) -> list[Case]:
    return [Case((_random_weights(gen), weights.random_rotation(6, gen)), label="a random 2-layer model with MLPs"),
            Case((_random_weights(gen, mlp=False), weights.random_rotation(6, gen)), label="an attention-only model")]


def _rotate_readers_wrong_side(w, R):
    return weights.rotate_residual(w, R.T)


def _rotate_without(*keys: str):
    def wrong(w, R):
        out = weights.rotate_residual(w, R)
        return {k: (w[k] if k in keys else v) for k, v in out.items()}
    return wrong


register(FunctionExercise(
    id="01.rotate_residual", title="Rotate the residual stream", reference=weights.rotate_residual, cases=_rotate_cases,
    atol=1e-4,
    mistakes=[
        Mistake(_rotate_readers_wrong_side, "Writers get R on the right (x -> x @ R) and readers R^T on the left "
                                            "(W -> R^T @ W), so that (x @ R) @ (R^T @ W) = x @ W. Yours has them the other way round."),
        Mistake(_rotate_without("W_pos"), "W_pos writes to the residual stream too: rotate it like W_E."),
        Mistake(_rotate_without("b_O", "b_out"), "The output biases b_O and b_out are written into the residual stream: rotate them too."),
        Mistake(_rotate_without("W_U"), "W_U reads the residual stream: it needs R^T @ W_U."),
        Mistake(_rotate_without("W_Q", "W_K", "W_V"), "The attention heads read the residual through W_Q, W_K and W_V: "
                                                      "each needs R^T on its d_model axis."),
        Mistake(_rotate_without("W_in"), "The MLPs read the residual through W_in: it needs R^T on its d_model axis."),
    ],
    hints=["Sort the matrices into writers (W_E, W_pos, W_O, b_O, W_out, b_out: their last axis is d_model) and "
           "readers (W_Q, W_K, W_V, W_in, W_U: their d_model axis is the second-to-last).",
           "Writers: w[k] @ R. Readers: multiply their d_model axis by R^T, e.g. torch.einsum('dD,...de->...De', R, w[k]).",
           "Build a new dict (dict(w) copies it) and leave everything else (biases of Q, K, V, b_in, b_U, LayerNorms) as it is; "
           "skip keys an attention-only model does not have."]))


# --- 5.3 kurtosis ------------------------------------------------------------------------------

def _kurtosis_cases(gen: torch.Generator) -> list[Case]:
    spiky = randn(gen, 5, 16)
    spiky[:, 3] += 12.0
    return [Case((randn(gen, 4, 32),), label="Gaussian vectors"), Case((spiky,), label="vectors with one outlier coordinate"),
            Case((randn(gen, 2, 3, 8) + 5.0,), label="a [2, 3, 8] batch with a non-zero mean")]


register(FunctionExercise(
    id="01.kurtosis", title="Kurtosis of a vector's coordinates", reference=weights.kurtosis, cases=_kurtosis_cases,
    atol=1e-4,
    mistakes=[
        Mistake(lambda x: weights.kurtosis(x) - 3, "That is the *excess* kurtosis (minus 3). Keep plain kurtosis, "
                                                   "E[(x - mean)^4] / var^2, which is 3 for Gaussian coordinates."),
        Mistake(lambda x: x.pow(4).mean(-1) / x.pow(2).mean(-1).pow(2), "Centre first: subtract each vector's mean "
                                                                      "over its coordinates."),
        Mistake(lambda x: _centred(x).pow(4).mean(-1) / x.var(-1).pow(2),
                "Use the population variance (mean of squared deviations, `unbiased=False`), not the sample variance."),
    ],
    hints=["Work over the last dimension: each vector's d_model coordinates are the sample.",
           "c = x - x.mean(-1, keepdim=True); kurtosis = mean(c^4) / mean(c^2)^2."]))


# --- 6.1 input/output cosine ------------------------------------------------------------------

def _cos_cases(gen: torch.Generator) -> list[Case]:
    W_in = randn(gen, 6, 10)
    W_out = randn(gen, 10, 6) * 3
    W_out[2] = -W_in[:, 2] * 0.5          # an eraser
    W_out[5] = W_in[:, 5] * 2.0           # a booster
    return [Case((W_in, W_out), label="6-dim residual, 10 neurons (neuron 2 erases, neuron 5 boosts)"),
            Case((randn(gen, 4, 3), randn(gen, 3, 4)), label="3 neurons")]


register(FunctionExercise(
    id="01.in_out_cosine", title="Input/output weight cosine", reference=memory.in_out_cosine, cases=_cos_cases,
    mistakes=[
        Mistake(lambda W_in, W_out: (W_in.T * W_out).sum(-1), "Normalise: cosine = (a · b) / (|a| |b|), so the "
                                                              "weights' scale does not matter."),
        Mistake(lambda W_in, W_out: torch.cosine_similarity(W_in, W_out.T, dim=-1),
                "That compares one residual-stream coordinate's weights across the neurons. A neuron's own "
                "directions are d_model long: the column W_in[:, i] it reads with and the row W_out[i] it writes."),
    ],
    hints=["Neuron i reads along the column W_in[:, i] and writes along the row W_out[i]; both live in d_model.",
           "torch.cosine_similarity(W_in.T, W_out, dim=-1) pairs them neuron by neuron."]))


# --- 7.1 centred cosine --------------------------------------------------------------------

def _local_cases(gen: torch.Generator) -> list[Case]:
    full = randn(gen, 3, 20, 8) + randn(gen, 3, 1, 8, scale=4.0)   # a large mean per layer
    return [Case((full, full + randn(gen, 3, 20, 8, scale=0.5)), label="3 layers, 20 tokens, a large mean per layer"),
            Case((full[:1], full[:1]), label="identical runs")]


register(FunctionExercise(
    id="01.centred_cosine", title="Centred cosine similarity", reference=local.centred_cosine, cases=_local_cases,
    atol=1e-4,
    mistakes=[
        Mistake(lambda full, short: torch.cosine_similarity(full, short, dim=-1),
                "Subtract each layer's mean first: every residual shares a large mean direction, which makes any two "
                "of them look similar."),
        Mistake(lambda full, short: torch.cosine_similarity(full - full.mean(1, keepdim=True),
                                                            short - short.mean(1, keepdim=True), dim=-1),
                "Subtract the same mean from both: the mean of `full` over the tokens, per layer."),
        Mistake(lambda full, short: torch.cosine_similarity(full - full.mean(-1, keepdim=True),
                                                            short - short.mean(-1, keepdim=True), dim=-1),
                "The mean to remove is over the tokens (dimension 1), per layer, not over d_model."),
    ],
    hints=["mean = full.mean(1, keepdim=True) is each layer's average residual, shape [layers, 1, d_model].",
           "torch.cosine_similarity(full - mean, short - mean, dim=-1)."]))


# --- 3.3 name the head ---------------------------------------------------------------------------

def _judge_strongest_head(learner) -> tuple[bool, str]:
    value, problem = call_answer_function(learner, "strongest_head")
    if problem is not None:
        return False, problem
    if not (isinstance(value, tuple) and len(value) == 3 and hasattr(value[0], "cfg") and hasattr(value[1], "answers")):
        return False, "Return `model, P, answer`: the model, the prompts you attributed and a head name like 'L2H0'."
    model, P, answer = value
    if not isinstance(answer, str) or not re.fullmatch(r"L\d+H\d+", answer.strip().upper()):
        return False, f"Name one attention head, like 'L2H0' (layer 2, head 0); got {answer!r}."
    answer = answer.strip().upper()
    means = attribution.mean_dla(model, P.tokens, P.answers, P.sports)       # recomputed from the model, now
    heads = {k: v for k, v in means.items() if re.fullmatch(r"L\d+H\d+", k)}
    if answer not in heads:
        return False, (f"This model has no head {answer}: it has {model.cfg.n_layers} layers of "
                       f"{model.cfg.n_heads} heads, L0H0 to L{model.cfg.n_layers - 1}H{model.cfg.n_heads - 1}.")
    best = max(heads, key=heads.get)
    if answer != best:
        return False, (f"{answer} writes {heads[answer]:+.3f} towards the right sport on average, directly; another "
                       f"head writes more ({heads[best]:+.3f}). Compare the heads' mean bars, not the extremes "
                       "of single prompts, and keep the sign: a head that writes against the sport is not it.")
    return True, (f"Right: {best}, {heads[best]:+.3f} on average (recomputed from the model on your prompts), "
                  f"against {sum(means[k] for k in means if k.startswith('MLP')):+.3f} for the MLPs together.")


register(CustomExercise(
    id="01.strongest_head", title="Name the head that writes the sport", reference=None,
    judge=_judge_strongest_head,
    hints=["`dla` is [components, prompts] in the order of `labels`; average it over the prompts.",
           "Keep only the labels of heads (they start with 'L'), and take the one with the largest mean, sign "
           "included."]))


# --- 5.0 fold the LayerNorms --------------------------------------------------------------------

def _with_layernorms(gen: torch.Generator, mlp: bool) -> weights.Weights:
    w = _random_weights(gen, mlp=mlp)
    for k in [k for k in w if k.startswith("ln")]:
        w[k] = (1 + 0.5 * randn(gen, *w[k].shape)) if k.endswith("_w") else 0.5 * randn(gen, *w[k].shape)
    return w


def _fold_cases(gen: torch.Generator) -> list[Case]:
    return [Case((_with_layernorms(gen, True),), label="a random 2-layer model with MLPs and random LayerNorms"),
            Case((_with_layernorms(gen, False),), label="a random attention-only model (no W_in, no ln2)")]


def _fold_variant(bias_after_centring: bool = False, centre: bool = True, reset: bool = True,
                  biases: bool = True, final: bool = True):
    """fold_layernorm with one step wrong, for the known mistakes."""
    def fold(w):
        w = dict(w)
        groups = [(c, "b_" + c[-1], "ln1", lambda W, g: W * g[:, None, :, None],
                   lambda b, W: torch.einsum("ld,lhde->lhe", b, W), -2) for c in weights.READ_BY_LN1]
        if "W_in" in w:
            groups.append(("W_in", "b_in", "ln2", lambda W, g: W * g[:, :, None],
                           lambda b, W: torch.einsum("ld,ldm->lm", b, W), -2))
        if final:
            groups.append(("W_U", "b_U", "lnf", lambda W, g: W * g[:, None], lambda b, W: b @ W, 0))
        for W, b, ln, scale, read, dim in groups:
            scaled = scale(w[W], w[ln + "_w"])
            centred = scaled - scaled.mean(dim, keepdim=True) if centre else scaled
            if biases:
                w[b] = w[b] + read(w[ln + "_b"], centred if bias_after_centring else w[W])
            w[W] = centred
        if reset:
            for k in [k for k in w if k.startswith("ln")]:
                w[k] = torch.ones_like(w[k]) if k.endswith("_w") else torch.zeros_like(w[k])
        return w
    return fold


register(FunctionExercise(
    id="01.fold_layernorm", title="Fold the LayerNorms into their readers", reference=weights.fold_layernorm,
    cases=_fold_cases, atol=1e-4,
    mistakes=[
        Mistake(_fold_variant(biases=False), "The LayerNorm's bias β is read too: β W adds to the reader's own bias "
                "(b_Q, b_K, b_V, b_in, b_U). Without it the folded model loses a constant input."),
        Mistake(_fold_variant(bias_after_centring=True), "Compute β W with the reader *before* centring it: the "
                "normalised input has mean zero, so centring does not change what it reads, but β is not mean-zero."),
        Mistake(_fold_variant(centre=False), "After folding, centre each reader along its d_model axis (subtract its "
                "mean over d_model), as TransformerLens does: the normalised input has mean zero, so that part reads "
                "nothing."),
        Mistake(_fold_variant(reset=False), "Afterwards every LayerNorm gain must be 1 and every bias 0: they now live "
                "in the readers, and leaving them would apply them twice."),
        Mistake(_fold_variant(final=False), "The final LayerNorm is read by W_U: fold lnf_w and lnf_b into W_U and b_U."),
    ],
    hints=["LN(x) W + b = (norm(x) ⊙ g + β) W + b = norm(x) (diag(g) W) + (β W + b): the gain scales the reader's "
           "d_model rows, the bias moves into the reader's bias.",
           "ln1 is read by W_Q, W_K, W_V ([layers, heads, d_model, d_head]: g[:, None, :, None], and "
           "einsum('ld,lhde->lhe', β, W)); ln2 by W_in; lnf by W_U.",
           "Add β W with the reader as it was, then centre the scaled reader along d_model, and set every ln*_w to "
           "ones and ln*_b to zeros. Copy the dict first (dict(w))."]))


# --- 6.2 does the neuron erase? ------------------------------------------------------------------

def _erasure_cases(gen: torch.Generator) -> list[Case]:
    return [Case((randn(gen, 20, 16), torch.rand(20, generator=gen) * 3, randn(gen, 16, scale=2.0), randn(gen, 16)),
                 label="20 positions, an input direction of length about 8"),
            Case((randn(gen, 1, 6), torch.tensor([0.5]), randn(gen, 6), randn(gen, 6)), label="a single position")]


def _erasure_variant(unit: bool = True, sign: float = -1.0, along_output: bool = False):
    def erasure(resid_mid, neuron_act, w_in, w_out):
        u = w_out if along_output else w_in
        u = u / u.norm() if unit else u
        before, written = resid_mid @ u, neuron_act * (w_out @ u)
        return {"before": before, "written": written, "erased": sign * written / before}
    return erasure


register(FunctionExercise(
    id="01.erasure", title="Does the neuron erase its input?", reference=memory.erasure, cases=_erasure_cases,
    atol=1e-4,
    mistakes=[
        Mistake(_erasure_variant(unit=False), "Measure along the *unit* input direction, w_in / |w_in|: otherwise both "
                "components are scaled by |w_in|, and `before` is not the residual's component."),
        Mistake(_erasure_variant(sign=1.0), "`erased` is the share removed: a neuron that writes against the "
                "component (written < 0 where before > 0) erases a positive share, -written / before."),
        Mistake(_erasure_variant(along_output=True), "The direction to measure along is the one the neuron *reads*, "
                "w_in: the question is whether it removes what made it fire."),
    ],
    hints=["Let u = w_in / |w_in|. The residual's component along it is resid_mid @ u.",
           "The neuron adds act * w_out to the stream, so along u it adds act * (w_out @ u).",
           "Return {'before': ..., 'written': ..., 'erased': -written / before}."]))


# --- 7.0 the truncated window --------------------------------------------------------------------

def _truncate_cases(gen: torch.Generator) -> list[Case]:
    tokens = torch.randint(1, 50, (3, 12), generator=gen)
    return [Case((tokens, 5, 0), label="3 windows of 12 tokens, k = 5, BOS id 0"),
            Case((tokens[:1], 1, 99), label="one window, k = 1, BOS id 99"),
            Case((tokens, 12, 0), label="k = the whole window")]


register(FunctionExercise(
    id="01.truncate", title="Keep the last k tokens, where they were", reference=local.truncate,
    cases=_truncate_cases,
    mistakes=[
        Mistake(lambda tokens, k, bos: (local.truncate(tokens, k, bos)[0], torch.arange(k + 1)),
                "The shortened tokens must keep their original positions (0 for BOS, then T − k … T − 1): numbered "
                "afresh from 1, the last position would see a different position embedding than in the full run."),
        Mistake(lambda tokens, k, bos: (tokens[:, -k:], torch.arange(tokens.shape[1] - k, tokens.shape[1])),
                "Put BOS in front: the model always sees BOS at position 0, and the comparison must differ from "
                "the full run only in the tokens that were cut."),
        Mistake(lambda tokens, k, bos: (torch.cat([torch.full_like(tokens[:, :1], bos), tokens[:, 1:k + 1]], 1),
                                        torch.arange(k + 1)), "Keep the *last* k tokens of each window, not the first."),
    ],
    hints=["The tokens: BOS, then tokens[:, T - k:]. torch.full_like(tokens[:, :1], bos) makes the BOS column.",
           "The positions: 0 for BOS, then T - k, ..., T - 1 (torch.arange), as one [k + 1] tensor of longs."]))


# --- predict, then check -------------------------------------------------------------------

register_question(Question(
    id="01.who_writes_the_sport", title="Who writes the sport?",
    prompt="Averaged over all prompts, which kind of component writes most of the logit difference directly?",
    choices=list(attribution.KINDS),
    messages={
        "the attention heads": "Heads are what carry the name to the last position, so it is tempting to credit "
        "them. But DLA credits only the last write into the stream: what the heads move, the MLPs at the last "
        "position turn into the sport, and the MLPs get the credit.",
        "the embeddings": "At the last position the embeddings are those of the same token at the same position in "
        "every prompt, so they cannot favour one person's sport over another's.",
        "the MLPs": "Not on this model: look at the bars for what does write it."},
    explain="DLA splits the logit difference into what each component writes into the final stream."))

_SAME_VECTOR = ("Before block 0 the last position holds only its token's embedding plus its position's; the "
                "lens reads that vector, so whatever it says, it says for every prompt whose last token and length "
                "are the same.")
register_question(Question(
    id="01.lens_before_block_0", title="The lens before block 0",
    prompt="Before block 0, from the embeddings alone, what does the logit lens say about each person's sport?",
    choices=["nothing: the same guess for everyone", "a weak guess: right for some people",
             "the right sport for most people"],
    explain=_SAME_VECTOR))

register_question(Question(
    id="01.rotating_unfolded_weights", title="Rotating weights that were not folded",
    prompt="Rotate the raw weights, without folding the LayerNorms first. How far do the model's log-probabilities "
           "move (the largest change)?",
    choices=["not at all (float rounding)", "a little (less than 1)", "a lot (more than 1)"],
    messages={
        "not at all (float rounding)": "That holds only when every reader sees what it saw before. An unfolded "
        "LayerNorm multiplies coordinate by coordinate by its gain g, and after the rotation the coordinates "
        "are different ones: g ⊙ (x R) is not (g ⊙ x) R. Fold g into the readers first.",
        "a little (less than 1)": "The gains are far from equal across coordinates, so multiplying the rotated "
        "coordinates by them changes every reader's input substantially, not slightly."},
    explain="Folding moves the gains into the readers, and then the rotation is invisible to the model."))

register_question(Question(
    id="01.kurtosis_under_rotation", title="Kurtosis of the rotated stream",
    prompt="After the rotation, the kurtosis of the residual stream's coordinates after the last block will ...",
    choices=["stay about the same", "fall to about 3", "fall, but stay well above 3", "rise"],
    messages={
        "stay about the same": "The model computes the same function, but kurtosis is a statistic of the "
        "coordinates, not of the function: the rotation spreads each outlying coordinate over all of them.",
        "rise": "A random rotation mixes every coordinate with all the others; sums of many mixed coordinates look "
        "Gaussian, whose kurtosis is 3.",
        "fall, but stay well above 3": "A random rotation of the hyperplane mixes all d_model − 1 directions "
        "together; what comes out looks Gaussian."},
    explain="Heavy tails in the original coordinates, gone under a rotation the model cannot notice, mean the "
            "training put the outliers on particular coordinates."))

register_question(Question(
    id="01.neuron_kurtosis_under_rotation", title="Kurtosis of the MLP neurons, rotated",
    prompt="And the kurtosis of the MLP neurons' activations, after rotating the residual stream? It will ...",
    choices=["stay the same", "fall", "rise"],
    messages={
        "fall": "The rotation acts on the residual stream, not on the neurons: each MLP reads the rotated stream "
        "through Rᵀ W_in, so its pre-activations, and its activations, are exactly what they were.",
        "rise": "The neurons read the rotated stream through Rᵀ W_in: their pre-activations do not change at all."},
    explain="The neuron basis is privileged: an elementwise non-linearity acts coordinate by coordinate, so the "
            "coordinates themselves matter there."))

register_question(Question(
    id="01.how_far_back", title="How far back each block looks",
    prompt="Keep only the last 5 tokens (k = 5). Which last-position residual will be closer to the full run's?",
    choices=["after the first block", "after the last block", "about the same"],
    messages={
        "after the last block": "Each block's attention can bring in tokens from further back, and the last "
        "block's residual has been through all of them, so it depends on more of the window, not less.",
        "about the same": "The residual after the last block has been through every attention layer; each can "
        "read tokens that were cut, so the two residuals drift apart."},
    explain="The deeper the block, the more of the window its residual depends on."))
