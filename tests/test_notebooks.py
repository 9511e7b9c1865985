"""Solution notebooks run top to bottom on CPU and reproduce their stored outputs.

- strict nbval on each solution (stored outputs vs a fresh run, through tests/sanitize.cfg);
- the generated exercise notebook with the answers put back runs under papermill with
  device="cpu", and prints the same sanitized text as the stored solution (a second run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mi_course.notebook_run import execute, load_sanitizer, restore_solutions, text_outputs

REPO = Path(__file__).resolve().parents[1]
SANITIZER = REPO / "tests" / "sanitize.cfg"
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_solution_notebooks():
    assert SOLUTIONS, "no solution notebooks found in solutions/"


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_passes_strict_nbval(solution, tmp_path):
    # A fresh progress file, as when the outputs were stored: the last cell shows progress per chapter.
    env = {**os.environ, "MI_COURSE_PROGRESS": str(tmp_path / "progress.json")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
           "--nbval-sanitize-with", str(SANITIZER), "--nbval-cell-timeout", "600",
           "--rootdir", str(tmp_path), "-o", "addopts=", str(solution)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=solution.parent, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_exercise_notebook_with_answers_runs_under_papermill_on_cpu(solution, tmp_path, monkeypatch):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))  # the kernel inherits it
    solution_nb = nbformat.read(solution, as_version=4)
    chapter_nb = nbformat.read(REPO / "chapters" / solution.name, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in chapter_nb.cells), "no papermill parameters cell"
    ran = execute(restore_solutions(chapter_nb, solution_nb), tmp_path, parameters={"device": "cpu"})
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'device = "cpu"' in injected[0].source
    patterns = load_sanitizer(SANITIZER)
    fresh, stored = text_outputs(ran, patterns), text_outputs(solution_nb, patterns)
    for cell_id, texts in stored.items():
        if cell_id in fresh:
            assert fresh[cell_id] == texts, f"cell {cell_id} printed something else on the second run"
    assert "✅ passed" in "".join(t for texts in fresh.values() for t in texts)


def _has_model_parameter(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return any(line.startswith("model =") for line in cell.source.splitlines())


ANY_MODEL = [p for p in SOLUTIONS if _has_model_parameter(p)]


@pytest.mark.slow
@pytest.mark.parametrize("solution", ANY_MODEL, ids=_ids(ANY_MODEL))
def test_language_model_chapters_run_on_another_model(solution, tmp_path, monkeypatch):
    """One notebook, any model: the chapter runs top to bottom on a random GPT-2 (MLPs, gelu_new, tied
    embeddings, other sizes, its own token ids) loaded from a local folder, as a hub model would be."""
    from conftest import make_tiny_gpt2

    make_tiny_gpt2(tmp_path / "gpt2", n_positions=128, foreign_vocabulary=True)
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    ran = execute(nbformat.read(solution, as_version=4), tmp_path / "run",
                  parameters={"device": "cpu", "model": str(tmp_path / "gpt2")})
    errors = [o for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    setup = next(c for c in ran.cells if c.cell_type == "code" and "models.load(model_name" in c.source)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert str(tmp_path / "gpt2") in printed and "32" in printed                  # it really ran on the GPT-2 (d_model 32)


# --- puzzles: solutions/puzzles/*.ipynb -> puzzles/*.ipynb ----------------------------------------

PUZZLE_SOLUTIONS = sorted((REPO / "solutions" / "puzzles").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("solution", PUZZLE_SOLUTIONS, ids=_ids(PUZZLE_SOLUTIONS))
def test_puzzle_solution_passes_strict_nbval(solution, tmp_path):
    test_solution_passes_strict_nbval(solution, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("solution", PUZZLE_SOLUTIONS, ids=_ids(PUZZLE_SOLUTIONS))
def test_generated_puzzle_runs_top_to_bottom_on_cpu(solution, tmp_path, monkeypatch):
    """The learner's puzzle runs as generated (its answer cells say "no answer yet"), and with the answers put
    back every check says solved and prints what the stored solution printed."""
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    solution_nb = nbformat.read(solution, as_version=4)
    puzzle_nb = nbformat.read(REPO / "puzzles" / solution.name, as_version=4)
    ran = execute(puzzle_nb, tmp_path / "as_generated", parameters={"device": "cpu"})
    texts = [t for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", [])
             for t in [o.get("text", "")] + list(o.get("data", {}).values()) if isinstance(t, str)]
    assert not [o for c in ran.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    n_answers = sum("check_answer(" in c.source for c in puzzle_nb.cells if c.cell_type == "code")
    assert sum("⏳ no answer yet" in t for t in texts if t.startswith("⏳")) == n_answers
    ran = execute(restore_solutions(puzzle_nb, solution_nb), tmp_path / "restored", parameters={"device": "cpu"})
    patterns = load_sanitizer(SANITIZER)
    fresh, stored = text_outputs(ran, patterns), text_outputs(solution_nb, patterns)
    for cell_id, texts in stored.items():
        if cell_id in fresh:
            assert fresh[cell_id] == texts, f"cell {cell_id} printed something else on the second run"
    # one verdict per answer cell (shown as text and as HTML)
    assert sum(any("✅ solved" in t for t in texts) for texts in fresh.values()) == n_answers
