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
