"""Your progress, per chapter and puzzle: a table for ``mi-course progress`` and a widget for notebooks.

    >>> from mi_course import dashboard
    >>> dashboard.widget()        # one progress bar per chapter

The passes themselves are stored by :mod:`mi_course.progress`, which the
grader writes to; this module reads them next to the course map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import progress
from .checks import exercises, questions
from .course import CHAPTERS
from .puzzles import PUZZLES


def summary(path: Path | None = None) -> list[dict[str, Any]]:
    """One row per ready chapter that has exercises: number, title, passed, total, missing ids.

    (A chapter still being written may register exercises before its notebook exists: not shown.)
    """
    done, predicted = progress.passed(path), progress.predictions(path)
    rows = []
    for ch in CHAPTERS:
        ids = exercises(ch.number)
        if not ids or ch.status != "ready":
            continue
        asked = questions(ch.number)
        rows.append({"chapter": ch.number, "title": ch.title, "passed": sum(i in done for i in ids),
                     "total": len(ids), "missing": [i for i in ids if i not in done],
                     "questions": len(asked), "predicted": sum(q in predicted for q in asked),
                     "right": sum(bool(predicted.get(q, {}).get("right")) for q in asked)})
    return rows


def puzzle_summary(path: Path | None = None) -> list[dict[str, Any]]:
    """One row per ready puzzle: id, title, solved (its main question), bonus answered, bonus total."""
    done = progress.passed(path)
    return [{"puzzle": p.id, "title": p.title, "solved": p.id in done,
             "bonus": sum(q in done for q in p.questions[1:]), "bonus_total": len(p.questions) - 1}
            for p in PUZZLES if p.status == "ready"]


def table(path: Path | None = None) -> str:
    """The progress table that ``mi-course progress`` prints: chapters, then puzzles."""
    rows = summary(path)
    lines = [f"Progress file: {path or progress.progress_path()}", "",
             f"{'chapter':<40} {'passed':>8}  {'bar':<24} predictions (made, right)"]
    for r in rows:
        bar = "█" * r["passed"] + "·" * (r["total"] - r["passed"])
        guesses = f"{r['predicted']}/{r['questions']}, {r['right']} right" if r["questions"] else ""
        lines.append(f"{r['chapter'] + ' ' + r['title']:<40} {r['passed']:>3}/{r['total']:<4}  {bar:<24} {guesses}")
    puzzles = puzzle_summary(path)
    if puzzles:
        lines += ["", f"{'puzzle':<40} {'solved':>8}  bonus   ({sum(p['solved'] for p in puzzles)}/{len(puzzles)} solved)"]
        for p in puzzles:
            mark = "✓" if p["solved"] else "·"
            lines.append(f"{p['puzzle'] + ' ' + p['title']:<40} {mark:>8}  {p['bonus']}/{p['bonus_total']}")
    return "\n".join(lines)


def widget(path: Path | None = None):
    """A small ipywidgets view of the same table, one progress bar per chapter."""
    import ipywidgets as w

    items = [w.HTML("<b>Your progress</b>")]
    for r in summary(path):
        bar = w.IntProgress(value=r["passed"], min=0, max=r["total"], description=r["chapter"],
                            bar_style="success" if r["passed"] == r["total"] else "info")
        items.append(w.HBox([bar, w.Label(f"{r['passed']}/{r['total']} · {r['title']}")]))
    puzzles = puzzle_summary(path)
    if puzzles:
        solved = " · ".join(f"{p['puzzle']} {'✓' if p['solved'] else '·'}" for p in puzzles)
        items.append(w.HTML(f"<b>Puzzles</b> {sum(p['solved'] for p in puzzles)}/{len(puzzles)} solved: {solved}"))
    items.append(w.HTML(f"<small>saved in {path or progress.progress_path()}</small>"))
    return w.VBox(items)
