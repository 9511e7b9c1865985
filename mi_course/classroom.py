"""What the room is doing, with consent: anonymous exports of progress, and a class report built from them.

A learner runs ``mi-course progress --export FILE`` (or :func:`write_export`) and hands the file in. An
instructor runs ``mi-course class-report FOLDER`` (or, in a notebook, :func:`class_report` and :func:`plot`)
to see, per exercise, puzzle question and prediction, where the room stalls.

**An export** (schema ``mi-course-class-export``, :data:`SCHEMA_VERSION` 1) holds counts, flags and
durations only::

    {"schema": "mi-course-class-export", "schema_version": 1,
     "export_id": "9f1c...",            # random, new for every export: spots a file handed in twice
     "course_version": "0.1.0",
     "exercises":   {"03.tms_loss": {"attempts": 3, "hints": 1, "passed": true,
                                     "first_try": false, "seconds_to_pass": 131}},
     "puzzles":     {"P1": {... the same fields; "passed" means solved ...}},
     "predictions": {"03.dense_features": {"right": true}}}

``attempts`` counts the checks run until the first pass (or so far, if not passed); ``hints`` is the
highest hint revealed; ``first_try``, ``attempts`` and ``seconds_to_pass`` are ``null`` where unknown
(an item passed before the progress file counted attempts). Only the course's own item ids appear, and
only items the learner touched. Nothing else: no name, user, machine, path, code, answer (the learner's
predictions and puzzle answers stay on their machine) and no clock time (durations only).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from . import __version__, progress
from .checks import exercises, questions
from .course import CHAPTERS
from .puzzles import PUZZLES, question_ids

SCHEMA = "mi-course-class-export"
SCHEMA_VERSION = 1
SECTIONS = ("exercises", "puzzles", "predictions")
KINDS = {"exercises": "exercise", "puzzles": "puzzle", "predictions": "question"}


class ExportError(ValueError):
    """A file that is not a usable export (the message says why, for the person who ran the command)."""


# --- the learner's side: writing an export ------------------------------------------------------

def _item(passed: bool, entry: dict[str, Any]) -> dict[str, Any] | None:
    """One exercise's or puzzle question's export record from its progress; None if it was never touched.

    ``entry``: its ``activity`` record (empty for an item passed before attempts were counted)."""
    attempts, hints = progress.count(entry, "attempts"), progress.count(entry, "hints")
    if not passed and attempts == 0 and hints == 0:
        return None
    seconds = entry.get("seconds_to_pass")
    to_pass = progress.count(entry, "attempts_to_pass") or None
    return {"attempts": to_pass if passed else attempts,
            "hints": hints,
            "passed": passed,
            "first_try": (to_pass == 1 if to_pass else None) if passed else (False if attempts else None),
            "seconds_to_pass": round(seconds) if passed and to_pass and isinstance(seconds, (int, float))
            and not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0 else None}


def export_data(path: Path | None = None) -> dict[str, Any]:
    """The anonymous export of a progress file (default: the learner's own); see the module docstring."""
    data = progress.load(path)
    done, act = set(data["passed"]), progress.activity(path)
    guesses = progress.predictions(path)
    out: dict[str, Any] = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "export_id": uuid.uuid4().hex,
                           "course_version": __version__, "exercises": {}, "puzzles": {}, "predictions": {}}
    for section, ids in (("exercises", exercises()), ("puzzles", question_ids())):
        for item_id in ids:
            record = _item(item_id in done, act.get(item_id, {}))
            if record is not None:
                out[section][item_id] = record
    for question_id in questions():
        if isinstance(guesses.get(question_id), dict):
            right = guesses[question_id].get("right")
            out["predictions"][question_id] = {"right": right if isinstance(right, bool) else None}
    return out


def write_export(out: Path, path: Path | None = None) -> dict[str, Any]:
    """Write the export of a progress file to ``out`` atomically; returns what was written.

    Refuses (:class:`ExportError`) to replace an existing file that is not itself an export, so that
    a typo cannot overwrite the progress file or anything else."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise ExportError(f"{out} is a folder; give a file name, e.g. {out / 'mi-course-export.json'}")
    if out.exists() and out.stat().st_size > 0:
        try:
            read_export(out)
        except ExportError:
            raise ExportError(f"{out} exists and is not an mi-course export; not overwriting it "
                              "(choose another file name)") from None
    data = export_data(path)
    progress.write_json_atomic(data, out)
    return data


# --- the instructor's side: reading exports -----------------------------------------------------

def _check_item(where: str, record: Any, section: str) -> None:
    """Raise :class:`ExportError` unless ``record`` has exactly the fields and types of its section."""
    if not isinstance(record, dict):
        raise ExportError(f"{where} is not an object")
    if section == "predictions":
        expected = {"right": (bool, type(None))}
    else:
        expected = {"attempts": (int, type(None)), "hints": (int,), "passed": (bool,),
                    "first_try": (bool, type(None)), "seconds_to_pass": (int, float, type(None))}
    if set(record) != set(expected):
        raise ExportError(f"{where} has fields {sorted(record)}, expected {sorted(expected)}")
    for key, types in expected.items():
        value = record[key]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)) \
                or (numeric and (not math.isfinite(value) or value < 0)):
            raise ExportError(f"{where}.{key} is {value!r}")


def validate(data: Any) -> dict[str, Any]:
    """``data`` if it is an export of this schema version; else :class:`ExportError` saying what it is."""
    if not isinstance(data, dict):
        raise ExportError(f"not an mi-course export (a JSON {type(data).__name__}, not an object)")
    if data.get("schema") != SCHEMA:
        if "passed" in data and "schema" not in data:
            raise ExportError("a progress file, not an export (it may hold times and answers): ask for the file "
                              "that `mi-course progress --export FILE` writes")
        raise ExportError("not an mi-course export (no \"schema\": \"mi-course-class-export\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ExportError(f"export schema version {data.get('schema_version')!r}; this mi-course reads version "
                          f"{SCHEMA_VERSION} (use the mi-course version the export was made with)")
    if not isinstance(data.get("export_id"), str) or not data["export_id"]:
        raise ExportError("no export_id")
    for section in SECTIONS:
        if not isinstance(data.get(section), dict):
            raise ExportError(f"no {section!r} section")
        for item_id, record in data[section].items():
            _check_item(f"{section}[{item_id!r}]", record, section)
    return data


def read_export(path: Path) -> dict[str, Any]:
    """One export file, validated; :class:`ExportError` with the reason if it cannot be used."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"unreadable ({type(exc).__name__}: {exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ExportError(f"not JSON ({exc})") from None
    return validate(data)


def export_files(paths: Iterable[Path | str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The ``*.json`` files named or found (recursively) in the folders named, and the paths that gave none:
    (files, [(path, why)])."""
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file())
            files += found
            if not found:
                problems.append((path, "a folder with no .json files"))
        elif path.is_file():
            files.append(path)
        else:
            problems.append((path, "no such file or folder"))
    return list(dict.fromkeys(files)), problems


def collect(paths: Iterable[Path | str]) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """Read every export in ``paths`` (files and folders): (the usable exports, [(skipped path, why)]).

    A corrupt file, a foreign JSON file, another schema version or a second copy of an export (same
    ``export_id``) is skipped with its reason; nothing is ever written to the inputs."""
    files, skipped = export_files(paths)
    loaded: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in files:
        try:
            data = read_export(path)
        except ExportError as exc:
            skipped.append((path, str(exc)))
            continue
        if data["export_id"] in seen:
            skipped.append((path, f"the same export as {seen[data['export_id']]} (same export_id): counted once"))
            continue
        seen[data["export_id"]] = path
        loaded.append(data)
    return loaded, skipped


# --- the report ---------------------------------------------------------------------------------

@dataclass
class Row:
    """One item of the class report. Rates are fractions of ``tried``; None where nothing to count."""

    item: str
    kind: str                                 # "exercise" | "puzzle" | "question"
    tried: int                                # learners with any activity (a question: who predicted)
    reached: float                            # tried / learners
    pass_rate: float | None = None            # exercises and puzzles
    first_try_rate: float | None = None       # among those whose first try is known
    median_attempts: float | None = None      # checks until the first pass (or so far)
    hint_rate: float | None = None            # revealed at least one hint
    median_hints: float | None = None
    median_seconds_to_pass: float | None = None
    right_rate: float | None = None           # questions: first predictions right, among those revealed
    flags: list[str] = field(default_factory=list)


def course_order() -> list[str]:
    """Every item id in course order: each chapter's exercises then its questions, then the puzzles'."""
    order: list[str] = []
    for ch in CHAPTERS:
        order += exercises(ch.number) + questions(ch.number)
    return order + [q for p in PUZZLES for q in p.questions]


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _row(item_id: str, section: str, records: list[dict[str, Any]], learners: int) -> Row:
    """Aggregate one item's records (one per learner who touched it)."""
    row = Row(item_id, KINDS[section], len(records), len(records) / learners)
    if section == "predictions":
        row.right_rate = _rate([r["right"] for r in records if r["right"] is not None])
        return row
    row.pass_rate = _rate([r["passed"] for r in records])
    row.first_try_rate = _rate([r["first_try"] for r in records if r["first_try"] is not None])
    row.median_attempts = _median([r["attempts"] for r in records if r["attempts"] is not None])
    row.hint_rate = _rate([r["hints"] > 0 for r in records])
    row.median_hints = _median([r["hints"] for r in records])
    row.median_seconds_to_pass = _median([r["seconds_to_pass"] for r in records if r["seconds_to_pass"] is not None])
    return row


def stall_flags(row: Row, min_learners: int = 2, max_attempts: float = 4, max_minutes: float = 10) -> list[str]:
    """Why the room may be stuck on this item (empty if nothing stands out, or fewer than ``min_learners``
    tried it): under half pass, a median of ``max_attempts`` checks or more, most revealed a hint, a median
    of ``max_minutes`` or more from first attempt to pass; for a question, most first predictions wrong."""
    if row.tried < min_learners:
        return []
    flags = []
    if row.pass_rate is not None and row.pass_rate < 0.5:
        flags.append("under half pass")
    if row.median_attempts is not None and row.median_attempts >= max_attempts:
        flags.append("many attempts")
    if row.hint_rate is not None and row.hint_rate > 0.5:
        flags.append("most need hints")
    if row.median_seconds_to_pass is not None and row.median_seconds_to_pass >= 60 * max_minutes:
        flags.append("slow")
    if row.right_rate is not None and row.right_rate < 0.5:
        flags.append("most predicted wrong")
    return flags


def report(exports: list[dict[str, Any]], min_learners: int = 2) -> list[Row]:
    """One :class:`Row` per item that any learner touched, in course order (items this course does not
    know, e.g. from another version, come last). ``exports``: validated exports (:func:`collect`)."""
    if not exports:
        raise ExportError("no usable exports")
    order = {item: i for i, item in enumerate(course_order())}
    rows = []
    for section in SECTIONS:
        ids = {item for data in exports for item in data[section]}
        for item_id in ids:
            records = [data[section][item_id] for data in exports if item_id in data[section]]
            row = _row(item_id, section, records, len(exports))
            row.flags = stall_flags(row, min_learners)
            rows.append(row)
    return sorted(rows, key=lambda r: (order.get(r.item, len(order)), r.item))


def class_report(paths: Iterable[Path | str], min_learners: int = 2) -> tuple[list[Row], int, list[tuple[Path, str]]]:
    """The report from export files and folders, for a notebook: (rows, learners, [(skipped path, why)]).
    :class:`ExportError` when no usable export is found."""
    exports, skipped = collect(paths)
    if not exports:
        why = "; ".join(f"{p}: {reason}" for p, reason in skipped) or "no paths given"
        raise ExportError(f"no usable exports ({why})")
    return report(exports, min_learners), len(exports), skipped


def to_dataframe(rows: list[Row]):
    """The rows as a pandas DataFrame (one row per item, flags joined by "; ")."""
    import pandas as pd

    return pd.DataFrame([{**asdict(r), "flags": "; ".join(r.flags)} for r in rows])


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_table(rows: list[Row], learners: int) -> str:
    """The report as the text table ``mi-course class-report`` prints."""
    head = (f"{'item':<34} {'kind':<8} {'tried':>7} {'pass':>5} {'1st try':>7} {'attempts':>8} {'hints':>6} "
            f"{'to pass':>8} {'right':>6}  where the room stalls")
    lines = [f"{learners} learner{'s' if learners != 1 else ''}; medians for attempts and time to pass, "
             "'hints': share who revealed one", "", head]
    for r in rows:
        flags = "⚠ " + ", ".join(r.flags) if r.flags else ""
        lines.append(f"{r.item:<34} {r.kind:<8} {r.tried:>3}/{learners:<3} {_pct(r.pass_rate):>5} "
                     f"{_pct(r.first_try_rate):>7} {_num(r.median_attempts):>8} {_pct(r.hint_rate):>6} "
                     f"{_duration(r.median_seconds_to_pass):>8} {_pct(r.right_rate):>6}  {flags}".rstrip())
    return "\n".join(lines)


def to_csv(rows: list[Row]) -> str:
    """The report as CSV text (rates as fractions, times in seconds, flags joined by "; ")."""
    buffer = io.StringIO()
    names = list(asdict(rows[0])) if rows else [f.name for f in Row.__dataclass_fields__.values()]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({**asdict(r), "flags": "; ".join(r.flags)})
    return buffer.getvalue()


def plot(rows: list[Row], learners: int):
    """A figure of the report: one line per item (course order, top to bottom), four panels: passed and
    first try (a question: predicted right), median attempts, share who revealed a hint, median minutes to
    pass. Items the room stalls on have red labels. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    y = list(range(len(rows)))[::-1]
    fig, axes = plt.subplots(1, 4, sharey=True, figsize=(13, 1.2 + 0.28 * max(len(rows), 1)))
    nan = float("nan")
    main = [r.right_rate if r.kind == "question" else r.pass_rate for r in rows]
    axes[0].barh(y, [100 * (m if m is not None else nan) for m in main], color="#9ccc65", label="passed (question: right)")
    axes[0].barh(y, [100 * (r.first_try_rate if r.first_try_rate is not None else nan) for r in rows], height=0.4,
                 color="#33691e", label="first try")
    axes[0].set(xlim=(0, 100), xlabel="% of learners who tried")
    panels = [(axes[1], [r.median_attempts for r in rows], 1, "median attempts"),
              (axes[2], [r.hint_rate for r in rows], 100, "% who revealed a hint"),
              (axes[3], [r.median_seconds_to_pass for r in rows], 1 / 60, "median minutes to pass")]
    for ax, values, scale, label in panels:
        scaled = [v * scale if v is not None else nan for v in values]
        ax.barh(y, scaled, color="#5c6bc0")
        ax.set(xlim=(0, 1.05 * max([v for v in scaled if v == v] + [0]) or 1), xlabel=label)
    axes[0].set_yticks(y, [f"{r.item} ({r.tried}/{learners})" for r in rows], fontsize=8)
    for tick, r in zip(axes[0].get_yticklabels(), rows):
        tick.set_color("#c62828" if r.flags else "black")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper left", fontsize=8, frameon=False)
    fig.suptitle(f"Where the room stalls: {learners} learner{'s' if learners != 1 else ''} "
                 "(red: flagged; (n/N): tried/learners)")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
