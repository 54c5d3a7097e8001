"""The risk manager's state that must outlive the process, and the loss rule written once.

:class:`RiskState` is what a restart must not forget: the halts (reason, time, and the UTC day
of a daily-loss halt, which ends at the next day's first mark), the global halt, the kill
switch and each key's loss-check marks (the UTC day, its start equity, the peak equity); the
order-rate windows are rebuilt from the journaled orders of the last minute. The manager
journals it (``risk_state`` documents, :meth:`RiskState.doc`) after every check that changed
it and the worker restores the newest one on resume (:meth:`RiskState.from_doc`, called by
``engine/restore.py``). Keys are strategy names, ``"*"`` the total.

:func:`loss_breach` is the daily-loss / drawdown rule; the per-snapshot check and the
vectorised check along a path of marks both call it (floats or numpy arrays alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

GLOBAL = "*"  # the key of the total (global limits)

Num = TypeVar("Num", float, np.ndarray)


def loss_measures(start: Num | float, peak: Num, equity: Num, capital: float) -> tuple[Num, Num]:
    """(daily loss as a fraction of capital, drawdown as a fraction of the peak); along a path
    ``start`` may be one float for every mark (a path inside one UTC day)."""
    daily = (start - equity) / capital if capital > 0 else equity * 0.0
    if isinstance(peak, np.ndarray):
        if peak.min() > 0:  # the usual case: the same values without the guarded division
            return daily, (peak - equity) / peak
        with np.errstate(divide="ignore", invalid="ignore"):
            return daily, np.where(peak > 0, (peak - equity) / peak, 0.0)
    return daily, (peak - equity) / peak if peak > 0 else equity * 0.0


def loss_breach(daily: Num, drawdown: Num, max_daily_loss: float, max_drawdown: float) -> Num:
    """Where a mark breaks a loss limit (a bool, or a bool array along a path)."""
    return (daily > max_daily_loss) | (drawdown > max_drawdown)


@dataclass(frozen=True, slots=True)
class Mark:
    """One key's loss-check state after a mark: the UTC day, its start equity, the peak."""

    day: int
    start: float
    peak: float


@dataclass(frozen=True, slots=True)
class Halt:
    reason: str
    ts_ns: int
    daily_day: int | None = None  # a daily-loss halt: the UTC day it happened on


@dataclass
class RiskState:
    halts: dict[str, Halt] = field(default_factory=dict)  # strategy or GLOBAL → its halt
    killed: str | None = None
    killed_at: int | None = None
    marks: dict[str, Mark] = field(default_factory=dict)
    # Something a restart needs changed since the last journaled document.
    dirty: bool = False

    def advance(self, key: str, mark: Mark) -> None:
        """The one door for the loss checks' state (the per-snapshot and the path checks)."""
        if self.marks.get(key) != mark:
            self.marks[key] = mark
            self.dirty = True

    def set_halt(self, key: str, halt: Halt | None) -> None:
        if halt is None:
            self.halts.pop(key, None)
        else:
            self.halts[key] = halt
        self.dirty = True

    def set_kill(self, reason: str | None, now_ns: int | None) -> None:
        self.killed, self.killed_at, self.dirty = reason, now_ns, True

    def doc(self, now_ns: int) -> dict[str, Any]:
        """The journal document (``risk_state``): everything :meth:`from_doc` needs. Lists, not
        maps keyed by strategy: a name is data, never a document key (MongoDB keys are not
        free text)."""
        return {
            "ts_ns": now_ns,
            "halts": [
                {"key": k, "reason": h.reason, "ts_ns": h.ts_ns, "daily_day": h.daily_day}
                for k, h in self.halts.items()
            ],
            "killed": self.killed,
            "killed_at": self.killed_at,
            "marks": [[k, m.day, m.start, m.peak] for k, m in self.marks.items()],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RiskState:
        return cls(
            halts={
                str(h["key"]): Halt(
                    str(h["reason"]),
                    int(h["ts_ns"]),
                    None if h.get("daily_day") is None else int(h["daily_day"]),
                )
                for h in doc.get("halts") or []
            },
            killed=doc.get("killed"),
            killed_at=doc.get("killed_at"),
            marks={
                str(k): Mark(int(day), float(start), float(peak))
                for k, day, start, peak in doc.get("marks") or []
            },
        )
