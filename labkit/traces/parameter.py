"""A fitted (or assumed) parameter: its value, its 95% interval, and where it came from."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FitParameter:
    value: float
    lo: float | None
    hi: float | None
    provenance: str  # fitted | derived | assumed
    source: str = ""
    note: str = ""

    def contains(self, x: float) -> bool:
        return self.lo is not None and self.hi is not None and self.lo <= x <= self.hi

    def to_dict(self) -> dict[str, Any]:
        def num(v: float | None) -> float | str | None:
            return None if v is None else ("inf" if math.isinf(v) else float(v))

        return {
            "value": num(self.value),
            "lo": num(self.lo),
            "hi": num(self.hi),
            "provenance": self.provenance,
            "source": self.source,
            "note": self.note,
        }
