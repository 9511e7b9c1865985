"""The head explorer for chapter 02: pick a head, a token subset and a source token.

The computation is :func:`head_view`, a plain function (tests call it); the widget only wires
three drop-downs to it and redraws.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .full_circuits import full_qk_circuit, promoted_tokens

Model = Any


def token_names(model: Model, ids: Sequence[int] | Tensor) -> list[str]:
    """The vocabulary entries of ``ids``."""
    return list(model.tokenizer.convert_ids_to_tokens([int(i) for i in ids]))


def head_view(model: Model, layer: int, head: int, subset: Sequence[int], source: int,
              candidates: Tensor | None = None, k: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    """What the explorer shows for one head.

    subset: token ids for the QK heatmap; source: the token the head attends to;
    candidates: output tokens the OV circuit may promote (None = the whole vocabulary).
    returns: (QK full circuit on the subset with each row's mean removed [n, n],
              the k most promoted token ids [k], their logit effects [k])
    """
    qk = full_qk_circuit(model, layer, head, torch.as_tensor(list(subset))).AB
    qk = qk - qk.mean(dim=-1, keepdim=True)        # softmax ignores a row's constant
    ids, values = promoted_tokens(model, layer, head, source, candidates, k)
    return qk, ids, values


def head_explorer(model: Model, subsets: dict[str, Sequence[int]], candidates: Tensor | None = None):
    """Drop-downs for the head, the token subset and the source token; redraws on change."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from .plots import draw_signed_heatmap

    heads = [(f"L{l}H{h}", (l, h)) for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    head = w.Dropdown(options=heads, description="head")
    subset = w.Dropdown(options=list(subsets), description="tokens")
    source = w.Dropdown(description="source token", style={"description_width": "initial"})
    out = w.Output()

    def set_sources(*_):
        ids = list(subsets[subset.value])
        source.options = list(zip(token_names(model, ids), ids))

    def redraw(*_):
        if source.value is None:
            return
        (layer, h), ids = head.value, list(subsets[subset.value])
        qk, top_ids, values = head_view(model, layer, h, ids, source.value, candidates)
        names = token_names(model, ids)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
        draw_signed_heatmap(ax1, qk, names, names, f"L{layer}H{h}: QK full circuit (row mean removed)",
                            "key token", "query token")
        top_names = token_names(model, top_ids)
        ax2.barh(top_names[::-1], values.flip(0).tolist(), color="tab:blue")
        ax2.set_title(f"L{layer}H{h}: OV circuit, tokens promoted when attending to {names[ids.index(source.value)]!r}",
                      fontsize=9)
        ax2.set_xlabel("logit effect (W_E W_OV W_U)")
        ax2.set_ylabel("output token")
        fig.tight_layout()
        plt.close(fig)                    # shown inside the widget only
        out.outputs = ()
        out.append_display_data(fig)

    subset.observe(lambda *_: (set_sources(), redraw()), names="value")
    head.observe(redraw, names="value")
    source.observe(redraw, names="value")
    set_sources()
    redraw()
    return w.VBox([w.HBox([head, subset, source]), out])
