"""A transformer as a dictionary of weight matrices, and the forward pass written out from them.

Section 5 of chapter 01 edits a model's weights (folding LayerNorm, centring,
rotating the residual stream or the MLP neurons) and runs the edited model.
Doing that on a plain ``dict`` of tensors, with a forward pass of about thirty
lines, shows exactly where each matrix acts. :func:`forward` reproduces the
model's own logits (the tests check it on every zoo model and on GPT-2).

Keys follow TransformerLens: ``W_E [vocab, d]``, ``W_pos [ctx, d]``,
``W_Q/W_K/W_V [L, H, d, d_head]``, ``b_Q/b_K/b_V [L, H, d_head]``,
``W_O [L, H, d_head, d]``, ``b_O [L, d]``, ``W_in [L, d, d_mlp]``, ``b_in [L, d_mlp]``,
``W_out [L, d_mlp, d]``, ``b_out [L, d]``, ``W_U [d, vocab]``, ``b_U [vocab]``, and the
LayerNorm gains and biases ``ln1_w, ln1_b, ln2_w, ln2_b [L, d]``, ``lnf_w, lnf_b [d]``.
An attention-only model has no ``W_in``, ``b_in``, ``W_out``, ``b_out``, ``ln2_*``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Weights = dict[str, Tensor]

READ_BY_LN1 = ("W_Q", "W_K", "W_V")
ACTIVATIONS = {"gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
               "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu, "silu": F.silu}


def weights_of(model: Any) -> Weights:
    """A copy of a TransformerLens model's weights (processed or not), LayerNorm parameters included."""
    names = ["W_E", "W_pos", "W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O", "W_U", "b_U"]
    if not model.cfg.attn_only:
        names += ["W_in", "b_in", "W_out", "b_out"]
    with torch.no_grad():
        w = {n: getattr(model, n).detach().clone().float() for n in names}
        for i in (("ln1",) if model.cfg.attn_only else ("ln1", "ln2")):
            w[f"{i}_w"] = torch.stack([_ln_param(getattr(b, i), "weight", model) for b in model.blocks])
            w[f"{i}_b"] = torch.stack([_ln_param(getattr(b, i), "bias", model) for b in model.blocks])
        w["lnf_w"] = _ln_param(model.ln_final, "weight", model)
        w["lnf_b"] = _ln_param(model.ln_final, "bias", model)
    return w


def _ln_param(ln: Any, name: str, model: Any) -> Tensor:
    value = getattr(ln, name, None)
    if value is None:  # a LayerNorm without that parameter (e.g. no bias): the identity
        return (torch.ones if name == "weight" else torch.zeros)(model.cfg.d_model)
    return value.detach().clone().float()


def layer_norm(x: Tensor, w: Tensor | None = None, b: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Centre ``x`` over its last dimension, divide by its RMS, then apply the gain ``w`` and bias ``b``."""
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()
    return x if w is None else x * w + b


def run(w: Weights, tokens: Tensor, act_fn: str = "gelu", eps: float = 1e-5) -> dict[str, Tensor]:
    """Run the model with weights ``w`` on ``tokens [batch, pos]``; return what it computed:

    ``logits [batch, pos, vocab]``, ``resid [n_layers + 1, batch, pos, d_model]`` (the residual
    stream before each block and after the last) and, with MLPs, ``neurons [n_layers, batch, pos, d_mlp]``.
    """
    n_layers, d_head = w["W_Q"].shape[0], w["W_Q"].shape[-1]
    T = tokens.shape[1]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tokens.device), 1)
    x = w["W_E"][tokens] + w["W_pos"][:T]
    resid, neurons = [x], []
    for l in range(n_layers):
        h = layer_norm(x, w["ln1_w"][l], w["ln1_b"][l], eps)
        q, k, v = (torch.einsum("bpd,hde->bphe", h, w[f"W_{c}"][l]) + w[f"b_{c}"][l] for c in "QKV")
        scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(d_head)
        pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
        z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
        x = x + torch.einsum("bqhe,hed->bqd", z, w["W_O"][l]) + w["b_O"][l]
        if "W_in" in w:
            h = layer_norm(x, w["ln2_w"][l], w["ln2_b"][l], eps)
            neurons.append(ACTIVATIONS[act_fn](h @ w["W_in"][l] + w["b_in"][l]))
            x = x + neurons[-1] @ w["W_out"][l] + w["b_out"][l]
        resid.append(x)
    out = {"logits": layer_norm(x, w["lnf_w"], w["lnf_b"], eps) @ w["W_U"] + w["b_U"], "resid": torch.stack(resid)}
    if neurons:
        out["neurons"] = torch.stack(neurons)
    return out


def forward(w: Weights, tokens: Tensor, act_fn: str = "gelu", eps: float = 1e-5) -> Tensor:
    """Logits of the model with weights ``w``. tokens: [batch, pos] -> [batch, pos, vocab]"""
    return run(w, tokens, act_fn, eps)["logits"]


# ----------------------------------------------------------------------------
# Folding and centring
# ----------------------------------------------------------------------------

def fold_layernorm(w: Weights) -> Weights:
    """Move every LayerNorm's gain and bias into the matrices that read its output.

    ``LN(x) W + b = norm(x) (diag(g) W) + (beta W + b)``, so after folding each
    LayerNorm only centres and scales, and commutes with any rotation that
    fixes the all-ones direction. The normalised vector has mean zero, so the
    readers' component along the all-ones direction reads nothing: it is
    removed too (centring the readers), as TransformerLens does.
    """
    w = dict(w)
    for c in READ_BY_LN1:
        b = "b_" + c[-1]
        w[b] = w[b] + torch.einsum("ld,lhde->lhe", w["ln1_b"], w[c])
        w[c] = _center_rows(w[c] * w["ln1_w"][:, None, :, None], dim=-2)
    if "W_in" in w:
        w["b_in"] = w["b_in"] + torch.einsum("ld,ldm->lm", w["ln2_b"], w["W_in"])
        w["W_in"] = _center_rows(w["W_in"] * w["ln2_w"][:, :, None], dim=-2)
    w["b_U"] = w["b_U"] + w["lnf_b"] @ w["W_U"]
    w["W_U"] = _center_rows(w["W_U"] * w["lnf_w"][:, None], dim=0)
    for k in [k for k in w if k.startswith("ln")]:
        w[k] = torch.ones_like(w[k]) if k.endswith("_w") else torch.zeros_like(w[k])
    return w


def _center_rows(W: Tensor, dim: int) -> Tensor:
    """Subtract the mean along the ``d_model`` axis ``dim``."""
    return W - W.mean(dim, keepdim=True)


def fold_value_biases(w: Weights) -> Weights:
    """Move the value biases into the output bias: attention weights sum to 1, so ``b_V W_O`` is a constant."""
    w = dict(w)
    w["b_O"] = w["b_O"] + torch.einsum("lhe,lhed->ld", w["b_V"], w["W_O"])
    w["b_V"] = torch.zeros_like(w["b_V"])
    return w


WRITERS = ("W_E", "W_pos", "W_O", "b_O", "W_out", "b_out")


def center_writing_weights(w: Weights) -> Weights:
    """Remove the all-ones component (mean over ``d_model``) from everything that writes to the residual.

    The next LayerNorm subtracts that component anyway, so the model computes
    the same function, and the residual stream now has mean zero everywhere.
    """
    return {k: (v - v.mean(-1, keepdim=True) if k in WRITERS and k in w else v) for k, v in w.items()}


def center_unembed(w: Weights) -> Weights:
    """Subtract each position's mean logit weight: softmax does not see a logit shift shared by all tokens."""
    w = dict(w)
    w["W_U"] = w["W_U"] - w["W_U"].mean(-1, keepdim=True)
    w["b_U"] = w["b_U"] - w["b_U"].mean()
    return w


# ----------------------------------------------------------------------------
# Rotations
# ----------------------------------------------------------------------------

def random_rotation(d: int, generator: torch.Generator | None = None) -> Tensor:
    """A random orthogonal ``[d, d]`` matrix that maps the all-ones vector to itself.

    Built on an orthonormal basis of the hyperplane orthogonal to ``1``: a
    random rotation of that hyperplane, plus the identity on ``1``.
    """
    ones = torch.ones(d, 1) / math.sqrt(d)
    basis, _ = torch.linalg.qr(torch.cat([ones, torch.randn(d, d - 1, generator=generator)], dim=1))
    plane = basis[:, 1:]                                                   # [d, d-1], orthogonal to 1
    q, r = torch.linalg.qr(torch.randn(d - 1, d - 1, generator=generator))
    q = q * torch.sign(torch.diagonal(r))                                  # uniform (Haar) rotation
    return plane @ q @ plane.T + ones @ ones.T


def rotate_residual(w: Weights, R: Tensor) -> Weights:
    """The same model with its residual stream rotated: every vector ``x`` becomes ``x @ R``.

    Writers are multiplied by ``R`` on the right, readers by ``R^T`` on the left,
    so every reader sees exactly what it saw before. Needs folded LayerNorms and
    ``R @ 1 = 1``. R: [d_model, d_model]
    """
    w = dict(w)
    for k in ("W_E", "W_pos", "W_O", "b_O", "W_out", "b_out"):
        if k in w:
            w[k] = w[k] @ R
    for k in ("W_Q", "W_K", "W_V", "W_in", "W_U"):
        if k in w:
            w[k] = torch.einsum("dD,...de->...De", R, w[k])              # R^T @ W on the d_model axis
    return w


def rotate_neurons(w: Weights, layer: int, R: Tensor) -> Weights:
    """Rotate one MLP's hidden space: ``W_in @ R``, ``b_in @ R``, ``R^T @ W_out``. R: [d_mlp, d_mlp]

    Without the activation function this would change nothing; with GELU
    applied to each neuron separately it breaks the model.
    """
    w = dict(w)
    for k, v in (("W_in", w["W_in"][layer] @ R), ("b_in", w["b_in"][layer] @ R), ("W_out", R.T @ w["W_out"][layer])):
        w[k] = w[k].clone()
        w[k][layer] = v
    return w


def random_orthogonal(d: int, generator: torch.Generator | None = None) -> Tensor:
    """A random (Haar) orthogonal ``[d, d]`` matrix."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator))
    return q * torch.sign(torch.diagonal(r))


def kurtosis(x: Tensor) -> Tensor:
    """Kurtosis of each vector's coordinates: ``E[(x - mean)^4] / var^2`` over the last dimension.

    3 for Gaussian-looking coordinates; large when a few coordinates are outliers.
    x: [..., d] -> [...]
    """
    centred = x - x.mean(-1, keepdim=True)
    return centred.pow(4).mean(-1) / centred.pow(2).mean(-1).pow(2)
