"""Benchmarks: notebook wall time and peak memory (and which of their claims hold, at size "small" and
"full"), batched vs looped training, widget latency,
zoo loading (each shipped model, after import), the offline failure of a hub name, batched
activation patching against TransformerLens's patching module, and attribution patching against
exact patching.

Run with `make bench` (or `.venv/bin/python benchmarks/run.py [--skip-notebooks]`).
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


def notebook_run(path: Path, parameters: dict | None = None, timeout_s: float | None = None) -> dict:
    """Run one solution notebook with papermill (device=cpu, plus ``parameters``); wall time, peak RSS of the
    kernel tree, and the claims it checked (mi_course.claims), each with whether it held."""
    parameters = {"device": "cpu", **(parameters or {})}
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
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        peak = 0
        kernel_peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc))
            for child in proc.children(recursive=True):
                try:                      # a child may exit (or be a zombie) between listing and reading it
                    if "ipykernel" in " ".join(child.cmdline()):
                        kernel_peak = max(kernel_peak, child.memory_info().rss)
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
        if proc.returncode != 0 and not (timeout_s is not None and wall > timeout_s):
            raise RuntimeError(proc.stderr.read().decode()[-2000:])
    result = {"notebook": path.name, **{k: v for k, v in parameters.items() if k != "device"},
              "wall_s": round(wall, 1), "peak_rss_tree_mb": round(peak / 2**20),
              "peak_rss_kernel_mb": round(kernel_peak / 2**20),
              "claims_held": f"{sum(c['holds'] for c in claims)} of {len(claims)}"}
    if timeout_s is not None and wall > timeout_s:
        result["stopped_after_s"] = timeout_s
    failed = [f"{c['text']} ({c['shown']})" for c in claims if not c["holds"]]
    if failed:
        result["claims_failed"] = failed
    return result


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


def _fact_pairs(n_prompts: int):
    """gelu-3l-facts, ``n_prompts`` clean/corrupted pairs (different sports), the clean cache and the mean
    logit difference as the metric."""
    from mi_course import models
    from mi_course.fact_recall import pairs, patching

    model = models.load("gelu-3l-facts", device="cpu")
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
    from transformer_lens import patching as tl_patching

    from mi_course.fact_recall import atp, patching

    model, P, cache, metric = _fact_pairs(n_prompts)
    clean, corrupt = P.clean, P.corrupt
    with torch.no_grad():
        baseline = metric(model(corrupt))
    L, T, H = model.cfg.n_layers, clean.shape[1], model.cfg.n_heads
    sites = patching.head_position_sites(L, H, T)

    def best_of(f):
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            value = f()
            seconds.append(time.perf_counter() - start)
        return value, min(seconds)

    exact, exact_s = best_of(lambda: patching.patch_sweep(model, corrupt, cache, sites, metric).view(L, T, H) - baseline)
    estimate, atp_s = best_of(lambda: atp.head_position_attribution(model, cache, corrupt, metric))
    reference, tl_s = best_of(lambda: tl_patching.get_act_patch_attn_head_out_by_pos(model, corrupt, cache, metric))
    heads = patching.patch_sweep(model, corrupt, cache, patching.head_sites(L, H), metric).view(L, H) - baseline
    # a node whose patch cannot reach the metric (before the names, or in the last layer before the last
    # position) is exactly 0 in both: the second Spearman leaves out those ties
    moved = exact != 0
    return {"nodes": len(sites), "nodes_that_change_anything": int(moved.sum()),
            "exact_max_abs_difference_from_transformer_lens": float((exact + baseline - reference.float()).abs().max()),
            "exact_s": round(exact_s, 4), "atp_s": round(atp_s, 4), "transformer_lens_exact_s": round(tl_s, 4),
            "exact_over_atp": round(exact_s / atp_s, 1), "transformer_lens_exact_over_atp": round(tl_s / atp_s, 1),
            "spearman_head_position_nodes": round(atp.spearman(estimate, exact), 3),
            "spearman_nodes_that_change_anything": round(atp.spearman(estimate[moved], exact[moved]), 3),
            "spearman_abs_nodes_that_change_anything": round(atp.spearman(estimate[moved].abs(), exact[moved].abs()), 3),
            "spearman_heads_summed_over_positions": round(atp.spearman(estimate.sum(1), heads), 3),
            "spearman_abs_heads_summed_over_positions": round(atp.spearman(estimate.sum(1).abs(), heads.abs()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-full", action="store_true", help="do not run the chapters at size='full'")
    parser.add_argument("--full-timeout", type=float, default=1800, help="seconds per chapter at size='full'")
    parser.add_argument("--full-only", action="store_true",
                        help="only run the chapters at size='full'; the other sections of results.json are kept")
    parser.add_argument("--chapters", default="[0-9][0-9]_*",
                        help="with --full-only: which chapters to rerun (a glob; the others' entries are kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = REPO / "benchmarks" / "results.json"
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
