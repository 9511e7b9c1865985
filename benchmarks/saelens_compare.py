"""Our SAE trainer and file format against the real SAELens, on the same stored activations.

Run with `make bench-saelens`: it makes a separate venv, benchmarks/.venv-saelens, with
torch==2.13.0 (CPU) and sae-lens==6.54.12 (sae-lens needs TransformerLens < 4, so it can never
share .venv), then runs `.venv/bin/python benchmarks/saelens_compare.py`. It is optional and
not part of `make test` or `make bench`; without that venv this script says how to make it and
exits with status 2. Results go to benchmarks/saelens_results.json; they are reported, never asserted.

What it does, all on one CPU thread:

1. collects gelu-3l-facts's ``blocks.0.hook_resid_post`` on the zoo world's training text (the
   rows the shipped SAE ``sae-facts-l0`` trains on) and on held-out documents, and stores them as
   safetensors in a work folder, with the batch order both trainers will use;
2. trains our SAE (mi_course.sae.training.train_sae) on them, times it, measures variance
   explained and L0 on the held-out slice, and saves it with ``save_saelens``;
3. runs benchmarks/saelens_side.py with the sae-lens venv's python: it loads our SAE with SAELens's
   ``SAE.load_from_disk``, trains a SAELens ``StandardTrainingSAE`` with its ``SAETrainer`` on the same
   activations from the same initial weights, with the same width, batch order, lr and sparsity
   coefficient, times it, and saves it with SAELens's ``save_inference_model``;
4. reads SAELens's SAE back with ``load_saelens`` and checks the feature activations match in
   both directions (max abs diff), then writes the comparison;
5. (``--ablations``, on by default; ``--no-ablations`` skips it) trains each side once more with
   gradient clipping switched: ours with SAELens's ``clip_grad_norm_(1.0)`` added, SAELens's without.
   With the default settings each training takes about 40-50 s, the whole run about 3 minutes.

The remaining differences between the two objectives and optimisers (SAELens's decoder-norm-weighted
L1 with free decoder norms against our unit-norm rows, its fixed gradient clipping, ...) are listed
under "objective_differences" in the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
SAELENS_VENV = REPO / "benchmarks" / ".venv-saelens"
SAELENS_VERSION = "6.54.12"         # the version these results were made with (Makefile: bench-saelens)
MODEL, HOOK = "gelu-3l-facts", "blocks.0.hook_resid_post"

HOW_TO_MAKE_THE_VENV = f"""\
The sae-lens venv ({SAELENS_VENV.relative_to(REPO)}) is missing? Make it with `make bench-saelens`, or by hand:
    python3 -m venv benchmarks/.venv-saelens
    benchmarks/.venv-saelens/bin/pip install torch==2.13.0
    benchmarks/.venv-saelens/bin/pip install torch==2.13.0 sae-lens=={SAELENS_VERSION}
(set SAELENS_PYTHON to use another interpreter that has sae-lens)."""

OBJECTIVE_DIFFERENCES = [
    "Sparsity penalty and decoder norms: ours is l1 * sum_i f_i with decoder rows held at unit norm (the "
    "decoder gradient's component along each row is removed, and rows are renormalised after every step). "
    "SAELens 6.x's standard SAE penalises l1 * sum_i f_i * ||W_dec_i|| and leaves the decoder norms free. "
    "Both define the same function of the SAE's folded (unit-norm) form, so the minima are the same, but "
    "Adam walks a different parametrisation (SAELens can trade a row's norm against its encoder scale), so "
    "the paths differ. SAELens has no unit-norm option for this architecture in 6.x (normalize_sae_decoder "
    "is gone; 6.54.12 has no such option), so this difference stays.",
    "Gradient clipping: SAELens's SAETrainer._train_step always calls clip_grad_norm_(params, 1.0) (hard-coded, "
    "not a config option); ours does not clip. It leaves the objective alone but changes how fast Adam "
    "minimises it: the gradient norm falls by two to three orders of magnitude during training (see "
    "ablations.ours_with_clipping.grad_norm_before_clipping), and Adam's second-moment estimate (beta2=0.999, "
    "a memory of ~1000 steps) remembers the early large gradients, so unclipped steps shrink far below lr. "
    "Clipped gradients have norm 1 at every step, so the steps stay near lr. The ablations switch it on each side.",
    "Removed by configuration (same in both): MSE summed over d_in and averaged over the batch (SAELens's "
    "training_forward_pass does the same); L1 coefficient applied per token and averaged over the batch; "
    "l1_warm_up_steps=0; lr constant (lr_scheduler_name='constant', no warm-up, no decay); Adam betas "
    "(0.9, 0.999); no activation normalisation (normalize_activations='none'); b_dec subtracted before the "
    "encoder (apply_b_dec_to_input=True); no dead-feature remedy on either side (our resample_every=0, "
    "ghost_grads=False; SAELens's standard SAE has none); no autocast; float32.",
    "Initialisation removed as a difference: SAELens's StandardTrainingSAE is built with decoder_init_norm=1.0 "
    "and then loaded with the exact initial weights of our SAE (unit-norm random decoder rows, W_enc = W_dec^T, "
    "zero biases). SAELens 6.x has no geometric-median b_dec init in this path (b_dec starts at zero in both).",
    "Data removed as a difference: both trainers get the same batches in the same order (our train_sae's "
    "shuffling, replayed from a stored index table; checked against mi_course.sae.training._batches).",
    "Bookkeeping that differs but does not touch the objective: SAELens counts per-feature firing frequency "
    "every step (two sums over the [batch, d_sae] activations) and steps an LR scheduler and a coefficient "
    "scheduler; ours tracks steps-since-fired ((f > 0).any(0)) and logs loss, MSE, L0 every log_every steps.",
]


def saelens_python() -> Path:
    return Path(os.environ.get("SAELENS_PYTHON", SAELENS_VENV / "bin" / "python")).absolute()   # not resolve():
    # a venv's python is a symlink to the base interpreter, and following it would leave the venv


def batch_order(n: int, steps: int, batch_size: int, seed: int) -> torch.Tensor:
    """The row indices of every batch train_sae draws from a stored tensor of ``n`` rows: [steps, batch].

    This is mi_course.sae.training._batches's shuffling (a fresh randperm per epoch, the last partial
    batch of an epoch dropped) with the generator train_sae seeds, written out so both trainers use it.
    """
    gen = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < steps:
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            out.append(perm[start:start + batch_size])
            if len(out) == steps:
                break
    return torch.stack(out)


def collect(train_rows: int, held_out_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    from mi_course.sae.recipes import HELD_OUT_FIRST_DOC, RECIPES, _world
    from mi_course.sae.activations import collect_activations
    from mi_course.zoo import models
    from mi_course.zoo.world import token_rows

    model = models.load(MODEL)
    world = _world(RECIPES["sae-facts-l0"])         # the world gelu-3l-facts was trained on
    train_tokens = torch.from_numpy(token_rows(world, train_rows, model.cfg.n_ctx, 0)[0])
    held_tokens = torch.from_numpy(token_rows(world, held_out_rows, model.cfg.n_ctx, HELD_OUT_FIRST_DOC)[0])
    return collect_activations(model, train_tokens, HOOK), collect_activations(model, held_tokens, HOOK)


def held_out_metrics(sae, x: torch.Tensor, l1_coeff: float) -> dict:
    """Variance explained, L0 and the objective both trainers minimise, with mi_course's functions.

    The objective is written with the decoder norms, ``mse + l1 * mean(sum_i f_i ||W_dec_i||)``: for our
    unit-norm rows that is our loss, and for SAELens's free rows it is SAELens's loss.
    """
    from mi_course.sae.model import l0, variance_explained

    with torch.no_grad():
        f, x_hat = sae(x)
        mse = ((x - x_hat) ** 2).sum(-1).mean()
        norms = sae.W_dec.norm(dim=-1)
        sparsity = (f * norms).sum(-1).mean()
        return {"variance_explained": variance_explained(x, x_hat).item(), "l0": l0(f).item(),
                "mse": mse.item(), "weighted_l1": sparsity.item(), "objective": (mse + l1_coeff * sparsity).item(),
                "dead_on_held_out": int(((f > 0).sum(0) == 0).sum()),
                "W_dec_row_norm": {"min": norms.min().item(), "mean": norms.mean().item(), "max": norms.max().item()}}


def rel(a: float, b: float) -> float:
    return (a - b) / abs(b) if b else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d-sae", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l1-coeff", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=450)
    p.add_argument("--train-rows", type=int, default=1536, help="rows of n_ctx tokens for training (BOS dropped)")
    p.add_argument("--held-out-rows", type=int, default=64)
    p.add_argument("--probe", type=int, default=2048, help="held-out tokens for the loading checks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep the work files here (default: a temp dir)")
    p.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True,
                   help="also train both with gradient clipping switched (two more trainings)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "saelens_results.json")
    args = p.parse_args()

    py = saelens_python()
    if not py.exists():
        print(f"No python for sae-lens at {py}.", HOW_TO_MAKE_THE_VENV, sep="\n", file=sys.stderr)
        return 2

    torch.set_num_threads(1)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, py, args.workdir)
    with tempfile.TemporaryDirectory(prefix="saelens-compare-") as tmp:
        return run(args, py, Path(tmp))


def train_ours(args, train: torch.Tensor, order: torch.Tensor, held_out: torch.Tensor, clip: bool = False):
    """Our trainer from the saved initial weights, fed ``train[order[k]]`` at step k; -> (sae, report).

    ``clip`` (an ablation, off for the main comparison) clips the gradient norm to 1 before every Adam
    step, as SAELens's trainer does, through a global optimizer pre-step hook: mi_course is not changed.
    """
    from mi_course.sae.model import SAE
    from mi_course.sae.training import SAETrainConfig, train_sae

    sae = SAE(train.shape[1], args.d_sae, seed=args.seed)
    stamps: list[float] = []

    def sampler(batch_size: int, gen: torch.Generator) -> torch.Tensor:
        stamps.append(time.perf_counter())
        return train[order[len(stamps) - 1]]

    handle, norms = None, []
    if clip:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        def clip_before_step(optimizer, args_, kwargs_):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            norms.append(torch.nn.utils.clip_grad_norm_(params, 1.0))

        handle = register_optimizer_step_pre_hook(clip_before_step)
    config = SAETrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, l1_coeff=args.l1_coeff,
                            seed=args.seed, resample_every=0, ghost_grads=False, progress=False)
    try:
        start = time.perf_counter()
        history = train_sae(sae, sampler, config)
        seconds = time.perf_counter() - start
    finally:
        if handle is not None:
            handle.remove()
    stamps.append(time.perf_counter())
    step = statistics.median(b - a for a, b in zip(stamps[:-1], stamps[1:]))
    rate = args.steps * args.batch_size / seconds
    extra = {}
    if norms:
        at = sorted({0, 10, 50, 100, args.steps // 2, args.steps - 1})
        extra["grad_norm_before_clipping"] = {str(k): round(norms[k].item(), 2) for k in at if k < len(norms)}
        extra["steps_clipped"] = int(sum(bool(n > 1.0) for n in norms))
    return sae, {"trainer": "mi_course.sae.training.train_sae" + (" + clip_grad_norm_(1.0) hook" if clip else ""),
                 "seconds": round(seconds, 2), "acts_per_s": round(rate),
                 "median_step_s": round(step, 5), "acts_per_s_median_step": round(args.batch_size / step),
                 "final_train_loss": history["loss"][-1].item(),
                 "held_out": held_out_metrics(sae, held_out, args.l1_coeff), **extra}


def train_saelens(args, py: Path, work: Path, tag: str, held_out: torch.Tensor, clip: bool = True):
    """saelens_side.py in the sae-lens venv, writing into work/tag; -> (side results, side tensors, report)."""
    from mi_course.sae.saelens_format import load_saelens

    run_dir = work / tag
    run_dir.mkdir(exist_ok=True)
    (run_dir / "side_config.json").write_text(json.dumps({
        "d_sae": args.d_sae, "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
        "l1_coeff": args.l1_coeff, "model_name": MODEL, "hook_name": HOOK, "clip_grad_norm": clip}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([str(py), str(REPO / "benchmarks" / "saelens_side.py"), str(work), str(run_dir)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-6000:], sep="\n", file=sys.stderr)
        raise RuntimeError("saelens_side.py failed")
    side = json.loads((run_dir / "side_results.json").read_text())
    tensors = load_file(str(run_dir / "side_out.safetensors"))
    theirs, theirs_cfg = load_saelens(run_dir / "saelens_sae")
    report = {"trainer": "sae_lens SAETrainer + StandardTrainingSAE, fed the stored activations"
                         + ("" if clip else " (its clip_grad_norm_ patched out)"),
              "seconds": round(side["train"]["seconds"], 2), "acts_per_s": round(side["train"]["acts_per_s"]),
              "median_step_s": round(side["train"]["median_step_s"], 5),
              "acts_per_s_median_step": round(side["train"]["acts_per_s_median_step"]),
              "held_out_by_saelens": side["held_out"],
              "held_out": held_out_metrics(theirs, held_out, args.l1_coeff)}
    return side, tensors, (theirs, theirs_cfg), report


def compare(ours: dict, theirs: dict) -> dict:
    a, b = ours["held_out"], theirs["held_out"]
    return {"speed_ratio_ours_over_saelens": round(ours["acts_per_s"] / theirs["acts_per_s"], 3),
            "speed_ratio_median_step": round(theirs["median_step_s"] / ours["median_step_s"], 3),
            "relative_difference_ours_vs_saelens": {k: round(rel(a[k], b[k]), 4)
                                                    for k in ("variance_explained", "l0", "mse", "objective")}}


def run(args, py: Path, work: Path) -> int:
    from mi_course.sae.model import SAE
    from mi_course.sae.saelens_format import save_saelens
    from mi_course.sae.training import _batches

    # 1. stored activations, the batch order, the initial weights
    start = time.perf_counter()
    train, held_out = collect(args.train_rows, args.held_out_rows)
    collect_s = time.perf_counter() - start
    probe = held_out[:args.probe].clone()
    order = batch_order(train.shape[0], args.steps, args.batch_size, args.seed)
    replay = _batches(train, args.batch_size, torch.Generator().manual_seed(args.seed))
    epoch = train.shape[0] // args.batch_size
    for k in range(min(args.steps, epoch + 2)):         # through the first epoch boundary
        assert torch.equal(next(replay), train[order[k]]), f"batch {k} differs from train_sae's"
    save_file({"train": train, "held_out": held_out, "probe": probe, "order": order}, str(work / "data.safetensors"))
    init = SAE(train.shape[1], args.d_sae, seed=args.seed)      # train_ours builds the same one
    save_file({k: v.detach().clone().contiguous() for k, v in init.state_dict().items()}, str(work / "init.safetensors"))

    # 2. our trainer
    sae, ours = train_ours(args, train, order, held_out)
    save_saelens(sae, work / "ours", MODEL, HOOK)
    with torch.no_grad():
        ours_f = sae.encode(probe)

    # 3. the SAELens side, in its own venv (it also loads our saved SAE)
    side, side_out, (theirs_sae, theirs_cfg), theirs = train_saelens(args, py, work, "main", held_out)

    # 4. loading checks, both directions
    with torch.no_grad():
        theirs_f = theirs_sae.encode(probe)
    d_ours_in_saelens = (side_out["ours_f_by_saelens"] - ours_f).abs().max().item()
    d_theirs_in_ours = (theirs_f - side_out["saelens_f"]).abs().max().item()

    ablations = {}
    if args.ablations:
        ours_clip = train_ours(args, train, order, held_out, clip=True)[1]
        theirs_no_clip = train_saelens(args, py, work, "no_clip", held_out, clip=False)[3]
        ablations = {
            "what": "gradient clipping, the one optimiser difference that can be switched: our trainer with "
                    "SAELens's clip_grad_norm_(1.0) added, and SAELens's trainer with it taken out",
            "ours_with_clipping": ours_clip, "saelens_without_clipping": theirs_no_clip,
            "ours_clip_vs_saelens_clip": compare(ours_clip, theirs),
            "ours_no_clip_vs_saelens_no_clip": compare(ours, theirs_no_clip),
        }

    results = {
        "what": "mi_course's SAE trainer and SAELens-format files against the real sae-lens, same stored activations",
        "sae_lens_version": side["sae_lens_version"],
        "saelens_venv": {"torch": side["torch_version"], "transformer_lens": side.get("transformer_lens_version"),
                         "torch_threads": side["torch_threads"]},
        "ours_env": {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                     "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "data": {"model": MODEL, "hook": HOOK, "d_in": train.shape[1], "train_tokens": train.shape[0],
                 "held_out_tokens": held_out.shape[0], "probe_tokens": probe.shape[0],
                 "train_rows": args.train_rows, "held_out_rows": args.held_out_rows,
                 "collect_seconds": round(collect_s, 1),
                 "epochs": round(args.steps * args.batch_size / train.shape[0], 2)},
        "hyperparameters": {"d_sae": args.d_sae, "batch_size": args.batch_size, "lr": args.lr,
                            "l1_coeff": args.l1_coeff, "steps": args.steps, "seed": args.seed,
                            "optimizer": "Adam(0.9, 0.999)", "lr_schedule": "constant"},
        "loading": {
            "saelens_loads_ours": {"saver": "mi_course.sae.saelens_format.save_saelens",
                                   "loader": "sae_lens.SAE.load_from_disk", "loaded_as": side["ours_loaded_as"],
                                   "max_abs_diff_feature_acts": d_ours_in_saelens,
                                   "identical": d_ours_in_saelens == 0.0},
            "ours_loads_saelens": {"saver": "sae_lens StandardTrainingSAE.save_inference_model",
                                   "loader": "mi_course.sae.saelens_format.load_saelens",
                                   "architecture": theirs_cfg.get("architecture"),
                                   "max_abs_diff_feature_acts": d_theirs_in_ours,
                                   "identical": d_theirs_in_ours == 0.0},
        },
        "ours": ours,
        "saelens": theirs,
        "comparison": {
            **compare(ours, theirs),
            "saelens_metrics_agree_with_ours": {
                "variance_explained_abs_diff": abs(side["held_out"]["variance_explained"]
                                                   - theirs["held_out"]["variance_explained"]),
                "l0_abs_diff": abs(side["held_out"]["l0"] - theirs["held_out"]["l0"])},
        },
        "ablations": ablations,
        "objective_differences": OBJECTIVE_DIFFERENCES,
        "notes": [
            "Both trainers run in turn on one CPU thread (torch.set_num_threads(1), OMP_NUM_THREADS=1) on the same "
            "stored float32 activations. acts_per_s = steps * batch / wall seconds of the whole training call; the "
            "median-step figures time each step between two batch fetches and are less sensitive to other load.",
            "SAELens is driven through its SAETrainer (the trainer its LanguageModelSAERunner uses) with a plain "
            "iterator of batches as its data provider, instead of the runner: the runner only trains from a model "
            "and a text dataset (or a cached-activations dataset in its own layout).",
            "Held-out metrics under 'held_out' are computed with mi_course's variance_explained and l0 for both SAEs "
            "(SAELens's after it was read back with load_saelens); 'held_out_by_saelens' is SAELens's own "
            "build_train_step_log_dict on the same rows, as a cross-check.",
        ],
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results[k] for k in ("sae_lens_version", "loading", "comparison")}, indent=2))
    for name, r in [("ours", ours), ("saelens", theirs)] + [(k, v) for k, v in ablations.items()
                                                             if isinstance(v, dict) and "acts_per_s" in v]:
        h = r["held_out"]
        print(f"{name:26s} {r['acts_per_s']:>8,} acts/s  VE {h['variance_explained']:.4f}  L0 {h['l0']:6.2f}  "
              f"objective {h['objective']:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
