"""Compare a notebook's stored outputs with a fresh run's: text exactly, numbers within a tolerance.

Every notebook test uses this one comparison: the strict check of each solution, the generated exercise
notebook with its answers put back, and the puzzles. It replaces nbval, whose sanitizer can only rewrite
text and so cannot say "0.529 and 0.528 are the same measurement".

What is compared, cell by cell (matched by cell id):

* **the outputs' shape**: the same number of outputs, each of the same kind (stream name, display or
  result, error) with the same MIME types. So a figure that is no longer drawn (its ``image/png`` gone),
  a widget that is no longer shown, or an error (a traceback where the stored notebook has none) fails;
* **their text** (streams, ``text/plain``, ``text/html``, error name and message), after the sanitizer
  (``tests/sanitize.cfg``: addresses, timings, progress bars, widget reprs, embedded views) is applied.
  The text is split into numbers and the words between them. The words must match exactly, so a changed
  word, a missing or an extra line fails. Each number must match its twin within a tolerance:

  - a number printed with a decimal point or an exponent (``0.529``, ``87.8%``, ``3.5e-05``) may differ by
    ``max(units × one unit of its last printed digit, rel × its size)``: by default 2 units and 2%.
    One unit covers a value that sits on a rounding boundary (0.5285 prints 0.528 or 0.529), the second
    covers a value near zero, where relative error means nothing. The 2% covers the kernels: the same
    float32 computation run with other vector kernels (AVX-512, AVX2, no vector units) or on a GPU sums
    in another order, and an SAE or a probe trained for hundreds of steps carries that into the third
    significant digit (measured: up to 0.5% between AVX2 and no vector kernels, 1.3% between two CPUs;
    on an H200, the cells that do not train were reported within 2%). A real change (a bug, another
    seed, other data) moves a number by more: the tests show that a 5% change fails;
  - an integer (``400 people``, ``34 dead``, ``width 32``) counts or names something and must match
    exactly, unless the cell allows ``counts`` of slack;
  - numbers inside names (``L2N274``, ``blocks.0.hook_resid_post``, ``880x240``) are text.

A cell whose results legitimately move more (a training run whose trajectory depends on the kernels) says
so in its metadata, with its own bound and the reason, which the report repeats when it fails::

    "metadata": {"output_tolerance": {"rel": 0.2, "units": 5, "counts": 1,
                                      "reason": "trains toy models for 3000 steps; ..."}}

A cell that prints a rounding error (``max |difference| = 0.0000105``) bounds it with ``abs`` instead:
its size is the result, not its digits. Nothing is skipped: a cell without that entry gets the default bound, and a cell with it is still
compared, word by word and number by number.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import nbformat

from mi_course.notebook_run import execute, sanitize

TOLERANCE_KEY = "output_tolerance"
TEXT_KEYS = ("text/plain", "text/html")

# A number on its own: not part of a name (L2N274, blocks.0, 880x240). The sign belongs to the number
# unless it follows a letter or digit (in a range like 3-5 the dash is text).
NUMBER = re.compile(r"""
    (?<![\w.])                      # not inside a name, nor after a decimal point
    [-+\u2212]?                     # an optional sign (ASCII or the typographic minus)
    (?:\d+\.\d+|\.\d+|\d+)          # digits, with or without a decimal point
    (?:[eE][-+]?\d+)?               # an optional exponent
    (?!\w|\.\d)                     # nor followed by a letter or digit (880x240 is a name)
    """, re.VERBOSE)


@dataclass(frozen=True)
class Tolerance:
    """How far a fresh number may sit from its stored twin (see the module docstring).

    ``rel``: fraction of the larger magnitude; ``units``: units of the last printed digit; ``abs``: an
    absolute bound (for a number that is a rounding error, whose size is the result, not its digits);
    ``counts``: slack for integers; ``reason``: why a cell needs more than the default (required for any
    other bound).
    """

    rel: float = 0.02
    units: float = 2.0
    abs: float = 0.0
    counts: int = 0
    reason: str = ""

    def __str__(self) -> str:
        text = f"{self.rel:.0%} or {self.units:g} units of the last digit"
        text += f" or {self.abs:g}" if self.abs else ""
        text += f"; integers ±{self.counts}"
        return text + (f" ({self.reason})" if self.reason else "")


DEFAULT = Tolerance()


def cell_tolerance(cell: nbformat.NotebookNode) -> Tolerance:
    """The bound a cell's metadata declares, or the default. A declared bound must give its reason."""
    spec = cell.get("metadata", {}).get(TOLERANCE_KEY)
    if spec is None:
        return DEFAULT
    fields = {"rel", "units", "abs", "counts", "reason"}
    if set(spec) - fields or not str(spec.get("reason", "")).strip():
        raise ValueError(f"cell {cell.get('id')}: {TOLERANCE_KEY} needs a 'reason' and takes only "
                         f"{sorted(fields)} (got {sorted(spec)})")
    return Tolerance(rel=float(spec.get("rel", DEFAULT.rel)), units=float(spec.get("units", DEFAULT.units)),
                     abs=float(spec.get("abs", DEFAULT.abs)), counts=int(spec.get("counts", DEFAULT.counts)),
                     reason=str(spec["reason"]))


# --- numbers ----------------------------------------------------------------------------------

def _parse(number: str) -> tuple[float, float | None]:
    """(value, one unit of its last printed digit); the unit is ``None`` for an integer."""
    text = number.replace("\u2212", "-")
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa and not exponent:
        return float(int(text)), None
    decimals = len(mantissa.partition(".")[2])
    return float(text), 10.0 ** (int(exponent or 0) - decimals)


def numbers_match(stored: str, fresh: str, tol: Tolerance = DEFAULT) -> bool:
    """Whether two printed numbers are the same measurement under ``tol``.

    >>> numbers_match("0.529", "0.528"), numbers_match("20.83", "21.87"), numbers_match("400", "399")
    (True, False, False)
    """
    (a, unit_a), (b, unit_b) = _parse(stored), _parse(fresh)
    if unit_a is None and unit_b is None:
        return abs(a - b) <= tol.counts
    unit = max(u for u in (unit_a, unit_b) if u is not None)      # the coarser of the two printings
    allowed = max(tol.units * unit, tol.rel * max(abs(a), abs(b)), tol.abs)
    return abs(a - b) <= allowed * (1 + 1e-9)


def _split(text: str) -> tuple[list[str], list[str]]:
    """The words between numbers (one more than the numbers) and the numbers, in order."""
    return NUMBER.split(text), NUMBER.findall(text)


def compare_text(stored: str, fresh: str, tol: Tolerance = DEFAULT) -> str | None:
    """``None`` if ``fresh`` is ``stored`` up to number noise within ``tol``; else what differs, in a line or two."""
    if stored == fresh:
        return None
    (words_s, nums_s), (words_f, nums_f) = _split(stored), _split(fresh)
    if words_s != words_f:
        return _text_diff(stored, fresh)
    for i, (a, b) in enumerate(zip(nums_s, nums_f)):
        if not numbers_match(a, b, tol):
            line = words_s[i].rsplit("\n", 1)[-1][-60:]
            return f"{a} became {b} after {line.strip()!r} (allowed: {tol})"
    return None


def _text_diff(stored: str, fresh: str, context: int = 0) -> str:
    """The first few differing lines, as a unified diff."""
    diff = difflib.unified_diff(stored.splitlines(), fresh.splitlines(), "stored", "fresh", n=context, lineterm="")
    lines = [line[:160] for line in diff][2:14]
    return "the text differs:\n      " + "\n      ".join(lines) if lines else "the text differs in whitespace"


# --- outputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Output:
    """One output of a code cell, as compared: its kind (``stream:stdout``, ``display``, ``error``...),
    its MIME types and its sanitized text."""

    kind: str
    mimes: tuple[str, ...]
    text: str


def cell_outputs(cell: nbformat.NotebookNode, patterns: list[tuple[re.Pattern, str]]) -> list[Output]:
    """A code cell's outputs as compared. Consecutive chunks of one stream are joined (how a kernel
    splits its output differs between runs); ``execute_result`` and ``display_data`` are both ``display``."""
    outputs: list[Output] = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            kind = f"stream:{out.name}"
            if outputs and outputs[-1].kind == kind:
                outputs[-1] = Output(kind, (), outputs[-1].text + out.text)
            else:
                outputs.append(Output(kind, (), out.text))
        elif out.output_type == "error":
            outputs.append(Output("error", (), f"{out.ename}: {out.evalue}"))
        else:
            data = out.get("data", {})
            text = "\n".join(data[k] for k in TEXT_KEYS if k in data)
            outputs.append(Output("display", tuple(sorted(data)), text))
    return [Output(o.kind, o.mimes, sanitize(o.text, patterns)) for o in outputs]


def _describe(outputs: Iterable[Output]) -> str:
    return ", ".join(o.kind + (f" {'+'.join(o.mimes)}" if o.mimes else "") for o in outputs) or "nothing"


def compare_cell(stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode,
                 patterns: list[tuple[re.Pattern, str]]) -> list[str]:
    """What differs between a stored cell's outputs and a fresh run of it (empty: nothing)."""
    tol = cell_tolerance(stored)
    old, new = cell_outputs(stored, patterns), cell_outputs(fresh, patterns)
    errors = [o for o in new if o.kind == "error" and o not in old]
    if errors:
        return [f"it raised {errors[0].text[:300]}"]
    if [(o.kind, o.mimes) for o in old] != [(o.kind, o.mimes) for o in new]:
        return [f"its outputs changed shape: stored {_describe(old)}; fresh {_describe(new)}"]
    problems = []
    for i, (a, b) in enumerate(zip(old, new)):
        problem = compare_text(a.text, b.text, tol)
        if problem:
            problems.append(f"output {i + 1} ({a.kind}): {problem}")
    return problems


def compare_notebooks(stored: nbformat.NotebookNode, fresh: nbformat.NotebookNode,
                      patterns: list[tuple[re.Pattern, str]], cell_ids: Iterable[str] | None = None) -> list[str]:
    """Every difference between the stored outputs and a fresh run, one string per cell (empty: they match).

    ``cell_ids``: the code cells to compare (default: every code cell of ``stored``); each must be in
    ``fresh``. A generated notebook lacks the solution-only cells, so its test passes its own ids.
    """
    fresh_cells = {c.id: c for c in fresh.cells if c.cell_type == "code"}
    stored_cells = {c.id: c for c in stored.cells if c.cell_type == "code"}
    wanted = list(stored_cells) if cell_ids is None else [i for i in cell_ids if i in stored_cells]
    report = []
    for cell_id in wanted:
        if cell_id not in fresh_cells:
            report.append(f"cell {cell_id}: not in the fresh run")
            continue
        for problem in compare_cell(stored_cells[cell_id], fresh_cells[cell_id], patterns):
            first_line = stored_cells[cell_id].source.strip().splitlines()[:1]
            report.append(f"cell {cell_id} ({first_line[0][:50] if first_line else 'empty'}): {problem}")
    return report


def rerun(stored: nbformat.NotebookNode, workdir: Path, patterns: list[tuple[re.Pattern, str]],
          parameters: dict | None = None, notebook: nbformat.NotebookNode | None = None,
          ) -> tuple[nbformat.NotebookNode, list[str]]:
    """Run a notebook afresh with papermill in ``workdir`` and compare it with ``stored``'s outputs.

    ``notebook``: what to run (default: ``stored`` itself, without its outputs), e.g. a generated exercise
    notebook with its answers put back; its code cells are compared with their twins in ``stored``.
    Returns (the executed notebook, :func:`compare_notebooks`'s report).
    """
    blank = nbformat.from_dict(copy.deepcopy(notebook if notebook is not None else stored))
    for cell in blank.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    ran = execute(blank, workdir, parameters=parameters)
    ids = [c.id for c in blank.cells if c.cell_type == "code"]
    return ran, compare_notebooks(stored, ran, patterns, cell_ids=ids)
