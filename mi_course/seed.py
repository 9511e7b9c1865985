"""Seeding, so that notebooks and tests give the same numbers on every run."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh CPU ``torch.Generator``.

    Chapters call this once in their setup cell. Functions that draw random
    numbers also accept an explicit generator, so a single call can be
    reproduced without depending on what ran before it.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    return gen


def stream(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator for one kind of random object, independent of every other kind drawn with the same seed.

    ``stream(0, "sae.init")`` and ``stream(0, "toy.features")`` share no state: each name mixes into
    the seed through NumPy's ``SeedSequence``, so the SAE's initial decoder is never the true
    features again (the first rows of two ``randn`` calls on one seed are the same numbers).
    Every random object in the library draws from its own named stream; a test enforces it.
    """
    state = np.random.SeedSequence([int(seed) % 2**63, zlib.crc32(name.encode())]).generate_state(2, np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))
