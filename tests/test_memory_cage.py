"""The workshop memory cage (benchmarks/memory_cage.py): a notebook runs in a JupyterLab server's kernel inside a
memory cgroup; one that stays under the limit passes and reports a peak within it, one that goes over is
killed in the cage and reported as failed (not hung, not passed). Skipped, with the reason, where no cage
can be made (not root, no cgroup memory controller)."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import memory_cage  # noqa: E402

REASON = memory_cage.cage_support()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=f"no memory cage here: {REASON}")]


def _notebook(folder: Path, megabytes: int) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("device = 'auto'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"block = bytearray({megabytes} * 2**20)\nblock[::4096] = b'x' * len(block[::4096])"),
                nbformat.v4.new_code_cell("assert device == 'cpu'   # the injected parameter")]
    path = folder / f"alloc_{megabytes}.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_notebook_within_the_limit_passes_and_one_beyond_it_is_killed_in_the_cage(tmp_path):
    limit = 600 * 2**20
    small = memory_cage.caged_run(_notebook(tmp_path, 300), limit_bytes=limit, cell_timeout_s=120)
    assert small["ok"], small["error"]
    assert 300 < small["cage_peak_mb"] <= 600 and small["server_idle_mb"] > 30     # the block, the kernel, the server
    big = memory_cage.caged_run(_notebook(tmp_path, 900), limit_bytes=limit, cell_timeout_s=120)
    assert not big["ok"] and big["oom_kills"] >= 1 and "out-of-memory" in big["error"]
    assert not list(memory_cage.V1.glob("mi-course-cage-*")) and not list(memory_cage.V2.glob("mi-course-cage-*"))
