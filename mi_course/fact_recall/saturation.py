"""Where attribution patching goes blind: queries and keys of a saturated head (AtP*, Kramár et al. 2024).

A *node* here is one head's query (or key) at one position, restored from the clean run into the
corrupted run on every prompt of the batch. Plain AtP linearises the metric through the attention
softmax. When a head's attention is saturated (nearly one-hot) the softmax is flat where the corrupted
run sits, so the gradient says "nothing happens", while the real patch can move the whole pattern
somewhere else. AtP*'s QK fix (:func:`.atp.qk_fix`) recomputes the softmax exactly for the patched
query or key and linearises only from the pattern onwards.

In gelu-3l-facts two layer-0 heads move the names to the last position and find them by *content*:
with the names swapped ("Foster Ruth") the model still answers Ruth Foster's sport. Corrupting with a
person whose names are swapped sends those saturated heads to the other slot, and patching their keys moves
their attention a long way: AtP misses these nodes, the QK fix finds them. The QK fix does not get
their size right, though: the rest of the network (MLPs, LayerNorms) is not linear over so large a
change, and the QK fix still linearises it; :func:`metric_along_pattern` shows the metric along the way.

The three estimates come as ``[layers, 2, heads, pos]`` tables (second axis: 0 queries, 1 keys) of
changes in the metric relative to the corrupted run, so they can be compared entry by entry.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from .atp import attribution_patching, gradients, qk_fix
from .patching import Site, patch_sweep

QK = ("q", "k")
Node = tuple[int, int, int, int]        # (layer, 0 query / 1 key, head, position)


def qk_sites(layer: int, n_heads: int, n_pos: int) -> list[Site]:
    """Every query and key node of ``layer``, in table order: (q, k) x head x position."""
    return [Site(f"blocks.{layer}.attn.hook_{x}", p, h) for x in QK for h in range(n_heads) for p in range(n_pos)]


def exact_qk_effects(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """Exact patching: the metric with one node restored, minus the corrupted run's.
    corrupt: [batch, pos] tokens -> [layers, 2, heads, pos]"""
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, corrupt.shape[1]
    sites = [s for l in range(L) for s in qk_sites(l, H, T)]
    with torch.no_grad():
        base = float(metric(model(corrupt)))
    return patch_sweep(model, corrupt, clean_cache, sites, metric).view(L, 2, H, T) - base


def _qk_gradients(model: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> tuple[dict, dict]:
    """Activations and gradients of every layer's ``hook_q``, ``hook_k`` and ``hook_pattern`` (one backward)."""
    names = [f"blocks.{l}.attn.hook_{x}" for l in range(model.cfg.n_layers) for x in ("q", "k", "pattern")]
    return gradients(model, corrupt, names, metric)


def plain_qk_atp(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """Plain AtP of every node, ``(clean - corrupt) . grad``. -> [layers, 2, heads, pos]"""
    acts, grads = _qk_gradients(model, corrupt, metric)
    per_layer = [torch.stack([attribution_patching(clean_cache, acts, grads, f"blocks.{l}.attn.hook_{x}", (0, 3)).T
                              for x in QK]) for l in range(model.cfg.n_layers)]     # each [pos, heads] -> [heads, pos]
    return torch.stack(per_layer).cpu()


def qk_fix_atp(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """AtP* with the QK fix for every node: exact softmax, linear from the pattern on. -> [layers, 2, heads, pos]"""
    acts, grads = _qk_gradients(model, corrupt, metric)
    return torch.stack([torch.stack(qk_fix(clean_cache, acts, grads, l, model.cfg)) for l in range(model.cfg.n_layers)]).cpu()


def swap_positions(tokens: Tensor, i: int, j: int) -> Tensor:
    """A copy of ``tokens`` [batch, pos] with positions ``i`` and ``j`` exchanged (e.g. first and last name)."""
    out = tokens.clone()
    out[:, [i, j]] = tokens[:, [j, i]]
    return out


def missed_node(exact: Tensor, plain: Tensor, ratio: float = 1 / 3) -> Node | None:
    """The node with the largest exact effect among those whose plain AtP estimate is below ``ratio``
    of it in size (AtP misses it), as an index into the tables; None if AtP misses nothing."""
    missed = plain.abs() < ratio * exact.abs()
    if not missed.any():
        return None
    flat = torch.where(missed, exact.abs(), torch.full_like(exact, -1.0)).flatten().argmax()
    return tuple(int(i) for i in torch.unravel_index(flat, exact.shape))


def verification_rank(estimate: Tensor, node: Node) -> int:
    """How many nodes one exact-patches, taking them in order of decreasing ``|estimate|``, until ``node``
    is among them (1: it comes first). AtP* uses estimates this way: to choose what to verify."""
    return int((estimate.abs() > estimate[node].abs()).sum()) + 1


def patterns_before_after(model: Any, clean_cache: Any, corrupt: Tensor, node: Node) -> tuple[Tensor, Tensor]:
    """The node's layer's attention pattern on the corrupted run, without and with the node restored.
    -> two [batch, heads, query pos, key pos]"""
    layer, x, head, pos = node
    name, pattern = f"blocks.{layer}.attn.hook_{QK[x]}", f"blocks.{layer}.attn.hook_pattern"
    seen: list[Tensor] = []

    def restore(act: Tensor, hook: Any) -> Tensor:
        act = act.clone()
        act[:, pos, head] = clean_cache[name][:, pos, head].to(act.device)
        return act

    def keep(act: Tensor, hook: Any) -> Tensor:
        seen.append(act.detach().clone())
        return act

    with torch.no_grad():
        model.run_with_hooks(corrupt, fwd_hooks=[(pattern, keep)])
        model.run_with_hooks(corrupt, fwd_hooks=[(name, restore), (pattern, keep)])
    return seen[0], seen[1]


def metric_along_pattern(model: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor], layer: int,
                         start: Tensor, end: Tensor, ts: Sequence[float]) -> Tensor:
    """The metric on the corrupted run with ``layer``'s pattern set to ``start + t (end - start)``, for each t.
    With start, end from :func:`patterns_before_after`, ``t = 1`` minus ``t = 0`` is the exact effect and the
    slope at ``t = 0`` is the QK fix's estimate: the gap between them is what the QK fix cannot see. -> [len(ts)]"""
    name = f"blocks.{layer}.attn.hook_pattern"
    values = []
    for t in ts:
        mixed = start + t * (end - start)

        def set_pattern(act: Tensor, hook: Any) -> Tensor:
            return mixed.to(act.device, act.dtype)

        with torch.no_grad():
            logits = model.run_with_hooks(corrupt, fwd_hooks=[(name, set_pattern)])
        values.append(float(metric(logits)))
    return torch.tensor(values)
