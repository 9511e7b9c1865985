"""Seeding, so that notebooks and tests give the same numbers on every run."""

from __future__ import annotations

import random

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
