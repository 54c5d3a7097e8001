"""What the engine's parts share while a run goes, passed to each explicitly: the market as
last seen, the replay checkpoint, the router (it exists once start-up knows the instrument),
and the journal recorder that counts what it hands over."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.exchange.touch import TapeTouch
from cryptoarena.trading.risk.manager import RiskManager
from cryptoarena.trading.router import OrderRouter


@dataclass
class RunState:
    last_price: float | None = None
    last_trade_ns: int | None = None
    # Ticks up to here replay history (a resumed run, in-sample bars): strategies warm up only.
    checkpoint_ns: int = 0
    last_decision: dict[str, str] = field(default_factory=dict)
    router: OrderRouter | None = None
    # The touch estimated from the tape the strategies see: where maker quotes join.
    touch: TapeTouch = field(default_factory=TapeTouch)

    def need_router(self) -> OrderRouter:
        if self.router is None:
            raise RuntimeError("the engine has not started: no order router yet")
        return self.router


class Recorder:
    """Journal events through one door, counted by kind (the exactly-once checks use it)."""

    def __init__(self, journal: Any, result: WorkerResult) -> None:
        self.journal = journal
        self.result = result

    def __call__(self, kind: str, doc: dict[str, Any]) -> str:
        self.result.journaled[kind] += 1
        return str(self.journal.record(kind, doc))

    def risk_event(self, doc: dict[str, Any]) -> None:
        self("risk_events", doc)


def must_flatten(risk: RiskManager, name: str, *, flatten_on_kill: bool) -> bool:
    """Halted (loss, drawdown, crash), globally halted, or killed with flatten_on_kill."""
    return (
        name in risk.halted
        or risk.global_halt is not None
        or (risk.killed is not None and flatten_on_kill)
    )
