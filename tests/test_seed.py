"""Random streams: no two random objects of the library share a generator state by accident.

The bug this guards against: chapter 05's toy SAE drew its decoder as ``randn(width, 16)`` from a generator
seeded 0, and the true features it was meant to find were ``randn(32, 16)`` from another generator seeded 0,
so the SAE started on the answer. Every generator in the library now comes from ``seed.stream(seed, name)``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

import mi_course
from mi_course.seed import stream

LIBRARY = Path(mi_course.__file__).parent


def test_streams_of_one_seed_are_independent():
    a = torch.randn(64, 16, generator=stream(0, "toy.features"))
    b = torch.randn(64, 16, generator=stream(0, "sae.init"))
    assert not torch.equal(a[:32], b[:32])
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert cos.abs().max() < 0.9                          # no row of one is (nearly) a row of the other


def test_a_stream_is_reproducible_and_depends_on_its_seed_and_name():
    draw = lambda seed, name: torch.randn(8, generator=stream(seed, name))  # noqa: E731
    assert torch.equal(draw(3, "x"), draw(3, "x"))
    assert not torch.equal(draw(3, "x"), draw(4, "x"))
    assert not torch.equal(draw(3, "x"), draw(3, "y"))
    # seeds next to each other do not give shifted copies of one sequence
    assert not torch.equal(torch.randn(9, generator=stream(0, "x"))[1:], draw(1, "x"))


def test_the_library_makes_its_generators_through_named_streams():
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        if path.name == "seed.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"manual_seed\(|np\.random\.seed\(", line):
                offenders.append(f"{path.relative_to(LIBRARY)}:{n}: {line.strip()}")
    assert not offenders, "seed generators with mi_course.seed.stream(seed, name):\n" + "\n".join(offenders)


def test_a_toy_sae_does_not_start_on_the_true_features():
    from mi_course.sae import SAE, mmcs, toy_data

    for seed in (0, 1):
        data = toy_data(32, 16, p=0.05, seed=seed)
        for width in (32, 48, 64):
            assert mmcs(SAE(16, width, seed=seed).W_dec.detach(), data.features) < 0.8, (seed, width)

