"""Chapter 01's explorer: pick a person (or type a prompt) and see the logit lens and the DLA bars.

The computation is :func:`explain` (one prompt), :func:`people_table` and :func:`people_order` (which
people to list, in which order): plain functions the tests call. The widget only wires dropdowns
and a text box to them and redraws.
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
    each layer, the lens's three top tokens after each layer (``lens_top``: [(token, probability)] per
    layer), each component's DLA, and their labels.
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
        top = lens[:, 0].softmax(-1).topk(3)                                         # [layers + 1, 3]
    lens_top = [[(model.to_string(int(t)), float(p)) for t, p in zip(ids, probs)]
                for ids, probs in zip(top.indices.tolist(), top.values.tolist())]
    return {"answer": model.to_string(answer), "rank": answer_rank(lens, answers)[:, 0].cpu(), "lens_top": lens_top,
            "prob": lens.softmax(-1)[:, 0, answer].cpu(), "dla": dla.cpu(), "bias": float(bias),
            "logit_diff": float(total), "labels": component_labels(cfg.n_layers, cfg.n_heads, not cfg.attn_only),
            "layer_names": ["embed"] + [f"block {l}" for l in range(cfg.n_layers)],
            "prompt": model.to_string(tokens[0, 1:])}


SORTS = ("world order", "smallest logit difference first", "largest logit difference first")


def people_table(model: Any, prompts: Any) -> dict[str, Any]:
    """Each person's logit difference and the component with the largest DLA, from one batched run.

    ``prompts``: a ``FactPrompts`` (tokens [n, pos], answers [n], sports [k]). Returns ``logit_diff`` [n],
    ``dla`` [n_components, n], ``leader`` (the name of each prompt's largest DLA, a list of n) and ``labels``.
    """
    cfg = model.cfg
    tokens = prompts.tokens.to(model.W_E.device)
    answers, sports = prompts.answers.to(tokens.device), prompts.sports.to(tokens.device)
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=decomposition_names(cfg.n_layers))
        comps = decompose_residual(cache, model.W_O, model.b_O)[:, :, -1]
        dla = direct_logit_attribution(comps, cache["ln_final.hook_scale"][:, -1],
                                       logit_diff_direction(model.W_U, answers, sports)).cpu()
        diff = logit_diff(logits[:, -1], answers, sports).cpu()
    labels = component_labels(cfg.n_layers, cfg.n_heads, not cfg.attn_only)
    return {"logit_diff": diff, "dla": dla, "leader": [labels[j] for j in dla.argmax(0).tolist()], "labels": labels}


def people_order(table: dict[str, Any], sport_of: list[str], sort: str = "world order", leader: str = "any",
                 sport: str = "any") -> list[int]:
    """The people to list: those whose largest DLA is ``leader`` and whose sport is ``sport`` ("any": all),
    in the order ``sort`` (one of :data:`SORTS`). ``sport_of``: each person's sport name [n]. -> indices"""
    keep = [i for i in range(len(sport_of)) if leader in ("any", table["leader"][i]) and sport in ("any", sport_of[i])]
    if sort == SORTS[0]:
        return keep
    diff = table["logit_diff"].tolist()
    return sorted(keep, key=lambda i: diff[i], reverse=sort == SORTS[2])


def lens_top_table(info: dict[str, Any]) -> str:
    """An HTML table of the lens's three top tokens after each layer, the answer in bold."""
    from html import escape

    def cell(token: str, p: float) -> str:
        text = f"{escape(repr(token), quote=False)} {p:.2f}"
        return f"<b>{text}</b>" if token == info["answer"] else text

    rows = "".join(f"<tr><td>{escape(name)}</td>" + "".join(f"<td>{cell(t, p)}</td>" for t, p in top) + "</tr>"
                   for name, top in zip(info["layer_names"], info["lens_top"]))
    return ("<table style='font-size:12px'><tr><th>lens after</th><th>top 1</th><th>top 2</th><th>top 3</th></tr>"
            + rows + "</table>")


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
    """Dropdowns to sort and filter the chapter's people, one to pick a person, and a text box for your own
    prompt; redraws the lens and the DLA."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    table = people_table(model, prompts)
    sport_of = [prompts.sport_names[j] for j in prompts.labels.tolist()]
    leaders = sorted(set(table["leader"]), key=table["labels"].index)
    sort = w.Dropdown(options=SORTS, value=SORTS[0], description="sort")
    leader = w.Dropdown(options=[("any", "any")] + [(f"{c} ({table['leader'].count(c)})", c) for c in leaders],
                        value="any", description="largest DLA")
    sport = w.Dropdown(options=["any"] + sorted(set(sport_of)), value="any", description="sport")
    people = w.Dropdown(description="person", layout=w.Layout(width="420px"))
    typed = w.Text(placeholder="or type a prompt and press Enter", continuous_update=False,
                   layout=w.Layout(width="360px"))
    out = w.Output()

    def show(info: dict[str, Any]) -> None:
        fig = draw_explanation(info)
        plt.close(fig)                     # shown inside the widget only
        out.outputs = ()
        out.append_display_data(fig)
        out.append_display_data(w.HTML(lens_top_table(info)))

    def on_person(*_):
        i = people.value
        if i is not None:
            show(explain(model, prompts.tokens[i], int(prompts.answers[i]), prompts.sports))

    def on_filter(*_):
        order = people_order(table, sport_of, sort.value, leader.value, sport.value)
        people.options = [(f"{prompts.names[i]} · {sport_of[i]} · logit diff {table['logit_diff'][i]:.2f} · "
                           f"{table['leader'][i]} largest", i) for i in order]
        people.value = order[0] if order else None
        if not order:
            out.outputs = ()

    def on_text(*_):
        if typed.value.strip():
            show(explain(model, model.to_tokens(typed.value)[0]))

    for control in (sort, leader, sport):
        control.observe(on_filter, names="value")
    people.observe(on_person, names="value")
    typed.observe(on_text, names="value")
    on_filter()
    return w.VBox([w.HBox([sort, leader, sport]), w.HBox([people, typed]), out])
