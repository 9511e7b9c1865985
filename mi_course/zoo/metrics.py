"""The measurements in the zoo's model cards, recomputed by the tests from the shipped weights.

* ``induction_report``: per-head previous-token and induction scores on
  ``BOS + 50 random words repeated twice``, and the loss on each copy;
* ``induction_circuit``: the previous-token head, the induction heads, their
  K-composition against random matrices, and what ablating the induction
  heads does to the loss on the second copy;
* ``fact_recall``: accuracy on ``"<first> <last> plays the sport of"``, with
  the MLPs mean-ablated, and with one name swapped for a name never paired
  with the other (the lookup needs both names);
* ``held_out_loss``: next-token loss on documents no training run saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..induction import head_scores as hs
from .world import BOS_ID, SPORTS, TOKEN_ID, World, used_token_ids

Model = Any

N_REPEAT = 50          # length of each copy of the random words
REPEAT_BATCH = 32      # how many random sequences
REPEAT_SEED = 1234     # fixed, so every card and test sees the same sequences


def repeated_tokens(batch: int = REPEAT_BATCH, n: int = N_REPEAT, seed: int = REPEAT_SEED) -> torch.Tensor:
    """``[BOS, t_1..t_n, t_1..t_n]``, the ``t_i`` drawn from the words the world uses. [batch, 1 + 2n]"""
    return hs.repeated_random_tokens(used_token_ids(), n=n, batch=batch, bos_id=BOS_ID, seed=seed)


def induction_report(model: Model, tokens: torch.Tensor | None = None, n: int = N_REPEAT) -> dict[str, Any]:
    """Per-head scores ([layer][head] lists) and the mean loss on each copy."""
    tokens = repeated_tokens(n=n) if tokens is None else tokens
    patterns = hs.attention_patterns(model, tokens)
    first, second = hs.copy_losses(hs.per_token_loss(model, tokens), n)
    return {
        "prev_token_scores": hs.prev_token_scores(patterns).tolist(),
        "induction_scores": hs.induction_scores(patterns, n).tolist(),
        "loss_first_copy": first,
        "loss_second_copy": second,
    }


def induction_circuit(model: Model, threshold: float = 0.4, n_random: int = 1000) -> dict[str, Any]:
    """The two-layer induction circuit: which heads, how they compose, what ablation does.

    The previous-token head is the layer-0 head with the highest previous-token
    score; the induction heads are the layer-1 heads whose induction score is
    above ``threshold`` (or the best one, if none is).
    """
    tokens = repeated_tokens()
    report = induction_report(model, tokens)
    prev = np.array(report["prev_token_scores"])
    ind = np.array(report["induction_scores"])
    prev_head = (0, int(prev[0].argmax()))
    ind_heads = [(1, int(h)) for h in np.nonzero(ind[1] > threshold)[0]] or [(1, int(ind[1].argmax()))]
    random_scores = hs.random_composition_scores(model.cfg.d_model, model.cfg.d_head, n_random)
    k_comp = {f"{l}.{h}": hs.k_composition(model, prev_head, (l, h)) for l, h in ind_heads}
    ablated = hs.per_token_loss(model, tokens, fwd_hooks=hs.head_ablation_hooks(ind_heads))
    _, second_ablated = hs.copy_losses(ablated)
    return {
        **report,
        "prev_token_head": list(prev_head),
        "induction_heads": [list(h) for h in ind_heads],
        "k_composition": k_comp,
        "k_composition_random_p95": float(torch.quantile(random_scores, 0.95)),
        "k_composition_random_mean": float(random_scores.mean()),
        "loss_second_copy_induction_heads_ablated": second_ablated,
    }


def held_out_loss(model: Model, tokens: torch.Tensor, batch: int = 16) -> float:
    """Mean next-token loss over ``tokens`` [rows, n_ctx]."""
    losses = []
    dev = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(tokens), batch):
            chunk = tokens[i: i + batch].to(dev)
            logits = model(chunk)
            losses.append(F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), chunk[:, 1:].flatten(),
                                          reduction="none"))
    return torch.cat(losses).mean().item()


# ----------------------------------------------------------------------------
# Fact recall
# ----------------------------------------------------------------------------

RELATION = ["plays", "the", "sport", "of"]
SPORT_IDS = [TOKEN_ID[s] for s in SPORTS]


def sport_prompts(world: World, names: list[tuple[str, str]]) -> torch.Tensor:
    """``[BOS, first, last, plays, the, sport, of]`` for each name pair. [len(names), 7]"""
    return torch.tensor([[BOS_ID, TOKEN_ID[f], TOKEN_ID[l], *(TOKEN_ID[w] for w in RELATION)] for f, l in names])


def _final_logits(model: Model, tokens: torch.Tensor, fwd_hooks: list | None = None) -> torch.Tensor:
    dev = next(model.parameters()).device
    with torch.no_grad():
        return model.run_with_hooks(tokens.to(dev), fwd_hooks=fwd_hooks or [])[:, -1].float().cpu()


def mlp_mean_ablation_hooks(model: Model, tokens: torch.Tensor) -> list:
    """Hooks that replace every MLP's output by its mean over the prompts (per position)."""
    names = [f"blocks.{l}.hook_mlp_out" for l in range(model.cfg.n_layers)]
    dev = next(model.parameters()).device
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens.to(dev), names_filter=lambda n: n in names)
    means = {n: cache[n].mean(dim=0, keepdim=True) for n in names}

    def replace_with(mean: torch.Tensor):
        return lambda out, hook: mean.expand_as(out).clone()

    return [(n, replace_with(means[n])) for n in names]


def fact_recall(model: Model, world: World, seed: int = 0) -> dict[str, float]:
    """Sport recall over the whole knowledge base.

    ``accuracy``: top-1 over the full vocabulary is the person's sport.
    The other numbers are top-1 among the sports only (so they cannot fail
    by predicting a non-sport word): ``sport_accuracy`` on the clean prompts,
    ``mlp_ablated_accuracy`` with every MLP output mean-ablated,
    ``first_swapped_accuracy`` / ``last_swapped_accuracy`` with the first / last
    name replaced by one never paired with the other name, scored against the
    original person's sport. ``chance`` is 1 / number of sports. An
    attention-only model has no MLPs, so it gets no ``mlp_ablated_accuracy``.
    """
    rng = np.random.default_rng(seed)
    people = world.kb.people
    answers = torch.tensor([p.sport for p in people])
    clean = sport_prompts(world, [(p.first, p.last) for p in people])
    first_swapped, last_swapped = [], []
    for p in people:
        firsts, lasts = world.kb.unpaired_names(p)
        first_swapped.append((firsts[rng.integers(len(firsts))], p.last))
        last_swapped.append((p.first, lasts[rng.integers(len(lasts))]))

    def sport_acc(logits: torch.Tensor) -> float:
        return (logits[:, SPORT_IDS].argmax(-1) == answers).float().mean().item()

    logits = _final_logits(model, clean)
    full = (logits.argmax(-1) == torch.tensor(SPORT_IDS)[answers]).float().mean().item()
    result = {
        "n_people": len(people),
        "chance": 1 / len(SPORTS),
        "accuracy": full,
        "sport_accuracy": sport_acc(logits),
        "first_swapped_accuracy": sport_acc(_final_logits(model, sport_prompts(world, first_swapped))),
        "last_swapped_accuracy": sport_acc(_final_logits(model, sport_prompts(world, last_swapped))),
    }
    if not model.cfg.attn_only:
        ablated = _final_logits(model, clean, mlp_mean_ablation_hooks(model, clean))
        result["mlp_ablated_accuracy"] = sport_acc(ablated)
    return result
