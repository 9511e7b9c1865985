"""Test-wide settings: progress goes to a throw-away file, never to the learner's real one."""

import os
import tempfile
from pathlib import Path

import pytest

_PROGRESS_DIR = tempfile.mkdtemp(prefix="mi-course-test-progress-")
os.environ["MI_COURSE_PROGRESS"] = os.path.join(_PROGRESS_DIR, "progress.json")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO
