"""SAEs the course ships: each trained once by a recipe, stored with a card and checksums, loaded offline.

    >>> from mi_course.sae import recipes
    >>> sae, cfg = recipes.load("sae-facts-l0")       # checksums verified first
    $ mi-course train sae-facts-l0                    # retrain it from its recipe

The files live in ``mi_course/sae/data/<name>/`` in SAELens's on-disk format (``cfg.json``,
``sae_weights.safetensors``) plus ``card.json``: the recipe, the training time, the SHA-256 of every
file and the metrics the tests recompute from the shipped weights. ``mi-course train`` finds these
recipes through the course map (chapter 05's package has a ``recipes`` module).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..zoo import models
from ..zoo.world import SLOTS, World, token_rows
from .activations import collect_activations
from .evaluate import summary
from .labels import binary_labels, clean_matches, labelled_rows
from .model import SAE
from .saelens_format import load_saelens, save_saelens
from .training import SAETrainConfig, train_sae

DATA_DIR = Path(__file__).resolve().parent / "data"
HELD_OUT_FIRST_DOC = 10**9          # the zoo's held-out documents


@dataclass(frozen=True)
class SAERecipe:
    name: str
    model: str                      # a shipped zoo model
    hook: str
    d_sae: int
    l1_coeff: float
    steps: int
    batch_size: int = 512
    lr: float = 1e-3
    resample_every: int = 0         # steps between resamplings of dead features (0: never)
    train_rows: int = 1024          # rows of the model's training text (n_ctx tokens each) to draw activations from
    seed: int = 0
    description: str = ""


RECIPES: dict[str, SAERecipe] = {r.name: r for r in (
    SAERecipe("sae-facts-l0", "gelu-3l-facts", "blocks.0.hook_resid_post", d_sae=2048, l1_coeff=2.0, steps=6000,
              resample_every=1500,
              description="gelu-3l-facts's residual stream after block 0, 16x wide: where single features "
                          "still match single sports"),
)}


def _world(recipe: SAERecipe) -> World:
    from ..zoo.training import RECIPES as ZOO

    zoo = ZOO[recipe.model]
    return World(zoo.world_seed, zoo.mix)


def train(recipe: SAERecipe, device: str = "cpu", progress: bool = True) -> tuple[SAE, dict[str, Any]]:
    """Train the recipe's SAE on activations of the model's training text; returns (sae, history)."""
    model = models.load(recipe.model, device=device)
    tokens = torch.from_numpy(token_rows(_world(recipe), recipe.train_rows, model.cfg.n_ctx, 0)[0])
    acts = collect_activations(model, tokens, recipe.hook)
    sae = SAE(acts.shape[-1], recipe.d_sae, seed=recipe.seed)
    config = SAETrainConfig(steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr, l1_coeff=recipe.l1_coeff,
                            resample_every=recipe.resample_every, seed=recipe.seed, progress=progress,
                            description=f"training {recipe.name}")
    return sae, train_sae(sae, acts, config)


def measure(sae: SAE, recipe: SAERecipe, n_rows: int = 64, device: str = "cpu") -> dict[str, Any]:
    """The card's metrics on held-out text: L0, variance explained, CE loss recovered (zero-ablation),
    dead and dense features, and the clean sport matches among the world's labels."""
    model = models.load(recipe.model, device=device)
    tokens, labels = labelled_rows(_world(recipe), n_rows, model.cfg.n_ctx, HELD_OUT_FIRST_DOC)
    acts = collect_activations(model, tokens, recipe.hook)
    metrics = summary(model, sae, acts, tokens[:16], recipe.hook)
    with torch.no_grad():
        f = sae.encode(acts)
    flat = {k: v[:, 1:].reshape(-1) for k, v in labels.items()}           # BOS dropped, as in the activations
    binary = {k: v for k, v in binary_labels(flat).items() if k.startswith("sport word: ")}
    matches = clean_matches(f, binary, flat["slot"] == SLOTS.index("sport"))
    clean = {k.removeprefix("sport word: "): {"feature": m[0], "auroc": round(m[1], 4), "auroc_within_sports": round(m[2], 4)}
             for k, m in matches.items()}
    return {**metrics, "ce_loss": {k: round(v, 4) for k, v in metrics["ce_loss"].items()},
            "sport_features": clean,
            "sports_with_a_clean_feature": sum(m["auroc"] > 0.9 and m["auroc_within_sports"] > 0.9 for m in clean.values())}


def train_and_save(name: str, out_dir: str | Path | None = None, device: str = "cpu", steps: int | None = None,
                   progress: bool = True) -> Path:
    """Train ``name``'s recipe, measure it, and write the SAE and its card to ``out_dir``."""
    recipe = RECIPES[name] if steps is None else replace(RECIPES[name], steps=steps)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        sae, _ = train(recipe, device, progress)
        seconds = time.perf_counter() - start
        metrics = measure(sae.cpu(), recipe)
    finally:
        torch.set_num_threads(before)
    out = Path(out_dir) if out_dir is not None else DATA_DIR / name
    save_saelens(sae, out, recipe.model, recipe.hook)
    files = sorted(p.name for p in out.iterdir() if p.name != "card.json")
    card = {"name": name, "recipe": asdict(recipe), "train_seconds": round(seconds, 1), "threads": 1,
            "sha256": {f: models.sha256(out / f) for f in files}, "metrics": metrics}
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return out


def shipped() -> list[str]:
    """Names of the SAEs shipped in the package."""
    return sorted(p.name for p in DATA_DIR.iterdir() if (p / "card.json").exists()) if DATA_DIR.is_dir() else []


def card(name: str) -> dict[str, Any]:
    return json.loads((DATA_DIR / name / "card.json").read_text())


def load(name: str, folder: str | Path | None = None) -> tuple[SAE, dict[str, Any]]:
    """A shipped SAE, its files checked against the card's SHA-256 first. -> (sae, SAELens config)"""
    folder = Path(folder) if folder is not None else DATA_DIR / name
    if not (folder / "card.json").exists():
        raise KeyError(f"No shipped SAE {name!r}; shipped: {', '.join(shipped()) or 'none'}")
    expected = json.loads((folder / "card.json").read_text())["sha256"]
    for file, digest in expected.items():
        path = folder / file
        if not path.exists() or models.sha256(path) != digest:
            raise models.ModelFileError(f"{path} is missing or damaged (its SHA-256 does not match card.json). "
                                        f"Restore it (`git checkout -- mi_course/sae/data/{name}`) or retrain it "
                                        f"with `mi-course train {name}`.")
    return load_saelens(folder)
