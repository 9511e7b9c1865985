"""Solution notebooks run top to bottom on CPU and reproduce their stored outputs.

Every check compares stored and fresh outputs with mi_course.notebook_compare: text exactly, numbers within
a tolerance scaled to their printed precision (a cell that trains may declare a looser bound, with its
reason, in its metadata). tests/sanitize.cfg removes what is not a measurement (addresses, timings, bars).

- each solution, run afresh as stored, reproduces its stored outputs;
- the generated exercise notebook with the answers put back runs under papermill with device="cpu" and
  prints what the stored solution printed (a second run).

``.ci/run`` runs the tests marked ``notebook_outputs`` a second time with other CPU kernels
(``ATEN_CPU_CAPABILITY``), as another machine would compute them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mi_course.notebook_compare import rerun
from mi_course.notebook_run import execute, load_sanitizer, restore_solutions

REPO = Path(__file__).resolve().parents[1]
PATTERNS = load_sanitizer(REPO / "tests" / "sanitize.cfg")
SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))


def _ids(paths):
    return [p.stem for p in paths]


def _assert_reproduced(problems: list[str]) -> None:
    assert not problems, ("the fresh run printed something other than the stored outputs "
                          "(see mi_course/notebook_compare.py for what is compared):\n  " + "\n  ".join(problems))


def test_there_are_solution_notebooks():
    assert SOLUTIONS, "no solution notebooks found in solutions/"


@pytest.mark.slow
@pytest.mark.notebook_outputs
@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_reproduces_its_stored_outputs(solution, tmp_path, monkeypatch):
    # A fresh progress file, as when the outputs were stored: the last cell shows progress per chapter.
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))   # the kernel inherits it
    ran, problems = rerun(nbformat.read(solution, as_version=4), tmp_path / "run", PATTERNS)
    _assert_reproduced(problems)


@pytest.mark.slow
@pytest.mark.notebook_outputs
@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_exercise_notebook_with_answers_runs_under_papermill_on_cpu(solution, tmp_path, monkeypatch):
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))  # the kernel inherits it
    solution_nb = nbformat.read(solution, as_version=4)
    chapter_nb = nbformat.read(REPO / "chapters" / solution.name, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in chapter_nb.cells), "no papermill parameters cell"
    ran, problems = rerun(solution_nb, tmp_path, PATTERNS, parameters={"device": "cpu"},
                          notebook=restore_solutions(chapter_nb, solution_nb))
    injected = [c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'device = "cpu"' in injected[0].source
    _assert_reproduced(problems)
    assert any("✅ passed" in o.get("data", {}).get("text/plain", "") for c in ran.cells for o in c.get("outputs", []))


def _has_model_parameter(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    return any(line.startswith("model =") for line in cell.source.splitlines())


# Every language-model chapter and puzzle: the notebooks with a `model` parameter.
ANY_MODEL = [p for p in SOLUTIONS + sorted((REPO / "solutions" / "puzzles").glob("*.ipynb"))
             if _has_model_parameter(p)]

# The kernel's address space is capped at 10 GiB: one [50,257, 50,257] float32 matrix (9.4 GiB) does not fit
# beside what a kernel already reserves (test_memory_guard_stops_a_vocab_by_vocab_matrix shows it fails), and
# neither do logits for every position of a big batch. It is an address-space cap, not a measured peak: the
# address space a kernel reserves grows well past its resident memory (chapter 06 on the 4-layer test model
# peaks at 1.9 GB resident but needs more than 9 GiB of address space), so a tighter cap fails honest code.
VOCAB_GUARD_BYTES = 10 * 2**30
VOCAB_GUARD_CELL = f"import resource\nresource.setrlimit(resource.RLIMIT_AS, ({VOCAB_GUARD_BYTES}, {VOCAB_GUARD_BYTES}))"


def _guarded(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the memory guard as its first cell."""
    nb.cells.insert(0, nbformat.v4.new_code_cell(VOCAB_GUARD_CELL))
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("solution", ANY_MODEL, ids=_ids(ANY_MODEL))
def test_language_model_notebooks_run_on_another_model(solution, hub_shaped_gpt2, tmp_path, monkeypatch):
    """One notebook, any model: the chapter or puzzle runs top to bottom on a random GPT-2 (MLPs, gelu_new,
    tied embeddings, its own sizes and token ids) loaded from a local folder, as a hub model would be. It has
    GPT-2's vocabulary of 50,257 words (the world's and fillers; tests/conftest.HUB_SHAPE), and runs under
    the memory guard (VOCAB_GUARD_CELL)."""
    from conftest import HUB_SHAPE

    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(2**20))   # glibc returns blocks of 1 MB or more to the system
    # when freed, instead of keeping them in arenas whose reserved address space the guard would count
    ran = execute(_guarded(nbformat.read(solution, as_version=4)), tmp_path / "run",
                  parameters={"device": "cpu", "model": str(hub_shaped_gpt2)})      # a failing cell raises
    setup = next(c for c in ran.cells if c.cell_type == "code" and "models.load(model_name" in c.source)
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert str(hub_shaped_gpt2) in printed                                      # it really ran on the GPT-2 ...
    assert str(HUB_SHAPE["d_model"]) in printed.replace(str(hub_shaped_gpt2), "")  # ... of that d_model


def test_memory_guard_stops_a_vocab_by_vocab_matrix(tmp_path):
    """The guard of the any-model test works: under it a modest tensor is allocated, a [50,257, 50,257]
    float32 matrix is not (without the guard the test above could not catch one)."""
    from papermill.exceptions import PapermillExecutionError

    nb = _guarded(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import resource, torch\nsmall = torch.ones(4096, 4096)\n"
                                  "print(resource.getrlimit(resource.RLIMIT_AS)[0], float(small.sum()))"),
        nbformat.v4.new_code_cell("square = torch.empty(50_257, 50_257)")]))
    with pytest.raises(PapermillExecutionError, match="memory") as failed:
        execute(nb, tmp_path, parameters={})
    assert "square = torch.empty" in str(failed.value)                    # the vocab x vocab cell is the one that failed
    ran = [c for c in nbformat.read(tmp_path / "run.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert "".join(ran[1].outputs[0]["text"]).split() == [str(VOCAB_GUARD_BYTES), str(4096.0 ** 2)]


# --- puzzles: solutions/puzzles/*.ipynb -> puzzles/*.ipynb ----------------------------------------

PUZZLE_SOLUTIONS = sorted((REPO / "solutions" / "puzzles").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.notebook_outputs
@pytest.mark.parametrize("solution", PUZZLE_SOLUTIONS, ids=_ids(PUZZLE_SOLUTIONS))
def test_puzzle_solution_reproduces_its_stored_outputs(solution, tmp_path, monkeypatch):
    test_solution_reproduces_its_stored_outputs(solution, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.notebook_outputs
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
    ran, problems = rerun(solution_nb, tmp_path / "restored", PATTERNS, parameters={"device": "cpu"},
                          notebook=restore_solutions(puzzle_nb, solution_nb))
    _assert_reproduced(problems)
    # one verdict per answer cell (shown as text and as HTML)
    solved = [c for c in ran.cells if any("✅ solved" in o.get("data", {}).get("text/plain", "")
                                          for o in c.get("outputs", []))]
    assert len(solved) == n_answers


# --- claims (mi_course.claims) at another seed -----------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("notebook", SOLUTIONS + PUZZLE_SOLUTIONS, ids=_ids(SOLUTIONS + PUZZLE_SOLUTIONS))
def test_every_claim_holds_at_another_seed(notebook, tmp_path, monkeypatch):
    """A result counts only if it survives another seed: the notebook runs at seed=1, where every claim its
    prose makes must hold (MI_COURSE_CLAIMS=strict makes a claim that does not hold raise)."""
    monkeypatch.setenv("MI_COURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.setenv("MI_COURSE_CLAIMS", "strict")
    ran = execute(nbformat.read(notebook, as_version=4), tmp_path / "run", parameters={"device": "cpu", "seed": 1})
    errors = [f"cell {c.id}: {o.ename}: {o.evalue}" for c in ran.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
