"""Patching heads' queries and keys (``hook_q``, ``hook_k``) resumes the corrupted run at the patched layer
(issue 25: chapter 06's exact query/key sweep on a GPT-2-small-shaped model would otherwise take one full
forward pass per few nodes). The numbers must be TransformerLens's, on the shipped fact model and on the
tiny GPT-2 (whose prompts differ from the second position on, so that some patches change nothing)."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import patching as tl_patching

from mi_course.fact_recall import pairs, patching
from mi_course.residual_stream import prompts
from mi_course.seed import stream
from mi_course.zoo import models

THEIRS = {"q": tl_patching.get_act_patch_attn_head_q_by_pos, "k": tl_patching.get_act_patch_attn_head_k_by_pos}


def _sites(x: str, L: int, T: int, H: int) -> list:
    """TransformerLens's order: layer, position, head."""
    return [patching.Site(f"blocks.{l}.attn.hook_{x}", p, h) for l in range(L) for p in range(T) for h in range(H)]


def _check(model, clean: torch.Tensor, corrupt: torch.Tensor, metric, max_rows: int) -> None:
    with torch.no_grad():
        _, cache = model.run_with_cache(clean)
    L, T, H = model.cfg.n_layers, clean.shape[1], model.cfg.n_heads
    for x, theirs in THEIRS.items():
        ours = patching.patch_sweep(model, corrupt, cache, _sites(x, L, T, H), metric, max_rows=max_rows)
        expected = theirs(model, corrupt, cache, metric).float().cpu()
        assert expected.std() > 1e-5                    # some patches matter (10^-4 on the random tiny GPT-2)
        torch.testing.assert_close(ours.view_as(expected), expected, atol=1e-5, rtol=0)
    assert patching._RESUMABLE[model]                    # resumed, not the hooked full forward passes


@pytest.mark.parametrize("which", ["shipped", "tiny_gpt2"])
def test_query_and_key_sweeps_match_transformer_lens(which, request):
    if which == "shipped":
        model = models.load("gelu-3l-facts", device="cpu")
        P = pairs.make_pairs(prompts.world_fact_prompts(), 6)
        clean, corrupt = P.clean, P.corrupt
        with torch.no_grad():
            c, r = (patching.logit_diff(model(t), P.answer, P.wrong) for t in (clean, corrupt))

        def metric(logits):
            return patching.normalised_metric(patching.logit_diff(logits, P.answer, P.wrong), c, r)
    else:
        model = models.load(str(request.getfixturevalue("tiny_gpt2")[0]), device="cpu")
        gen = stream(0, "tests.qk_sweep")
        clean = torch.randint(1, 400, (3, 6), generator=gen)
        corrupt = torch.cat([clean[:, :2], torch.randint(1, 400, (3, 4), generator=gen)], dim=1)

        def metric(logits):
            return logits[:, -1, 5].mean() + logits[:, 3, 7].mean()
    _check(model, clean, corrupt, metric, max_rows=40)                 # several chunks
