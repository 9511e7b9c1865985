"""``mi-course doctor``: what is installed, which device is used, and whether the hub is reachable.

Paste its output into a bug report. It never fails: problems are reported as
text, and the network check gives up after about two seconds.
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

PACKAGES = ("torch", "transformer_lens", "mi-course", "jupyterlab", "ipywidgets")


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
    """The shipped models, each with the verdict of its checksum check."""
    try:
        from .zoo import models

        names = models.shipped()
        if not names:
            return "no shipped models"
        return ", ".join(f"{n} ({'ok' if models.verify(n) else 'CORRUPT'})" for n in names)
    except Exception as exc:  # e.g. a broken transformer_lens install
        return f"could not list models ({type(exc).__name__}: {exc})"


def hub_reachable() -> bool:
    """Whether the Hugging Face hub answers (the zoo loader's check; gives up after about two seconds)."""
    try:
        from .zoo import models

        return models.hub_reachable()
    except Exception:
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
