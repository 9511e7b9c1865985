"""An induction circuit written by hand: a two-layer attention-only model with fixed embeddings (chapter 04).

The residual stream has ``d_model = 3 * vocab + n_ctx`` coordinates, cut into four named subspaces that
never overlap (each is a block of one-hot coordinates, so the subspaces are orthogonal)::

    token           [vocab]   which token sits here          (written by the embedding)
    position        [n_ctx]   which position this is         (written by the embedding)
    previous_token  [vocab]   free: layer 0's head writes the token one position back here
    output          [vocab]   free: layer 1's head writes its prediction here; the unembedding reads only this

``layout.basis("token")`` is the ``[d_model, vocab]`` matrix whose columns are the token subspace's unit
vectors: ``x @ layout.basis("token")`` reads the token subspace of a residual vector ``x``, and
``v @ layout.basis("token").T`` writes a ``[vocab]`` vector ``v`` into it. ``layout.token`` is the same
subspace as a slice of coordinates (``x[..., layout.token]``).

The model: embed (token + position), then layer 0's head, then layer 1's head, each adding its output to
the stream (no LayerNorm, no MLP, no biases), then unembed. A head is four matrices (:class:`Head`):

    q = x W_Q,  k = x W_K   [pos, d_head]      scores = q k^T   (no 1/sqrt(d_head): put the scale you want in W_Q)
    pattern = softmax(scores + causal mask)    each position attends to itself and earlier positions
    out = pattern (x W_V) W_O                  [pos, d_model], added to the stream

Sequences are ``[BOS, t_1..t_n, t_1..t_n]`` as in the rest of the chapter (BOS is token 0), with the ``n``
tokens of a copy all different, so a perfect induction circuit predicts every token of the second copy
after its first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ..seed import stream

SUBSPACES = ("token", "position", "previous_token", "output")
BOS = 0
SCALE = 20.0        # the reference heads' attention sharpness: a score gap of 20 leaves e^-20 for the wrong keys


@dataclass(frozen=True)
class Layout:
    """Where each named subspace sits in the residual stream.

    vocab: tokens, BOS (token 0) included; n_ctx: positions. Subspaces, in order: token [vocab],
    position [n_ctx], previous_token [vocab], output [vocab]; ``d_model = 3 * vocab + n_ctx``.
    """

    vocab: int = 24
    n_ctx: int = 21

    def size(self, name: str) -> int:
        """How many coordinates the subspace ``name`` has."""
        if name not in SUBSPACES:
            raise KeyError(f"No subspace {name!r}; the layout has {', '.join(SUBSPACES)}.")
        return self.n_ctx if name == "position" else self.vocab

    def span(self, name: str) -> slice:
        """The subspace's coordinates: ``x[..., layout.span("token")]``."""
        start = 0
        for other in SUBSPACES:
            if other == name:
                return slice(start, start + self.size(name))
            start += self.size(other)
        raise KeyError(f"No subspace {name!r}; the layout has {', '.join(SUBSPACES)}.")

    @property
    def d_model(self) -> int:
        return sum(self.size(name) for name in SUBSPACES)

    token = property(lambda self: self.span("token"))
    position = property(lambda self: self.span("position"))
    previous_token = property(lambda self: self.span("previous_token"))
    output = property(lambda self: self.span("output"))

    def basis(self, name: str) -> Tensor:
        """[d_model, size]: the subspace's unit vectors as columns (read with ``x @ B``, write with ``v @ B.T``)."""
        basis = torch.zeros(self.d_model, self.size(name))
        basis[self.span(name)] = torch.eye(self.size(name))
        return basis

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {self.span(name).start}:{self.span(name).stop}" for name in SUBSPACES)
        return f"Layout(vocab={self.vocab}, n_ctx={self.n_ctx}): d_model {self.d_model} = {parts}"


class Head(NamedTuple):
    """One attention head. W_Q, W_K: [d_model, d_head]; W_V: [d_model, d_head_v]; W_O: [d_head_v, d_model]."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor


def embed(layout: Layout, tokens: Tensor) -> Tensor:
    """The stream before layer 0: one-hot token + one-hot position. tokens [batch, pos] -> [batch, pos, d_model]"""
    positions = torch.arange(tokens.shape[-1])
    return layout.basis("token").T[tokens] + layout.basis("position").T[positions]


def attend(head: Head, x: Tensor) -> tuple[Tensor, Tensor]:
    """One head on the stream x [batch, pos, d_model] -> (its output [batch, pos, d_model], pattern [batch, q, k])."""
    scores = (x @ head.W_Q) @ (x @ head.W_K).transpose(-1, -2)                    # [batch, q, k]
    future = torch.ones(x.shape[-2], x.shape[-2], dtype=torch.bool).triu(1)
    pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
    return pattern @ (x @ head.W_V) @ head.W_O, pattern


def run(layout: Layout, heads: list[Head], tokens: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Like :func:`forward`, plus the stream after the embedding and after each layer ([batch, pos, d_model] each)."""
    x = embed(layout, tokens)
    streams, patterns = [x], []
    for head in heads:
        out, pattern = attend(head, x)
        x = x + out
        streams.append(x)
        patterns.append(pattern)
    logits = x @ layout.basis("output")
    return logits, torch.stack(patterns)[:, :, None], streams


def forward(layout: Layout, heads: list[Head], tokens: Tensor) -> tuple[Tensor, Tensor]:
    """The model: tokens [batch, pos] -> (logits [batch, pos, vocab], patterns [layer, batch, head=1, q, k]).

    ``heads``: one :class:`Head` per layer (layer 0 first). The patterns have the shape of the chapter's
    (``head_scores.prev_token_scores`` and ``induction_scores`` take them as they are).
    """
    logits, patterns, _ = run(layout, heads, tokens)
    return logits, patterns


def repeated_tokens(layout: Layout, n: int, batch: int = 32, seed: int = 0,
                    name: str = "induction.handbuilt.tokens") -> Tensor:
    """``[BOS, t_1..t_n, t_1..t_n]``, the ``t_i`` of a copy all different, drawn from tokens 1..vocab-1.

    returns: int64 [batch, 1 + 2n] (needs ``n < vocab`` and ``1 + 2n <= n_ctx``)
    """
    if not (0 < n < layout.vocab and 1 + 2 * n <= layout.n_ctx):
        raise ValueError(f"n={n} does not fit {layout} (need n < vocab and 1 + 2n <= n_ctx)")
    gen = stream(seed, name)
    half = torch.rand(batch, layout.vocab - 1, generator=gen).argsort(-1)[:, :n] + 1
    return torch.cat([torch.full((batch, 1), BOS), half, half], dim=1)


def second_copy_accuracy(logits: Tensor, tokens: Tensor, n: int) -> float:
    """Top-1 accuracy on the second copy after its first token: positions n+1..2n-1 predicting t_2..t_n."""
    return (logits[:, n + 1: 2 * n].argmax(-1) == tokens[:, n + 2:]).float().mean().item()


def first_copy_accuracy(logits: Tensor, tokens: Tensor, n: int) -> float:
    """Top-1 accuracy on the first copy after its first token: positions 1..n-1 predicting t_2..t_n."""
    return (logits[:, 1:n].argmax(-1) == tokens[:, 2: n + 1]).float().mean().item()


def reference_previous_token_head(layout: Layout, scale: float = SCALE) -> Head:
    """Layer 0: from position p attend to p - 1 (by position), copy that token into ``previous_token``."""
    E_pos = layout.basis("position")                                   # [d_model, n_ctx]
    shift = torch.diag(torch.ones(layout.n_ctx - 1), -1)               # [n_ctx, n_ctx]: row p has its 1 at p - 1
    return Head(W_Q=scale * E_pos @ shift, W_K=E_pos,
                W_V=layout.basis("token"), W_O=layout.basis("previous_token").T)


def reference_induction_head(layout: Layout, scale: float = SCALE) -> Head:
    """Layer 1: attend to the position whose previous token is the current token, copy its token into ``output``."""
    return Head(W_Q=scale * layout.basis("token"), W_K=layout.basis("previous_token"),
                W_V=layout.basis("token"), W_O=layout.basis("output").T)


def plot_patterns(patterns: Tensor, tokens: Tensor, n: int, row: int = 0, titles: tuple[str, str] | None = None):
    """Both layers' attention on one sequence, side by side. patterns [layer, batch, 1, q, k]; returns the figure."""
    import matplotlib.pyplot as plt

    titles = titles or ("layer 0: previous-token head", "layer 1: induction head")
    fig, axes = plt.subplots(1, len(patterns), figsize=(5.2 * len(patterns), 4.4))
    labels = [str(t) for t in tokens[row].tolist()]
    labels[0] = "BOS"
    for layer, ax in enumerate(axes):
        image = ax.imshow(patterns[layer, row, 0].detach(), cmap="Blues", vmin=0, vmax=1)
        ax.set_title(f"{titles[layer]}\n(stripe key = query - {1 if layer == 0 else n - 1} expected)")
        ax.set_xlabel("key position (token)")
        ax.set_ylabel("query position (token)")
        ticks = range(len(labels))
        ax.set_xticks(ticks, [f"{i}:{t}" for i, t in zip(ticks, labels)], rotation=90, fontsize=6)
        ax.set_yticks(ticks, [f"{i}:{t}" for i, t in zip(ticks, labels)], fontsize=6)
        fig.colorbar(image, ax=ax, fraction=0.046, label="attention")
    fig.tight_layout()
    return fig


__all__ = ["SUBSPACES", "BOS", "SCALE", "Layout", "Head", "embed", "attend", "run", "forward", "repeated_tokens",
           "second_copy_accuracy", "first_copy_accuracy", "reference_previous_token_head",
           "reference_induction_head", "plot_patterns"]
