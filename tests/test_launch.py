"""Launching a workshop: README links pinned to the release, the Binder environment, and the install cell.

- the README's Binder and Colab links name the release tag (``v`` + pyproject's version) for every chapter
  and puzzle, and nothing else (``mi_course.launch`` makes them);
- binder/requirements.txt is exactly the pins of constraints.txt that mi-course needs at run time (no test
  tools), and it is closed and consistent: every dependency of every pinned package, for Binder's Python, is
  pinned there at a version that satisfies it (what pip's resolver would check, offline);
- the install cell of a generated notebook, run in a fresh virtual environment without the course, installs
  the locally built wheel (``MI_COURSE_INSTALL_SOURCE``), and chapter 01's setup cell then runs there.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from mi_course import launch
from mi_course.notebook_build import BINDER_LEAVES_OUT, pairs
from mi_course.notebook_run import restore_solutions

REPO = Path(__file__).resolve().parents[1]
TAG = launch.release_tag(launch.project_version(REPO))
NOTEBOOKS = [out.relative_to(REPO).as_posix() for _, out in pairs(REPO)]


def _pins(path: Path) -> dict[str, str]:
    """{normalized name: pinned version} of a requirements/constraints file."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    return pins


# --- README ------------------------------------------------------------------------------------------------

def test_the_release_tag_is_the_package_version():
    import mi_course

    assert TAG == f"v{mi_course.__version__}" == f"v{md.version('mi-course')}"


def test_readme_launch_links_are_pinned_to_the_release():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    expected = {url for nb in NOTEBOOKS for url in (launch.binder_url(nb, TAG), launch.colab_url(nb, TAG))}
    links = set(re.findall(r"\((https://(?:mybinder\.org/v2|colab\.research\.google\.com/github)/[^)\s]+)\)", readme))
    assert expected - links == set(), f"README lacks these launch links (for {TAG}): {sorted(expected - links)}"
    assert links - expected == set(), f"README has launch links that are not {TAG}'s: {sorted(links - expected)}"
    assert set(re.findall(r"\bv\d+\.\d+\.\d+\b", readme)) == {TAG}           # the prose names the same release


def test_every_generated_notebook_installs_at_the_release_after_its_parameters():
    for nb_path in NOTEBOOKS:
        cells = nbformat.read(REPO / nb_path, as_version=4).cells
        ids = [c.id for c in cells]
        at = ids.index(launch.INSTALL_CELL_ID)
        assert "parameters" in cells[at - 1].metadata.get("tags", []), nb_path
        assert "resolve_device(device)" in cells[at + 1].source, nb_path     # the setup cell picks the device
        assert cells[at].source == launch.install_cell_source(TAG)
        assert launch.install_source(TAG) in cells[at].source


def test_restore_keeps_the_install_cell_and_still_refuses_other_unknown_cells():
    solution_path, chapter_path = pairs(REPO)[0]
    solution, chapter = (nbformat.read(p, as_version=4) for p in (solution_path, chapter_path))
    restored = restore_solutions(chapter, solution)
    assert [c.id for c in restored.cells] == [c.id for c in chapter.cells]
    chapter.cells.append(nbformat.v4.new_code_cell("x = 1"))
    with pytest.raises(KeyError, match="no twin"):
        restore_solutions(chapter, solution)


# --- the Binder environment ---------------------------------------------------------------------------------

def _runtime_closure() -> set[str]:
    """Normalized names of mi-course and everything it needs at run time (no extras), from installed metadata."""
    seen, todo = set(), [("mi-course", frozenset())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for text in md.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def test_binder_requirements_are_the_run_time_pins_and_nothing_for_tests():
    binder, constraints = _pins(REPO / "binder" / "requirements.txt"), _pins(REPO / "constraints.txt")
    needed = _runtime_closure()
    assert set(binder) == set(constraints) & needed
    assert set(constraints) - set(binder) == set(BINDER_LEAVES_OUT)
    assert all(binder[n] == constraints[n] for n in binder)
    assert {"pytest", "playwright"}.isdisjoint(binder) and {"torch", "transformer-lens", "jupyterlab"} <= set(binder)
    text = (REPO / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert text.startswith("--extra-index-url https://download.pytorch.org/whl/cpu\n") and "torch==" in text
    assert re.search(r"^torch==[\d.]+\+cpu$", text, re.M)                        # the CPU build, no CUDA packages


INSTALLER_TOOLS = {"pip", "setuptools", "wheel"}


def test_binder_requirements_are_closed_and_consistent_for_binders_python():
    """Every dependency of every pin (markers evaluated for binder/runtime.txt's Python on Linux) is pinned
    in the file at a version that satisfies it (pip, setuptools and wheel aside: unpinned, pip installs them
    as needed), and the package's own requirements accept that Python."""
    binder = _pins(REPO / "binder" / "requirements.txt")
    python = re.fullmatch(r"python-(\d+\.\d+)\s*", (REPO / "binder" / "runtime.txt").read_text()).group(1)
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    problems = []
    for name, version in binder.items():
        dist = md.distribution(name)
        if Version(dist.version) != Version(version):
            problems.append(f"{name}: pinned {version}, the tested environment has {dist.version}")
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            if dep in INSTALLER_TOOLS:       # `pip freeze` leaves them out of constraints.txt; pip brings them
                continue
            if dep not in binder:
                problems.append(f"{name} needs {req}, which is not pinned")
            elif not req.specifier.contains(binder[dep], prereleases=True):
                problems.append(f"{name} needs {req}, pinned {binder[dep]}")
    requires_python = md.metadata("mi-course")["Requires-Python"]
    assert Version(f"{python}.0") in SpecifierSet(requires_python)
    assert not problems, "\n".join(problems)


# --- the install cell, offline, in a fresh virtual environment ---------------------------------------------

def _wheel(tmp: Path) -> Path:
    """mi-course built as a wheel from a copy of the sources (the repository gets no build/ folder)."""
    src = tmp / "src"
    shutil.copytree(REPO / "mi_course", src / "mi_course", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "-w", str(tmp / "dist"), str(src)], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("mi_course-*.whl")
    return wheel


def _fresh_venv(tmp: Path) -> Path:
    """A new venv (no packages of its own) that sees this venv's packages, pip included, through a .pth to a
    folder of links to them, less mi-course and its editable finder. pip then installs into the new venv."""
    import site

    ours = Path(next(p for p in site.getsitepackages() if p.endswith("site-packages")))
    visible = tmp / "deps"
    visible.mkdir()
    hidden = re.compile(r"^(mi_course|__editable__)", re.I)
    for entry in ours.iterdir():
        if not hidden.match(entry.name) and not entry.name.endswith(".pth"):
            (visible / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site_dir,) = (venv / "lib").glob("python*/site-packages")
    (site_dir / "zz_mi_course_test_deps.pth").write_text(f"{visible}\n")
    return venv


def _cells(nb_path: str, which: list[str]) -> str:
    """The sources of chapter cells: 'install', 'parameters' and 'setup' (the cell after the install cell)."""
    cells = nbformat.read(REPO / nb_path, as_version=4).cells
    at = [c.id for c in cells].index(launch.INSTALL_CELL_ID)
    named = {"parameters": cells[at - 1].source, "install": cells[at].source, "setup": cells[at + 1].source}
    return "\n".join(named[w] for w in which) + "\nimport mi_course as _m; print('FROM', _m.__file__)\n"


@pytest.mark.slow
def test_install_cell_installs_the_release_wheel_and_the_chapter_setup_runs(tmp_path):
    wheel = _wheel(tmp_path)
    venv = _fresh_venv(tmp_path)
    python = venv / "bin" / "python"
    work = tmp_path / "work"     # not the repository: its mi_course/ folder must not be importable
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({launch.SOURCE_ENV: str(wheel), "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "MPLBACKEND": "Agg", "MI_COURSE_PROGRESS": str(tmp_path / "progress.json"), "OMP_NUM_THREADS": "1"})
    missing = subprocess.run([str(python), "-c", "import mi_course"], cwd=work, env=env, capture_output=True)
    assert missing.returncode != 0                                  # the fresh venv starts without the course

    script = work / "cells.py"
    script.write_text(_cells("chapters/01_residual_stream.ipynb", ["parameters", "install", "setup"]))
    ran = subprocess.run([str(python), str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    version = md.version("mi-course")
    assert f"installing {wheel}" in ran.stdout and f"mi_course {version} is installed" in ran.stdout
    where = ran.stdout.split("FROM ", 1)[1].strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(REPO / "mi_course")
    assert "device cpu" in ran.stdout and "gelu-3l-facts: 3 layers" in ran.stdout   # the setup cell ran

    script.write_text(_cells("chapters/01_residual_stream.ipynb", ["install"]))   # run again: nothing to do
    again = subprocess.run([str(python), str(script)], cwd=work, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "installing" not in again.stdout
    assert f"mi_course {version} is installed" in again.stdout
