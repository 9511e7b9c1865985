"""The head explorer for chapter 02: pick a head, a token subset, a source token, and the paths.

The computation is :func:`head_view`, a plain function (tests call it); the widget only wires the
drop-downs to it and redraws. A layer-1 head reads the token embeddings directly and also what each
layer-0 head wrote: the three path menus choose, for the query, the key and the value, whether the
token arrives directly (``W_E``) or through a layer-0 head's OV circuit (``W_E W_OV^{0a}``). The
induction heads' copying shows on the value path through a current-token head, and their
induction pattern on "query via a current-token head, key via the previous-token head".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from .full_circuits import Head, full_qk_circuit, promoted_tokens

Model = Any


def token_names(model: Model, ids: Sequence[int] | Tensor) -> list[str]:
    """The vocabulary entries of ``ids``."""
    return list(model.tokenizer.convert_ids_to_tokens([int(i) for i in ids]))


def path_name(via: Head | None) -> str:
    """``"embedding"`` or ``"via L0H1"``."""
    return "embedding" if via is None else f"via L{via[0]}H{via[1]}"


def head_view(model: Model, layer: int, head: int, subset: Sequence[int], source: int,
              candidates: Tensor | None = None, k: int = 8, query_via: Head | None = None,
              key_via: Head | None = None, value_via: Head | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """What the explorer shows for one head and one choice of paths.

    subset: token ids for the QK heatmap; source: the token the head attends to;
    candidates: output tokens the OV circuit may promote (None = the whole vocabulary);
    query_via, key_via, value_via: an earlier head through which each side reads the token (None = the embedding).
    returns: (QK full circuit on the subset with each row's mean removed [n, n],
              the k most promoted token ids [k], their logit effects [k])
    """
    qk = full_qk_circuit(model, layer, head, torch.as_tensor(list(subset)), query_via, key_via).AB
    qk = qk - qk.mean(dim=-1, keepdim=True)        # softmax ignores a row's constant
    ids, values = promoted_tokens(model, layer, head, source, candidates, k, via=value_via)
    return qk, ids, values


def head_explorer(model: Model, subsets: dict[str, Sequence[int]], candidates: Tensor | None = None):
    """Drop-downs for the head, the token subset, the source token and the three paths; redraws on change."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from .plots import draw_signed_heatmap

    heads = [(f"L{l}H{h}", (l, h)) for l in range(model.cfg.n_layers) for h in range(model.cfg.n_heads)]
    head = w.Dropdown(options=heads, description="head")
    subset = w.Dropdown(options=list(subsets), description="tokens")
    source = w.Dropdown(description="source token", style={"description_width": "initial"})
    paths = {side: w.Dropdown(description=f"{side} reads", style={"description_width": "initial"})
             for side in ("query", "key", "value")}
    out = w.Output()
    busy = [False]                          # no redraw while the menus are being refilled

    def set_sources(*_):
        ids = list(subsets[subset.value])
        source.options = list(zip(token_names(model, ids), ids))

    def set_paths(*_):
        layer = head.value[0]
        earlier = [(l, h) for l in range(layer) for h in range(model.cfg.n_heads)]
        busy[0] = True
        for menu in paths.values():
            menu.options = [(path_name(via), via) for via in [None, *earlier]]
            menu.value = None
            menu.disabled = not earlier
        busy[0] = False

    def redraw(*_):
        if busy[0] or source.value is None:
            return
        (layer, h), ids = head.value, list(subsets[subset.value])
        via = {side: menu.value for side, menu in paths.items()}
        qk, top_ids, values = head_view(model, layer, h, ids, source.value, candidates,
                                        query_via=via["query"], key_via=via["key"], value_via=via["value"])
        names = token_names(model, ids)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
        draw_signed_heatmap(ax1, qk, names, names,
                            f"L{layer}H{h} QK: query {path_name(via['query'])}, key {path_name(via['key'])}\n"
                            "(row mean removed)", "key token", "query token")
        top_names = token_names(model, top_ids)
        ax2.barh(top_names[::-1], values.flip(0).tolist(), color="tab:blue")
        ax2.set_title(f"L{layer}H{h} OV, value {path_name(via['value'])}:\n"
                      f"tokens promoted when attending to {names[ids.index(source.value)]!r}", fontsize=9)
        ax2.set_xlabel("logit effect (W_E [W_OV of the path] W_OV W_U)")
        ax2.set_ylabel("output token")
        fig.tight_layout()
        plt.close(fig)                    # shown inside the widget only
        out.outputs = ()
        out.append_display_data(fig)

    subset.observe(lambda *_: (set_sources(), redraw()), names="value")
    head.observe(lambda *_: (set_paths(), redraw()), names="value")
    source.observe(redraw, names="value")
    for menu in paths.values():
        menu.observe(redraw, names="value")
    set_sources()
    set_paths()
    redraw()
    return w.VBox([w.HBox([head, subset, source]), w.HBox(list(paths.values())), out])
