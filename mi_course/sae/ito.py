"""Inference-time optimisation (ITO): throw the encoder away and choose the coefficients by search.

Given the decoder's dictionary (unit rows) and a target L0 of ``k``, a *pursuit* picks features
greedily, one per step, by their inner product with what is still unexplained (seed note 002;
Blumensath & Davies 2008, "Gradient pursuits"):

- **matched pursuit**: take the feature with the largest inner product with the residual, give it
  that inner product as its coefficient, subtract, repeat; earlier coefficients never change;
- **gradient pursuit**: the same choice, but each step then moves *all* chosen coefficients along
  the gradient of the squared error restricted to them, with the exactly optimal step size, and
  clips them at 0 (SAE activations are non-negative).

Both work on ``x - b_dec``; the reconstruction adds ``b_dec`` back. Batched over tokens; the
target L0 may differ per token (e.g. the encoder's own L0 on that token, for a comparison at
equal L0 token by token).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import SAE


def _steps(target_l0: int | Tensor, batch: int) -> Tensor:
    return torch.as_tensor(target_l0).expand(batch) if not isinstance(target_l0, Tensor) or \
        target_l0.ndim == 0 else target_l0


def matched_pursuit(x: Tensor, W_dec: Tensor, target_l0: int | Tensor) -> Tensor:
    """Non-negative matched pursuit: ``target_l0`` greedy steps (an int, or one per token: [batch]).

    x: [batch, d] (already centred on b_dec); W_dec: [d_sae, d] unit rows -> coefficients [batch, d_sae]
    """
    steps = _steps(target_l0, x.shape[0]).to(x.device)
    residual = x.clone()
    coeffs = torch.zeros(x.shape[0], W_dec.shape[0], dtype=x.dtype, device=x.device)
    for step in range(int(steps.max()) if steps.numel() else 0):
        inner = residual @ W_dec.T                                 # [batch, d_sae]
        best, idx = inner.max(dim=-1)
        a = best.clamp_min(0) * (step < steps)                     # <= 0: nothing left a feature can explain
        coeffs.scatter_add_(-1, idx[:, None], a[:, None])
        residual = residual - a[:, None] * W_dec[idx]
    return coeffs


def gradient_pursuit(x: Tensor, W_dec: Tensor, target_l0: int | Tensor) -> Tensor:
    """Non-negative gradient pursuit: ``target_l0`` steps (an int, or one per token: [batch]), each adding
    a feature and re-fitting all the chosen ones.

    x: [batch, d] (already centred on b_dec); W_dec: [d_sae, d] unit rows -> coefficients [batch, d_sae]
    """
    steps = _steps(target_l0, x.shape[0]).to(x.device)
    coeffs = torch.zeros(x.shape[0], W_dec.shape[0], dtype=x.dtype, device=x.device)
    selected = torch.zeros_like(coeffs, dtype=torch.bool)
    for step in range(int(steps.max()) if steps.numel() else 0):
        active = (step < steps)[:, None]
        residual = x - coeffs @ W_dec
        inner = residual @ W_dec.T                                 # minus half the gradient of ||residual||²
        selected |= torch.zeros_like(selected).scatter_(-1, inner.argmax(-1, keepdim=True), True) & active
        direction = torch.where(selected & active, inner, 0.0)
        c = direction @ W_dec                                       # how the reconstruction moves per unit step
        size = (c * residual).sum(-1) / (c * c).sum(-1).clamp_min(1e-12)
        coeffs = (coeffs + size[:, None] * direction).clamp_min(0)
    return coeffs


# Seed note 002's pseudo-code, as published (only the docstrings shortened to comments). It has bugs;
# chapter 05 asks the learner to find them (exercise 05.find_the_bugs) before writing gradient pursuit.
SEED_PSEUDOCODE = """\
def matched_pursuit_update_step(residual, weights, dictionary):
  # residual: d, weights: n, dictionary: n x d
  inner_products = abs(einsum('fv,v->f', dictionary, residual))
  idx = argmax(inner_products)
  a = inner_products[chosen_idx]
  residual = residual - a * dictionary[chosen_idx]
  weights[chosen_idx] = a
  return residual, weights

def matched_pursuit(signal, dictionary, target_l0):
  residual = signal
  weights = zeros(size=(dictionary.shape[0],))
  for _ in range(target_l0):
    residual, weights = matched_pursuit_update_step(residual, weights, dictionary)
  reconstruction = einsum('fv, f -> v', dictionary, weights)
  return coefs, reconstruction

def grad_pursuit_update_step(signal, weights, dictionary):
  # same as above: residual: d, weights: n, dictionary: n x d
  residual = signal - weights * dictionary
  selected_features = (weights != 0)
  inner_products = einsum('nd, d -> n', dictionary, residual)
  idx = argmax(inner_products)
  selected_features[idx] = 1
  grad = selected_features * inner_products
  c = einsum('n,nd -> d', grad, dictionary)
  step_size = einsum('d,d->', c, residual) / einsum('d,d->', c, c)
  weights = weights + step_size * grad
  weights = max(weights, 0)
  return weights

def grad_pursuit(signal, dictionary, target_l0):
  weights = zeros(dictionary.shape[0])
  for _ in range(target_l0):
    weights = grad_pursuit_update_step(signal, weights, dictionary)
"""


def show_seed_pseudocode() -> None:
    """Print :data:`SEED_PSEUDOCODE` with line numbers."""
    for number, line in enumerate(SEED_PSEUDOCODE.splitlines(), start=1):
        print(f"{number:3d}  {line}")


def ito_reconstruct(sae: SAE, x: Tensor, target_l0: int | Tensor, method: str = "gradient"
                    ) -> tuple[Tensor, Tensor]:
    """Coefficients and reconstruction of ``x`` from ``sae``'s decoder by a pursuit.

    x: [batch, d_in] -> (coefficients [batch, d_sae], x_hat [batch, d_in])
    """
    pursuit = {"gradient": gradient_pursuit, "matched": matched_pursuit}[method]
    with torch.no_grad():
        coeffs = pursuit(x - sae.b_dec, sae.W_dec, target_l0)
        return coeffs, coeffs @ sae.W_dec + sae.b_dec
