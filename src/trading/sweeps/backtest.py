"""One grid point = one backtest through the project's own backtest path, and what it scored.

:func:`run_point` is the only place a sweep touches the engine: it calls
:func:`cryptoarena.trading.engine.session.run_session` (the path ``arena backtest`` takes) and reads
the result back with :func:`cryptoarena.trading.results.report.load` (what ``arena report`` shows), so
a point's numbers are the numbers a user would get running that backtest by hand.

Every point journals into its own embedded store under its own folder (journal, home, kill
file): parallel points never share a journal's writer lock, and a sweep never writes into the
production journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from cryptoarena.config import Settings, get_settings
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.sweeps.grid import GridPoint

if TYPE_CHECKING:
    from cryptoarena.trading.engine.result import WorkerResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointJob:
    """Everything a worker needs to run one point (plain data: it travels to Dask workers)."""

    point: GridPoint
    config: ArenaConfig
    replay_file: Path
    directory: Path
    run_id: str


@dataclass(frozen=True)
class PointResult:
    point: GridPoint
    run_id: str
    pnl: float | None = None  # after fees (final equity − capital)
    fees: float | None = None
    fills: int | None = None
    round_trips: int | None = None
    sharpe: float | None = None  # per snapshot, not annualised
    max_drawdown: float | None = None
    psr: float | None = None
    periods: int = 0
    wall_s: float = 0.0
    error: str | None = None
    # Per-period returns of the equity curve (for the deflated Sharpe ratio); not in the table.
    returns: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def metrics(self) -> dict[str, float]:
        """What goes to MLflow (only the defined ones)."""
        values: dict[str, float | int | None] = {
            "pnl": self.pnl,
            "fees": self.fees,
            "fills": self.fills,
            "round_trips": self.round_trips,
            "sharpe": self.sharpe,
            "max_drawdown": self.max_drawdown,
            "psr": self.psr,
            "periods": self.periods,
            "wall_s": self.wall_s,
        }
        return {k: float(v) for k, v in values.items() if v is not None and np.isfinite(v)}


def point_settings(settings: Settings, directory: Path) -> Settings:
    """``settings`` with the journal (always the embedded store), home, kill file and alerts
    of this point only."""
    directory = directory.resolve()
    return settings.model_copy(
        update={
            "home": directory,
            "mongo": settings.mongo.model_copy(
                update={"uri": None, "embedded_dir": directory / "journal", "spill_dir": None}
            ),
            "trading": settings.trading.model_copy(update={"kill_file": directory / "arena.kill"}),
            "alerts": settings.alerts.model_copy(update={"urls": []}),
        }
    )


def backtest(settings: Settings, job: PointJob) -> WorkerResult:
    """The adapter to the engine: one backtest of ``job`` (the ``arena backtest`` path)."""
    from cryptoarena.trading.engine.session import SessionOptions, run_session

    options = SessionOptions(
        run_id=job.run_id,
        replay_file=job.replay_file,
        start_minute=job.point.span.start_minute,
        minutes=job.point.span.minutes,
        speed=None,  # as fast as possible: a backtest
    )
    return asyncio.run(run_session(settings, job.config, options, handle_signals=False))


def run_point(job: PointJob, settings: Settings | None = None) -> PointResult:
    """Run one point and score it from its journal; raises when the backtest fails."""
    from cryptoarena.trading.results.report import load
    from cryptoarena.trading.results.stats import per_period_sharpe, period_returns

    started = time.perf_counter()
    job.directory.mkdir(parents=True, exist_ok=True)
    local = point_settings(settings or get_settings(), job.directory)
    result = backtest(local, job)
    if not result.complete:  # a replay that did not run to its end
        raise RuntimeError(f"backtest {job.run_id} did not complete: {result.ended_by}")
    data = load(local, job.run_id)
    name = job.config.strategies[0].name
    row = next((r for r in data.report.strategies if r.name == name), None)
    curve = data.curves.get(name)
    if row is None or curve is None:
        raise RuntimeError(f"backtest {job.run_id} journaled no equity for {name}")
    returns = period_returns(curve.equity)
    wall = time.perf_counter() - started
    logger.info("%s %s: pnl %.2f, %d fills (%.1f s)", job.point.point_id, job.point.label(),
                row.pnl, row.fills, wall)  # fmt: skip
    return PointResult(
        point=job.point,
        run_id=job.run_id,
        pnl=row.pnl,
        fees=row.fees,
        fills=row.fills,
        round_trips=row.round_trips,
        # Per snapshot, not annualised (the report's Sharpe is per day, none under 3 days).
        sharpe=per_period_sharpe(returns),
        max_drawdown=row.max_drawdown,
        psr=row.psr,
        periods=len(returns),
        wall_s=wall,
        returns=returns,
    )


def failed(job: PointJob, error: str) -> PointResult:
    return PointResult(point=job.point, run_id=job.run_id, error=error)
