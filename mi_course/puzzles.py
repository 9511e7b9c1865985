"""The puzzle map: every puzzle, its notebook, and the questions its answer cells check.

The puzzles' counterpart of :mod:`mi_course.course`. ``mi-course progress``, the progress widget,
the README's puzzle table and the answer checker (:mod:`mi_course.embeddings.answers`) all read
this list. A puzzle is solved when its first question (whose id is the puzzle's id) is answered;
the other questions are bonus questions.

Puzzle ``P1`` lives in ``solutions/puzzles/P1_<slug>.ipynb`` (generated into ``puzzles/``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Puzzle:
    id: str                       # "P1"; the main question has the same id, bonus questions "P1.<name>"
    slug: str                     # notebook stem after the id: puzzles/P1_<slug>.ipynb
    title: str
    difficulty: str               # "●○○" easy ... "●●●" hard
    minutes: int                  # estimated time
    status: str                   # "ready" | "planned"
    questions: tuple[str, ...]    # question ids, main question first

    @property
    def notebook(self) -> str:
        return f"{self.id}_{self.slug}.ipynb"


PUZZLES: tuple[Puzzle, ...] = (
    Puzzle("P1", "similar_embeddings", "Suspiciously similar embeddings", "●●○", 30, "ready",
           ("P1", "P1.push")),
    Puzzle("P2", "word2vec", "Word2vec inside a transformer", "●●○", 40, "ready",
           ("P2", "P2.length", "P2.last_layer")),
    Puzzle("P3", "word_position", "Where am I in the sentence?", "●●●", 50, "ready",
           ("P3", "P3.confound", "P3.counting")),
)


def puzzle(puzzle_id: str) -> Puzzle:
    """The puzzle with this id (``"P2"``; a question id such as ``"P2.last_layer"`` works too)."""
    for p in PUZZLES:
        if p.id == puzzle_id.split(".", 1)[0]:
            return p
    raise KeyError(f"No puzzle {puzzle_id!r}; puzzles are {[p.id for p in PUZZLES]}")


def question_ids() -> list[str]:
    """Every question id of every puzzle, in order."""
    return [q for p in PUZZLES for q in p.questions]
