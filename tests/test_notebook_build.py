"""The learner notebooks are generated from solutions/ correctly, are in sync, and leak no answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from mi_course.notebook_build import (CODE_BEGIN, CODE_END, CODE_STUB, MARKDOWN_STUB, SOLUTION_ONLY_TAG, BuildError,
                                      answer_lines, build_all, build_notebook, notebook_text, pairs, read_notebook)

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "puzzle_solution" / "toy_puzzle.ipynb"
STUB = CODE_STUB[1]


def _fixture_tree(tmp_path: Path) -> Path:
    """A tiny repository: one chapter and one puzzle, both the fixture notebook."""
    (tmp_path / "solutions" / "puzzles").mkdir(parents=True)
    shutil.copy(FIXTURE, tmp_path / "solutions" / "puzzles" / "toy_puzzle.ipynb")
    shutil.copy(FIXTURE, tmp_path / "solutions" / "99_toy.ipynb")
    return tmp_path


def _all_pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    """The repository's (solution, generated) pairs, plus the fixture's (built in a temp tree)."""
    tree = _fixture_tree(tmp_path)
    build_all(tree)
    return pairs(REPO) + pairs(tree)


def _code(cell_source: str) -> nbformat.NotebookNode:
    return nbformat.from_dict({"cells": [{"cell_type": "code", "id": "c", "metadata": {}, "outputs": [],
                                          "execution_count": None, "source": cell_source}],
                               "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_fixture_becomes_the_expected_learner_notebook():
    solution = read_notebook(FIXTURE)
    learner = build_notebook(solution, "toy_puzzle.ipynb")

    assert [c.id for c in learner.cells][:3] == ["intro", "setup", "relu-exercise"]  # ids kept
    assert len(learner.cells) == len(solution.cells) - 1  # the solution-only cell is gone
    assert not any(SOLUTION_ONLY_TAG in c.metadata.get("tags", []) for c in learner.cells)

    intro, setup, exercise, last = learner.cells
    assert intro.source.endswith("inputs?\n\n" + MARKDOWN_STUB[0])
    assert exercise.source.split("\n")[:4] == [
        "def relu_sum(x: torch.Tensor) -> torch.Tensor:",
        '    """Sum of the positive parts of x."""',
        "    # your code here",
        '    raise NotImplementedError("your code here")',
    ]
    assert exercise.source.count(STUB) == 2
    assert exercise.source.endswith("result = relu_sum(torch.tensor([-1.0, 2.0]))")

    for cell in (setup, exercise, last):
        assert cell.outputs == [] and cell.execution_count is None
    assert setup.metadata == {"tags": ["setup"]}  # collapsed/scrolled/execution noise dropped
    assert set(learner.metadata) == {"kernelspec", "language_info"}
    assert (learner.nbformat, learner.nbformat_minor) == (4, 5)
    nbformat.validate(learner)

    # A cell without an id gets a deterministic one.
    assert last.id == build_notebook(read_notebook(FIXTURE), "toy_puzzle.ipynb").cells[-1].id
    assert "id" not in solution.cells[-1]  # the input notebook is not modified


def test_build_all_is_idempotent_and_check_sees_drift(tmp_path):
    tree = _fixture_tree(tmp_path)
    assert {p.name for p in build_all(tree, check=True)} == {"toy_puzzle.ipynb", "99_toy.ipynb"}

    written = build_all(tree)
    generated = tree / "puzzles" / "toy_puzzle.ipynb"
    assert generated in written and (tree / "chapters" / "99_toy.ipynb") in written
    # The solutions got ids written into them (the fixture has a cell without one).
    assert all("id" in c for c in read_notebook(tree / "solutions" / "99_toy.ipynb").cells)
    first = generated.read_bytes()
    assert first.endswith(b"}\n") and b'\n "cells": [' in first  # 1-space indent, trailing newline

    assert build_all(tree) == []
    assert build_all(tree, check=True) == []
    assert generated.read_bytes() == first

    generated.write_text(generated.read_text().replace("your code here", "changed"))
    assert build_all(tree, check=True) == [generated]
    (tree / "puzzles" / "orphan.ipynb").write_text(generated.read_text())
    assert build_all(tree, check=True) == [generated, tree / "puzzles" / "orphan.ipynb"]


def test_run_notebooks_are_not_overwritten_without_force(tmp_path):
    tree = _fixture_tree(tmp_path)
    build_all(tree)
    chapter = tree / "chapters" / "99_toy.ipynb"
    nb = read_notebook(chapter)
    nb.cells[1].execution_count = 1  # a learner ran it
    chapter.write_text(notebook_text(nb))
    with pytest.raises(BuildError, match="99_toy.ipynb"):
        build_all(tree)
    assert build_all(tree, force=True) == [chapter]


@pytest.mark.parametrize("source, problem", [
    (f"{CODE_BEGIN}\nx = 1", "no matching"),
    (f"x = 1\n{CODE_END}", "without"),
    (f"{CODE_BEGIN}\n  {CODE_BEGIN}\nx = 1\n  {CODE_END}\n{CODE_END}", "nested"),
    ("# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION", "misspelled"),
])
def test_unbalanced_markers_are_errors_naming_notebook_and_cell(source, problem):
    with pytest.raises(BuildError, match=rf"broken\.ipynb, cell 0: .*{problem}"):
        build_notebook(_code(source), "broken.ipynb")


def test_markers_keep_their_indentation_and_several_regions_work():
    nb = _code(f"for i in range(3):\n    if i:\n        {CODE_BEGIN}\n        y = i\n        {CODE_END}\n"
               f"{CODE_BEGIN}\nz = 2\n{CODE_END}")
    assert build_notebook(nb).cells[0].source.split("\n") == [
        "for i in range(3):", "    if i:", *("        " + s for s in CODE_STUB), *CODE_STUB]


def test_repository_generated_notebooks_are_in_sync():
    stale = build_all(REPO, check=True)
    assert stale == [], ("out of date (run `mi-course build`): "
                         + ", ".join(str(p.relative_to(REPO)) for p in stale))


def test_repository_has_solution_notebooks():
    if not pairs(REPO):
        pytest.skip("no solutions/*.ipynb yet (chapter 03 is being written)")
    assert all(out.exists() for _, out in pairs(REPO))


def test_no_answer_leaks(tmp_path):
    for src, out in _all_pairs(tmp_path):
        answers = answer_lines(read_notebook(src))
        learner_lines = {line.strip() for c in read_notebook(out).cells for line in c.source.split("\n")}
        leaked = [a for a in answers if a in learner_lines]
        assert not leaked, f"{out.name} contains answer lines from {src.name}: {leaked}"


def test_every_exercise_region_became_a_stub(tmp_path):
    for src, out in _all_pairs(tmp_path):
        solution = read_notebook(src)
        regions = sum(line.strip() == CODE_BEGIN
                      for c in solution.cells if c.cell_type == "code" and SOLUTION_ONLY_TAG not in c.metadata.get("tags", [])
                      for line in c.source.split("\n"))
        stubs = sum(line.strip() == STUB for c in read_notebook(out).cells for line in c.source.split("\n"))
        assert stubs == regions, f"{out.name}: {stubs} stubs for {regions} solution regions"


def test_the_install_cell_follows_the_parameters_cell_or_opens_the_notebook():
    from mi_course import launch

    fixture = build_notebook(read_notebook(FIXTURE), "toy_puzzle.ipynb", install_tag="v9.8.7")
    assert fixture.cells[0].id == launch.INSTALL_CELL_ID                  # no parameters cell: it comes first
    assert fixture.cells[0].metadata == {"tags": [launch.INSTALL_TAG]}
    assert "mi-course/mi-course@v9.8.7" in fixture.cells[0].source
    nbformat.validate(fixture)

    nb = _code("x = 1")
    nb.cells.insert(0, nbformat.v4.new_code_cell('device = "auto"', id="p", metadata={"tags": ["parameters"]}))
    assert [c.id for c in build_notebook(nb, install_tag="v1.0.0").cells] == ["p", launch.INSTALL_CELL_ID, "c"]
    assert [c.id for c in build_notebook(nb).cells] == ["p", "c"]       # no tag, no install cell
    nb.cells[1].id = launch.INSTALL_CELL_ID
    with pytest.raises(BuildError, match="install cell"):
        build_notebook(nb, install_tag="v1.0.0")


def test_binder_requirements_leave_out_the_test_tools():
    from mi_course.notebook_build import CPU_INDEX_LINE, binder_requirements

    text = binder_requirements("# header\npytest==9.2.0\nPytest_Timeout==2.4.0\ntorch==2.13.0+cpu\nplaywright==1.0\n")
    assert text.splitlines()[0] == CPU_INDEX_LINE
    assert [line for line in text.splitlines() if not line.startswith(("#", "--"))] == ["torch==2.13.0+cpu"]
