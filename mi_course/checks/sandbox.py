"""Call a learner's function safely: bounded time, and errors reported from the learner's frame.

The grader must never crash and never hang, whatever the learner's code does.
On the main thread (a Jupyter kernel, pytest) a timer signal interrupts a
runaway Python loop after ``timeout`` seconds. Elsewhere (no SIGALRM, or a
worker thread) the call runs in a daemon thread; on time-out that thread is
sent a ``LearnerTimeout`` so a runaway Python loop stops instead of spinning
on (and holding the GIL) for the rest of the session. A call stuck inside one
long C function cannot be interrupted this way and is abandoned.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_TIMEOUT_S = 10.0
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LearnerTimeout(BaseException):
    """Raised inside learner code when it runs too long (a BaseException so a bare
    ``except Exception`` in the learner's code cannot swallow it)."""


@dataclass
class Outcome:
    """What came of one call: the value, or an error message for the learner."""

    value: Any = None
    error: str | None = None
    timed_out: bool = False


def _is_learner_frame(filename: str) -> bool:
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR + os.sep):
        return False
    return "site-packages" not in path and "dist-packages" not in path and not path.startswith(sys.base_prefix)


def describe_exception(exc: BaseException) -> str:
    """Format ``exc`` showing only the learner's own frames (not the grader's or torch's)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_learner_frame(f.filename)]
    lines = [f"Your code raised {type(exc).__name__}: {exc}"]
    if isinstance(exc, NotImplementedError):
        lines = ["The exercise is not implemented yet (it still raises NotImplementedError). Replace the stub with your code."]
    for f in frames[-3:]:
        where = "your notebook cell" if ("ipykernel" in f.filename or f.filename.startswith("<")) else os.path.basename(f.filename)
        lines.append(f"  in {f.name}, line {f.lineno} of {where}:")
        if f.line:
            lines.append(f"      {f.line.strip()}")
    return "\n".join(lines)


def _timeout_message(timeout: float) -> str:
    return (
        f"Your function did not finish within {timeout:g} s and was stopped. "
        "Look for a loop that never ends, or a Python loop over many elements that could be one tensor operation."
    )


def call_with_timeout(fn: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:
    """Run ``fn(*args, **kwargs)``; never raises. Returns an :class:`Outcome`."""
    kwargs = kwargs or {}
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(fn, args, kwargs, timeout)
    return _call_in_thread(fn, args, kwargs, timeout)


def _call_with_alarm(fn, args, kwargs, timeout) -> Outcome:
    def on_alarm(signum, frame):
        raise LearnerTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return Outcome(value=fn(*args, **kwargs))
    except LearnerTimeout:
        return Outcome(error=_timeout_message(timeout), timed_out=True)
    except RecursionError as exc:
        return Outcome(error=f"Your code recursed too deeply (RecursionError: {exc}).")
    except BaseException as exc:  # the learner's code may raise anything, even SystemExit
        return Outcome(error=describe_exception(exc))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_thread(fn, args, kwargs, timeout) -> Outcome:
    box: dict[str, Outcome] = {}

    def target():
        try:
            box["out"] = Outcome(value=fn(*args, **kwargs))
        except BaseException as exc:
            box["out"] = Outcome(error=describe_exception(exc))

    worker = threading.Thread(target=target, daemon=True, name="mi-course-learner-call")
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _interrupt(worker)
        return Outcome(error=_timeout_message(timeout), timed_out=True)
    return box["out"]


def _interrupt(worker: threading.Thread, wait: float = 1.0) -> None:
    """Raise ``LearnerTimeout`` inside ``worker`` (at its next Python bytecode) and wait for it to end."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(LearnerTimeout))
    worker.join(wait)
