"""The outcome of checking one exercise: passed or not, and a message that teaches."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """What ``mi_course.checks.run`` returns.

    ``passed`` is True when every test case matched the reference;
    ``message`` says what was checked, or exactly what went wrong and a hint.
    """

    exercise_id: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅ passed" if self.passed else "❌ not yet"
        return f"{mark} [{self.exercise_id}] {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour, border = ("#e9f7ef", "#2e7d32") if self.passed else ("#fdecea", "#c62828")
        mark = "✅ passed" if self.passed else "❌ not yet"
        body = html.escape(self.message)
        return (
            f'<div style="background:{colour};border-left:4px solid {border};'
            f'padding:6px 10px;font-family:var(--jp-code-font-family,monospace);white-space:pre-wrap">'
            f"<b>{mark}</b> <code>{html.escape(self.exercise_id)}</code>\n{body}</div>"
        )
