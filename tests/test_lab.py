"""`mi-course lab` as a learner runs it (root in a container, on CI): the URL it prints works, with its
token only, on 127.0.0.1 only; and when Jupyter cannot start, the command says why."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mi_course.lab import running_as_root, why_it_stopped

REPO = Path(__file__).resolve().parents[1]
MI_COURSE = Path(sys.executable).with_name("mi-course")
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=(\S+)")


def _env(tmp: Path) -> dict[str, str]:
    """All Jupyter state in ``tmp``, as on a fresh machine."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        (tmp / name).mkdir()
        env[name] = str(tmp / name)
    return env


def _start(tmp: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = tmp / "stderr.log"
    process = subprocess.Popen([str(MI_COURSE), "lab", "--no-browser", *args], cwd=REPO, env=_env(tmp),
                               stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
    return process, log


def _wait_for_url(process: subprocess.Popen, timeout: float = 150) -> tuple[list[str], re.Match | None]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:  # the command exited
            break
        lines.append(line.rstrip("\n"))
        if match := URL.search(line):
            return lines, match
    return lines, None


def _status(port: int, token: str | None) -> int:
    headers = {"Authorization": f"token {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port``, from /proc/net/tcp and tcp6 (hex)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def _stop(process: subprocess.Popen) -> int:
    process.terminate()  # as a terminal's Ctrl+C or a container stop would
    try:
        return process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_lab_serves_with_its_token_on_localhost_only(tmp_path):
    process, log = _start(tmp_path)
    try:
        lines, match = _wait_for_url(process)
        assert match, f"no URL printed; stdout: {lines}; stderr: {log.read_text()[-2000:]}"
        assert process.poll() is None, "the URL was printed but the server is gone"
        if running_as_root():  # CI runs as root, like a fresh container
            assert any("--allow-root" in line for line in lines), lines
        port, token = int(match.group(1)), match.group(2)
        assert _status(port, token) == 200          # the printed URL's token opens it
        assert _status(port, None) == 403           # no token: refused
        wrong = token[:-1] + ("y" if token[-1] == "x" else "x")   # one character off (never the token itself)
        assert _status(port, wrong) == 403
        if Path("/proc/net/tcp").exists():
            assert _listening_addresses(port) == {"0100007F"}, "must listen on 127.0.0.1 only"
        # Jupyter's own log went to stderr, and the token never appears on the command line.
        assert "ServerApp" in log.read_text()
        cmdlines = [p.read_bytes() for p in Path("/proc").glob("[0-9]*/cmdline") if p.exists()]
        assert not any(token.encode() in c for c in cmdlines)
    finally:
        code = _stop(process)
    assert code == 0
    with socket.socket() as s:  # stopping the command stopped Jupyter too
        assert s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_lab_says_why_when_jupyter_exits_early(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process, log = _start(tmp_path, "--port", str(port))
        try:
            out, _ = process.communicate(timeout=180)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode != 0
    assert "/lab?token=" not in out, "no URL may be printed for a server that never answered"
    err = log.read_text()
    assert "stopped before it was ready" in err
    assert f"port {port} is not available" in err.split("stopped before it was ready", 1)[1], err[-1500:]


def test_why_it_stopped_prefers_error_lines():
    log = ["[I] starting", "[C] Running as root is not recommended. Use --allow-root to bypass.", "[I] bye"]
    assert "Running as root" in why_it_stopped(log)
    assert why_it_stopped(["a", "b"]) == "  a\n  b" and "nothing" in why_it_stopped([])
