"""Compare a learner's value with the expected one and say *how* they differ.

Every function here returns ``None`` when the values agree and otherwise a
sentence a learner can act on: wrong type, shape, dtype, NaN/inf, or the first
entry that is off (where, expected vs got, and the tolerance used).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def _type_name(x: Any) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def describe_mismatch(
    got: Any, expected: Any, *, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4
) -> str | None:
    """Return ``None`` if ``got`` matches ``expected``, else a description of the difference.

    Tensors are compared on type, shape, dtype, finiteness and then values
    (``|got - expected| <= atol + rtol * |expected|``). Python numbers and
    bools are compared with the same tolerance; tuples, lists and dicts elementwise.
    """
    if isinstance(expected, torch.Tensor):
        return _tensor_mismatch(got, expected, name=name, atol=atol, rtol=rtol)
    if isinstance(expected, bool):
        if not isinstance(got, (bool, np.bool_)) and not (
            isinstance(got, torch.Tensor) and got.numel() == 1 and got.dtype == torch.bool
        ):
            return f"{name} should be a bool, but got {_type_name(got)} ({got!r})."
        return None if bool(got) == expected else f"{name}: expected {expected}, got {bool(got)}."
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float, np.floating, np.integer)) or isinstance(got, bool):
            return f"{name} should be a number, but got {_type_name(got)}."
        got = float(got)
        if math.isnan(got) or math.isinf(got):
            return f"{name} is {got}; expected {_fmt(expected)}."
        if abs(got - expected) > atol + rtol * abs(expected):
            return f"{name}: expected {_fmt(expected)}, got {_fmt(got)} (tolerance atol={atol:g}, rtol={rtol:g})."
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{name} should be a {type(expected).__name__} of {len(expected)} items, but got {_type_name(got)}."
        if len(got) != len(expected):
            return f"{name} should have {len(expected)} items, but has {len(got)}."
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = describe_mismatch(g, e, name=f"{name}[{i}]", atol=atol, rtol=rtol)
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{name} should be a dict with keys {sorted(expected)}, but got {_type_name(got)}."
        if set(got) != set(expected):
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            return (f"{name} has the wrong keys: " + (f"missing {missing}" if missing else "")
                    + ("; " if missing and extra else "") + (f"unexpected {extra}" if extra else "") + ".")
        for key in expected:
            msg = describe_mismatch(got[key], expected[key], name=f"{name}[{key!r}]", atol=atol, rtol=rtol)
            if msg:
                return msg
        return None
    try:
        return None if got == expected else f"{name}: expected {expected!r}, got {got!r}."
    except Exception:  # e.g. comparing tensors inside an unexpected container
        return f"{name}: expected {expected!r}, got {_type_name(got)}."


def _tensor_mismatch(got: Any, expected: torch.Tensor, *, name: str, atol: float, rtol: float) -> str | None:
    if got is None:
        return f"{name} is None. Did you forget a `return` statement?"
    if isinstance(got, np.ndarray):
        return (
            f"{name} is a numpy array, but a torch.Tensor is expected. "
            "Stay in torch (avoid .numpy()), or wrap the result with torch.as_tensor(...)."
        )
    if not isinstance(got, torch.Tensor):
        return f"{name} should be a torch.Tensor of shape {tuple(expected.shape)}, but got {_type_name(got)}."
    if got.shape != expected.shape:
        msg = f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}."
        if got.ndim == expected.ndim and sorted(got.shape) == sorted(expected.shape):
            msg += " The same sizes in another order: are two dimensions swapped (a missing transpose)?"
        elif got.numel() == expected.numel():
            msg += " Same number of entries: did you reshape or flatten where you should not?"
        elif got.ndim < expected.ndim:
            msg += " Fewer dimensions: did you sum or take a mean over a dimension you should keep?"
        elif got.ndim > expected.ndim:
            msg += " More dimensions: a reduction may be missing, or broadcasting added a dimension."
        return msg
    if got.dtype != expected.dtype:
        return f"{name} has dtype {got.dtype}, expected {expected.dtype}."
    if expected.dtype == torch.bool or not expected.is_floating_point():
        diff = (got.cpu() != expected.cpu())
        if diff.any():
            idx = tuple(int(i) for i in diff.nonzero()[0])
            return (
                f"{name} differs at index {idx}: expected {expected[idx].item()}, got {got[idx].item()} "
                f"({int(diff.sum())} of {diff.numel()} entries differ)."
            )
        return None
    g, e = got.detach().cpu().double(), expected.detach().cpu().double()
    bad_nonfinite = ~torch.isfinite(g) & torch.isfinite(e)
    if bad_nonfinite.any():
        idx = tuple(int(i) for i in bad_nonfinite.nonzero()[0])
        kind = "NaN" if torch.isnan(g[idx]) else "inf"
        return (
            f"{name} contains {kind} at index {idx} ({int(bad_nonfinite.sum())} non-finite entries); "
            f"expected {_fmt(e[idx].item())} there. Look for a division by zero or log/sqrt of 0 or a negative."
        )
    close = torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
    if not close.all():
        bad = ~close
        idx = tuple(int(i) for i in bad.nonzero()[0])
        return (
            f"{name} is off at index {idx}: expected {_fmt(e[idx].item())}, got {_fmt(g[idx].item())} "
            f"({int(bad.sum())} of {bad.numel()} entries differ; tolerance atol={atol:g}, rtol={rtol:g})."
        )
    return None


def values_match(got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """True when :func:`describe_mismatch` finds nothing wrong (used to spot known mistakes)."""
    try:
        return describe_mismatch(got, expected, atol=atol, rtol=rtol) is None
    except Exception:
        return False
