"""Activation patching, batched: every patch of a sweep in one forward pass.

Patching (denoising) runs the model on a *corrupted* prompt while restoring one
activation from the *clean* run, and asks how much of the clean behaviour comes
back. A sweep repeats that for every layer and position (or head). Instead of one
forward pass per patch, as TransformerLens's ``patching`` module does, the
corrupted batch is repeated once per patch site and each copy gets its own patch,
so a whole sweep is one (chunked) forward pass. The tests check that the numbers
are TransformerLens's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor


@dataclass(frozen=True)
class Site:
    """One activation to restore: a hook, and a position and/or head (None: all of them)."""

    hook: str
    pos: int | None = None
    head: int | None = None


def normalised_metric(value: Tensor, clean: Tensor, corrupt: Tensor) -> Tensor:
    """Rescale a metric so that the corrupted run scores 0 and the clean run 1 (per prompt, then averaged)."""
    return ((value - corrupt) / (clean - corrupt)).mean()


def logit_diff(logits: Tensor, answers: Tensor, wrong: Tensor) -> Tensor:
    """logit(answer) - logit(wrong answer) at the last position. logits: [batch, pos, vocab] -> [batch]"""
    last = logits[:, -1]
    return (last.gather(-1, answers[:, None]) - last.gather(-1, wrong[:, None]))[:, 0]


def residual_sites(n_layers: int, n_pos: int) -> list[Site]:
    """The residual stream before each block, at each position (layer-major)."""
    return [Site(f"blocks.{l}.hook_resid_pre", p) for l in range(n_layers) for p in range(n_pos)]


def mlp_sites(n_layers: int, n_pos: int) -> list[Site]:
    """Each MLP's output at each position (layer-major)."""
    return [Site(f"blocks.{l}.hook_mlp_out", p) for l in range(n_layers) for p in range(n_pos)]


def head_sites(n_layers: int, n_heads: int) -> list[Site]:
    """Each head's output (``hook_z``) at every position (layer-major)."""
    return [Site(f"blocks.{l}.attn.hook_z", None, h) for l in range(n_layers) for h in range(n_heads)]


def _restore(site: Site, act: Tensor, clean: Tensor) -> None:
    """Copy the site's part of ``clean`` into ``act`` (both [rows, pos, ...]), in place."""
    index = (slice(None), slice(None) if site.pos is None else site.pos)
    if site.head is not None:
        index = index + (site.head,)
    act[index] = clean[index]


def patch_sweep(model: Any, corrupt: Tensor, clean_cache: Any, sites: Sequence[Site],
                metric: Callable[[Tensor], Tensor], max_rows: int = 2048) -> Tensor:
    """``metric`` of the corrupted run with each site restored from ``clean_cache``. -> [len(sites)]

    corrupt: [batch, pos] tokens; ``metric(logits [batch, pos, vocab]) -> scalar`` is evaluated on each
    site's copy of the batch. Sites are processed ``max_rows // batch`` at a time.
    """
    batch = corrupt.shape[0]
    per_chunk = max(1, max_rows // batch)
    results = []
    for start in range(0, len(sites), per_chunk):
        chunk = sites[start:start + per_chunk]
        by_hook: dict[str, list[tuple[int, Site]]] = {}
        for i, site in enumerate(chunk):
            by_hook.setdefault(site.hook, []).append((i, site))

        def make_hook(entries: list[tuple[int, Site]], name: str):
            def hook(act: Tensor, hook: Any) -> Tensor:
                act = act.clone()
                clean = clean_cache[name].to(act.device)
                for i, site in entries:
                    _restore(site, act[i * batch:(i + 1) * batch], clean)   # a view: writes into act
                return act
            return hook

        hooks = [(name, make_hook(entries, name)) for name, entries in by_hook.items()]
        with torch.no_grad():
            logits = model.run_with_hooks(corrupt.repeat(len(chunk), 1), fwd_hooks=hooks)
        results += [metric(logits[i * batch:(i + 1) * batch]) for i in range(len(chunk))]
    return torch.stack([torch.as_tensor(r, dtype=torch.float32) for r in results]).cpu()


def lookup_sites(resid_effects: Tensor, threshold: float = 0.5) -> set[tuple[int, int]]:
    """(layer, position) pairs whose residual stream, restored alone, brings back more than ``threshold``
    of the clean behaviour: where the looked-up fact sits. resid_effects: [layers, pos] (a residual sweep)"""
    return {(int(l), int(p)) for l, p in (resid_effects > threshold).nonzero().tolist()}


def ablate_outputs(model: Any, tokens: Tensor, hook_names: Sequence[str], mode: str = "mean",
                   reference: Tensor | None = None) -> list:
    """Hooks that replace each named output by zeros (``mode="zero"``) or by its mean over ``reference``
    tokens (default ``tokens``) at each position (``mode="mean"``)."""
    if mode == "zero":
        return [(n, lambda act, hook: torch.zeros_like(act)) for n in hook_names]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens if reference is None else reference, names_filter=list(hook_names))
    means = {n: cache[n].mean(0, keepdim=True) for n in hook_names}
    return [(n, lambda act, hook: means[hook.name].expand_as(act).clone()) for n in hook_names]
