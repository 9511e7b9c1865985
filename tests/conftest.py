"""Test-wide settings: progress goes to a throw-away file, never to the learner's real one,
and torch uses one thread, as the chapters do: the course's models are tiny, so a
second thread brings no speed-up, and results do not depend on the core count.
"""

import os
import tempfile
from pathlib import Path

import pytest
import torch

_PROGRESS_DIR = tempfile.mkdtemp(prefix="mi-course-test-progress-")
os.environ["MI_COURSE_PROGRESS"] = os.path.join(_PROGRESS_DIR, "progress.json")
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO
