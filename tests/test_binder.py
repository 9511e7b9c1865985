"""binder/ installs exactly the pins of constraints.txt less the test tools, and its postBuild script is sound."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from mi_course.notebook_build import BINDER_LEAVES_OUT, CPU_INDEX_LINE

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def _requirements(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.strip().startswith(("#", "--"))]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in _requirements(path):
        match = PIN.match(line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_binder_pins_equal_constraints_less_the_test_tools():
    binder = _pins(BINDER / "requirements.txt")
    constraints = _pins(REPO / "constraints.txt")
    assert binder == {name: version for name, version in constraints.items() if name not in BINDER_LEAVES_OUT}
    assert binder["torch"].endswith("+cpu")


def test_binder_requirements_use_the_cpu_index_and_only_exact_pins():
    text = (BINDER / "requirements.txt").read_text()
    assert text.splitlines()[0] == CPU_INDEX_LINE
    assert all(PIN.match(line) for line in _requirements(BINDER / "requirements.txt"))


def test_postbuild_is_an_executable_bash_script():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK)
    text = post.read_text()
    assert text.startswith("#!")
    assert "pip install --no-deps -e ." in text and "/lab/tree/chapters" in text
    subprocess.run(["bash", "-n", str(post)], check=True)
