"""``mi-course lab``: start JupyterLab on the course notebooks, reachable only from this machine.

The server listens on 127.0.0.1 and keeps token authentication on. The token
is random, passed to Jupyter through the ``JUPYTER_TOKEN`` environment
variable (so it does not show up in the process list), and printed as part of
the URL to open, once the server answers. If Jupyter exits before that, the
reason is printed instead. As root (a container, say) Jupyter is started with
``--allow-root``, since it refuses to run as root otherwise.
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 8888
READY_TIMEOUT_S = 180.0


def free_port(preferred: int = DEFAULT_PORT) -> int:
    """``preferred`` if nothing listens on it, else a free port chosen by the OS."""
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port on 127.0.0.1")


def running_as_root() -> bool:
    """Whether this process runs as root (effective uid 0; never on Windows)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(notebook_dir: Path, port: int = DEFAULT_PORT, open_browser: bool = True,
                allow_root: bool = False) -> list[str]:
    """The command line that starts JupyterLab (the token goes in the environment, see :func:`lab`)."""
    command = [
        sys.executable, "-m", "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail rather than silently move to a port the printed URL does not show
        f"--ServerApp.root_dir={Path(notebook_dir).resolve()}",
        f"--ServerApp.open_browser={open_browser}",
    ]
    if allow_root:  # Jupyter refuses to run as root unless asked (common in containers)
        command.append("--allow-root")
    return command


def server_answers(port: int, token: str, timeout: float = 2.0) -> bool:
    """Whether a Jupyter server on ``port`` answers ``/api/status`` for this token."""
    request = urllib.request.Request(f"http://{HOST}:{port}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _relay(stream, sink, keep: collections.deque) -> None:
    """Copy Jupyter's log lines to ``sink`` as they come, keeping the last few for an error report."""
    for line in stream:
        keep.append(line.rstrip("\n"))
        sink.write(line)
        sink.flush()


def why_it_stopped(log: list[str], n: int = 6) -> str:
    """The lines of Jupyter's log that say why it stopped: its error lines, or else its last lines."""
    errors = [line for line in log if "error" in line.lower() or "not recommended" in line.lower()]
    return "\n".join(f"  {line}" for line in (errors or log)[-n:]) or "  (it printed nothing)"


def lab(notebook_dir: Path, port: int | None = None, open_browser: bool = True, allow_root: bool | None = None,
        ready_timeout: float = READY_TIMEOUT_S) -> int:
    """Run JupyterLab on ``notebook_dir`` until it is stopped (Ctrl+C); return its exit code.

    ``allow_root=None`` passes ``--allow-root`` exactly when running as root.
    The URL is printed once the server answers with the token; if Jupyter
    exits first, its reason is printed and its exit code (never 0) returned.
    """
    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"No folder {notebook_dir} to open in JupyterLab.")
    if allow_root is None:
        allow_root = running_as_root()
    if allow_root and running_as_root():
        print("Running as root (a container?): starting Jupyter with --allow-root.", flush=True)
    port = port or free_port()
    token = secrets.token_urlsafe(24)
    print(f"Starting JupyterLab on {notebook_dir.resolve()} (port {port}) ...", flush=True)
    log: collections.deque[str] = collections.deque(maxlen=200)
    process = subprocess.Popen(lab_command(notebook_dir, port, open_browser, allow_root),
                               env={**os.environ, "JUPYTER_TOKEN": token},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    relay = threading.Thread(target=_relay, args=(process.stdout, sys.stderr, log), daemon=True)
    relay.start()
    _stop_on_sigterm()
    try:
        deadline = time.monotonic() + ready_timeout
        while not server_answers(port, token, timeout=1.0):
            if process.poll() is not None:
                relay.join(timeout=5)
                print(f"\nJupyterLab stopped before it was ready (exit code {process.returncode}). "
                      f"Jupyter said:\n{why_it_stopped(list(log))}", file=sys.stderr, flush=True)
                return process.returncode or 1
            if time.monotonic() > deadline:
                print(f"\nJupyterLab did not answer within {ready_timeout:.0f} s; stopping it. Jupyter said:\n"
                      f"{why_it_stopped(list(log))}", file=sys.stderr, flush=True)
                _stop(process)
                return 1
            time.sleep(0.25)
        print(f"\nJupyterLab is ready. Open:\n    http://{HOST}:{port}/lab?token={token}\n"
              "Stop it with Ctrl+C.", flush=True)
        return process.wait()
    except KeyboardInterrupt:
        _stop(process)
        print("JupyterLab stopped.", flush=True)
        return 0


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl+C, so that stopping ``mi-course lab`` stops Jupyter too."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _stop(process: subprocess.Popen) -> None:
    """Ask Jupyter to shut down (SIGTERM: it stops its kernels); kill it if it does not within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
