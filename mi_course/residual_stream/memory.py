"""Memory management: MLP neurons that erase what they read (seed 000, "Testing for Memory Management").

A neuron reads the residual stream along its input weights ``W_in[:, i]`` and
writes along its output weights ``W_out[i]``. If the two point in opposite
directions (cosine near -1), then whenever the neuron fires it subtracts
from the residual the very direction that made it fire: it frees that space
for later layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..seed import stream
from .weights import Weights


def in_out_cosine(W_in: Tensor, W_out: Tensor) -> Tensor:
    """Cosine between each neuron's input and output weights. W_in: [d_model, d_mlp], W_out: [d_mlp, d_model] -> [d_mlp]"""
    return torch.cosine_similarity(W_in.T, W_out, dim=-1)


def untrained_weights(model: Any, model_name: str, seed: int = 0) -> Weights:
    """The same architecture at initialisation, processed like the trained model (for a baseline).

    A zoo model is initialised exactly as its recipe does before training; for any other model
    only ``W_in`` and ``W_out`` are returned, Gaussian with the trained matrices' scale.
    """
    from ..zoo.training import RECIPES, bridge_state_dict, native_model, to_bridge
    from .weights import weights_of

    if model_name in RECIPES:
        recipe = RECIPES[model_name]
        return weights_of(to_bridge(recipe, bridge_state_dict(native_model(recipe)), processed=True))
    gen = stream(seed, "memory.random_weights")
    w = weights_of(model)
    return {k: torch.randn(w[k].shape, generator=gen) * w[k].std() for k in ("W_in", "W_out")}


def erasure(resid_mid: Tensor, neuron_act: Tensor, w_in: Tensor, w_out: Tensor) -> dict[str, Tensor]:
    """Does a neuron remove its input direction where it fires?

    resid_mid: residual stream entering the MLP [n, d_model] (the positions where the neuron fires),
    neuron_act: its activation there [n], w_in: its input weights [d_model], w_out: its output weights [d_model].
    Returns, along the unit input direction: ``before`` (the residual's component) [n],
    ``written`` (what the neuron adds) [n], and ``erased`` = -written / before [n].
    """
    u = w_in / w_in.norm()
    before = resid_mid @ u
    written = neuron_act * (w_out @ u)
    return {"before": before, "written": written, "erased": -written / before}
