"""Running notebooks the way the tests and benchmarks do.

- :func:`restore_solutions` puts the answers from a solution notebook back
  into its generated exercise notebook (matched by cell id);
- :func:`execute` runs a notebook with papermill, injecting parameters;
- :func:`load_sanitizer` and :func:`sanitize` remove from printed text what is not
  a measurement (addresses, timings, progress bars); :mod:`mi_course.notebook_compare`
  compares what is left.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import nbformat


def load_sanitizer(path: Path) -> list[tuple[re.Pattern, str]]:
    """Read a sanitizer file (nbval's format): sections of ``regex:`` / ``replace:`` pairs."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def sanitize(text: str, patterns: list[tuple[re.Pattern, str]]) -> str:
    """Apply every (regex, replacement) in order."""
    for regex, replacement in patterns:
        text = regex.sub(replacement, text)
    return text


def restore_solutions(chapter: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook with every cell's source taken back from the solution (same cell ids).

    The install cell that the build adds (tagged :data:`mi_course.launch.INSTALL_TAG`) has no twin and stays.
    """
    from mi_course.launch import INSTALL_TAG

    by_id = {c.id: c for c in solution.cells}
    restored = nbformat.from_dict(chapter)
    for cell in restored.cells:
        if cell.id not in by_id and INSTALL_TAG in cell.metadata.get("tags", []):
            continue
        if cell.id not in by_id:
            raise KeyError(f"cell {cell.id} of the exercise notebook has no twin in the solution")
        cell.source = by_id[cell.id].source
    return restored


def execute(nb: nbformat.NotebookNode, workdir: Path, parameters: dict | None = None,
            name: str = "run.ipynb", timeout: int = 600) -> nbformat.NotebookNode:
    """Run ``nb`` with papermill in ``workdir`` and return the executed notebook."""
    import papermill as pm

    workdir.mkdir(parents=True, exist_ok=True)
    src, dst = workdir / f"in_{name}", workdir / name
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(dst), parameters=parameters or {}, cwd=str(workdir),
                        kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    return nbformat.read(dst, as_version=4)
