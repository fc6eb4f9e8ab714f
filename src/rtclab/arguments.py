"""argparse types for the samples' options: a number in a range, so a bad value is a one-line usage error.

    parser.add_argument("--seconds", type=whole_number(2, 60), default=5)
    parser.add_argument("--delay-ms", type=number(0, 2000, "ms"), default=0)

argparse turns the `ArgumentTypeError` these raise into ``error: argument --seconds: must be from 2 to 60, got 99``
and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

__all__ = ["number", "whole_number"]

T = TypeVar("T", int, float)


def _shown(value: float) -> str:
    """2147483648 as it is, 0.25 as 0.25 (``:g`` alone would write 2.14748e+09)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _in_range(read: Callable[[str], T], what: str, low: float, high: float, unit: str) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = read(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {what}: {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            within = f"from {_shown(low)} to {_shown(high)}{f' {unit}' if unit else ''}"
            raise argparse.ArgumentTypeError(f"must be {within}, got {text}")
        return value

    return parse


def whole_number(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """A type that reads a whole number from `low` to `high` (both included); `unit` is named in the error."""
    return _in_range(int, "whole number", low, high, unit)


def number(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """A type that reads a finite number from `low` to `high` (both included); `unit` is named in the error."""
    return _in_range(float, "number", low, high, unit)
