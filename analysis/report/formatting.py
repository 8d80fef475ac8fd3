"""How numbers are shown in tables: one place, so the terminal and the report agree."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, digits: int = 1) -> str:
    """A number with thousands separators, or '-' for a missing or NaN value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return str(value)
