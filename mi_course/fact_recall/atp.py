"""Attribution patching (AtP): every patch of a sweep estimated from two forward passes and one backward.

Denoising patches a clean activation ``a_clean`` into the corrupted run. To first order the metric
then moves by ``(a_clean - a_corrupt) · ∂M/∂a``, with the gradient taken on the corrupted run.
One backward pass gives that gradient for every activation at once (Nanda 2023; Kramár et al. 2024).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from ..seed import stream
from . import patching
from .pairs import make_pairs, normalised_logit_diff
from .patching import _attention_scale


def gradients(model: Any, tokens: Tensor, names: Sequence[str], metric: Callable[[Tensor], Tensor]) -> tuple[dict, dict]:
    """Activations at ``names`` on ``tokens`` and the gradient of ``metric(logits)`` with respect to each."""
    acts: dict[str, Tensor] = {}

    def keeper(name: str) -> Callable[[Tensor, Any], Tensor]:
        def keep(act: Tensor, hook: Any) -> Tensor:    # stored under the name asked for (hook.name may be an alias)
            act.retain_grad()
            acts[name] = act
            return act
        return keep

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(n, keeper(n)) for n in names])
        metric(logits).backward()
    # an activation the metric does not depend on (e.g. behind a dropped gradient) gets a zero gradient
    return ({n: a.detach() for n, a in acts.items()},
            {n: torch.zeros_like(a) if a.grad is None else a.grad.detach() for n, a in acts.items()})


def attribution_patching(clean_cache: Any, corrupt_acts: dict, corrupt_grads: dict, name: str,
                         sum_dims: tuple[int, ...]) -> Tensor:
    """AtP estimate ``(a_clean - a_corrupt) · grad`` for one hook, summed over ``sum_dims`` (batch and d_head,
    say) and averaged over the batch size. -> the remaining dimensions (e.g. [pos, head])"""
    delta = clean_cache[name].to(corrupt_acts[name].device) - corrupt_acts[name]
    return (delta * corrupt_grads[name]).sum(dim=sum_dims)


SHORTLIST = 512     # neuron sweeps patch at most this many neurons of one MLP exactly


def shortlist(estimate: Tensor, k: int | None = None) -> Tensor:
    """The nodes worth patching exactly: all of them when there are at most ``k`` (default ``SHORTLIST``), else
    the ``k`` whose AtP ``estimate`` is largest in size (on GPT-2 small, MLP 0 has 3,072 neurons, and patching
    each alone costs as many forward passes). estimate: [nodes] -> indices [min(k, nodes)], ascending"""
    k = SHORTLIST if k is None else k
    if len(estimate) <= k:
        return torch.arange(len(estimate))
    return estimate.abs().topk(k).indices.sort().values


def neuron_attribution(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor],
                       layer: int = 0, pos: int = -1) -> Tensor:
    """AtP estimate for each neuron of MLP ``layer`` at position ``pos``. -> [d_mlp]"""
    name = f"blocks.{layer}.mlp.hook_post"
    acts, grads = gradients(model, corrupt, [name], metric)
    return attribution_patching(clean_cache, acts, grads, name, (0,))[pos].cpu()


def neuron_sweep(model: Any, corrupt: Tensor, clean_cache: Any, metric: Callable[[Tensor], Tensor], layer: int = 0,
                 also: Sequence[int] = ()) -> tuple[Tensor, Tensor, Tensor]:
    """MLP ``layer``'s neurons restored one at a time at the last position: AtP's estimate for every neuron, then
    exact patching of its :func:`shortlist` (every neuron on an MLP of at most ``SHORTLIST``) and of ``also``.
    -> (estimate [d_mlp], the neurons patched [n] ascending, their exact effects [n])"""
    d_mlp = model.cfg.d_mlp
    estimate = neuron_attribution(model, clean_cache, corrupt, metric, layer)
    swept = torch.cat([shortlist(estimate), torch.tensor(list(also), dtype=torch.long)]).unique()
    effects = patching.neuron_patch_effects(model, corrupt, clean_cache, layer, -1,
                                            torch.eye(d_mlp, dtype=torch.bool)[swept], metric).cpu()
    return estimate, swept, effects


def head_attribution(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """AtP estimate for each head's output over all positions (as a head sweep patches it). -> [layers, heads]"""
    names = [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    acts, grads = gradients(model, corrupt, names, metric)
    return torch.stack([attribution_patching(clean_cache, acts, grads, n, (0, 1, 3)) for n in names]).cpu()


def head_position_attribution(model: Any, clean_cache: Any, corrupt: Tensor,
                              metric: Callable[[Tensor], Tensor]) -> Tensor:
    """AtP estimate for each head's output at each position separately (as
    :func:`.patching.head_position_sites` patches it). -> [layers, pos, heads]"""
    names = [f"blocks.{l}.attn.hook_z" for l in range(model.cfg.n_layers)]
    acts, grads = gradients(model, corrupt, names, metric)
    return torch.stack([attribution_patching(clean_cache, acts, grads, n, (0, 3)) for n in names]).cpu()


def residual_attribution(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """AtP estimate for the residual stream before each block at each position (as
    :func:`.patching.residual_sites` patches it). -> [layers, pos]"""
    names = [f"blocks.{l}.hook_resid_pre" for l in range(model.cfg.n_layers)]
    acts, grads = gradients(model, corrupt, names, metric)
    return torch.stack([attribution_patching(clean_cache, acts, grads, n, (0, 2)) for n in names]).cpu()


def spearman(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """Spearman rank correlation of two flattened tensors (ties broken by order), over ``mask`` if given."""
    a, b = a.flatten(), b.flatten()
    if mask is not None:
        a, b = a[mask.flatten()], b[mask.flatten()]
    ra = a.argsort().argsort().float()
    rb = b.argsort().argsort().float()
    return torch.corrcoef(torch.stack([ra, rb]))[0, 1].item()


def nodes_that_change(exact: Tensor, estimate: Tensor) -> Tensor:
    """The nodes that are not exactly 0 in both tables (bool, same shape). A patch that copies in the very
    numbers already there (a position before the names differ, say) is exactly 0 in both; ranking those
    by their ties says nothing, so agreement is measured on the rest."""
    return (exact != 0) | (estimate != 0)


def _scores(q: Tensor, k: Tensor, scale: float) -> Tensor:
    """Causally masked attention scores. q, k: [batch, pos, heads, d_head] -> [batch, heads, q, k]"""
    T = q.shape[1]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / scale
    return scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))


def query_fix(q_clean: Tensor, k: Tensor, pattern: Tensor, grad: Tensor, scale: float) -> Tensor:
    """The QK fix for queries: restore the clean query at every position at once (each query position is its
    own softmax row), recompute those rows' patterns exactly from the corrupted keys, and linearise only from
    the pattern on: ``Σ (pattern_new - pattern) * ∂M/∂pattern`` over the keys and the batch.
    q_clean, k: [batch, pos, heads, d_head]; pattern, grad: [batch, heads, q, k] -> [heads, pos]"""
    return ((_scores(q_clean, k, scale).softmax(-1) - pattern) * grad).sum(-1).sum(0)


def qk_fix(clean_cache: Any, acts: dict, grads: dict, layer: int, cfg: Any = None) -> tuple[Tensor, Tensor]:
    """AtP*'s fix for queries and keys (Kramár et al. 2024): recompute the attention softmax exactly for the
    patched query (or key), and linearise only through the pattern. Needs ``acts`` and ``grads`` of
    ``hook_q``, ``hook_k`` and ``hook_pattern`` of ``layer`` on the corrupted run (:func:`gradients`).
    -> (query estimates, key estimates), each [heads, pos], summed over the batch.

    ``cfg`` (the model's config) gives the attention scale (``sqrt(d_head)`` when omitted). Models with
    rotary embeddings are refused: their ``hook_q``/``hook_k`` are taken before the rotation, so scores
    recomputed from them would be wrong.
    """
    if cfg is not None and getattr(cfg, "positional_embedding_type", "standard") == "rotary":
        raise ValueError("the QK fix recomputes scores from hook_q and hook_k, which come before the rotary "
                         "rotation on this model; it supports models with absolute position embeddings only")
    name = f"blocks.{layer}.attn"
    q, k, A = acts[f"{name}.hook_q"], acts[f"{name}.hook_k"], acts[f"{name}.hook_pattern"]
    G = grads[f"{name}.hook_pattern"]
    q_clean, k_clean = (clean_cache[f"{name}.hook_{x}"].to(q.device) for x in "qk")
    scale = _attention_scale(cfg) if cfg is not None else q.shape[-1] ** 0.5
    queries = query_fix(q_clean, k, A, G, scale)                                           # every row patched at once
    T = q.shape[1]
    keys = torch.zeros(q.shape[2], T, device=q.device)
    for s in range(T):                                                            # one key column at a time
        k_patched = k.clone()
        k_patched[:, s] = k_clean[:, s]
        keys[:, s] = ((_scores(q, k_patched, scale).softmax(-1) - A) * G).sum(dim=(0, 2, 3))
    return queries.cpu(), keys.cpu()


def graddrop_head_attribution(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor]) -> Tensor:
    """AtP*'s GradDrop for head outputs: AtP recomputed once per layer ``l`` with the gradient through
    everything layer ``l`` writes to the residual stream dropped, then ``sum_l |estimate_l| / (L - 1)``.
    A node whose direct and indirect effects cancel gets a large score on some of these runs. -> [layers, heads]
    """
    return graddrop_combine(graddrop_estimates(model, clean_cache, corrupt, metric))


def graddrop_estimates(model: Any, clean_cache: Any, corrupt: Tensor, metric: Callable[[Tensor], Tensor],
                       parts: Sequence[str] = ("attn", "mlp")) -> Tensor:
    """GradDrop's runs: AtP per head (all positions), once per layer ``l`` with the gradient through what layer
    ``l`` writes to the residual stream (``parts`` of it: its attention and/or its MLP output) dropped.
    -> [dropped layer, layers, heads]"""
    L = model.cfg.n_layers
    names = [f"blocks.{l}.attn.hook_z" for l in range(L)]

    def stop_gradient(act: Tensor, hook: Any) -> Tensor:
        return act.detach()

    estimates = []
    for dropped in range(L):
        writes = [f"blocks.{dropped}.hook_{part}_out" for part in parts
                  if part == "attn" or not model.cfg.attn_only]
        with model.hooks(fwd_hooks=[(w, stop_gradient) for w in writes]):
            acts, grads = gradients(model, corrupt, names, metric)
        estimates.append(torch.stack([attribution_patching(clean_cache, acts, grads, n, (0, 1, 3)) for n in names]).cpu())
    return torch.stack(estimates)


def graddrop_combine(estimates: Tensor) -> Tensor:
    """GradDrop's score from the L runs, each with one layer's gradient dropped: ``sum_l |estimate_l| / (L - 1)``
    (divided by 1 for a single layer). estimates: [L, ...] -> [...]"""
    return estimates.abs().sum(0) / max(estimates.shape[0] - 1, 1)


def head_position_agreement(model: Any, pairs: Any) -> float:
    """Spearman rank correlation between AtP and exact patching over every head at every position
    (``hook_z``) on one sample of pairs, counting only the nodes that change anything
    (:func:`nodes_that_change`). ``pairs``: a :class:`.pairs.Pairs`."""
    metric, clean_cache = normalised_logit_diff(model, pairs)
    L, H, T = model.cfg.n_layers, model.cfg.n_heads, pairs.clean.shape[1]
    corrupt = pairs.corrupt.to(model.W_E.device)
    names = [f"blocks.{l}.attn.hook_z" for l in range(L)]
    acts, grads = gradients(model, corrupt, names, metric)
    estimate = torch.stack([attribution_patching(clean_cache, acts, grads, n, (0, 3)) for n in names]).cpu()   # [L, T, H]
    exact = patching.patch_sweep(model, corrupt, clean_cache, patching.head_position_sites(L, H, T), metric).view(L, T, H)
    return spearman(exact, estimate, nodes_that_change(exact, estimate))


def agreement_by_sample_size(model: Any, P: Any, sizes: Sequence[int], n_samples: int = 5,
                             seed: int = 0) -> dict[int, Tensor]:
    """:func:`head_position_agreement` on ``n_samples`` independent samples of pairs at each size.
    -> {size: [n_samples]}"""
    from tqdm.auto import tqdm

    sample_seeds = torch.randint(2**31 - 1, (len(sizes), n_samples), generator=stream(seed, "fact_recall.agreement"))
    out = {}
    for n, seeds in zip(tqdm(sizes, desc="samples of pairs", leave=False), sample_seeds.tolist()):
        out[n] = torch.tensor([head_position_agreement(model, make_pairs(P, n, seed=s)) for s in seeds])
    return out
