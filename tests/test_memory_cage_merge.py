"""results.json's "memory_cage" section after a partial run (benchmarks/memory_cage.py ``merged``): the notebooks
rerun get the new numbers, stamped with this commit; the others keep theirs and their own stamps; course order."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory_cage  # noqa: E402


def _row(name: str, peak: int, **extra) -> dict:
    return {"notebook": name, "peak_mb": peak, **extra}


def test_a_partial_cage_run_replaces_only_its_notebooks_and_stamps_them():
    previous = {"commit": "old", "limit_gib": 2.0,
                "notebooks": [_row("P1_similar_embeddings", 600), _row("03_superposition", 500, commit="older")]}
    new = {"limit_gib": 2.0, "notebooks": [_row("01_residual_stream", 800), _row("03_superposition", 488)]}
    section = memory_cage.merged(previous, new, "new")
    rows = {r["notebook"]: r for r in section["notebooks"]}
    assert [r["notebook"] for r in section["notebooks"]] == ["01_residual_stream", "03_superposition",
                                                            "P1_similar_embeddings"]
    assert rows["03_superposition"]["peak_mb"] == 488 and rows["03_superposition"]["commit"] == "new"
    assert rows["01_residual_stream"]["commit"] == "new" and len(rows["01_residual_stream"]["date"]) == 10
    assert rows["P1_similar_embeddings"] == {"commit": "old", **_row("P1_similar_embeddings", 600)}
    assert section["commit"] == "new" and section["limit_gib"] == 2.0


def test_a_run_without_a_cage_leaves_the_previous_section_as_it_was():
    previous = {"commit": "old", "notebooks": [_row("02_virtual_weights", 506)]}
    skipped = {"skipped": "no memory cage here: not root"}
    assert memory_cage.merged(previous, skipped, "new") == previous
    assert memory_cage.merged({}, skipped, "new") == skipped
