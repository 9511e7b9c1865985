"""Build the learner notebooks from the solution notebooks (the single source).

Every notebook is written once, with its answers, in ``solutions/``:

* ``solutions/NN_slug.ipynb``       → ``chapters/NN_slug.ipynb``
* ``solutions/puzzles/name.ipynb``  → ``puzzles/name.ipynb``

The learner version is the same notebook with the answers taken out:

* in a code cell, the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` become a ``NotImplementedError`` stub;
* in a markdown cell, the lines between ``<!-- BEGIN SOLUTION -->`` and
  ``<!-- END SOLUTION -->`` become ``*Your answer here.*``;
* cells tagged ``solution-only`` are dropped;
* outputs, execution counts and editor noise in the metadata are dropped;
* a cell that installs the course at the release when it is missing (Colab, a plain JupyterHub) is added
  after the parameters cell (:mod:`mi_course.launch`; tagged ``install``, it has no twin in the solution).

Run ``mi-course build`` after editing a solution, and ``mi-course build --check``
(or the tests) to see whether anything is out of date. The same command also
writes ``binder/requirements.txt`` from ``constraints.txt`` (without the test tools).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Iterator

import nbformat
from nbformat import NotebookNode
from nbformat.v4.rwbase import rejoin_lines

from mi_course import launch

CODE_BEGIN = "### BEGIN SOLUTION"
CODE_END = "### END SOLUTION"
MARKDOWN_BEGIN = "<!-- BEGIN SOLUTION -->"
MARKDOWN_END = "<!-- END SOLUTION -->"
SOLUTION_ONLY_TAG = "solution-only"
CODE_STUB = ("# your code here", 'raise NotImplementedError("your code here")')
MARKDOWN_STUB = ("*Your answer here.*",)
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")
NBFORMAT_MINOR = 5  # cell ids exist from nbformat 4.5 on

CPU_INDEX_LINE = "--extra-index-url https://download.pytorch.org/whl/cpu"
# Pins of constraints.txt that Binder leaves out: the `dev` extra (tests, browser) and what only it needs.
# tests/test_launch.py checks that these are exactly the pins outside mi-course's runtime dependencies.
BINDER_LEAVES_OUT = ("coverage", "greenlet", "iniconfig", "playwright", "pluggy", "pytest", "pytest-timeout")


class BuildError(ValueError):
    """A solution notebook that cannot be turned into a learner notebook (e.g. unbalanced markers)."""


# --- one cell ---------------------------------------------------------------------------------

def _markers(cell_type: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(begin, end, stub lines) for this kind of cell; ``None`` if it has no solution regions."""
    if cell_type == "code":
        return CODE_BEGIN, CODE_END, CODE_STUB
    if cell_type == "markdown":
        return MARKDOWN_BEGIN, MARKDOWN_END, MARKDOWN_STUB
    return None


def _regions(source: str, cell_type: str, where: str) -> Iterator[tuple[int, int]]:
    """Yield (begin line, end line) index pairs of the solution regions; ``BuildError`` if unbalanced.

    A marker is a line that is exactly the marker once stripped. A line that
    mentions ``BEGIN SOLUTION``/``END SOLUTION`` in any other way is an error
    too: a misspelled marker would otherwise leak the answer.
    """
    markers = _markers(cell_type)
    if markers is None:
        return
    begin_marker, end_marker, _ = markers
    begin: int | None = None
    for i, line in enumerate(source.split("\n")):
        text = line.strip()
        if text == begin_marker:
            if begin is not None:
                raise BuildError(f"{where}: nested {begin_marker!r} on line {i + 1} "
                                 f"(the one on line {begin + 1} is still open)")
            begin = i
        elif text == end_marker:
            if begin is None:
                raise BuildError(f"{where}: {end_marker!r} on line {i + 1} without a {begin_marker!r} before it")
            yield begin, i
            begin = None
        elif "BEGIN SOLUTION" in text or "END SOLUTION" in text:
            raise BuildError(f"{where}: line {i + 1} looks like a misspelled marker: {line!r} "
                             f"(write exactly {begin_marker!r} / {end_marker!r} on a line of its own)")
    if begin is not None:
        raise BuildError(f"{where}: {begin_marker!r} on line {begin + 1} has no matching {end_marker!r}")


def strip_solutions(source: str, cell_type: str, where: str = "cell") -> str:
    """The cell source with every solution region replaced by the stub, at the marker's indentation."""
    markers = _markers(cell_type)
    regions = list(_regions(source, cell_type, where))
    if markers is None or not regions:
        return source
    lines = source.split("\n")
    out: list[str] = []
    start = 0
    for begin, end in regions:
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        out += lines[start:begin] + [indent + stub for stub in markers[2]]
        start = end + 1
    out += lines[start:]
    return "\n".join(out)


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# --- one notebook -----------------------------------------------------------------------------

def _derived_id(name: str, index: int, taken: set[str]) -> str:
    """A deterministic cell id from the notebook name and cell index, unique within ``taken``."""
    salt = 0
    while True:
        cell_id = hashlib.sha1(f"{name}:{index}:{salt}".encode()).hexdigest()[:8]
        if cell_id not in taken:
            return cell_id
        salt += 1


def ensure_ids(nb: NotebookNode, name: str) -> bool:
    """Give every cell an id (deterministic ones for cells without) and make the notebook 4.5.

    Duplicate ids are replaced too. Returns whether the notebook changed.
    """
    changed = nb.get("nbformat_minor", 0) < NBFORMAT_MINOR
    nb["nbformat_minor"] = max(nb.get("nbformat_minor", 0), NBFORMAT_MINOR)
    taken: set[str] = set()
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in taken:
            cell["id"] = cell_id = _derived_id(name, index, taken | {c.get("id") for c in nb.cells})
            changed = True
        taken.add(cell_id)
    return changed


def install_cell(tag: str) -> NotebookNode:
    """The code cell that installs the course at release ``tag`` where it is missing (see :mod:`mi_course.launch`)."""
    return NotebookNode(cell_type="code", id=launch.INSTALL_CELL_ID, execution_count=None, outputs=[],
                        metadata=NotebookNode(tags=[launch.INSTALL_TAG]), source=launch.install_cell_source(tag))


def build_notebook(nb: NotebookNode, name: str = "notebook", install_tag: str | None = None) -> NotebookNode:
    """The learner version of solution notebook ``nb`` (which is left unchanged).

    ``name`` (e.g. ``"solutions/03_superposition.ipynb"``) is used in error
    messages and to derive ids for cells that have none. With ``install_tag``
    (a release, e.g. ``"v0.1.0"``) the install cell follows the parameters cell
    (or opens the notebook, if it has none).
    """
    source_nb = copy.deepcopy(nb)
    ensure_ids(source_nb, name)
    cells = []
    for index, cell in enumerate(source_nb.cells):
        where = f"{name}, cell {index}"
        tags = _tags(cell)
        source = strip_solutions(cell.get("source", ""), cell.cell_type, where)  # validates markers
        if SOLUTION_ONLY_TAG in tags:
            continue
        new = NotebookNode(cell_type=cell.cell_type, id=cell["id"], metadata=NotebookNode(), source=source)
        if tags:
            new.metadata["tags"] = tags
        if cell.cell_type == "code":
            new.update(execution_count=None, outputs=[])
        elif "attachments" in cell:
            new["attachments"] = cell["attachments"]
        cells.append(new)
    if install_tag is not None:
        if any(c["id"] == launch.INSTALL_CELL_ID for c in cells):
            raise BuildError(f"{name}: a cell already has the install cell's id {launch.INSTALL_CELL_ID!r}")
        after = next((i + 1 for i, c in enumerate(cells) if "parameters" in _tags(c)), 0)
        cells.insert(after, install_cell(install_tag))
    metadata = NotebookNode({k: source_nb.metadata[k] for k in KEPT_NOTEBOOK_METADATA if k in source_nb.metadata})
    return nbformat.from_dict({"nbformat": 4, "nbformat_minor": NBFORMAT_MINOR, "metadata": metadata,
                               "cells": cells})


def answer_lines(nb: NotebookNode, min_chars: int = 12) -> list[str]:
    """Stripped lines that only the solution should contain (used by the leak test).

    These are the lines inside solution regions and in ``solution-only`` cells,
    minus trivial ones (shorter than ``min_chars``: ``pass``, ``return x``,
    short comments, blanks) and minus lines that also appear in the visible
    part of the notebook (those are public anyway, e.g. ``f = check(f)``).
    """
    hidden: list[str] = []
    visible: set[str] = set()
    for index, cell in enumerate(nb.cells):
        lines = cell.get("source", "").split("\n")
        if SOLUTION_ONLY_TAG in _tags(cell):
            hidden += lines
            continue
        inside = set()
        for begin, end in _regions(cell.get("source", ""), cell.cell_type, f"cell {index}"):
            inside.update(range(begin + 1, end))
        for i, line in enumerate(lines):
            if i in inside:
                hidden.append(line)
            else:
                visible.add(line.strip())
    markers = {CODE_BEGIN, CODE_END, MARKDOWN_BEGIN, MARKDOWN_END}
    result: list[str] = []
    for line in (h.strip() for h in hidden):
        if len(line) >= min_chars and line not in visible and line not in markers and line not in result:
            result.append(line)
    return result


# --- files ------------------------------------------------------------------------------------

def read_notebook(path: Path) -> NotebookNode:
    """Read a notebook without validating it (validation would add random ids to cells without).

    Sources come back as one string per cell, as ``nbformat.read`` gives them.
    """
    return rejoin_lines(nbformat.from_dict(json.loads(path.read_text(encoding="utf-8"))))


def notebook_text(nb: NotebookNode) -> str:
    """The notebook as Jupyter writes it: 1-space indent, sorted keys, trailing newline."""
    text = nbformat.writes(nb, version=nbformat.NO_CONVERT)
    return text if text.endswith("\n") else text + "\n"


def find_root(start: Path | None = None) -> Path:
    """The repository root: the first folder from ``start`` (default: cwd) upward holding ``solutions/``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(f"No solutions/ folder in {start} or any folder above it; "
                            "run this from inside the mi-course repository.")


def pairs(root: Path) -> list[tuple[Path, Path]]:
    """(solution, generated) notebook paths: chapters first, then puzzles, each sorted by name."""
    solutions = root / "solutions"
    chapters = [(s, root / "chapters" / s.name) for s in sorted(solutions.glob("[0-9][0-9]_*.ipynb"))]
    puzzles = [(s, root / "puzzles" / s.name) for s in sorted((solutions / "puzzles").glob("*.ipynb"))]
    return chapters + puzzles


def stale(root: Path) -> list[Path]:
    """Generated notebooks whose solution no longer exists."""
    generated = {out for _, out in pairs(root)}
    candidates = sorted((root / "chapters").glob("[0-9][0-9]_*.ipynb")) + sorted((root / "puzzles").glob("*.ipynb"))
    return [p for p in candidates if p not in generated]


def _pinned_name(pin: str) -> str:
    """``"pytest-timeout==2.4.0"`` → ``"pytest-timeout"`` (normalized: lower case, ``-`` for ``_`` and ``.``)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~;\[ ]", pin, maxsplit=1)[0]).lower()


def binder_requirements(constraints_text: str) -> str:
    """``binder/requirements.txt``: the CPU wheel index, then the pins of ``constraints.txt`` less
    :data:`BINDER_LEAVES_OUT` (the test tools)."""
    pins = [line.strip() for line in constraints_text.splitlines()
            if line.strip() and not line.strip().startswith("#")
            and _pinned_name(line.strip()) not in BINDER_LEAVES_OUT]
    header = [CPU_INDEX_LINE, "# Generated from constraints.txt by `mi-course build`; do not edit by hand."]
    return "\n".join(header + pins) + "\n"


def _has_outputs(path: Path) -> bool:
    """Whether a notebook on disk has been run (generated notebooks never have outputs)."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(c.get("outputs") or c.get("execution_count") for c in nb.get("cells", []))


def _planned(root: Path) -> dict[Path, str]:
    """Every generated file and the text it should have (solutions that lack ids included)."""
    planned: dict[Path, str] = {}
    tag = launch.release_tag(launch.project_version(root)) if (root / "pyproject.toml").exists() else None
    for src, out in pairs(root):
        name = src.relative_to(root).as_posix()
        nb = read_notebook(src)
        planned[out] = notebook_text(build_notebook(nb, name, install_tag=tag))
        if ensure_ids(nb, name):
            planned[src] = notebook_text(nb)
    constraints = root / "constraints.txt"
    if constraints.exists():
        planned[root / "binder" / "requirements.txt"] = binder_requirements(constraints.read_text(encoding="utf-8"))
    return planned


def build_all(root: Path, check: bool = False, force: bool = False) -> list[Path]:
    """Build every learner notebook under ``root`` (and ``binder/requirements.txt``).

    With ``check=True`` nothing is written; the result lists the files that are
    out of date or missing, generated notebooks without a solution (stale), and
    solutions that still need cell ids. Otherwise the changed files are written
    and returned; stale notebooks are left for you to delete (see :func:`stale`).

    A notebook that has outputs was probably run by a learner, so it is not
    overwritten unless ``force=True`` (``BuildError`` lists them).
    """
    root = Path(root)
    planned = _planned(root)
    changed = [p for p, text in planned.items()
               if not p.exists() or p.read_bytes().decode("utf-8", errors="replace") != text]
    if check:
        return changed + stale(root)
    generated = {out for _, out in pairs(root)}
    if not force:
        run = [p for p in changed if p in generated and p.exists() and _has_outputs(p)]
        if run:
            raise BuildError("These notebooks have outputs, so they may hold a learner's work; "
                             "not overwriting them (use --force to overwrite): "
                             + ", ".join(str(p.relative_to(root)) for p in run))
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(planned[path].encode("utf-8"))
    return changed
