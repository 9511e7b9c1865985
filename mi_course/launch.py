"""Launching a chapter from a pinned release: Binder and Colab links, and the install cell.

A workshop uses one release of the course, the git tag ``v`` + the version in ``pyproject.toml``
(e.g. ``v0.1.0``). Everything that names it comes from here:

* :func:`binder_url` and :func:`colab_url`: the README's links for one notebook (a test checks that the
  README holds exactly these, so a version bump cannot leave stale links);
* :func:`install_cell_source`: the cell that ``mi-course build`` puts into every generated chapter and
  puzzle, after its parameters cell. Where ``mi_course`` is not importable (Colab, a plain JupyterHub) it
  pip-installs the course at the release; elsewhere it only says that it is installed.

The install cell runs before ``mi_course`` can be imported, so it holds its own few lines of logic
instead of calling this module. Its pip source can be replaced through the environment variable
:data:`SOURCE_ENV` (a local wheel, a fork, a mirror).
"""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = "mi-course/mi-course"     # GitHub owner/name that the README's links and the install cell use
SOURCE_ENV = "MI_COURSE_INSTALL_SOURCE"
INSTALL_CELL_ID = "install-mi-course"
INSTALL_TAG = "install"                # the install cell's tag: it has no twin in the solution notebook


def release_tag(version: str) -> str:
    """The git tag of a release: ``"0.1.0"`` → ``"v0.1.0"``."""
    return f"v{version}"


def project_version(root: Path) -> str:
    """The version in ``root/pyproject.toml`` (``[project] version``)."""
    text = (Path(root) / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10: the first `version = "..."` after [project]
        match = re.search(r'^\[project\].*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
        if match is None:
            raise ValueError(f"no [project] version in {root}/pyproject.toml") from None
        return match.group(1)
    return tomllib.loads(text)["project"]["version"]


def binder_url(path: str, tag: str, repository: str = REPOSITORY) -> str:
    """mybinder.org link opening ``path`` (e.g. ``"chapters/01_residual_stream.ipynb"``) in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repository}/{tag}?urlpath=lab/tree/{path}"


def colab_url(path: str, tag: str, repository: str = REPOSITORY) -> str:
    """Google Colab link opening ``path`` at ``tag`` of the GitHub repository."""
    return f"https://colab.research.google.com/github/{repository}/blob/{tag}/{path}"


def install_source(tag: str, repository: str = REPOSITORY) -> str:
    """The pip requirement that installs the course at ``tag`` from GitHub."""
    return f"mi-course @ git+https://github.com/{repository}@{tag}"


def install_cell_source(tag: str, repository: str = REPOSITORY) -> str:
    """The install cell's code: pip-installs the course at ``tag`` when ``mi_course`` cannot be imported."""
    return f'''\
# Colab or a plain JupyterHub: install the course (release {tag}) if it is missing. On Binder or after
# `make lab` it is installed already and this cell only says so. The setup cell below picks the GPU when
# there is one (device="auto" uses CUDA if torch sees a GPU, else the CPU).
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("mi_course") is None:
    source = os.environ.get("{SOURCE_ENV}", "{install_source(tag, repository)}")
    print(f"installing {{source}} (a few minutes) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()
import mi_course
print(f"mi_course {{mi_course.__version__}} is installed")'''
