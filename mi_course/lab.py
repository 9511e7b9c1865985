"""``mi-course lab``: start JupyterLab on the course notebooks, reachable only from this machine.

The server listens on 127.0.0.1 and keeps token authentication on. The token
is random, passed to Jupyter through the ``JUPYTER_TOKEN`` environment
variable (so it does not show up in the process list), and printed as part of
the URL to open.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

HOST = "127.0.0.1"
DEFAULT_PORT = 8888


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


def lab(notebook_dir: Path, port: int | None = None, open_browser: bool = True, allow_root: bool = False) -> int:
    """Run JupyterLab on ``notebook_dir`` until it is stopped (Ctrl+C); return its exit code."""
    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"No folder {notebook_dir} to open in JupyterLab.")
    port = port or free_port()
    token = secrets.token_urlsafe(24)
    print(f"Starting JupyterLab on {notebook_dir.resolve()}\n"
          f"Open: http://{HOST}:{port}/lab?token={token}\n"
          "Stop it with Ctrl+C.", flush=True)
    env = {**os.environ, "JUPYTER_TOKEN": token}
    try:
        return subprocess.call(lab_command(notebook_dir, port, open_browser, allow_root), env=env)
    except KeyboardInterrupt:
        return 0
