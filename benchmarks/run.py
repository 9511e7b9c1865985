"""Benchmarks: notebook wall time and peak memory (and which of their claims hold, at size "small" and
"full"), batched vs looped training, widget latency,
zoo loading (each shipped model, after import), the offline failure of a hub name, batched
activation patching against TransformerLens's patching module, and attribution patching against
exact patching.

Run with `make bench` (or `.venv/bin/python benchmarks/run.py [--skip-notebooks]`). The "gpt2_shape" section
(the language-model chapters and AtP against exact patching on a random GPT-2-small-shaped model built offline,
benchmarks/gpt2_shape.py) runs alone with `--gpt2-only [--gpt2-parts chapters|atp] [--chapters 01_*]`, and is
left out with `--skip-gpt2`. The "memory_cage" section (each chapter and puzzle in a JupyterLab server's kernel,
server and kernel inside one 2 GiB memory cgroup: benchmarks/memory_cage.py) runs alone with `--cage-only
[--cage-notebooks 'P*']` (the entries of the notebooks not rerun are kept, each with its commit and date) and is
left out with `--skip-cage`.
Numbers are printed and written to benchmarks/results.json; they are reported,
never asserted (tests make no timing claims).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch

import memory_cage  # noqa: E402  (benchmarks/, on the path when this file runs)
from mi_course import superposition as tms
from mi_course.superposition.widget import train_small

REPO = Path(__file__).resolve().parents[1]


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def notebook_run(path: Path, parameters: dict | None = None, timeout_s: float | None = None, slowest: int = 0,
                 record_error: bool = False, address_space_bytes: int | None = None) -> dict:
    """Run one solution notebook with papermill (device=cpu, plus ``parameters``); wall time, peak RSS of the
    kernel tree, and the claims it checked (mi_course.claims), each with whether it held. ``slowest``: also
    that many slowest cells and that many cells with the highest peak memory (each with its seconds and peak); ``record_error``: a failing notebook is reported (its error's
    tail under "error") instead of raising; ``address_space_bytes``: the kernel's address space is capped
    there (an allocation past it fails with an error, instead of swapping or taking the machine's memory)."""
    parameters = {"device": "cpu", **(parameters or {})}
    limit = None
    if address_space_bytes is not None:
        import resource

        limit = lambda: resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "papermill", str(path), str(Path(tmp) / "out.ipynb"),
               "--cwd", str(path.parent), "--no-progress-bar"]
        for name, value in parameters.items():
            cmd += ["-p", name, str(value)]
        start = time.perf_counter()
        claims_log = Path(tmp) / "claims.jsonl"
        env = {**os.environ, "MI_COURSE_PROGRESS": str(Path(tmp) / "progress.json"),  # not the learner's file
               "MI_COURSE_CLAIMS_LOG": str(claims_log)}
        env.pop("MI_COURSE_CLAIMS", None)                    # report claims that fail; do not stop at the first
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, preexec_fn=limit)
        peak = 0
        kernel_peak = 0
        samples: list[tuple[float, int]] = []                 # (unix time, kernel RSS): memory per cell
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc))
            for child in proc.children(recursive=True):
                try:                      # a child may exit (or be a zombie) between listing and reading it
                    if "ipykernel" in " ".join(child.cmdline()):
                        rss = child.memory_info().rss
                        kernel_peak = max(kernel_peak, rss)
                        samples.append((time.time(), rss))
                except psutil.Error:
                    pass
            if timeout_s is not None and time.perf_counter() - start > timeout_s:
                for child in proc.children(recursive=True):
                    child.kill()
                proc.kill()
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        claims = [json.loads(line) for line in claims_log.read_text().splitlines()] if claims_log.exists() else []
        cells = _cell_costs(Path(tmp) / "out.ipynb", samples) if slowest else None
        error = None
        if proc.returncode != 0 and not (timeout_s is not None and wall > timeout_s):
            error = proc.stderr.read().decode()[-2000:]
            if not record_error:
                raise RuntimeError(error)
    result = {"notebook": path.name, **{k: v for k, v in parameters.items() if k != "device"},
              "wall_s": round(wall, 1), "peak_rss_tree_mb": round(peak / 2**20),
              "peak_rss_kernel_mb": round(kernel_peak / 2**20),
              "claims_held": f"{sum(c['holds'] for c in claims)} of {len(claims)}"}
    if timeout_s is not None and wall > timeout_s:
        result["stopped_after_s"] = timeout_s
    if cells is not None:
        result["slowest_cells"] = sorted(cells, key=lambda c: -c["seconds"])[:slowest]
        result["most_memory_cells"] = sorted(cells, key=lambda c: -c["peak_rss_kernel_mb"])[:slowest]
        if "stopped_after_s" in result and (running := [c for c in cells if c["running"]]):
            result["stopped_in_cell"] = running[0]
    if error is not None:
        result["error"] = error
    failed = [f"{c['text']} ({c['shown']})" for c in claims if not c["holds"]]
    if failed:
        result["claims_failed"] = failed
    return result


def _cell_costs(executed: Path, samples: list[tuple[float, int]]) -> list[dict]:
    """Each code cell that ran in a notebook papermill executed: its index in the solution notebook (counting
    every cell, not papermill's injected parameters), first line, seconds (papermill's), the kernel's peak RSS
    while it ran (from ``samples``, (unix time, bytes) taken every 0.2 s; 0 when none fell inside) and whether
    it was still running (a notebook stopped at its time limit: timed up to the last sample)."""
    from datetime import datetime, timezone

    def unix(stamp: str) -> float:                            # papermill writes UTC, with or without "Z"
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()

    import nbformat

    if not executed.exists():
        return []
    cells = [c for c in nbformat.read(executed, as_version=4).cells
             if "injected-parameters" not in c.metadata.get("tags", [])]
    costs = []
    for i, c in enumerate(cells):
        timing = c.metadata.get("papermill", {})
        running = timing.get("status") == "running" and timing.get("start_time") is not None
        if c.cell_type != "code" or (timing.get("duration") is None and not running):
            continue
        start = unix(timing["start_time"])
        end = start + timing["duration"] if not running else (samples[-1][0] if samples else start)
        inside = [rss for t, rss in samples if start <= t <= end + 0.2]
        costs.append({"cell": i, "first_line": (c.source.strip().splitlines() or [""])[0][:100],
                      "seconds": round(end - start, 1), "peak_rss_kernel_mb": round(max(inside, default=0) / 2**20),
                      "running": running})
    return costs


def batched_vs_loop(steps: int = 1_000) -> dict:
    """The 5 -> 2 sweep (10 settings): one batched model vs ten single-instance models in turn."""
    p = 0.05 ** torch.linspace(0, 1, 10)
    importance = 0.9 ** torch.arange(5.0)
    config = tms.TrainConfig(steps=steps, progress=False)
    start = time.perf_counter()
    model = tms.ToyModel(5, 2, p, importance)
    tms.train(model, config)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    tms.train_instances_in_a_loop(5, 2, p, importance, config)
    looped = time.perf_counter() - start
    return {"steps": steps, "instances": 10, "batched_s": round(batched, 2), "looped_s": round(looped, 2),
            "speedup": round(looped / batched, 1)}


def widget_latency(repeats: int = 3) -> dict:
    """Seconds for one retrain of the chapter 03 explorer (after a warm-up call)."""
    train_small(0.1, 0.9)
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        train_small(0.05 + 0.1 * k, 0.9)
        times.append(time.perf_counter() - start)
    return {"widget_retrain_s_max": round(max(times), 2), "widget_retrain_s_mean": round(sum(times) / repeats, 2)}


ZOO_LOAD_SCRIPT = """
import json, time
start = time.perf_counter()
from mi_course import models
out = {"import_s": time.perf_counter() - start, "load_s": {}}
for name in models.shipped():
    start = time.perf_counter()
    models.load(name, device="cpu")
    out["load_s"][name] = time.perf_counter() - start
out["hub_offline_failure_s"] = None  # measured only offline (online, load would download GPT-2)
start = time.perf_counter()
if not models.hub_reachable():
    try:
        models.load("gpt2-small", device="cpu")
    except models.HubUnavailableError:
        out["hub_offline_failure_s"] = time.perf_counter() - start
print(json.dumps(out))
"""


def zoo_loading() -> dict:
    """Seconds to load each shipped model (first load in a fresh process, checksums
    verified), and, when the hub cannot be reached, for a hub name to fail
    (HF_HUB_OFFLINE unset, so the time includes the reachability probe)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", ZOO_LOAD_SCRIPT], capture_output=True, text=True,
                          check=True, env=env)
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in raw.items() if k != "load_s"}
    return {**rounded, "load_s": {k: round(v, 2) for k, v in raw["load_s"].items()}}


def _fact_pairs(n_prompts: int, model_name: str = "gelu-3l-facts"):
    """A model (a shipped or hub name or a local Hugging Face folder), ``n_prompts`` clean/corrupted pairs of
    chapter 06's fact prompts in its tokenizer (different sports), the clean cache and the mean logit
    difference as the metric."""
    from mi_course import models
    from mi_course.fact_recall import pairs, patching

    model = models.load(model_name, device="cpu")
    P = pairs.make_pairs(pairs.fact_prompts(model), n_prompts)
    with torch.no_grad():
        _, cache = model.run_with_cache(P.clean)

    def metric(logits):
        return patching.logit_diff(logits, P.answer, P.wrong).mean()

    return model, P, cache, metric


def patching_sweeps(n_prompts: int = 32, repeats: int = 3) -> dict:
    """Chapter 06's batched exact patching against TransformerLens's ``patching`` module (one sweep at a
    time): seconds for the residual-stream, MLP and head sweeps on the fact model, and the largest difference."""
    from transformer_lens import patching as tl_patching

    from mi_course.fact_recall import patching

    model, P, cache, metric = _fact_pairs(n_prompts)
    clean, corrupt = P.clean, P.corrupt
    L, T, H = model.cfg.n_layers, clean.shape[1], model.cfg.n_heads
    out = {}
    for kind, sites, theirs in (("resid", patching.residual_sites(L, T), tl_patching.get_act_patch_resid_pre),
                                ("mlp", patching.mlp_sites(L, T), tl_patching.get_act_patch_mlp_out),
                                ("heads", patching.head_sites(L, H), tl_patching.get_act_patch_attn_head_out_all_pos)):
        ours_s, theirs_s = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            mine = patching.patch_sweep(model, corrupt, cache, sites, metric)
            ours_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            ref = theirs(model, corrupt, cache, metric)
            theirs_s.append(time.perf_counter() - start)
        out[kind] = {"sites": len(sites), "ours_s": round(min(ours_s), 3), "transformer_lens_s": round(min(theirs_s), 3),
                     "speedup": round(min(theirs_s) / min(ours_s), 1),
                     "max_abs_difference": float((mine.view_as(ref) - ref.float().cpu()).abs().max())}
    return out


def atp_vs_exact(n_prompts: int = 32, repeats: int = 5) -> dict:
    """Attribution patching against exact patching of every head at every position, on the fact model:
    seconds for each (and for TransformerLens's one-forward-per-patch sweep), and how well AtP ranks the
    heads (Spearman, of the effects and of their sizes) per (head, position) node and per head (AtP summed over
    positions against patching the head at every position)."""
    return _atp_comparison(*_fact_pairs(n_prompts), repeats=repeats)


def _best_of(f, repeats: int):
    """(f's value, the fewest seconds one of ``repeats`` calls took)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = f()
        seconds.append(time.perf_counter() - start)
    return value, min(seconds)


def _atp_comparison(model, P, cache, metric, repeats: int, exact_repeats: int | None = None,
                    tl_layers: list[int] | None = None) -> dict:
    """:func:`atp_vs_exact` on any model and pairs (see :func:`_fact_pairs`). ``exact_repeats``: calls of our
    exact sweep and of TransformerLens's (default ``repeats``). ``tl_layers``: TransformerLens's sweep only
    patches the heads of these layers (every position), its time extrapolated to all nodes in proportion
    (each of its patches is one full forward pass, whatever the layer); None: all layers."""
    from mi_course.fact_recall import atp, patching

    clean, corrupt = P.clean, P.corrupt
    exact_repeats = exact_repeats or repeats
    with torch.no_grad():
        baseline = metric(model(corrupt))
    L, T, H = model.cfg.n_layers, clean.shape[1], model.cfg.n_heads
    sites = patching.head_position_sites(L, H, T)
    estimate, atp_s = _best_of(lambda: atp.head_position_attribution(model, cache, corrupt, metric), repeats)
    exact, exact_s = _best_of(lambda: patching.patch_sweep(model, corrupt, cache, sites, metric).view(L, T, H)
                              - baseline, exact_repeats)
    reference, tl_s = _best_of(lambda: _transformer_lens_head_positions(model, corrupt, cache, metric, tl_layers),
                               exact_repeats)
    tl_layers = list(range(L)) if tl_layers is None else tl_layers
    tl_all_s = tl_s * L / len(tl_layers)
    heads = patching.patch_sweep(model, corrupt, cache, patching.head_sites(L, H), metric).view(L, H) - baseline
    out = {"nodes": len(sites), **_rank_agreement(estimate, exact, heads),
           "exact_max_abs_difference_from_transformer_lens":
               float((exact[tl_layers] + baseline - reference.float()).abs().max()),
           "exact_s": round(exact_s, 4), "atp_s": round(atp_s, 4), "transformer_lens_exact_s": round(tl_all_s, 4),
           "exact_over_atp": round(exact_s / atp_s, 1), "transformer_lens_exact_over_atp": round(tl_all_s / atp_s, 1)}
    if len(tl_layers) < L:
        out["transformer_lens_exact_s_is"] = (f"extrapolated: {tl_s:.1f} s measured for the {len(tl_layers) * T * H} "
                                              f"nodes of layers {tl_layers}, times {L}/{len(tl_layers)}")
    return out


def _transformer_lens_head_positions(model, corrupt, cache, metric, layers: list[int] | None):
    """TransformerLens's head-by-position sweep (one forward pass per node) over ``layers`` (None: all).
    -> [len(layers), pos, heads]"""
    from itertools import product

    import pandas as pd
    from transformer_lens import patching as tl_patching

    if layers is None:
        return tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupt, cache, metric)
    T, H = corrupt.shape[1], model.cfg.n_heads
    index = pd.DataFrame(list(product(layers, range(T), range(H))), columns=["layer", "pos", "head"])
    flat = tl_patching.generic_activation_patch(model, corrupt, cache, metric,
                                                tl_patching.layer_pos_head_vector_patch_setter, "z", index_df=index)
    return flat.view(len(layers), T, H)


def _rank_agreement(estimate, exact, heads) -> dict:
    """How well AtP's ``estimate`` ranks the nodes that ``exact`` patching measured (both [layers, pos, heads],
    as effects on the metric), and per head (AtP summed over positions against ``heads``, [layers, heads],
    each head patched at every position): Spearman of the effects and of their sizes."""
    from mi_course.fact_recall import atp

    # a node whose patch cannot reach the metric (before the names, or in the last layer before the last
    # position) is exactly 0 in both: the second Spearman leaves out those ties
    moved = exact != 0
    return {"nodes_that_change_anything": int(moved.sum()),
            "spearman_head_position_nodes": round(atp.spearman(estimate, exact), 3),
            "spearman_nodes_that_change_anything": round(atp.spearman(estimate[moved], exact[moved]), 3),
            "spearman_abs_nodes_that_change_anything": round(atp.spearman(estimate[moved].abs(), exact[moved].abs()), 3),
            "spearman_heads_summed_over_positions": round(atp.spearman(estimate.sum(1), heads), 3),
            "spearman_abs_heads_summed_over_positions": round(atp.spearman(estimate.sum(1).abs(), heads.abs()), 3)}


# ----------------------------------------------------------------------------
# GPT-2-small shape (issue 25): the language-model chapters and AtP on a random GPT-2 built offline
# ----------------------------------------------------------------------------

GPT2_CHAPTER_TIMEOUT_S = 1800         # a chapter past 30 minutes is stopped and reported so (at this shape on one
                                      # CPU thread every forward pass of 16 rows x 101 tokens takes ~11 s)
GPT2_ADDRESS_SPACE = 16 * 2**30       # a chapter's kernel may not map more (a 50,257² float matrix is 10 GB)


def has_model_parameter(path: Path) -> bool:
    """Does the notebook's parameters cell have ``model`` (a language-model chapter, which runs on any model)?"""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return any(line.startswith("model =") for line in cell.source.splitlines())


def gpt2_chapters(folder: Path, chapters: str = "[0-9][0-9]_*", timeout_s: float = GPT2_CHAPTER_TIMEOUT_S) -> list:
    """Each language-model chapter (matching the glob ``chapters``) at size="small" on the model in ``folder``:
    wall time, the kernel's peak memory, its 3 slowest cells and the 3 with the highest peak memory, and its error
    if it failed (not raised)."""
    runs = []
    for nb in sorted((REPO / "solutions").glob(f"{chapters}.ipynb")):
        if has_model_parameter(nb):
            runs.append({**notebook_run(nb, {"size": "small", "model": str(folder)}, timeout_s=timeout_s, slowest=3,
                                        record_error=True, address_space_bytes=GPT2_ADDRESS_SPACE),
                         "commit": _commit()})
            runs[-1]["model"] = "the GPT-2-shaped folder"       # not the temporary path
            _shorten_claims(runs[-1])
            print("GPT-2 shape:", runs[-1], flush=True)
    return runs


def _shorten_claims(run: dict, chars: int = 300) -> None:
    """Cut each failed claim's text to ``chars`` characters (a claim that shows a list of 50,257 words, say)."""
    run["claims_failed"] = [c if len(c) <= chars else c[:chars] + "…" for c in run.get("claims_failed", [])]
    if not run["claims_failed"]:
        del run["claims_failed"]


def gpt2_atp(folder: Path, n_prompts: int = 8, tl_layers: list[int] | None = None) -> dict:
    """:func:`atp_vs_exact` on the model in ``folder`` (chapter 06's fact prompts in its tokenizer): AtP best of
    3, our exact sweep and TransformerLens's once each; TransformerLens only on ``tl_layers`` (default: the
    middle layer), its time extrapolated to all layers."""
    model, P, cache, metric = _fact_pairs(n_prompts, str(folder))
    tl_layers = [model.cfg.n_layers // 2] if tl_layers is None else tl_layers
    result = _atp_comparison(model, P, cache, metric, repeats=3, exact_repeats=1, tl_layers=tl_layers)
    return {"prompts": n_prompts, "positions": int(P.clean.shape[1]), **result, "commit": _commit()}


def gpt2_shape(parts: set[str], chapters: str, folder: Path | None, n_prompts: int, previous: dict) -> dict:
    """The "gpt2_shape" section: the model's shape and ``parts`` ("chapters", "atp") rerun on it, built in
    ``folder`` (reused if a model is already there; None: a temporary folder). What is not rerun is kept from
    ``previous`` (each entry has its commit)."""
    import gpt2_shape as shape

    with tempfile.TemporaryDirectory(prefix="gpt2-shape-") as tmp:
        folder = Path(folder or tmp)
        start = time.perf_counter()
        sizes = shape.saved_shape(folder) if (folder / "config.json").exists() else shape.make_gpt2(folder)
        section = {**previous, "model": {**sizes, "weights": "random (Hugging Face's GPT-2 initialiser, seed 0)",
                                         "tokenizer": "the world's words, the famous athletes' names, filler tokens"},
                   "machine": _machine(), "build_or_reuse_s": round(time.perf_counter() - start, 1)}
        print("GPT-2 shape model:", section["model"], flush=True)
        if "chapters" in parts:
            rerun = gpt2_chapters(folder, chapters)
            kept = [c for c in section.get("chapters", []) if c["notebook"] not in {r["notebook"] for r in rerun}]
            for c in kept:
                _shorten_claims(c)
            section["chapters"] = sorted(kept + rerun, key=lambda c: c["notebook"])
        if "atp" in parts:
            section["atp_vs_exact"] = gpt2_atp(folder, n_prompts)
            print("GPT-2 shape AtP vs exact:", section["atp_vs_exact"], flush=True)
    return section


def _machine() -> dict:
    """The CPU (model name, cores) and torch's threads and version."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpu": cpu, "cpus": psutil.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_kernels": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "memory_gb": round(psutil.virtual_memory().total / 2**30)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-full", action="store_true", help="do not run the chapters at size='full'")
    parser.add_argument("--full-timeout", type=float, default=1800, help="seconds per chapter at size='full'")
    parser.add_argument("--full-only", action="store_true",
                        help="only run the chapters at size='full'; the other sections of results.json are kept")
    parser.add_argument("--chapters", default="[0-9][0-9]_*",
                        help="with --full-only or --gpt2-only: which chapters to rerun (a glob; the others' "
                             "entries are kept)")
    parser.add_argument("--skip-gpt2", action="store_true", help="do not run the GPT-2-small-shaped section")
    parser.add_argument("--gpt2-only", action="store_true",
                        help="only run the GPT-2-small-shaped section; the other sections of results.json are kept")
    parser.add_argument("--gpt2-parts", default="chapters,atp",
                        help="with --gpt2-only: 'chapters', 'atp' or both (the others' entries are kept); "
                             "--chapters picks the chapters")
    parser.add_argument("--gpt2-folder", type=Path, default=None,
                        help="build the GPT-2-shaped model there, or reuse the one there (default: a temporary folder)")
    parser.add_argument("--gpt2-prompts", type=int, default=8, help="fact prompts for AtP vs exact at GPT-2 shape")
    parser.add_argument("--skip-cage", action="store_true", help="do not run the notebooks in the 2 GiB memory cage")
    parser.add_argument("--cage-only", action="store_true",
                        help="only run the notebooks in the 2 GiB memory cage (benchmarks/memory_cage.py); "
                             "the other sections of results.json are kept")
    parser.add_argument("--cage-notebooks", default="*",
                        help="with --cage-only: which notebooks to rerun in the cage (a glob, e.g. '0[1-3]_*' or 'P*'; "
                             "the others' entries are kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = REPO / "benchmarks" / "results.json"
    if args.gpt2_only:
        before = json.loads(out.read_text()).get("gpt2_shape", {}) if out.exists() else {}
        section = gpt2_shape(set(args.gpt2_parts.split(",")), args.chapters, args.gpt2_folder, args.gpt2_prompts, before)
        results = json.loads(out.read_text()) if out.exists() else {}   # re-read: other sections may have been written since
        results["gpt2_shape"] = section
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    if args.cage_only:
        caged = memory_cage.memory_cage(args.cage_notebooks)
        results = json.loads(out.read_text()) if out.exists() else {}          # read after the run: the newest
        results["memory_cage"] = memory_cage.merged(results.get("memory_cage", {}), caged, _commit())
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    if args.full_only:
        results = json.loads(out.read_text()) if out.exists() else {}
        rerun = full_size_claims(args.full_timeout, args.chapters)
        before = results.get("claims_at_full_size", {})
        kept = [{"commit": before.get("commit", "?"), **c} for c in before.get("chapters", [])
                if c["notebook"] not in {r["notebook"] for r in rerun["chapters"]}]
        rerun["chapters"] = sorted(kept + rerun["chapters"], key=lambda c: c["notebook"])
        results["claims_at_full_size"] = rerun
        out.write_text(json.dumps(results, indent=2) + "\n")
        return
    results = {"machine": {"cpus": psutil.cpu_count(), "python": platform.python_version(),
                           "torch": torch.__version__},
               "commit": _commit(),
               "load_average_at_start": [round(x, 2) for x in psutil.getloadavg()]}
    results["batched_vs_loop"] = batched_vs_loop()
    print("batched vs loop:", results["batched_vs_loop"], flush=True)
    results["widget"] = widget_latency()
    print("widget:", results["widget"], flush=True)
    results["zoo_loading"] = zoo_loading()
    print("zoo loading:", results["zoo_loading"], flush=True)
    results["patching_sweeps"] = {f"{n}_prompts": patching_sweeps(n) for n in (8, 32)}
    print("patching sweeps:", results["patching_sweeps"], flush=True)
    results["atp_vs_exact"] = atp_vs_exact()
    print("AtP vs exact:", results["atp_vs_exact"], flush=True)
    if not args.skip_notebooks:
        results["notebooks"] = []
        for nb in sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb")):
            results["notebooks"].append(notebook_run(nb))
            print("notebook:", results["notebooks"][-1], flush=True)
        results["puzzles"] = []
        for nb in sorted((REPO / "solutions" / "puzzles").glob("P*.ipynb")):
            results["puzzles"].append(notebook_run(nb))
            print("puzzle:", results["puzzles"][-1], flush=True)
    if not args.skip_notebooks and not args.skip_full:
        results["claims_at_full_size"] = full_size_claims(args.full_timeout)
    elif out.exists() and "claims_at_full_size" in (previous := json.loads(out.read_text())):
        results["claims_at_full_size"] = previous["claims_at_full_size"]       # kept from its own run (see its commit)
    previous = json.loads(out.read_text()) if out.exists() else {}
    if not args.skip_notebooks and not args.skip_cage:
        results["memory_cage"] = memory_cage.merged({}, memory_cage.memory_cage(), results["commit"])
    elif "memory_cage" in previous:
        results["memory_cage"] = previous["memory_cage"]                       # kept from its own run (see its commit)
    if not args.skip_gpt2:                  # its chapters are notebooks: --skip-notebooks keeps their previous entries
        parts = {"atp"} if args.skip_notebooks else {"chapters", "atp"}
        results["gpt2_shape"] = gpt2_shape(parts, "[0-9][0-9]_*", args.gpt2_folder, args.gpt2_prompts,
                                           previous.get("gpt2_shape", {}))
    elif "gpt2_shape" in previous:
        results["gpt2_shape"] = previous["gpt2_shape"]                         # kept from its own run (see its commits)
    out.write_text(json.dumps(results, indent=2) + "\n")


def _commit() -> str:
    """The commit the benchmark ran at (with "+changes" when the work tree differs from it)."""
    import subprocess

    run = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
    changed = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results.json")
    return run("rev-parse", "--short", "HEAD") + ("+changes" if changed else "")


def full_size_claims(timeout_s: float, chapters: str = "[0-9][0-9]_*") -> dict:
    """Which of each chapter's claims hold at size="full" (more samples, longer training): reported, not asserted.
    Each chapter's entry records the commit it ran at."""
    report = {"load_average_at_start": [round(x, 2) for x in psutil.getloadavg()], "chapters": []}
    for nb in sorted((REPO / "solutions").glob(f"{chapters}.ipynb")):
        report["chapters"].append({**notebook_run(nb, {"size": "full"}, timeout_s=timeout_s), "commit": _commit()})
        print("full size:", report["chapters"][-1], flush=True)
    return report


if __name__ == "__main__":
    main()
