"""The library's layout shows the course (docs/architecture.md): one package per chapter, imports one way.

Every import of a ``mi_course`` module is read from the source, including the
ones inside functions, so a cycle hidden in a lazy import is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mi_course import checks
from mi_course.course import CHAPTERS

PACKAGE = Path(__file__).resolve().parents[1] / "mi_course"
CHAPTER_UNITS = [ch.package for ch in CHAPTERS]          # in chapter order
INFRASTRUCTURE_PACKAGES = {"checks", "zoo"}
# The puzzles' library (mi_course/embeddings/) sits after every chapter: it may import the zoo, the shared
# modules and any chapter's package, and nothing imports it.
PUZZLE_PACKAGES = {"embeddings"}
# The zoo's model cards measure induction heads with chapter 04's scores; that
# module therefore may not import the zoo (the cycle test below enforces it).
ZOO_MAY_IMPORT = {"mi_course.induction.head_scores", "mi_course.induction"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    """The ``mi_course`` modules that ``path`` imports, anywhere in it."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mi_course"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "mi_course":
                continue
            for alias in node.names:  # `from mi_course import zoo` imports the module mi_course.zoo
                sub = f"{target}.{alias.name}"
                found.add(sub if _is_module(sub) else target)
    found.discard(name)
    return {m for m in found if m != "mi_course"}


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _unit(module: str) -> str:
    """The top-level piece a module belongs to: ``zoo``, ``superposition``, ``progress``, ..."""
    return module.split(".")[1]


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_reader_sees_lazy_and_relative_imports():
    assert "mi_course.progress" in GRAPH["mi_course.checks"]            # `from .. import progress`
    assert "mi_course.zoo.metrics" in GRAPH["mi_course.zoo.training"]  # inside a function
    assert "mi_course.induction.head_scores" in GRAPH["mi_course.zoo.metrics"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_import_cycles():
    assert _find_cycle(GRAPH) is None, f"import cycle: {' -> '.join(_find_cycle(GRAPH))}"


def test_no_cycles_between_packages():
    units: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        if module != "mi_course":
            units.setdefault(_unit(module), set()).update(_unit(t) for t in targets if _unit(t) != _unit(module))
    cycle = _find_cycle(units)
    assert cycle is None, f"packages import each other: {' -> '.join(cycle)}"


@pytest.mark.parametrize("module", [m for m in GRAPH if m != "mi_course"])
def test_imports_point_one_way(module):
    """Chapters import the zoo, the grader and earlier chapters; nothing imports a chapter back."""
    unit = _unit(module)
    for target in GRAPH[module]:
        other = _unit(target)
        if other == unit or other not in CHAPTER_UNITS:
            continue
        if unit in PUZZLE_PACKAGES:
            continue
        if unit in CHAPTER_UNITS:
            assert CHAPTER_UNITS.index(other) < CHAPTER_UNITS.index(unit), \
                f"{module} (chapter package {unit!r}) imports {target}, a later chapter"
        elif unit == "zoo":
            assert target in ZOO_MAY_IMPORT, f"the zoo's {module} imports chapter code {target}"
        else:
            pytest.fail(f"{module} imports chapter code {target}: {unit!r} is shared by every chapter")


def test_nothing_imports_the_puzzles_library():
    for module, targets in GRAPH.items():
        if module != "mi_course" and _unit(module) not in PUZZLE_PACKAGES:
            assert not {t for t in targets if _unit(t) in PUZZLE_PACKAGES}, f"{module} imports the puzzles' library"


def test_every_package_is_a_chapter_of_the_map_or_shared_infrastructure():
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    allowed = set(CHAPTER_UNITS) | INFRASTRUCTURE_PACKAGES | PUZZLE_PACKAGES
    assert packages <= allowed, packages - allowed
    assert len(set(CHAPTER_UNITS)) == len(CHAPTER_UNITS)


def test_the_grader_finds_each_chapter_through_the_map():
    for ch in CHAPTERS:
        ids = checks.exercises(ch.number)
        if ch.status == "ready":
            assert ch.exercises_module == f"mi_course.{ch.package}.exercises"
            assert ids, f"chapter {ch.number} is ready but registers no exercises"
        if ch.exercises_module is None:
            assert not ids
    numbers = {ch.number for ch in CHAPTERS}
    assert {i.split(".", 1)[0] for i in checks.exercises()} <= numbers
    assert not (PACKAGE / "checks" / "superposition.py").exists()  # chapter code lives in its package
