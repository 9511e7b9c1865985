"""The course map: every chapter, in order, with its status and its library package.

The README's chapter table, the grader (which finds each chapter's exercises
through ``package``), ``mi-course progress`` and the progress widget all read
this list, so a new chapter is added here once. Chapter ``NN`` lives in
``mi_course/<package>/``; its exercises are registered in
``mi_course/<package>/exercises.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    number: str          # "03"; exercise ids start with it ("03.tms_forward")
    slug: str            # notebook file stem: chapters/<number>_<slug>.ipynb
    title: str
    status: str          # "ready" | "planned"
    package: str         # the library package behind it: mi_course.<package>

    @property
    def notebook(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"

    @property
    def exercises_module(self) -> str | None:
        """``mi_course.<package>.exercises`` if that module exists, else None."""
        name = f"mi_course.{self.package}.exercises"
        try:
            return name if importlib.util.find_spec(name) is not None else None
        except ModuleNotFoundError:  # the package itself is not written yet
            return None


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("01", "residual_stream", "The residual stream", "ready", "residual_stream"),
    Chapter("02", "virtual_weights", "Virtual weights and circuits", "ready", "circuits"),
    Chapter("03", "superposition", "Toy models of superposition", "ready", "superposition"),
    Chapter("04", "induction", "Induction heads", "ready", "induction"),
    Chapter("05", "sparse_autoencoders", "Sparse autoencoders", "ready", "sae"),
    Chapter("06", "fact_recall", "Fact recall", "ready", "fact_recall"),
)


def chapter(number: str) -> Chapter:
    """The chapter with this number (``"03"``); ``KeyError`` if there is none."""
    for ch in CHAPTERS:
        if ch.number == number:
            return ch
    raise KeyError(f"No chapter {number!r}; chapters are {[c.number for c in CHAPTERS]}")


def chapter_packages() -> list[str]:
    """Every chapter's package name, in chapter order (for the import-direction rules)."""
    return [ch.package for ch in CHAPTERS]


def import_exercise_modules() -> None:
    """Import every chapter's ``exercises`` module (they register their exercises and questions on import)."""
    for ch in CHAPTERS:
        if ch.exercises_module is not None:
            importlib.import_module(ch.exercises_module)
