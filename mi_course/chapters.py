"""The course map: every chapter and puzzle, in order, with its status.

The README's chapter table, ``mi-course progress`` and the progress widget
read this list, so a new chapter is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    number: str          # "03"; exercise ids start with it ("03.tms_forward")
    slug: str            # notebook file stem: chapters/<number>_<slug>.ipynb
    title: str
    status: str          # "ready" | "planned"

    @property
    def notebook(self) -> str:
        return f"{self.number}_{self.slug}.ipynb"


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("01", "residual_stream", "The residual stream", "planned"),
    Chapter("02", "virtual_weights", "Virtual weights and circuits", "planned"),
    Chapter("03", "superposition", "Toy models of superposition", "ready"),
    Chapter("04", "induction", "Induction heads", "planned"),
    Chapter("05", "sparse_autoencoders", "Sparse autoencoders", "planned"),
    Chapter("06", "fact_recall", "Fact recall", "planned"),
)


def chapter(number: str) -> Chapter:
    """The chapter with this number (``"03"``); ``KeyError`` if there is none."""
    for ch in CHAPTERS:
        if ch.number == number:
            return ch
    raise KeyError(f"No chapter {number!r}; chapters are {[c.number for c in CHAPTERS]}")
