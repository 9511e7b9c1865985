"""The workshop memory budget, proven in a cage: each chapter and puzzle runs in the kernel of a JupyterLab
server, with the server and its kernel inside one Linux memory cgroup limited to 2 GiB (the memory a
mybinder.org session gets). The cgroup's own peak is reported, so everything Binder would count is counted:
the server, the kernel, the widgets' state in the kernel, and the libraries both load.

Needs root and a cgroup memory controller (cgroup v1's ``memory`` hierarchy, or v2 with ``memory`` enabled);
elsewhere :func:`cage_support` says why not and nothing runs. Swap does not hide anything: where the cgroup
can cap memory plus swap, it is capped at the same 2 GiB. A notebook that needs more is killed by the kernel's
OOM killer inside the cage and reported as failed, with the number of OOM kills.

Run: ``.venv/bin/python benchmarks/memory_cage.py [--notebooks GLOB] [--limit-gib 2]``, or as part of
``make bench`` (section "memory_cage" of benchmarks/results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mi_course.lab import free_port, lab_command, running_as_root  # noqa: E402

GIB = 2**30
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")


def cage_support() -> str | None:
    """None when a memory cage can be made here, else the reason it cannot (for the skip message)."""
    if sys.platform != "linux":
        return f"memory cages need Linux cgroups; this is {sys.platform}"
    if not running_as_root():
        return "making a memory cgroup needs root (run as root, or in a container as root)"
    if (V1 / "memory.limit_in_bytes").exists() or (V1 / "cgroup.procs").exists():
        return None
    controllers = V2 / "cgroup.controllers"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return None
    return "no cgroup memory controller is mounted (neither /sys/fs/cgroup/memory nor cgroup v2 with memory)"


class Cage:
    """A memory cgroup with a hard limit. ``add(pid)`` moves a process in; its children follow."""

    def __init__(self, limit_bytes: int, name: str | None = None):
        self.v1 = (V1 / "cgroup.procs").exists()
        self.path = (V1 if self.v1 else V2) / (name or f"mi-course-cage-{os.getpid()}-{secrets.token_hex(3)}")
        self.path.mkdir()
        if self.v1:
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
            swap = self.path / "memory.memsw.limit_in_bytes"      # memory + swap: no escape into swap
            if swap.exists():
                swap.write_text(str(limit_bytes))
        else:
            (self.path / "memory.max").write_text(str(limit_bytes))
            if (self.path / "memory.swap.max").exists():
                (self.path / "memory.swap.max").write_text("0")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def peak_bytes(self) -> int:
        """The most memory the cage's processes held at once (page cache included, as a cgroup counts it)."""
        name = "memory.max_usage_in_bytes" if self.v1 else "memory.peak"
        file = self.path / name
        return int(file.read_text()) if file.exists() else -1

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in the cage."""
        file = self.path / ("memory.oom_control" if self.v1 else "memory.events")
        for line in file.read_text().splitlines() if file.exists() else []:
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self, timeout_s: float = 20.0) -> None:
        """Kill what is left inside, then delete the cgroup."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        try:
            self.path.rmdir()
        except OSError:
            pass


def _request(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def _wait_for_server(url: str, token: str, server: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.returncode} before it answered")
        try:
            _request(f"{url}/api/status", token)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer within {timeout_s:.0f} s")


def _code_cells(path: Path, parameters: dict) -> list[str]:
    """The notebook's code cells, with a cell setting ``parameters`` after its parameters cell (as papermill)."""
    import nbformat

    cells = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        cells.append(cell.source)
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cells.append("\n".join(f"{name} = {value!r}" for name, value in parameters.items()))
    return cells


def _run_in_kernel(connection_file: Path, cells: list[str], cage: Cage, cell_timeout_s: float) -> str | None:
    """Execute ``cells`` one by one in the kernel behind ``connection_file``; None, or the first error (a cell's
    exception, the kernel killed in the cage, or a cell over ``cell_timeout_s``)."""
    import queue

    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(connection_file))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        for i, source in enumerate(cells):
            msg_id = client.execute(source, allow_stdin=False)
            deadline = time.monotonic() + cell_timeout_s
            while True:
                if cage.oom_kills():
                    return f"code cell {i}: killed by the out-of-memory killer in the cage"
                if time.monotonic() > deadline:
                    return f"code cell {i}: no reply within {cell_timeout_s:.0f} s"
                try:
                    reply = client.get_shell_msg(timeout=0.5)
                except queue.Empty:
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            content = reply["content"]
            if content["status"] != "ok":
                return f"code cell {i}: {content.get('ename', '')}: {content.get('evalue', '')}"[:500]
        return None
    finally:
        client.stop_channels()


def caged_run(path: Path, limit_bytes: int = 2 * GIB, parameters: dict | None = None,
              cell_timeout_s: float = 600.0) -> dict:
    """Start JupyterLab inside a fresh cage, run ``path`` in a kernel the server starts, and report:
    wall seconds (kernel start to last cell), the cage's peak MB (server + kernel), the server's idle
    peak MB before the kernel, OOM kills, and the error if the notebook did not finish."""
    parameters = {"device": "cpu", **(parameters or {})}
    cage = Cage(limit_bytes)
    token, port = secrets.token_hex(16), free_port(8899)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": tmp, "OMP_NUM_THREADS": "1",
               "MI_COURSE_PROGRESS": str(Path(tmp) / "progress.json"), "PYTHONPATH": str(REPO)}
        server = subprocess.Popen(lab_command(path.parent, port, open_browser=False, allow_root=running_as_root()),
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=lambda: cage.add(os.getpid()), start_new_session=True)
        try:
            _wait_for_server(url, token, server)
            idle = cage.peak_bytes()
            kernel = _request(f"{url}/api/kernels", token, "POST", {"name": "python3"})
            start = time.perf_counter()
            error = _run_in_kernel(Path(tmp) / f"kernel-{kernel['id']}.json", _code_cells(path, parameters), cage,
                                   cell_timeout_s)
            wall = time.perf_counter() - start
            return {"notebook": path.stem, "ok": error is None, "error": error, "wall_s": round(wall, 1),
                    "cage_peak_mb": round(cage.peak_bytes() / 2**20), "server_idle_mb": round(idle / 2**20),
                    "limit_mb": round(limit_bytes / 2**20), "oom_kills": cage.oom_kills()}
        finally:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            cage.remove()


def notebooks(pattern: str = "*") -> list[Path]:
    """Every chapter and puzzle solution whose name matches ``pattern``, in course order."""
    chapters = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
    puzzles = sorted((REPO / "solutions" / "puzzles").glob("*.ipynb"))
    return [p for p in chapters + puzzles if p.match(f"{pattern}.ipynb") or p.match(pattern)]


def memory_cage(pattern: str = "*", limit_gib: float = 2.0) -> dict:
    """Run every matching notebook in its own cage; {"skipped": reason} where no cage can be made."""
    reason = cage_support()
    if reason:
        print(f"memory cage skipped: {reason}", flush=True)
        return {"skipped": reason}
    from tqdm.auto import tqdm

    results = []
    for path in tqdm(notebooks(pattern), desc="memory cage"):
        results.append(caged_run(path, int(limit_gib * GIB)))
        r = results[-1]
        print(f"{r['notebook']:>28}: {'ok' if r['ok'] else 'FAILED'}  peak {r['cage_peak_mb']} MB of {r['limit_mb']} "
              f"(server idle {r['server_idle_mb']} MB)  {r['wall_s']} s" + (f"  {r['error']}" if r["error"] else ""),
              flush=True)
    return {"limit_mb": round(limit_gib * 1024), "what": "JupyterLab server + its kernel in one memory cgroup",
            "notebooks": results}


def merged(previous: dict, new: dict, commit: str) -> dict:
    """The "memory_cage" section of results.json after a run of some notebooks: each new entry stamped with
    ``commit`` and the UTC date, the previous entries of the notebooks not rerun kept (with their own stamps),
    in course order. A skipped run (no cage here) leaves ``previous`` as it was."""
    if "notebooks" not in new:
        return previous or new
    date = time.strftime("%Y-%m-%d", time.gmtime())
    fresh = {r["notebook"]: {**r, "commit": commit, "date": date} for r in new["notebooks"]}
    kept = {r["notebook"]: {"commit": previous.get("commit", "?"), **r} for r in previous.get("notebooks", [])}
    entries = {**kept, **fresh}
    order = [p.stem for p in notebooks()]
    rows = sorted(entries.values(), key=lambda r: order.index(r["notebook"]) if r["notebook"] in order else len(order))
    return {"commit": commit, **{k: v for k, v in new.items() if k != "notebooks"}, "notebooks": rows}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # so that a killed run still removes its cage
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", default="*", help="a glob on the notebook names, e.g. '0[1-3]_*' or 'P*'")
    parser.add_argument("--limit-gib", type=float, default=2.0)
    args = parser.parse_args()
    result = memory_cage(args.notebooks, args.limit_gib)
    failed = [r["notebook"] for r in result.get("notebooks", []) if not r["ok"]]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
