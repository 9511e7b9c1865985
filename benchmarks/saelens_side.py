"""The SAELens side of benchmarks/saelens_compare.py: run with the sae-lens venv's python, never ours.

sae-lens needs TransformerLens < 4, so it lives in a venv of its own (benchmarks/.venv-saelens, made
by `make bench-saelens`). saelens_compare.py writes a work folder and calls this script on it:

    <python of .venv-saelens> benchmarks/saelens_side.py WORK_DIR RUN_DIR

It reads from WORK_DIR
    data.safetensors       train [n, d_in], held_out [m, d_in], probe [k, d_in], order [steps, batch] (int64)
    init.safetensors       the initial W_enc, W_dec, b_enc, b_dec (the same our SAE started from)
    ours/                  our trained SAE, written by mi_course's save_saelens
and from RUN_DIR
    side_config.json       d_sae, steps, batch_size, lr, l1_coeff, clip_grad_norm
and writes into RUN_DIR
    saelens_sae/           the SAE it trained, saved with SAELens's own save_inference_model
                           (what its LanguageModelSAERunner writes at the end of a run)
    side_out.safetensors   ours_f_by_saelens (our SAE, loaded by SAE.load_from_disk, encoding probe),
                           saelens_f (its trained SAE encoding probe)
    side_results.json      version, timings and SAELens's own metrics on held_out

Training uses SAELens's SAETrainer (the class its LanguageModelSAERunner hands the activations store to)
with a StandardTrainingSAE, fed from the stored activations in the order ``order`` gives, so both
trainers see the same batches in the same order.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

torch.set_num_threads(1)


def main(work: Path, run: Path) -> None:
    import sae_lens
    from sae_lens import SAE
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    conf = json.loads((run / "side_config.json").read_text())
    data = load_file(str(work / "data.safetensors"))
    train, held_out, probe, order = data["train"], data["held_out"], data["probe"], data["order"]
    steps, batch_size = conf["steps"], conf["batch_size"]
    assert order.shape == (steps, batch_size), order.shape
    out: dict = {"sae_lens_version": sae_lens.__version__, "torch_version": torch.__version__,
                 "torch_threads": torch.get_num_threads()}
    from importlib.metadata import version
    out["transformer_lens_version"] = version("transformer-lens")

    # (a) our SAE, read by SAELens's own loader
    ours = SAE.load_from_disk(work / "ours", device="cpu")
    out["ours_loaded_as"] = type(ours).__name__
    with torch.no_grad():
        ours_f = ours.encode(probe)

    # (b) a SAELens standard SAE trained on the same activations
    cfg = StandardTrainingSAEConfig(
        d_in=train.shape[1], d_sae=conf["d_sae"], dtype="float32", device="cpu",
        apply_b_dec_to_input=True,          # ours subtracts b_dec before the encoder too
        normalize_activations="none",       # ours trains on raw activations
        l1_coefficient=conf["l1_coeff"], lp_norm=1.0,
        l1_warm_up_steps=0,                 # ours has no L1 warm-up (0 is also SAELens's default)
        decoder_init_norm=1.0,              # unit decoder rows at init, as ours (SAELens's default is 0.1)
    )
    sae = StandardTrainingSAE(cfg)
    init = load_file(str(work / "init.safetensors"))
    sae.load_state_dict(init, strict=True)     # the same start as ours: no init difference
    sae.cfg.metadata.model_name = conf["model_name"]
    sae.cfg.metadata.hook_name = conf["hook_name"]

    trainer_cfg = SAETrainerConfig(
        total_training_samples=steps * batch_size, train_batch_size_samples=batch_size,
        lr=conf["lr"], lr_end=conf["lr"], lr_scheduler_name="constant", lr_warm_up_steps=0, lr_decay_steps=0,
        adam_beta1=0.9, adam_beta2=0.999,   # torch's Adam defaults, which ours uses
        device="cpu", autocast=False, save_final_checkpoint=False, n_checkpoints=0, checkpoint_path=None,
    )

    stamps: list[float] = []

    def provider():
        for k in range(steps):
            stamps.append(time.perf_counter())
            yield train[order[k]]
        raise RuntimeError("SAETrainer asked for more batches than steps")

    if not conf.get("clip_grad_norm", True):
        # Ablation only: SAETrainer._train_step always calls torch.nn.utils.clip_grad_norm_(params, 1.0)
        # (hard-coded, no option); this turns that call into a no-op for this process.
        torch.nn.utils.clip_grad_norm_ = lambda parameters, *args, **kwargs: torch.zeros(())
    out["clip_grad_norm"] = conf.get("clip_grad_norm", True)

    trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=provider())
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    stamps.append(time.perf_counter())
    step_times = [b - a for a, b in zip(stamps[:-1], stamps[1:])]
    out["train"] = {
        "seconds": seconds, "steps": trainer.n_training_steps, "samples": trainer.n_training_samples,
        "acts_per_s": trainer.n_training_samples / seconds,
        "median_step_s": statistics.median(step_times),
        "acts_per_s_median_step": batch_size / statistics.median(step_times),
    }

    # SAELens's own metrics on the held-out slice: its training forward pass and its step log dict
    sae.eval()
    with torch.no_grad():
        step_out = sae.training_forward_pass(step_input=_step_input(held_out, trainer))
        log = trainer.build_train_step_log_dict(step_out, trainer.n_training_samples)
        saelens_f = sae.encode(probe)
        dec_norms = sae.W_dec.norm(dim=-1)
    out["held_out"] = {
        "variance_explained": log["metrics/explained_variance"], "l0": log["metrics/l0"],
        "mse_loss": log["losses/mse_loss"], "l1_loss": log["losses/l1_loss"], "loss": log["losses/overall_loss"],
        "W_dec_row_norm": {"min": dec_norms.min().item(), "mean": dec_norms.mean().item(),
                           "max": dec_norms.max().item()},
        "dead_in_last_window": int(trainer.dead_neurons.sum()),
    }

    # (c) saved with SAELens's own method (the one its runner uses for the final SAE)
    sae.save_inference_model(run / "saelens_sae")
    save_file({"ours_f_by_saelens": ours_f.contiguous(), "saelens_f": saelens_f.contiguous()},
              str(run / "side_out.safetensors"))
    (run / "side_results.json").write_text(json.dumps(out, indent=2))


def _step_input(x: torch.Tensor, trainer):
    from sae_lens.saes.sae import TrainStepInput

    return TrainStepInput(sae_in=x, coefficients=trainer.get_coefficients(), dead_neuron_mask=None,
                          n_training_steps=trainer.n_training_steps, is_logging_step=False)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: saelens_side.py WORK_DIR RUN_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
