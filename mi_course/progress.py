"""Your progress: which exercises you have passed and what you predicted, kept in a small JSON file.

The file lives at ``$MI_COURSE_PROGRESS`` if set, else
``~/.local/share/mi-course/progress.json`` (``$XDG_DATA_HOME`` respected).
Writes are atomic (a temporary file renamed over the old one), and a
corrupted file is moved aside with a warning and progress starts afresh:
never a crash.

The file (format version 2; version-1 files, which have no ``activity``, load as they are)::

    {"version": 2,
     "passed":      {"03.tms_loss": {"first_passed": "2026-12-01T10:02:11"}},
     "predictions": {"03.dense_features": {"first": 2.0, "at": "...", "right": true}},
     "activity":    {"03.tms_loss": {"attempts": 3, "first_attempt": 1764583200, "hints": 1,
                                     "attempts_to_pass": 3, "seconds_to_pass": 131}}}

``activity`` counts, per exercise and puzzle question: the checks run (a stub that still raises
``NotImplementedError`` is not an attempt), the highest hint revealed, and at the first pass how many
checks it took and the seconds since the first attempt. An item passed before ``activity`` existed has
no ``attempts_to_pass``: unknown, not zero. Recording never raises: a failed write only warns.

This module only stores progress; :mod:`mi_course.dashboard` shows it
(``mi-course progress``, and a widget for notebooks), and :mod:`mi_course.classroom` exports it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ENV_VAR = "MI_COURSE_PROGRESS"
FORMAT_VERSION = 2     # 2 added "activity"; files of version 1 load unchanged
_now = time.time       # the clock of attempts (tests replace it)


def progress_path() -> Path:
    """Where the progress file is (the environment variable wins)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mi-course" / "progress.json"


def _empty() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "passed": {}}


def load(path: Path | None = None) -> dict[str, Any]:
    """Read progress; a missing or empty file is empty progress; a corrupted one is backed up and reset."""
    path = path or progress_path()
    if not path.exists() or path.stat().st_size == 0:  # an empty file: e.g. made by `mktemp`
        return _empty()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("passed"), dict):
            raise ValueError("unexpected structure")
        return data
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(path, backup)
            where = f"moved to {backup}"
        except OSError:
            where = "left in place"
        warnings.warn(f"Progress file {path} was unreadable ({exc}); it was {where} and progress starts afresh.",
                      stacklevel=2)
        return _empty()


def save(data: dict[str, Any], path: Path | None = None) -> None:
    """Write progress atomically: temporary file in the same folder, fsync, rename."""
    write_json_atomic(data, path or progress_path())


def write_json_atomic(data: Any, path: Path) -> None:
    """Write ``data`` as JSON to ``path`` atomically (temporary file in the same folder, fsync, rename):
    a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def record_pass(exercise_id: str, path: Path | None = None) -> None:
    """Mark an exercise as passed (first pass time kept). Failures to write only warn."""
    try:
        data = load(path)
        data["passed"].setdefault(exercise_id, {"first_passed": time.strftime("%Y-%m-%dT%H:%M:%S")})
        save(data, path)
    except OSError as exc:
        warnings.warn(f"Could not save progress to {path or progress_path()}: {exc}", stacklevel=2)


def _activity_entry(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    """The ``activity`` record of one item, created empty (a malformed one is replaced)."""
    if not isinstance(data.get("activity"), dict):
        data["activity"] = {}
        data["version"] = FORMAT_VERSION        # a version-1 file gains its first activity
    entry = data["activity"].get(item_id)
    if not isinstance(entry, dict):
        entry = data["activity"][item_id] = {"attempts": 0, "hints": 0}
    return entry


def count(entry: dict[str, Any], key: str) -> int:
    """A non-negative count from an entry (0 when missing or malformed)."""
    value = entry.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def record_attempt(item_id: str, passed: bool, path: Path | None = None) -> None:
    """Count one check of an exercise or puzzle question; on its first pass, also mark it passed and keep
    how many checks and seconds (since the first attempt) it took. Never raises: failures only warn."""
    try:
        data = load(path)
        entry = _activity_entry(data, item_id)
        now = round(_now())                          # whole seconds are enough (and print no decimals)
        first = entry.get("first_attempt")
        if not isinstance(first, (int, float)) or isinstance(first, bool):
            first = entry["first_attempt"] = now
        entry["attempts"] = count(entry, "attempts") + 1
        if passed and item_id not in data["passed"]:
            entry["attempts_to_pass"] = entry["attempts"]
            entry["seconds_to_pass"] = max(0, round(now - first))
        if passed:
            data["passed"].setdefault(item_id, {"first_passed": time.strftime("%Y-%m-%dT%H:%M:%S")})
        save(data, path)
    except Exception as exc:  # a progress file must never stop a learner's check
        warnings.warn(f"Could not save progress to {path or progress_path()}: {exc}", stacklevel=2)


def record_hint(item_id: str, number: int, path: Path | None = None) -> None:
    """Note that hint ``number`` (from 1) of an item was shown; the record keeps the highest one.
    Never raises: failures only warn."""
    try:
        data = load(path)
        entry = _activity_entry(data, item_id)
        if number > count(entry, "hints"):
            entry["hints"] = int(number)
            save(data, path)
    except Exception as exc:
        warnings.warn(f"Could not save progress to {path or progress_path()}: {exc}", stacklevel=2)


def activity(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """{item id: {"attempts", "hints", "first_attempt", and once passed "attempts_to_pass", "seconds_to_pass"}}
    (empty for a version-1 file)."""
    found = load(path).get("activity", {})
    return {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}


def record_prediction(question_id: str, answer: Any, path: Path | None = None) -> None:
    """Keep a question's *first* prediction (later ones are not recorded). Failures to write only warn."""
    try:
        data = load(path)
        data.setdefault("predictions", {}).setdefault(
            question_id, {"first": answer, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "right": None})
        save(data, path)
    except OSError as exc:
        warnings.warn(f"Could not save progress to {path or progress_path()}: {exc}", stacklevel=2)


def record_prediction_outcome(question_id: str, right: bool, path: Path | None = None) -> None:
    """Whether the first prediction was right, once it has been revealed (set once, never changed)."""
    try:
        data = load(path)
        entry = data.get("predictions", {}).get(question_id)
        if entry is not None and entry.get("right") is None:
            entry["right"] = bool(right)
            save(data, path)
    except OSError as exc:
        warnings.warn(f"Could not save progress to {path or progress_path()}: {exc}", stacklevel=2)


def predictions(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """{question id: {"first": the first prediction, "at": when, "right": True/False, None until revealed}}."""
    found = load(path).get("predictions", {})
    return found if isinstance(found, dict) else {}


def passed(path: Path | None = None) -> set[str]:
    """Ids of the exercises passed so far."""
    return set(load(path)["passed"])
