"""Chapter 04's explorer: a checkpoint slider that redraws an induction head's attention and the head scores.

The computation is :func:`scores_at`, a plain function the tests call; the widget
only wires a slider to it and redraws. Models are passed in through ``load``
(this package never imports the zoo: the zoo's cards use its head scores).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Sequence

from torch import Tensor

from . import head_scores as hs


def scores_at(model: Any, tokens: Tensor, n: int) -> dict[str, Tensor]:
    """Attention patterns on ``tokens`` [batch, 1 + 2n] and each head's previous-token and induction score."""
    patterns = hs.attention_patterns(model, tokens)
    return {"patterns": patterns, "prev_token": hs.prev_token_scores(patterns),
            "induction": hs.induction_scores(patterns, n)}


def checkpoint_explorer(load: Callable[[int], Any], steps: Sequence[int], tokens: Tensor, n: int, head: tuple[int, int]):
    """A slider over ``steps``: ``head``'s attention on the first sequence and every head's scores at that step."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from .plots import plot_checkpoint

    compute = lru_cache(maxsize=None)(lambda step: scores_at(load(step), tokens, n))
    slider = w.SelectionSlider(options=list(steps), value=steps[-1], description="step", continuous_update=False)
    out = w.Output()

    def redraw(*_):
        s = compute(slider.value)
        layer, h = head
        fig = plot_checkpoint(s["patterns"][layer, 0, h], n, s["prev_token"], s["induction"], f"L{layer}H{h}", slider.value)
        plt.close(fig)                     # shown inside the widget only
        out.outputs = ()
        out.append_display_data(fig)

    slider.observe(redraw, names="value")
    redraw()
    return w.VBox([slider, out])
