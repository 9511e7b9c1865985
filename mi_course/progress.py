"""Your progress: which exercises you have passed and what you predicted, kept in a small JSON file.

The file lives at ``$MI_COURSE_PROGRESS`` if set, else
``~/.local/share/mi-course/progress.json`` (``$XDG_DATA_HOME`` respected).
Writes are atomic (a temporary file renamed over the old one), and a
corrupted file is moved aside with a warning and progress starts afresh:
never a crash.

This module only stores progress; :mod:`mi_course.dashboard` shows it
(``mi-course progress``, and a widget for notebooks).
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
FORMAT_VERSION = 1


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
    path = path or progress_path()
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
