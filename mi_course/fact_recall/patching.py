"""Activation patching, batched: every patch of a sweep in a few forward passes.

Patching (denoising) runs the model on a *corrupted* prompt while restoring one
activation from the *clean* run, and asks how much of the clean behaviour comes
back. A sweep repeats that for every layer and position (or head). TransformerLens's
``patching`` module runs one full forward pass per patch. Here the corrupted batch is
repeated once per patch site, each copy gets its own patch, and three facts cut the work:

- before the patched layer, every copy *is* the corrupted run: a patched copy starts from
  the corrupted run's residual stream at that layer (:func:`_finish`);
- the model is causal, so a patch at position ``p`` changes nothing before ``p``: only
  positions ``p..`` are recomputed, attending to the corrupted run's keys and values
  before ``p``; and a patch that copies in the very same numbers changes nothing at all;
- the residual stream is a sum: restoring an MLP's or head's output is an edit of the stream
  right after that component writes to it.

That covers the residual stream, attention and MLP outputs, heads (``hook_z``) and heads' queries
and keys (``hook_q``, ``hook_k``: the patched layer's attention is recomputed) of models with standard
GPT-style blocks, checked on the corrupted run itself (:func:`_can_resume`).
Any other hook, or model, is patched with hooks on the full forward pass (:func:`_hooked_sweep`).
The tests check that the numbers are TransformerLens's.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..device import rows_that_fit


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


def head_position_sites(n_layers: int, n_heads: int, n_pos: int) -> list[Site]:
    """Each head's output (``hook_z``) at each position separately, ordered [layer, pos, head]."""
    return [Site(f"blocks.{l}.attn.hook_z", p, h) for l in range(n_layers) for p in range(n_pos) for h in range(n_heads)]


def patch_sweep(model: Any, corrupt: Tensor, clean_cache: Any, sites: Sequence[Site],
                metric: Callable[[Tensor], Tensor], max_rows: int = 2048) -> Tensor:
    """``metric`` of the corrupted run with each site restored from ``clean_cache``. -> [len(sites)]

    corrupt: [batch, pos] tokens; ``metric(logits [batch, pos, vocab]) -> scalar`` is evaluated on each
    site's copy of the batch. At most ``max_rows`` copied prompts go through the model at once.
    """
    with torch.no_grad():
        resumable = [i for i, site in enumerate(sites) if _resume_point(site.hook) is not None]
        run = _corrupted_run(model, corrupt, [sites[i] for i in resumable]) if resumable else None
        fast = resumable if run is not None and _can_resume(model, run) else []
        hooked = sorted(set(range(len(sites))) - set(fast))
        results = torch.zeros(len(sites))
        for (hook, start), group in _group_by_hook_and_start(run, clean_cache, sites, fast).items():
            if start is None:                                   # the patch changes no number: the corrupted run
                results[group] = _as_float(metric(run.logits))
                continue
            fit = rows_that_fit(model, corrupt.shape[1] - start, max_rows)
            for chunk in _chunks(group, max(1, fit // run.batch)):
                results[chunk] = _resumed_metrics(model, run, clean_cache, [sites[i] for i in chunk], start, metric)
        if hooked:
            results[hooked] = _hooked_sweep(model, corrupt, clean_cache, [sites[i] for i in hooked], metric, max_rows)
    return results


# ----------------------------------------------------------------------------
# The corrupted run, and resuming it from the middle of the model
# ----------------------------------------------------------------------------

@dataclass
class _CorruptedRun:
    """The plain corrupted run: what every patched copy shares with it before its patch."""

    logits: Tensor              # [batch, pos, vocab]
    cache: dict[str, Tensor]    # activations by hook name, each [batch, pos, ...]
    batch: int

    def repeated(self, name: str, positions: slice, copies: int) -> Tensor:
        """Activation ``name`` at ``positions``, once per copy of the batch. -> [copies * batch, positions, ...]"""
        act = self.cache[name][:, positions]
        return act.repeat(copies, *[1] * (act.dim() - 1))


def _corrupted_run(model: Any, corrupt: Tensor, sites: Sequence[Site]) -> _CorruptedRun:
    """Run the corrupted batch once, keeping the sites' activations and, for each layer, the residual stream
    and the attention keys and values that resumed copies reuse."""
    per_layer = ("hook_resid_pre", "hook_resid_mid", "attn.hook_k", "attn.hook_v")
    names = {s.hook for s in sites} | {f"blocks.{l}.{n}" for l in range(model.cfg.n_layers) for n in per_layer}
    names &= set(model.hook_dict)                    # an attention-only model has no hook_resid_mid
    logits, cache = model.run_with_cache(corrupt, names_filter=lambda name: name in names)
    return _CorruptedRun(logits, {n: cache[n] for n in names}, corrupt.shape[0])


# Where each hook's activation enters the residual stream: the stage it sets (``2 * layer + offset``;
# stage 2l is the stream before block l's attention, 2l + 1 before its MLP, 2L the final stream) and the
# corrupted stream it is added to (None: the hook *is* the stream). Not ``hook_resid_mid``: on a
# TransformerBridge it is the input of ``ln2`` only, and patching it leaves the stream itself alone.
_WRITES = {
    "hook_resid_pre": (0, None),
    "hook_resid_post": (2, None),
    "hook_attn_out": (1, "hook_resid_pre"),
    "attn.hook_z": (1, "hook_resid_pre"),     # through the output projection W_O
    "hook_mlp_out": (2, "hook_resid_mid"),
}


_QK = {"attn.hook_q": "q", "attn.hook_k": "k"}   # restored inside the attention itself (see _attention)


def _resume_point(hook: str) -> tuple[int, str] | None:
    """(layer, kind) of a hook in ``_WRITES`` or ``_QK`` (e.g. "blocks.2.attn.hook_z" -> (2, "attn.hook_z")),
    else None."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", hook)
    return (int(match[1]), match[2]) if match and (match[2] in _WRITES or match[2] in _QK) else None


def _finish(model: Any, run: _CorruptedRun, x: Tensor, stage: int, start: int) -> Tensor:
    """The rest of the forward pass from the residual stream ``x`` at ``stage`` (see ``_WRITES``), at positions
    ``start..`` only. x: [rows, pos - start, d_model] -> logits [rows, pos - start, vocab]"""
    for s in range(stage, 2 * model.cfg.n_layers):
        layer, before_mlp = divmod(s, 2)
        if not before_mlp:
            x = x + _attention(model, run, layer, x, start)
        elif not model.cfg.attn_only:
            block = model.blocks[layer]
            x = x + block.mlp(block.ln2(x))
    return model.unembed(model.ln_final(x))


def _attention(model: Any, run: _CorruptedRun, layer: int, x: Tensor, start: int,
               restore: tuple[str, Tensor, Tensor] | None = None) -> Tensor:
    """A layer's attention output at positions ``start..``; keys and values before ``start`` are the corrupted
    run's (nothing patched at ``start`` or later can change them). ``restore``: ("q" or "k", clean [rows,
    pos - start, heads, d_head], where [rows, pos - start, heads, 1]) puts clean queries or keys in.
    x: [rows, pos - start, d_model] -> same shape"""
    block, H = model.blocks[layer], model.cfg.n_heads
    h = block.ln1(x)
    q, k, v = (proj(h).unflatten(-1, (H, -1)) for proj in (block.attn.q, block.attn.k, block.attn.v))
    if restore is not None:
        which, clean, where = restore
        q, k = (torch.where(where, clean, q), k) if which == "q" else (q, torch.where(where, clean, k))
    copies = x.shape[0] // run.batch
    k = torch.cat([run.repeated(f"blocks.{layer}.attn.hook_k", slice(0, start), copies), k], dim=1)  # [rows, pos, heads, d_head]
    v = torch.cat([run.repeated(f"blocks.{layer}.attn.hook_v", slice(0, start), copies), v], dim=1)
    scores = torch.einsum("rqhe,rkhe->rhqk", q, k) / _attention_scale(model.cfg)
    later = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool, device=x.device).triu(start + 1)   # key after query
    pattern = scores.masked_fill(later, float("-inf")).softmax(-1)
    return _head_outputs_to_stream(model, layer, torch.einsum("rhqk,rkhe->rqhe", pattern, v))


def _head_outputs_to_stream(model: Any, layer: int, z: Tensor) -> Tensor:
    """The attention output (``W_O``, summed over heads, plus ``b_O``). z: [rows, pos, heads, d_head] -> [rows, pos, d_model]"""
    return model.blocks[layer].attn.o(z.flatten(-2))


def _attention_scale(cfg: Any) -> float:
    if not cfg.use_attn_scale:
        return 1.0
    return cfg.attn_scale if cfg.attn_scale > 0 else cfg.d_head ** 0.5


_RESUMABLE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model -> bool, see _can_resume


def _can_resume(model: Any, run: _CorruptedRun) -> bool:
    """Can patched copies resume the corrupted run from the middle (:func:`_finish`)? Not while hooks are on
    the model (an ablation, say: resumed copies would skip them). Otherwise if its blocks are standard GPT
    blocks and, checked once per model, resuming the first corrupted prompt from its embeddings at the
    middle position gives back its logits."""
    if any(hook_point.fwd_hooks for hook_point in model.hook_dict.values()):
        return False
    if model not in _RESUMABLE:
        first = _CorruptedRun(run.logits[:1], {name: act[:1] for name, act in run.cache.items()}, 1)
        start = first.logits.shape[1] // 2
        _RESUMABLE[model] = _standard_blocks(model) and torch.allclose(
            _finish(model, first, first.cache["blocks.0.hook_resid_pre"][:, start:], 0, start),
            first.logits[:, start:], rtol=1e-5, atol=1e-5)
    return _RESUMABLE[model]


def _standard_blocks(model: Any) -> bool:
    """Absolute position embeddings, attention then MLP, one key and value per head, q/k/v/o projections."""
    cfg = model.cfg
    return (getattr(cfg, "positional_embedding_type", "standard") == "standard"
            and not getattr(cfg, "parallel_attn_mlp", False)
            and getattr(cfg, "n_key_value_heads", None) in (None, cfg.n_heads)
            and all(hasattr(model.blocks[0].attn, name) for name in "qkvo"))


# ----------------------------------------------------------------------------
# Patched copies, resumed
# ----------------------------------------------------------------------------

def _site_mask(site: Site, act: Tensor) -> Tensor:
    """Where ``site`` restores the clean activation. act: [batch, pos, d] -> [pos], or
    [batch, pos, heads, d_head] -> [pos, heads]"""
    mask = torch.zeros(act.shape[1:-1], dtype=torch.bool, device=act.device)
    index = (slice(None) if site.pos is None else site.pos, slice(None) if site.head is None else site.head)
    mask[index[:mask.dim()]] = True
    return mask


def _group_by_hook_and_start(run: _CorruptedRun, clean_cache: Any, sites: Sequence[Site],
                             indices: list[int]) -> dict[tuple[str, int | None], list[int]]:
    """Site indices grouped by hook and by the first position where restoring the site changes a number
    (None: nowhere). The copies in a group share their unpatched positions."""
    changed: dict[str, Tensor] = {}    # by hook: [pos(, heads)], does the clean activation differ in some prompt?
    groups: dict[tuple[str, int | None], list[int]] = {}
    for i in indices:
        hook = sites[i].hook
        if hook not in changed:
            changed[hook] = (clean_cache[hook].to(run.logits.device) != run.cache[hook]).any(0).any(-1)
        where = _site_mask(sites[i], run.cache[hook]) & changed[hook]
        positions = where.reshape(len(where), -1).any(1).nonzero()
        groups.setdefault((hook, int(positions[0]) if len(positions) else None), []).append(i)
    return groups


def _resumed_metrics(model: Any, run: _CorruptedRun, clean_cache: Any, sites: list[Site], start: int,
                     metric: Callable[[Tensor], Tensor]) -> Tensor:
    """``metric`` for each site (all at one hook), restoring positions ``start..`` and resuming the
    corrupted run there. -> [len(sites)]"""
    layer, kind = _resume_point(sites[0].hook)
    corrupt_act = run.cache[sites[0].hook][:, start:]                                  # [batch, pos - start, ...]
    clean_act = clean_cache[sites[0].hook].to(corrupt_act.device)[:, start:]
    masks = torch.stack([_site_mask(s, run.cache[s.hook]) for s in sites])[:, start:]  # [sites, pos - start(, heads)]
    if kind in _QK:                        # recompute the layer's attention with the clean queries or keys
        x = run.repeated(f"blocks.{layer}.hook_resid_pre", slice(start, None), len(sites))
        where = masks[:, None, ..., None].expand(-1, run.batch, *masks.shape[1:], 1).flatten(0, 1)
        restore = (_QK[kind], clean_act.repeat(len(sites), 1, 1, 1), where)
        change = _attention(model, run, layer, x, start, restore) - _attention(model, run, layer, x, start)
        mid = f"blocks.{layer}.hook_resid_mid"        # exactly the corrupted stream where the patch changes nothing
        base = run.repeated(mid, slice(start, None), len(sites)) if mid in run.cache else x + _attention(model, run, layer, x, start)
        logits = _finish(model, run, base + change, 2 * layer + 1, start)
        return _metrics(run, logits, start, metric)
    patched = torch.where(masks[:, None, ..., None], clean_act, corrupt_act).flatten(0, 1)  # [sites * batch, pos - start, ...]
    offset, base = _WRITES[kind]
    if kind == "attn.hook_z":
        patched = _head_outputs_to_stream(model, layer, patched)
    x = patched if base is None else run.repeated(f"blocks.{layer}.{base}", slice(start, None), len(sites)) + patched
    logits = _finish(model, run, x, 2 * layer + offset, start)                    # [sites * batch, pos - start, vocab]
    return _metrics(run, logits, start, metric)


def _metrics(run: _CorruptedRun, logits: Tensor, start: int, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """``metric`` of each copy: the corrupted run's logits before ``start``, the copy's from there.
    logits: [copies * batch, pos - start, vocab] -> [copies]"""
    prefix = run.logits[:, :start]
    return torch.stack([_as_float(metric(torch.cat([prefix, rows], dim=1))) for rows in logits.split(run.batch)])


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _as_float(value: Any) -> Tensor:
    return torch.as_tensor(value, dtype=torch.float32).cpu()


# ----------------------------------------------------------------------------
# Any other hook: patch with hooks on the full forward pass
# ----------------------------------------------------------------------------

def _restore(site: Site, act: Tensor, clean: Tensor) -> None:
    """Copy the site's part of ``clean`` into ``act`` (both [rows, pos, ...]), in place."""
    index = (slice(None), slice(None) if site.pos is None else site.pos)
    if site.head is not None:
        index = index + (site.head,)
    act[index] = clean[index]


def _hooked_sweep(model: Any, corrupt: Tensor, clean_cache: Any, sites: Sequence[Site],
                  metric: Callable[[Tensor], Tensor], max_rows: int) -> Tensor:
    """:func:`patch_sweep` with one hook per patched hook name on full forward passes of the repeated batch."""
    batch = corrupt.shape[0]
    per_chunk = max(1, rows_that_fit(model, corrupt.shape[1], max_rows) // batch)
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
        logits = model.run_with_hooks(corrupt.repeat(len(chunk), 1), fwd_hooks=hooks)
        results += [_as_float(metric(logits[i * batch:(i + 1) * batch])) for i in range(len(chunk))]
    return torch.stack(results)


def lookup_sites(effects: Tensor, threshold: float = 0.5) -> set[tuple[int, int]]:
    """(layer, position) pairs whose activation, restored alone, brings back more than ``threshold`` of the
    clean behaviour. effects: [layers, pos] (a residual-stream or MLP sweep of the normalised metric)"""
    return {(int(l), int(p)) for l, p in (effects > threshold).nonzero().tolist()}


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


def neuron_patch_effects(model: Any, corrupt: Tensor, clean_cache: Any, layer: int, pos: int, masks: Tensor,
                         metric: Callable[[Tensor], Tensor], max_rows: int = 4096) -> Tensor:
    """``metric`` of the corrupted run with a set of MLP ``layer``'s neurons restored from ``clean_cache`` at
    position ``pos``, one set per row of ``masks`` ([sets, d_mlp], bool). -> [sets]

    Restoring neurons changes the MLP's output by ``Σ_n (post_clean[n] - post_corrupt[n]) W_out[n]``, so each
    set is one edit of the stream after the MLP, and only positions ``pos..`` are recomputed (as in
    :func:`patch_sweep`). A model that cannot be resumed is patched with hooks on ``mlp.hook_post`` instead.
    ``masks = torch.eye(d_mlp, dtype=bool)`` is a sweep over single neurons.
    """
    T = corrupt.shape[1]
    pos = pos % T
    post = f"blocks.{layer}.mlp.hook_post"
    masks = masks.to(torch.bool)
    with torch.no_grad():
        run = _corrupted_run(model, corrupt, [Site(post, pos), Site(f"blocks.{layer}.hook_mlp_out", pos)])
        if not _can_resume(model, run):
            sites = []
            results = []
            for mask in masks:
                def hook(act: Tensor, hook: Any, mask: Tensor = mask) -> Tensor:
                    act = act.clone()
                    clean = clean_cache[post].to(act.device)
                    act[:, pos, mask] = clean[:, pos, mask]
                    return act
                results.append(_as_float(metric(model.run_with_hooks(corrupt, fwd_hooks=[(post, hook)]))))
            return torch.stack(results) if results else torch.zeros(0)
        delta = clean_cache[post].to(run.logits.device)[:, pos] - run.cache[post][:, pos]      # [batch, d_mlp]
        W_out = model.W_out[layer]                                                            # [d_mlp, d_model]
        base = (run.cache[f"blocks.{layer}.hook_resid_mid"][:, pos:] + run.cache[f"blocks.{layer}.hook_mlp_out"][:, pos:])
        prefix = run.logits[:, :pos]
        out = []
        per_chunk = max(1, rows_that_fit(model, T - pos, max_rows) // run.batch)
        for start in range(0, len(masks), per_chunk):
            chunk = masks[start:start + per_chunk].to(delta.device, delta.dtype)             # [sets, d_mlp]
            edit = torch.einsum("sn,bn,nd->sbd", chunk, delta, W_out)                         # [sets, batch, d_model]
            x = base.repeat(len(chunk), 1, 1)
            x[:, 0] = x[:, 0] + edit.flatten(0, 1)
            logits = _finish(model, run, x, 2 * layer + 2, pos)
            out += [_as_float(metric(torch.cat([prefix, rows], dim=1))) for rows in logits.split(run.batch)]
    return torch.stack(out)
