"""Hyper-parameter constraints: each model's ``_constraints`` table maps a name to one of these.

``Recommender._validate_params`` checks them at the start of ``fit`` and raises one
clear :class:`~latentrec.errors.ModelError` per bad value.
"""

from __future__ import annotations

import math
import numbers



class Interval:
    """An allowed numeric range for a hyper-parameter: ``Interval(int, 1, None)`` is an int >= 1."""

    def __init__(self, kind, low=None, high=None, *, closed: str = "both", none_ok: bool = False):
        self.kind, self.low, self.high, self.closed, self.none_ok = kind, low, high, closed, none_ok

    def describe(self) -> str:
        name = "an integer" if self.kind is int else "a number"
        parts = []
        if self.low is not None:
            parts.append((">= " if self.closed in ("both", "left") else "> ") + f"{self.low:g}")
        if self.high is not None:
            parts.append(("<= " if self.closed in ("both", "right") else "< ") + f"{self.high:g}")
        text = f"{name} {' and '.join(parts)}".strip()
        return text + (" or None" if self.none_ok else "")

    def check(self, value) -> bool:
        if value is None:
            return self.none_ok
        if isinstance(value, bool):
            return False
        if self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True


class Options:
    """A hyper-parameter that takes one of a fixed set of values."""

    def __init__(self, *values):
        self.values = values

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.values))

    def check(self, value) -> bool:
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)
