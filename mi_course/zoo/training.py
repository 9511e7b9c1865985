"""Training the zoo: the recipes of the shipped models, and ``mi-course train <name>``.

A recipe fixes everything a run depends on (architecture, world seed,
document mix, optimiser, schedule, seeds), so training a model again gives
the same weights on the same device and thread count. Training runs on a
plain ``NativeModel`` (TransformerLens' own small transformer, without the
bridge's hooks, for speed); the weights are saved under the bridge's names,
so ``mi_course.models.load`` can boot them straight into a ``TransformerBridge``.

    $ mi-course train attn-only-2l              # writes mi_course/zoo/data/models/attn-only-2l/
    $ mi-course train attn-only-2l --out /tmp/z  # somewhere else
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..device import resolve_device
from ..seed import seed_everything
from .world import BOS_ID, VOCAB, World, token_rows

ZOO_DIR = Path(__file__).resolve().parent / "data" / "models"


@dataclass(frozen=True)
class Recipe:
    """Everything a training run depends on."""

    name: str
    chapter: str                          # the chapter the model serves
    description: str
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    n_ctx: int = 128
    attn_only: bool = True
    d_mlp: int | None = None
    act_fn: str = "gelu"
    normalization_type: str | None = None  # None (no LayerNorm) or "LN"
    world_seed: int = 0
    mix: dict[str, float] = field(default_factory=lambda: dict(World.DEFAULT_MIX))
    seed: int = 0                          # initialisation and batch order
    steps: int = 4000
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 200
    final_lr_frac: float = 0.1             # cosine decay from lr to lr * final_lr_frac
    weight_decay: float = 0.01
    init_range: float = -1.0               # std of the weights at init (-1: 0.8 / sqrt(d_model))
    pos_init: str = "normal"               # "normal", or "sinusoidal" (then trained like the rest)
    tie_embeddings: bool = False           # W_U = W_E^T during training (as in GPT-2)
    ctx_schedule: tuple[tuple[int, int], ...] = ()  # curriculum: ((until_step, context), ...)
    eval_every: int = 100
    checkpoint_every: int = 0              # 0: no checkpoints; else keep one every k steps
    n_checkpoints: int = 0                 # how many of them to ship (spanning the phase change)

    def config(self):
        """The ``TransformerBridgeConfig`` of this architecture."""
        from transformer_lens.config import TransformerBridgeConfig

        return TransformerBridgeConfig(
            d_model=self.d_model, d_head=self.d_head, n_heads=self.n_heads, n_layers=self.n_layers,
            n_ctx=self.n_ctx, d_vocab=len(VOCAB), attn_only=self.attn_only,
            d_mlp=self.d_mlp if not self.attn_only else None, act_fn=self.act_fn,
            normalization_type=self.normalization_type, seed=self.seed,
            initializer_range=self.init_range, model_name=self.name,
            default_prepend_bos=True, tokenizer_prepends_bos=True,
        )


RECIPES: dict[str, Recipe] = {}


def _register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


# Mix for the induction models: lots of text where copying pays off (stories
# whose names recur, repeated random spans at varying distances).
_INDUCTION_MIX = {"facts": 0.1, "capitals": 0.05, "gender": 0.05, "sequence": 0.1,
                  "story": 0.35, "repeat": 0.35}
# What made induction heads form on CPU within minutes (see docs/world_and_zoo.md):
# LayerNorm, tied embeddings, sinusoidal initial positions, 4 heads of 32.
_INDUCTION_ARCH = dict(d_model=128, n_heads=4, d_head=32, normalization_type="LN",
                       tie_embeddings=True, pos_init="sinusoidal", mix=_INDUCTION_MIX,
                       batch=32, lr=3e-3, warmup=300)

_register(Recipe(
    name="attn-only-2l", chapter="04 Induction (also 02 Virtual weights)",
    description="Two attention-only layers: a previous-token head in layer 0 K-composes with "
                "induction heads in layer 1. Ships training checkpoints across the phase change.",
    n_layers=2, steps=8000, eval_every=100, checkpoint_every=50, n_checkpoints=10, **_INDUCTION_ARCH,
))
_register(Recipe(
    name="gelu-3l-facts", chapter="06 Fact recall (also 01 Residual stream, 05 SAEs, embedding puzzles)",
    description="Three layers with GELU MLPs, trained on a fact-heavy mix: it recalls every "
                "person's sport from their two-token name, and the lookup lives in its MLPs.",
    n_layers=3, d_model=128, n_heads=4, d_head=32, attn_only=False, d_mlp=512, act_fn="gelu",
    normalization_type="LN", tie_embeddings=True, pos_init="sinusoidal",
    mix={"facts": 0.45, "capitals": 0.1, "gender": 0.1, "sequence": 0.05, "story": 0.2, "repeat": 0.1},
    steps=3500, batch=32, lr=3e-3, warmup=300, eval_every=250,
))
_register(Recipe(
    name="attn-only-1l", chapter="04 Induction (the contrast: one layer cannot form induction heads)",
    description="One attention-only layer trained like attn-only-2l: it learns bigrams and "
                "skip-trigrams but no induction head.",
    n_layers=1, steps=8000, eval_every=200, **_INDUCTION_ARCH,
))


# ----------------------------------------------------------------------------
# Model <-> bridge
# ----------------------------------------------------------------------------

def native_model(recipe: Recipe, device: torch.device | str = "cpu"):
    """A freshly initialised plain ``NativeModel`` (no hooks: fast to train)."""
    from transformer_lens.model_bridge.sources.native import NativeModel, initialize_native_model

    cfg = recipe.config()
    with torch.random.fork_rng(devices=[]):
        model = NativeModel(cfg)
        initialize_native_model(model, cfg, seed=recipe.seed)
    if recipe.tie_embeddings:
        model.head.weight = model.tok_embed.weight
    if recipe.pos_init == "sinusoidal":
        with torch.no_grad():
            pos = model.pos.weight
            pos.copy_(sinusoidal_positions(*pos.shape) * model.tok_embed.weight.norm(dim=-1).mean())
    return model.to(device)


def sinusoidal_positions(n_ctx: int, d_model: int) -> Tensor:
    """Unit-norm sinusoidal position vectors (Vaswani et al. 2017). [n_ctx, d_model]

    Neighbouring positions are related by a fixed rotation, so a head can learn
    "attend to the previous token" quickly; the vectors are trained afterwards.
    """
    pos = torch.arange(n_ctx, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10_000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    out = torch.zeros(n_ctx, d_model)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)
    return out / out.norm(dim=-1, keepdim=True)


_RENAMES = (("tok_embed.", "embed."), ("pos.", "pos_embed."), ("layers.", "blocks."),
            (".mlp.fc_in.", ".mlp.in."), (".mlp.fc_out.", ".mlp.out."), ("ln_out.", "ln_final."),
            ("head.", "unembed."))


def bridge_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """A ``NativeModel``'s weights under the names a ``TransformerBridge`` uses."""
    out = {}
    for key, value in model.state_dict().items():
        for old, new in _RENAMES:
            if key.startswith(old) or (old.startswith(".") and old in key):
                key = key.replace(old, new, 1)
        out[key] = value.detach().cpu().clone()  # clone: tied weights must not share storage
    if "unembed.bias" not in out:
        out["unembed.bias"] = torch.zeros(out["unembed.weight"].shape[0])
    return out


def to_bridge(recipe: Recipe, state_dict: dict[str, Tensor], tokenizer: Any = None,
              device: torch.device | str = "cpu", processed: bool = False):
    """Boot a ``TransformerBridge`` of the recipe's architecture and load bridge-named weights
    (``processed``: then apply ``enable_compatibility_mode()``, as ``models.load`` does)."""
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_native(recipe.config(), tokenizer=tokenizer, device=device,
                                           model_name=recipe.name)
    result = bridge.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()}, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    if processed:
        bridge.enable_compatibility_mode(disable_warnings=True)
    return bridge.eval()


# ----------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------

def lr_at(step: int, recipe: Recipe) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to ``lr * final_lr_frac``."""
    if step < recipe.warmup:
        return recipe.lr * (step + 1) / recipe.warmup
    progress = (step - recipe.warmup) / max(1, recipe.steps - recipe.warmup)
    low = recipe.final_lr_frac
    return recipe.lr * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))


def context_at(step: int, recipe: Recipe) -> int:
    """Training context length at ``step``: short contexts first (the recipe's curriculum)."""
    for until, ctx in recipe.ctx_schedule:
        if step < until:
            return ctx
    return recipe.n_ctx


def next_token_loss(logits: Tensor, tokens: Tensor) -> Tensor:
    """Mean cross-entropy of predicting ``tokens[:, 1:]``. logits [b, s, v], tokens [b, s]"""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


@dataclass
class TrainResult:
    recipe: Recipe
    state_dict: dict[str, Tensor]                 # final weights, bridge names
    history: list[dict[str, float]]               # one row per eval: step, tokens, loss, scores
    checkpoints: dict[int, dict[str, Tensor]]     # step -> bridge-named weights
    seconds: float
    tokens: int
    device: str
    threads: int


class Batches:
    """Deterministic training batches from the recipe's world (documents are never reused)."""

    def __init__(self, recipe: Recipe, first_doc: int = 0):
        self.recipe = recipe
        self.world = World(recipe.world_seed, recipe.mix)
        self.next_doc = first_doc

    def __call__(self, n_rows: int, n_ctx: int | None = None) -> Tensor:
        rows, self.next_doc = token_rows(self.world, n_rows, n_ctx or self.recipe.n_ctx, self.next_doc)
        return torch.from_numpy(rows)


HELD_OUT_FIRST_DOC = 10**9   # held-out documents are drawn from far beyond any training run


def held_out_tokens(recipe: Recipe, n_rows: int = 64) -> Tensor:
    """Documents no training run reaches. int64 [n_rows, n_ctx]"""
    return Batches(recipe, HELD_OUT_FIRST_DOC)(n_rows)


def train(recipe: Recipe, device: str = "auto", threads: int | None = 1, progress: bool = True,
          evaluate: Callable[[Any], dict[str, float]] | None = None) -> TrainResult:
    """Train ``recipe`` from scratch.

    ``evaluate(bridge) -> {name: value}`` is called every ``eval_every`` steps
    (e.g. head scores); the default records the held-out loss only.
    ``threads``: torch CPU threads while training (results are reproducible
    for a fixed device and thread count); the previous setting is restored.
    """
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.enable_grad():   # also when the caller switched autograd off (as chapter notebooks do)
            return _train(recipe, device, progress, evaluate)
    finally:
        torch.set_num_threads(before)


def _train(recipe: Recipe, device: str, progress: bool,
           evaluate: Callable[[Any], dict[str, float]] | None) -> TrainResult:
    from tqdm.auto import tqdm

    dev = resolve_device(device)
    seed_everything(recipe.seed)
    model = native_model(recipe, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=(0.9, 0.99),
                            weight_decay=recipe.weight_decay)
    batches = Batches(recipe)
    held_out = held_out_tokens(recipe).to(dev)
    history: list[dict[str, float]] = []
    checkpoints: dict[int, dict[str, Tensor]] = {}
    start = time.time()
    eval_time = 0.0
    bar = tqdm(range(recipe.steps + 1), desc=f"train {recipe.name}", disable=not progress)
    for step in bar:
        if recipe.checkpoint_every and step % recipe.checkpoint_every == 0:
            checkpoints[step] = bridge_state_dict(model)
        if step % recipe.eval_every == 0 or step == recipe.steps:
            t0 = time.time()
            row = {"step": step, "tokens": step * recipe.batch * recipe.n_ctx}
            model.eval()
            with torch.no_grad():
                row["held_out_loss"] = next_token_loss(model(held_out), held_out).item()
            if evaluate is not None:
                row.update(evaluate(to_bridge(recipe, bridge_state_dict(model), device=dev)))
            model.train()
            history.append(row)
            eval_time += time.time() - t0
        if step == recipe.steps:
            break
        ctx = context_at(step, recipe)
        tokens = batches(recipe.batch * recipe.n_ctx // ctx, ctx).to(dev)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, recipe)
        loss = next_token_loss(model(tokens), tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if history:
            history[-1].setdefault("train_loss", loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return TrainResult(recipe, bridge_state_dict(model), history, checkpoints,
                       seconds=time.time() - start, tokens=recipe.steps * recipe.batch * recipe.n_ctx,
                       device=str(dev), threads=torch.get_num_threads())


# ----------------------------------------------------------------------------
# Saving a trained model into the zoo
# ----------------------------------------------------------------------------

def config_dict(recipe: Recipe) -> dict[str, Any]:
    """The ``TransformerBridgeConfig`` arguments written to ``config.json``."""
    cfg = recipe.config()
    keys = ("d_model", "d_head", "n_heads", "n_layers", "n_ctx", "d_vocab", "attn_only", "d_mlp",
            "act_fn", "normalization_type", "model_name", "default_prepend_bos", "tokenizer_prepends_bos")
    return {k: getattr(cfg, k) for k in keys}


def select_checkpoints(history: list[dict[str, float]], available: list[int], n: int,
                       key: str = "induction_score") -> list[int]:
    """``n`` checkpoint steps that show the phase change: the first, the last, and the
    ones nearest to where the score crosses evenly spaced levels between its
    start and end values (so the in-between checkpoints span the formation).
    """
    steps = np.array([row["step"] for row in history])
    scores = np.array([row[key] for row in history])
    chosen = {available[0], available[-1]}
    levels = np.linspace(scores[0], scores.max(), n)[1:-1]
    for level in levels:
        crossing = steps[np.argmax(scores >= level)]
        nearest = min((s for s in available if s not in chosen), key=lambda s: abs(s - crossing), default=None)
        if nearest is not None:
            chosen.add(nearest)
    return sorted(chosen)[:n] if len(chosen) > n else sorted(chosen)


def save_model(result: TrainResult, out_dir: str | Path, metrics: dict[str, Any],
               checkpoint_metrics: dict[int, dict[str, Any]] | None = None,
               checkpoint_dtype: torch.dtype = torch.float16) -> Path:
    """Write weights, config, loss curve, checkpoints and ``card.json`` (with SHA-256 of every file)."""
    from safetensors.torch import save_file

    from .models import sha256

    out = Path(out_dir)
    if out.exists():
        for old in sorted(out.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    recipe = result.recipe
    save_file(result.state_dict, str(out / "model.safetensors"), metadata={"name": recipe.name})
    (out / "config.json").write_text(json.dumps(config_dict(recipe), indent=2) + "\n")
    (out / "loss_curve.json").write_text(json.dumps(result.history, indent=1) + "\n")
    _plot_loss_curve(result.history, out / "loss_curve.png", recipe.name)
    ckpts = {}
    for step, metrics_at in sorted((checkpoint_metrics or {}).items()):
        rel = f"checkpoints/step_{step:06d}.safetensors"
        weights = {k: v.to(checkpoint_dtype) for k, v in result.checkpoints[step].items()}
        save_file(weights, str(out / rel), metadata={"name": recipe.name, "step": str(step)})
        ckpts[str(step)] = {"file": rel, "tokens": step * recipe.batch * recipe.n_ctx, **metrics_at}
    if not ckpts:
        (out / "checkpoints").rmdir()
    files = ["model.safetensors", "config.json", *(c["file"] for c in ckpts.values())]
    card = {
        "name": recipe.name,
        "chapter": recipe.chapter,
        "description": recipe.description,
        "architecture": config_dict(recipe),
        "recipe": asdict(recipe),
        "training": {"tokens": result.tokens, "steps": recipe.steps, "seconds": round(result.seconds, 1),
                     "device": result.device, "threads": result.threads,
                     "torch": torch.__version__, "command": f"mi-course train {recipe.name}"},
        "metrics": metrics,
        "checkpoints": ckpts,
        "sha256": {f: sha256(out / f) for f in files},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return out


def _plot_loss_curve(history: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    tokens = [row["tokens"] / 1e6 for row in history]
    ax.plot(tokens, [row["held_out_loss"] for row in history], label="held-out loss")
    if all("train_loss" in row for row in history[:-1]):
        ax.plot(tokens[:-1], [row["train_loss"] for row in history[:-1]], alpha=0.5, label="training loss")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("loss (nats)")
    ax.set_title(title)
    key = "fact_accuracy" if "fact_accuracy" in history[0] else "induction_score"
    if key in history[0]:
        label = {"fact_accuracy": "sport recall accuracy", "induction_score": "best induction score"}[key]
        ax2 = ax.twinx()
        ax2.plot(tokens, [row[key] for row in history], color="C3")
        ax2.set_ylabel(label, color="C3")
        ax2.set_ylim(0, 1)
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------
# The whole job: train, measure, save (``mi-course train <name>``)
# ----------------------------------------------------------------------------

def _induction_eval(bridge: Any) -> dict[str, float]:
    """Cheap per-eval scores for the loss curve of the attention-only models."""
    from ..induction import head_scores as hs
    from .metrics import repeated_tokens

    tokens = repeated_tokens(batch=8)
    patterns = hs.attention_patterns(bridge, tokens)
    first, second = hs.copy_losses(hs.per_token_loss(bridge, tokens))
    return {"prev_token_score": hs.prev_token_scores(patterns)[0].max().item(),
            "induction_score": hs.induction_scores(patterns)[-1].max().item(),
            "loss_first_copy": first, "loss_second_copy": second}


def _facts_eval(world: World) -> Callable[[Any], dict[str, float]]:
    """Per-eval scores of the MLP models: induction scores and sport recall accuracy."""
    from .metrics import SPORT_IDS, sport_prompts

    people = world.kb.people
    prompts = sport_prompts(world, [(p.first, p.last) for p in people])
    answers = torch.tensor([SPORT_IDS[p.sport] for p in people])

    def evaluate(bridge: Any) -> dict[str, float]:
        with torch.no_grad():
            logits = bridge(prompts.to(next(bridge.parameters()).device))[:, -1].cpu()
        return {**_induction_eval(bridge), "fact_accuracy": (logits.argmax(-1) == answers).float().mean().item()}

    return evaluate


def measure(recipe: Recipe, bridge: Any) -> dict[str, Any]:
    """The metrics of a model card (see :mod:`mi_course.zoo.metrics`)."""
    from . import metrics as zm

    metrics: dict[str, Any] = {"held_out_loss": zm.held_out_loss(bridge, held_out_tokens(recipe, 256))}
    if recipe.n_layers >= 2:
        metrics.update(zm.induction_circuit(bridge))
    else:
        metrics.update(zm.induction_report(bridge))
    metrics["fact_recall"] = zm.fact_recall(bridge, World(recipe.world_seed))
    return metrics


def checkpoint_metrics(recipe: Recipe, weights: dict[str, Tensor]) -> dict[str, float]:
    """Best layer-0 previous-token and last-layer induction scores, and the copy losses."""
    from . import metrics as zm

    report = zm.induction_report(to_bridge(recipe, weights, processed=True))
    return {
        "best_prev_token_score_layer0": max(report["prev_token_scores"][0]),
        "best_induction_score_layer1": max(report["induction_scores"][-1]),
        "loss_first_copy": report["loss_first_copy"],
        "loss_second_copy": report["loss_second_copy"],
    }


def train_and_save(name: str, out_dir: str | Path | None = None, device: str = "auto",
                   threads: int | None = 1, progress: bool = True, steps: int | None = None) -> Path:
    """Train a zoo model from its recipe, measure it and write it to ``out_dir``
    (default: the package's own ``zoo/data/models/<name>``). ``steps`` overrides the
    recipe's step count (for smoke tests; the result is then not the shipped model)."""
    from dataclasses import replace

    if name not in RECIPES:
        raise KeyError(f"No recipe for {name!r}; trainable models: {', '.join(RECIPES)}")
    recipe = RECIPES[name] if steps is None else replace(RECIPES[name], steps=steps)
    result = train(recipe, device=device, threads=threads, progress=progress,
                   evaluate=_induction_eval if recipe.attn_only else _facts_eval(World(recipe.world_seed)))
    bridge = to_bridge(recipe, result.state_dict, processed=True)  # as models.load returns it
    metrics = measure(recipe, bridge)
    metrics["training_tokens"] = result.tokens
    metrics["training_seconds"] = round(result.seconds, 1)
    ckpt_metrics: dict[int, dict[str, Any]] = {}
    if recipe.n_checkpoints and result.checkpoints:
        chosen = select_checkpoints(result.history, sorted(result.checkpoints), recipe.n_checkpoints)
        for step in chosen:  # measured as shipped: in float16
            half = {k: v.to(torch.float16) for k, v in result.checkpoints[step].items()}
            ckpt_metrics[step] = checkpoint_metrics(recipe, half)
    out = Path(out_dir) if out_dir is not None else ZOO_DIR / name
    return save_model(result, out, metrics, ckpt_metrics)


def remeasure(name: str, zoo_dir: str | Path | None = None) -> dict[str, Any]:
    """Recompute the metrics of a model card from the saved weights and rewrite ``card.json``.

    The card is a function of the weights: use this after changing how a
    metric is computed (the weights, and so their checksums, do not change).
    """
    from safetensors.torch import load_file

    folder = Path(zoo_dir) / name if zoo_dir is not None else ZOO_DIR / name
    card = json.loads((folder / "card.json").read_text())
    recipe = RECIPES[name]
    bridge = to_bridge(recipe, load_file(str(folder / "model.safetensors")), processed=True)
    training = {k: card["metrics"][k] for k in ("training_tokens", "training_seconds")}
    card["metrics"] = {**measure(recipe, bridge), **training}
    for step, entry in card.get("checkpoints", {}).items():
        entry.update(checkpoint_metrics(recipe, load_file(str(folder / entry["file"]))))
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card
