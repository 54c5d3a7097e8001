"""What a run produced, and the family a strategy kind belongs to."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptoarena.trading.strategies import AI_KINDS, CLASSICAL_KINDS


def family(kind: str) -> str:
    return "ai" if kind in AI_KINDS else "classical" if kind in CLASSICAL_KINDS else "reference"


@dataclass
class WorkerResult:
    run_id: str
    trades: int = 0
    bars: int = 0
    decisions: int = 0
    orders: int = 0
    fills: int = 0
    late_trades: int = 0
    stopped_by: str = "feed ended"
    # Why the run ended: "feed ended", "signal", "stop requested", "crash", "kill switch"; and
    # whether it covered what it was asked to (a replay to its end, live until told to stop).
    ended_by: str = "feed ended"
    complete: bool = True
    error: str | None = None
    restored: dict[str, Any] = field(default_factory=dict)
    equity: dict[str, float] = field(default_factory=dict)
    # Events handed to the journal, by kind (what "every event exactly once" is checked against).
    journaled: Counter[str] = field(default_factory=Counter)
