"""Chapter 01's explorer: pick a person (or type a prompt) and see the logit lens and the DLA bars.

The computation is :func:`explain`, a plain function the tests call; the widget
only wires a dropdown and a text box to it and redraws.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .attribution import answer_rank, direct_logit_attribution, logit_diff, logit_diff_direction, logit_lens
from .decompose import accumulated_residual, component_labels, decompose_residual, decomposition_names


def explain(model: Any, tokens: Tensor, answer: int | None = None, candidates: Tensor | None = None) -> dict[str, Any]:
    """Logit lens and DLA at the last position of one prompt. tokens: [pos] or [1, pos].

    ``answer`` defaults to the model's top prediction; ``candidates`` (token ids it is compared
    with) to the model's ten top predictions. Returns the answer's rank and probability after
    each layer, each component's DLA, and their labels.
    """
    tokens = tokens.reshape(1, -1).to(model.W_E.device)
    cfg = model.cfg
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=decomposition_names(cfg.n_layers))
        last = logits[0, -1]
        if answer is None:
            answer = int(last.argmax())
        if candidates is None:
            candidates = last.topk(10).indices
        answers = torch.tensor([answer], device=last.device)
        candidates = candidates.to(last.device)
        lens = logit_lens(accumulated_residual(cache, cfg.n_layers)[:, :, -1], model.W_U, model.b_U, cfg.eps)
        comps = decompose_residual(cache, model.W_O, model.b_O)[:, :, -1]
        dla = direct_logit_attribution(comps, cache["ln_final.hook_scale"][:, -1],
                                       logit_diff_direction(model.W_U, answers, candidates))[:, 0]
        bias = logit_diff(model.b_U[None], answers, candidates)
        total = logit_diff(last[None], answers, candidates)
    return {"answer": model.to_string(answer), "rank": answer_rank(lens, answers)[:, 0].cpu(),
            "prob": lens.softmax(-1)[:, 0, answer].cpu(), "dla": dla.cpu(), "bias": float(bias),
            "logit_diff": float(total), "labels": component_labels(cfg.n_layers, cfg.n_heads, not cfg.attn_only),
            "layer_names": ["embed"] + [f"block {l}" for l in range(cfg.n_layers)],
            "prompt": model.to_string(tokens[0, 1:])}


def draw_explanation(info: dict[str, Any]):
    """Two panels: the answer's probability and rank through the layers; each component's DLA."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.3), gridspec_kw={"width_ratios": [1, 2.2]})
    x = range(len(info["layer_names"]))
    ax1.bar(x, info["prob"], color="tab:green")
    for i, (p, r) in enumerate(zip(info["prob"].tolist(), info["rank"].tolist())):
        ax1.text(i, p + 0.02, f"rank {r}", ha="center", fontsize=7)
    ax1.set_xticks(list(x), info["layer_names"], fontsize=8)
    ax1.set_ylim(0, 1.12)
    ax1.set_ylabel(f"P({info['answer']!r}) under the lens")
    ax1.set_title("logit lens", fontsize=10)
    dla = info["dla"]
    ax2.bar(range(len(dla)), dla, color=["tab:blue" if v >= 0 else "tab:red" for v in dla.tolist()])
    ax2.axhline(0, color="black", lw=0.6)
    ax2.set_xticks(range(len(dla)), info["labels"], rotation=60, fontsize=7)
    ax2.set_title(f"DLA: sum {float(dla.sum()):.2f} + unembed bias {info['bias']:.2f} "
                  f"= logit difference {info['logit_diff']:.2f}", fontsize=10)
    fig.suptitle(f"{info['prompt']} → {info['answer']!r}", fontsize=11)
    fig.tight_layout()
    return fig


def residual_explorer(model: Any, prompts: Any):
    """A dropdown of the chapter's prompts and a text box for your own; redraws the lens and the DLA."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    people = w.Dropdown(options=[(n, i) for i, n in enumerate(prompts.names)], value=0, description="person")
    typed = w.Text(placeholder="or type a prompt and press Enter", continuous_update=False,
                   layout=w.Layout(width="360px"))
    out = w.Output()

    def show(info: dict[str, Any]) -> None:
        fig = draw_explanation(info)
        plt.close(fig)                     # shown inside the widget only
        out.outputs = ()
        out.append_display_data(fig)

    def on_person(*_):
        i = people.value
        show(explain(model, prompts.tokens[i], int(prompts.answers[i]), prompts.sports))

    def on_text(*_):
        if typed.value.strip():
            show(explain(model, model.to_tokens(typed.value)[0]))

    people.observe(on_person, names="value")
    typed.observe(on_text, names="value")
    on_person()
    return w.VBox([w.HBox([people, typed]), out])
