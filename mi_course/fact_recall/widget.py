"""The patching explorer: pick a clean and a corrupted person, see exact patching and AtP side by side.

The computation is :func:`compare_pair`, a plain function (the tests call it); the widget only wires
two person pickers and a "what to patch" switch to it and redraws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from torch import Tensor

from ..residual_stream.prompts import FactPrompts
from . import atp
from .pairs import normalised_logit_diff, one_pair
from .patching import head_position_sites, patch_sweep, residual_sites
from .plots import head_rows, heads_by_position

KINDS = ("head outputs", "residual stream")


@dataclass
class PairMaps:
    """Exact patching and the AtP estimate of every node for one pair, as [rows, pos] tables."""

    exact: Tensor
    estimate: Tensor
    row_labels: list[str]
    spearman: float


def compare_pair(model: Any, P: FactPrompts, clean: int, corrupt: int, kind: str = KINDS[0]) -> PairMaps:
    """Denoising person ``corrupt``'s prompt with person ``clean``'s activations, node by node: heads at each
    position (``kind="head outputs"``) or the residual stream before each block at each position. The people's
    sports must differ (otherwise the normalised metric is 0 / 0)."""
    if P.labels[clean] == P.labels[corrupt]:
        raise ValueError(f"{P.names[clean]} and {P.names[corrupt]} play the same sport: nothing to restore")
    pair = one_pair(P, clean, corrupt)
    metric, cache = normalised_logit_diff(model, pair)
    corrupted = pair.corrupt.to(next(model.parameters()).device)
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, pair.clean.shape[1]
    if kind == KINDS[0]:
        exact = heads_by_position(patch_sweep(model, corrupted, cache, head_position_sites(L, H, T), metric).view(L, T, H))
        estimate = heads_by_position(atp.head_position_attribution(model, cache, corrupted, metric))
        rows = head_rows(L, H)
    else:
        exact = patch_sweep(model, corrupted, cache, residual_sites(L, T), metric).view(L, T)
        estimate = atp.residual_attribution(model, cache, corrupted, metric)
        rows = [f"resid_pre {l}" for l in range(L)]
    return PairMaps(exact, estimate, rows, atp.spearman(exact, estimate))


def patching_explorer(model: Any, P: FactPrompts, position_labels: Sequence[str], clean: int = 0, corrupt: int = 1):
    """Two person pickers and a switch (head outputs / residual stream) above exact patching and AtP."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from .plots import plot_sweeps

    options = [(f"{name} ({P.sport_names[int(s)]})", i) for i, (name, s) in enumerate(zip(P.names, P.labels))]
    pick_clean = w.Dropdown(options=options, value=clean, description="clean")
    pick_corrupt = w.Dropdown(options=options, value=corrupt, description="corrupted")
    kind = w.ToggleButtons(options=KINDS, value=KINDS[0], description="patch")
    out = w.Output()

    def redraw(*_):
        out.outputs = ()
        try:
            maps = compare_pair(model, P, pick_clean.value, pick_corrupt.value, kind.value)
        except ValueError as err:
            out.append_stdout(f"{err}; pick another pair.\n")
            return
        fig = plot_sweeps({"exact patching": maps.exact,
                           f"AtP estimate (Spearman {maps.spearman:.2f})": maps.estimate},
                          maps.row_labels, position_labels, "node")
        plt.close(fig)                    # shown inside the widget only, not again below the cell
        out.append_display_data(fig)

    for control in (pick_clean, pick_corrupt, kind):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([pick_clean, pick_corrupt]), kind, out])
