"""Looking up a fact from two tokens: is the sport an AND of the first and the last name?

For a person "A B" whose sport is ``s``, compare the sport's logit ``E`` on four prompts: the true
name (A, B), another first name with the same last name (¬A, B), the same first name with another
last name (A, ¬B), and both replaced (¬A, ¬B). If the model added up what each name says, the
non-linear excess ``E(A,B) - E(¬A,B) - E(A,¬B) + E(¬A,¬B)`` would be zero; a lookup that needs
both names (an AND) makes it large and positive.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..seed import stream
from ..residual_stream.attribution import direct_logit_attribution
from ..residual_stream.prompts import TEMPLATE, FactPrompts, world_prompt_tokens


def nonlinear_excess(E_ab: Tensor, E_nab: Tensor, E_anb: Tensor, E_nanb: Tensor) -> Tensor:
    """``E(A,B) - E(¬A,B) - E(A,¬B) + E(¬A,¬B)``, elementwise (one value per person)."""
    return E_ab - E_nab - E_anb + E_nanb


def swapped_names(kb: Any, seed: int = 0) -> list[tuple[tuple[str, str], ...]]:
    """For each person: (A, B), (¬A, B), (A, ¬B), (¬A, ¬B) with ¬A and ¬B never paired with the other name,
    so the altered names belong to nobody in the knowledge base."""
    gen = stream(seed, "fact_recall.swapped_names")
    out = []
    for p in kb.people:
        firsts, lasts = kb.unpaired_names(p)
        not_a = firsts[int(torch.randint(len(firsts), (1,), generator=gen))]
        lasts = [l for l in lasts if (not_a, l) not in kb.by_name]      # (¬A, ¬B) must be nobody too
        not_b = lasts[int(torch.randint(len(lasts), (1,), generator=gen))]
        out.append(((p.first, p.last), (not_a, p.last), (p.first, not_b), (not_a, not_b)))
    return out


def answer_logits(model: Any, tokens: Tensor, answers: Tensor) -> Tensor:
    """The logit of each row's answer at the last position. tokens: [n, pos] -> [n]"""
    with torch.no_grad():
        logits = model(tokens.to(model.W_E.device))[:, -1]
    return logits.gather(-1, answers.to(logits.device)[:, None])[:, 0].cpu()


def recall(model: Any, P: FactPrompts, fwd_hooks: Sequence[tuple[str, Any]] = ()) -> float:
    """The fraction of prompts whose top sport (among ``P.sports``, at the last position) is the right one,
    optionally with hooks in the run (e.g. :func:`.patching.ablate_outputs`)."""
    device = model.W_E.device
    with torch.no_grad():
        logits = model.run_with_hooks(P.tokens.to(device), fwd_hooks=list(fwd_hooks))[:, -1, P.sports.to(device)]
    return (logits.argmax(-1).cpu() == P.labels).float().mean().item()


def fact_prompt_tokens(names: list[tuple[str, str]], template: str = TEMPLATE) -> Tensor:
    """World-model tokens of the fact prompt for each (first, last) name, BOS first. -> [n, pos]"""
    return world_prompt_tokens([f"{a} {b}" for a, b in names], template)


def direct_logits(model: Any, tokens: Tensor, answers: Tensor) -> dict[str, Tensor]:
    """What each attention layer and each MLP writes, at the last position, along the answer's unembedding
    (through the final LayerNorm's scale: chapter 01's direct logit attribution), plus the embeddings and
    the total logit. -> {name: [n]}"""
    device = model.W_E.device
    names = ["hook_embed", "hook_pos_embed"] + [f"blocks.{l}.hook_{x}_out" for l in range(model.cfg.n_layers)
                                                  for x in ("attn", "mlp")]
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens.to(device), names_filter=lambda n: n in names or n == "ln_final.hook_scale")
    names = [n for n in names if n in cache]
    components = torch.stack([cache[n][:, -1].expand(len(tokens), -1) for n in names])     # [components, n, d_model]
    direct = direct_logit_attribution(components, cache["ln_final.hook_scale"][:, -1],
                                      model.W_U[:, answers.to(device)].T).cpu()              # [components, n]
    out = {n.replace("blocks.", "").replace(".hook_", " ").replace("hook_", ""): d for n, d in zip(names, direct)}
    out["logit"] = logits[:, -1].gather(-1, answers.to(device)[:, None])[:, 0].cpu()
    return out


def excess_by_mlp(model: Any, four: Sequence[Tensor], answers: Tensor) -> dict[str, Tensor]:
    """Where the AND is *created*, not only where it shows.

    ``four``: the tokens of the (A,B), (¬A,B), (A,¬B), (¬A,¬B) prompts, each [n, pos]. For each MLP, at the
    last position:

    - ``"input"``: the size of the excess already in the MLP's input (the residual stream it reads),
      ``|x_AB - x_¬AB - x_A¬B + x_¬A¬B|`` relative to ``|x_AB|``, mean over people -> [layers];
    - ``"output"``: the same for the MLP's output vector -> [layers];
    - ``"direct"``: the non-linear excess of what the MLP writes directly along the answer's unembedding
      (as in :func:`direct_logits`) -> [layers, n];
    - ``"created"``: the same, with the MLP fed the *additive* input ``x_¬AB + x_A¬B - x_¬A¬B`` on the (A,B)
      prompt, the input it would get if everything before it added up. What remains is excess the MLP
      makes itself; the rest of ``"direct"`` it passes on from its input -> [layers, n].
    """
    device = model.W_E.device
    keep = lambda name: name.endswith(("hook_resid_mid", "hook_mlp_out")) or name == "ln_final.hook_scale"
    caches = []
    with torch.no_grad():
        for tokens in four:
            _, cache = model.run_with_cache(tokens.to(device), names_filter=keep)
            caches.append(cache)
        unembed = model.W_U[:, answers.to(device)].T                                   # [n, d_model]

        def along_answer(y: Tensor, k: int) -> Tensor:                                 # [n, d_model] -> [n]
            return (y / caches[k]["ln_final.hook_scale"][:, -1] * unembed).sum(-1)

        def relative_excess(v: list[Tensor]) -> Tensor:                               # -> scalar
            return ((v[0] - v[1] - v[2] + v[3]).norm(dim=-1) / v[0].norm(dim=-1)).mean()

        out: dict[str, list[Tensor]] = {"input": [], "output": [], "direct": [], "created": []}
        for l in range(model.cfg.n_layers):
            x = [c[f"blocks.{l}.hook_resid_mid"][:, -1] for c in caches]             # each [n, d_model]
            y = [c[f"blocks.{l}.hook_mlp_out"][:, -1] for c in caches]
            block = model.blocks[l]
            y_additive = block.mlp(block.ln2((x[1] + x[2] - x[3])[:, None]))[:, 0]
            rest = along_answer(y[1], 1) + along_answer(y[2], 2) - along_answer(y[3], 3)
            out["input"].append(relative_excess(x))
            out["output"].append(relative_excess(y))
            out["direct"].append(along_answer(y[0], 0) - rest)
            out["created"].append(along_answer(y_additive, 0) - rest)
    return {k: torch.stack(v).cpu() for k, v in out.items()}


def swapped_surname_names(kb: Any, n: int, seed: int = 0) -> tuple[list, list, list]:
    """Names for the linearity-break test of *Fact Finding*: ``n`` pairs of people (A1 B1), (A2 B2); the same
    names with the surnames swapped, (A1 B2), (A2 B1), both nobody; and two other names that are nobody,
    (X1 Y1), (X2 Y2), made of first and last names not in the pair. -> (known, swapped, unknown), each a list of
    ``n`` pairs of (first, last)."""
    gen = stream(seed, "fact_recall.swapped_surnames")
    people = kb.people
    firsts = sorted({p.first for p in people})
    lasts = sorted({p.last for p in people})
    pick = lambda seq: seq[int(torch.randint(len(seq), (1,), generator=gen))]
    known, swapped, unknown = [], [], []
    while len(known) < n:
        p, q = pick(people), pick(people)
        if p.first == q.first or p.last == q.last:
            continue
        c, d = (p.first, q.last), (q.first, p.last)
        if c in kb.by_name or d in kb.by_name:
            continue
        others = []
        while len(others) < 2:
            x = (pick(firsts), pick(lasts))
            if x not in kb.by_name and x[0] not in (p.first, q.first) and x[1] not in (p.last, q.last) and x not in others:
                others.append(x)
        known.append(((p.first, p.last), (q.first, q.last)))
        swapped.append((c, d))
        unknown.append(tuple(others))
    return known, swapped, unknown


def linearity_break(known: Tensor, swapped: Tensor, unknown: Tensor) -> Tensor:
    """How far a function of the names is from linear (*Fact Finding*): the distance between the midpoints of
    f(A1 B1), f(A2 B2) and of the swapped f(A1 B2), f(A2 B1), relative to the distance to the midpoint of two
    unrelated unknown names. 0: the four points form a parallelogram (linear); about 1: the swapped names look
    like any unknown names. known, swapped, unknown: [n, 2, d] -> [n]"""
    return (known.sum(1) - swapped.sum(1)).norm(dim=-1) / (known.sum(1) - unknown.sum(1)).norm(dim=-1)


def last_position_outputs(model: Any, names: list[tuple[str, str]]) -> dict[str, Tensor]:
    """Each MLP's input (the stream it reads, ``hook_resid_mid``) and output, at the last position of the fact
    prompt for each (first, last) name. -> {"input": [layers, n, d_model], "output": [layers, n, d_model]}"""
    tokens = fact_prompt_tokens(names).to(model.W_E.device)
    keep = lambda name: name.endswith(("hook_mlp_out", "hook_resid_mid"))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=keep)
    L = model.cfg.n_layers
    return {"input": torch.stack([cache[f"blocks.{l}.hook_resid_mid"][:, -1] for l in range(L)]).cpu(),
            "output": torch.stack([cache[f"blocks.{l}.hook_mlp_out"][:, -1] for l in range(L)]).cpu()}
