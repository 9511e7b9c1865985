"""The sparse autoencoder (Bricken et al. 2023, "Towards Monosemanticity"; seed note 002).

An SAE rewrites an activation ``x`` (``d_in`` numbers) as a sparse, non-negative
combination of ``d_sae`` learned directions, the rows of its decoder:

    f  = ReLU(W_enc^T (x - b_dec) + b_enc)      f: [d_sae]   the feature activations
    x̂  = W_dec^T f + b_dec                      x̂: [d_in]    the reconstruction
    loss = ||x - x̂||² + λ Σ_i |f_i|             per token, averaged over the tokens of a batch

Shapes follow SAELens: ``W_enc`` is ``[d_in, d_sae]``, ``W_dec`` is ``[d_sae, d_in]`` (row ``i``
is feature ``i``'s direction, kept at unit norm), ``b_enc`` is ``[d_sae]`` and ``b_dec`` is ``[d_in]``.

The decoder rows are unit-norm because otherwise the L1 penalty could be dodged: shrink ``f``
and grow the decoder row by the same factor, and the reconstruction is unchanged while
``Σ|f|`` falls. These functions are also the grader's references for chapter 05.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..seed import stream


def sae_forward(x: Tensor, W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, b_dec: Tensor) -> tuple[Tensor, Tensor]:
    """Encode and decode a batch of activations.

    x: [batch, d_in]; W_enc: [d_in, d_sae]; b_enc: [d_sae]; W_dec: [d_sae, d_in]; b_dec: [d_in]
    returns (f [batch, d_sae], x_hat [batch, d_in])
    """
    f = torch.relu((x - b_dec) @ W_enc + b_enc)
    return f, f @ W_dec + b_dec


def sae_loss(x: Tensor, x_hat: Tensor, f: Tensor, l1_coeff: float) -> Tensor:
    """``mean over tokens of (||x - x̂||² + λ Σ_i |f_i|)``: a scalar.

    Both terms are per token: the squared error is summed over ``d_in`` and the L1 norm
    over the features, then both are averaged over the batch, so the balance between
    them does not change with the batch size or the width of the SAE. A stack of SAEs
    trained side by side (leading dimensions, as in ``toy.width_sweep``) adds up their losses.

    x, x_hat: [..., batch, d_in]; f: [..., batch, d_sae]
    """
    return ((x - x_hat) ** 2).sum(-1).mean(-1).sum() + l1_coeff * f.abs().sum(-1).mean(-1).sum()


def remove_parallel_component(W_dec: Tensor, grad: Tensor) -> Tensor:
    """The gradient without its component along each decoder row.

    A step along ``grad - (grad · ŵ_i) ŵ_i`` changes row ``i``'s direction but, to first
    order, not its norm, so renormalising after the step undoes only a second-order change.
    ``ŵ_i`` is row ``i`` divided by its norm (rows need not be exactly unit-norm).

    W_dec, grad: [d_sae, d_in] -> [d_sae, d_in]
    """
    unit = W_dec / W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return grad - (grad * unit).sum(-1, keepdim=True) * unit


def fold_pre_encoder_bias(W_enc: Tensor, b_enc: Tensor, b_dec: Tensor) -> Tensor:
    """An encoder bias that makes the pre-encoder subtraction of ``b_dec`` unnecessary.

    ``(x - b_dec) @ W_enc + b_enc = x @ W_enc + (b_enc - b_dec @ W_enc)``, so the SAE with
    encoder bias ``b_enc - b_dec @ W_enc`` and no pre-encoder bias has identical activations.

    W_enc: [d_in, d_sae]; b_enc: [d_sae]; b_dec: [d_in] -> [d_sae]
    """
    return b_enc - b_dec @ W_enc


class SAE(nn.Module):
    """A sparse autoencoder with a pre-encoder bias (``b_dec``) and unit-norm decoder rows.

    Initialised as in Anthropic's recipe: decoder rows random unit vectors, encoder the
    decoder's transpose, biases zero. ``d_sae`` is the number of features (the *width*).
    """

    def __init__(self, d_in: int, d_sae: int, seed: int = 0, device: str | torch.device = "cpu"):
        super().__init__()
        gen = stream(seed, "sae.init")
        W_dec = torch.randn(d_sae, d_in, generator=gen)
        W_dec /= W_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec.to(device))
        self.W_enc = nn.Parameter(W_dec.T.clone().to(device))
        self.b_enc = nn.Parameter(torch.zeros(d_sae, device=device))
        self.b_dec = nn.Parameter(torch.zeros(d_in, device=device))

    @property
    def d_in(self) -> int:
        return self.W_dec.shape[1]

    @property
    def d_sae(self) -> int:
        return self.W_dec.shape[0]

    def pre_acts(self, x: Tensor) -> Tensor:
        """The encoder's pre-activations ``W_enc^T (x - b_dec) + b_enc``: [..., d_in] -> [..., d_sae]."""
        return (x - self.b_dec) @ self.W_enc + self.b_enc

    def encode(self, x: Tensor) -> Tensor:
        """Feature activations ``f``: [..., d_in] -> [..., d_sae]."""
        return torch.relu(self.pre_acts(x))

    def decode(self, f: Tensor) -> Tensor:
        """Reconstruction ``x̂``: [..., d_sae] -> [..., d_in]."""
        return f @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x: [batch, d_in] -> (f [batch, d_sae], x_hat [batch, d_in])."""
        return sae_forward(x, self.W_enc, self.b_enc, self.W_dec, self.b_dec)

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Set every decoder row back to unit norm (after an optimiser step)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of ``W_dec.grad`` that would change the rows' norms."""
        if self.W_dec.grad is not None:
            self.W_dec.grad.copy_(remove_parallel_component(self.W_dec, self.W_dec.grad))

    @torch.no_grad()
    def folded_encoder_bias(self) -> Tensor:
        """The encoder bias of the equivalent SAE without a pre-encoder bias: [d_sae]."""
        return fold_pre_encoder_bias(self.W_enc, self.b_enc, self.b_dec)


def unit_rows(W: Tensor) -> Tensor:
    """Each row divided by its norm (all-zero rows stay zero): [n, d] -> [n, d]."""
    return W / W.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def l0(f: Tensor) -> Tensor:
    """Mean number of active features per token: f [batch, d_sae] -> scalar."""
    return (f > 0).float().sum(-1).mean()


def variance_explained(x: Tensor, x_hat: Tensor) -> Tensor:
    """``1 - Σ||x - x̂||² / Σ||x - mean(x)||²`` over a batch: x, x_hat [batch, d_in] -> scalar."""
    return 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
