"""``mi-course doctor``: what is installed, which device is used, and whether the hub is reachable.

Paste its output into a bug report. It never fails: problems are reported as
text, and the network check gives up after about two seconds.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import socket
from importlib import metadata
from typing import Any
from urllib.parse import urlparse

PACKAGES = ("torch", "transformer_lens", "mi-course", "jupyterlab", "ipywidgets")
HUB_TIMEOUT_S = 2.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _device() -> dict[str, Any]:
    try:
        import torch

        from .device import resolve_device

        return {"device": str(resolve_device("auto")), "cuda_available": torch.cuda.is_available()}
    except Exception as exc:  # a broken torch install is exactly what doctor should report
        return {"device": f"unknown ({type(exc).__name__}: {exc})", "cuda_available": False}


def _models() -> str:
    """The shipped models, if this version of the course has any (``mi_course.models``)."""
    if importlib.util.find_spec("mi_course.models") is None:
        return "no shipped models yet"
    try:
        models = importlib.import_module("mi_course.models")
        names = list(getattr(models, "shipped", models.available)())
        if not names:
            return "no shipped models yet"
        verify = getattr(models, "verify", None)
        if verify is None:
            return ", ".join(names)
        return ", ".join(f"{n} ({'ok' if verify(n) else 'CORRUPT'})" for n in names)
    except Exception as exc:
        return f"could not list models ({type(exc).__name__}: {exc})"


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hugging Face hub (``$HF_ENDPOINT`` if set) opens in time."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def doctor(verbose: bool = True) -> dict[str, Any]:
    """Collect (and, if ``verbose``, print) the environment report."""
    report: dict[str, Any] = {"python": platform.python_version()}
    report.update({name: _version(name) for name in PACKAGES})
    report.update(_device())
    report["models"] = _models()
    report["hub_reachable"] = hub_reachable()
    if verbose:
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        if not report["hub_reachable"]:
            print("\nThe Hugging Face hub is not reachable: models already on this machine "
                  "still work; downloading others will fail.")
    return report
