"""Claims: what a chapter's prose says, checked in code where it is made.

A sentence such as "the five features sit 65–79° apart" is only as good as the run it describes. A
notebook states it next to the cell that computes it::

    from mi_course.claims import claim

    claim("the sparsest instance's features sit 65–79° apart", angles, between=(65, 79), fmt="{:.0f}°")
    claim("loss recovered is above 0.9", loss_recovered, above=0.9)
    claim("AtP ranks the top node first", atp_rank, equals=1)
    claim("the hidden layer is linear", is_linear(hidden, 5))

and the reader sees one short line under the cell, the value it was checked against in brackets::

    ✓ the sparsest instance's features sit 65–79° apart (70°–73°)
    ✗ loss recovered is above 0.9 (0.87)

A value with several numbers (a list, a tensor) must satisfy the condition everywhere; its range is shown.
With ``MI_COURSE_CLAIMS=strict`` (the test suite sets it; the kernels it starts inherit it) a ✗ raises
:class:`ClaimFailed`, so a notebook whose prose no longer holds fails its test, at any seed and size.
A chapter that can run on any model says which one its prose describes with :func:`written_for`; on
another model its claims report but never raise. With ``MI_COURSE_CLAIMS_LOG=path`` every claim is appended to that file as a JSON line, which is how
``make bench`` reports which claims hold at ``size="full"``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

STRICT_ENV = "MI_COURSE_CLAIMS"
LOG_ENV = "MI_COURSE_CLAIMS_LOG"

_written_for_another_model = False


class ClaimFailed(AssertionError):
    """A claim that does not hold, raised in strict mode (under test)."""


@dataclass(frozen=True)
class Claim:
    """One checked claim: its text, whether it holds, and the value as shown to the reader."""

    text: str
    holds: bool
    shown: str

    def __str__(self) -> str:
        return f"{'✓' if self.holds else '✗'} {self.text}" + (f" ({self.shown})" if self.shown else "")


def _numbers(value: Any) -> list[float]:
    """Every number in ``value`` (a number, a bool, a list or tuple of them, a tensor or an array)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [x for item in value for x in _numbers(item)]
    return [float(value)]


def _show(numbers: list[float], fmt: str) -> str:
    """One number, or the range of several: ``0.87`` or ``70°–73°``."""
    low, high = min(numbers), max(numbers)
    return fmt.format(low) if low == high else f"{fmt.format(low)}–{fmt.format(high)}"


def evaluate(text: str, value: Any, *, above: float | None = None, below: float | None = None,
             between: tuple[float, float] | None = None, equals: Any = None, fmt: str = "{:.3g}") -> Claim:
    """Check ``value`` against one condition (or, with none, that it is true) and return the :class:`Claim`.

    ``above``/``below`` are strict; ``between`` includes both ends; ``equals`` compares exactly (for
    counts, ranks and names). Nothing is printed or raised: :func:`claim` does that.
    """
    conditions = {k: v for k, v in dict(above=above, below=below, between=between, equals=equals).items()
                  if v is not None}
    if len(conditions) > 1:
        raise TypeError(f"a claim checks one condition; got {sorted(conditions)} (state two claims)")
    if not conditions:
        holds = all(bool(x) for x in _numbers(value))
        return Claim(text, holds, "" if holds else "it does not hold")
    if "equals" in conditions and not isinstance(equals, (int, float)):
        return Claim(text, value == equals, str(value))
    numbers = _numbers(value)
    if not numbers or any(math.isnan(x) for x in numbers):
        return Claim(text, False, "no value" if not numbers else "nan")
    test = {"above": lambda x: x > above, "below": lambda x: x < below,
            "between": lambda x: between[0] <= x <= between[1], "equals": lambda x: x == equals}[next(iter(conditions))]
    return Claim(text, all(test(x) for x in numbers), _show(numbers, fmt))


def written_for(model_name: str, running: str) -> None:
    """Say which model the prose describes (a chapter's setup cell calls this once).

    On another model (``running != model_name``) the claims still print, ✓ or ✗, and so say which
    sentences hold for it; but a ✗ never stops the notebook, not even in strict mode.
    """
    global _written_for_another_model
    _written_for_another_model = running != model_name
    if _written_for_another_model:
        print(f"The prose describes {model_name}; on {running} the ✓/✗ lines say which of its claims hold.")


def claim(text: str, value: Any, **condition: Any) -> None:
    """Check a claim the prose makes (see :func:`evaluate` for the conditions) and print one line.

    Strict mode (``MI_COURSE_CLAIMS=strict``) raises :class:`ClaimFailed` when it does not hold.
    """
    result = evaluate(text, value, **condition)
    print(result)
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(result), ensure_ascii=False) + "\n")
    if not result.holds and os.environ.get(STRICT_ENV) == "strict" and not _written_for_another_model:
        raise ClaimFailed(f"the notebook claims {text!r}, but the value is {result.shown}")
