"""Running notebooks the way the tests and benchmarks do, and comparing their outputs.

- :func:`restore_solutions` puts the answers from a solution notebook back
  into its generated exercise notebook (matched by cell id);
- :func:`execute` runs a notebook with papermill, injecting parameters;
- :func:`text_outputs` and :func:`load_sanitizer` give the sanitized text a
  notebook printed, so two runs can be compared the way nbval compares them.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import nbformat

TEXT_KEYS = ("text/plain", "text/html")


def load_sanitizer(path: Path) -> list[tuple[re.Pattern, str]]:
    """Read an nbval sanitizer file: sections of ``regex:`` / ``replace:`` pairs."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def sanitize(text: str, patterns: list[tuple[re.Pattern, str]]) -> str:
    """Apply every (regex, replacement) in order."""
    for regex, replacement in patterns:
        text = regex.sub(replacement, text)
    return text


def text_outputs(nb: nbformat.NotebookNode, patterns: list[tuple[re.Pattern, str]]) -> dict[str, list[str]]:
    """Sanitized text of each code cell's outputs (streams and text MIME types), by cell id.

    Consecutive chunks of one stream are joined: how a kernel splits its output differs between runs.
    """
    result: dict[str, list[str]] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        previous_stream = None
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                if previous_stream == out.name:   # one stream may arrive in several chunks: join them
                    texts[-1] += out.text
                else:
                    texts.append(out.text)
                previous_stream = out.name
                continue
            previous_stream = None
            if out.output_type == "error":
                texts.append(f"{out.ename}: {out.evalue}")
            else:
                texts.extend(out.get("data", {}).get(k, "") for k in TEXT_KEYS if k in out.get("data", {}))
        result[cell.id] = [sanitize(t, patterns) for t in texts]
    return result


def restore_solutions(chapter: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The exercise notebook with every cell's source taken back from the solution (same cell ids)."""
    by_id = {c.id: c for c in solution.cells}
    restored = nbformat.from_dict(chapter)
    for cell in restored.cells:
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
