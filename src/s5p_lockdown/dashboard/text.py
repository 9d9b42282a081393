"""How numbers are written on the dashboard, in one place: the Unicode minus sign "−" (as
plotly writes negative numbers in its axes and hovers), a space before "%", and "n/a" for a
missing value."""

from __future__ import annotations

import numpy as np

MINUS = "\u2212"
MISSING = "n/a"


def number(value, fmt: str = ".1f") -> str:
    """``value`` formatted with ``fmt`` and a Unicode minus; :data:`MISSING` when None/NaN."""
    if value is None or not np.isfinite(value):
        return MISSING
    return format(value, fmt).replace("-", MINUS)


def percent(value, digits: int = 1, signed: bool = True) -> str:
    """'−19.4 %', '+2.0 %' (``signed``) or :data:`MISSING`."""
    text = number(value, f"{'+' if signed else ''}.{digits}f")
    return text if text == MISSING else f"{text} %"


def interval(low, high, digits: int = 1) -> str:
    """'−35.0 to −25.0 %', or :data:`MISSING` when either end is missing."""
    if MISSING in (number(low), number(high)):
        return MISSING
    return f"{number(low, f'+.{digits}f')} to {number(high, f'+.{digits}f')} %"
