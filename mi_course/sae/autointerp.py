"""Auto-interpretability, the scoring half (Bills et al. 2023).

An explanation of a feature ("fires on the sport in a sentence about a person") is scored by
how well activations *predicted* from it, token by token, correlate with the feature's true
activations. Here the predictions come from anything (a rule written by hand, a label of the
world); the language model that would write and apply explanations is not part of the course.
"""

from __future__ import annotations

import torch
from torch import Tensor


def explanation_score(predicted: Tensor, actual: Tensor) -> Tensor:
    """The Pearson correlation of predicted and actual activations over all tokens (a float32 scalar).

    A constant prediction (or a feature that never varies) explains nothing: it scores 0, not NaN.
    predicted, actual: [n] (or any equal shape; flattened)
    """
    p = predicted.reshape(-1).double()
    a = actual.reshape(-1).double()
    p, a = p - p.mean(), a - a.mean()
    denom = p.norm() * a.norm()
    if denom == 0:
        return torch.zeros(())
    return ((p * a).sum() / denom).float()
