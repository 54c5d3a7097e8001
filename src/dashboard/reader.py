"""Read models for the dashboard, computed from the journal (opened read-only) through the same
functions ``arena report`` uses (``cryptoarena.trading.report`` / ``stats``).

Every query starts from an indexed window (run_id + ts_ns, or a read model), since litemongo
evaluates queries in Python. Figures that need a whole run (leaderboard, equity curves) are
cached per run and recomputed only when the run's latest equity snapshots change.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from cryptoarena.dashboard import schemas as s
from cryptoarena.trading.results.model import Comparison as ReportComparison
from cryptoarena.trading.results.model import StrategyRow as ReportRow
from cryptoarena.trading.results.source import build_report, latest_run_id

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_POINTS = 2000
# A run whose figures changed is recomputed at most this often (a live run snapshots every few
# seconds; the stream tells the page when to ask again).
RECOMPUTE_S = 2.0


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def downsample_minmax(ts: np.ndarray, ys: np.ndarray, points: int) -> list[tuple[int, float]]:
    """At most ``points`` points: each time bucket keeps its minimum and maximum in time order,
    so drawdown troughs and peaks survive (LTTB would shave them)."""
    n = len(ts)
    if n <= points:
        return [(int(t), float(y)) for t, y in zip(ts, ys, strict=True)]
    buckets = max(1, points // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    out: list[tuple[int, float]] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        seg = ys[lo:hi]
        i_min, i_max = lo + int(np.argmin(seg)), lo + int(np.argmax(seg))
        for i in sorted({i_min, i_max}):
            out.append((int(ts[i]), float(ys[i])))
    return out


def candles(ts_ms: np.ndarray, price: np.ndarray, buckets: int) -> list[s.Candle]:
    """OHLC of the marked price in ``buckets`` equal time buckets (empty buckets are left out:
    gaps stay gaps)."""
    if len(ts_ms) == 0:
        return []
    t0, t1 = int(ts_ms[0]), int(ts_ms[-1])
    width = max(1, math.ceil((t1 - t0 + 1) / max(1, buckets)))
    idx = (ts_ms - t0) // width
    out: list[s.Candle] = []
    bounds = np.flatnonzero(np.diff(idx)) + 1
    for seg in np.split(np.arange(len(idx)), bounds):
        p = price[seg]
        out.append(
            s.Candle(
                t=t0 + int(idx[seg[0]]) * width,
                o=float(p[0]),
                h=float(p.max()),
                l=float(p.min()),
                c=float(p[-1]),
            )
        )
    return out


def interval(c: ReportComparison, periods: int, confidence: float) -> s.Interval:
    """One comparison of the run report (AI minus a rival), as the dashboard draws it."""
    return s.Interval(
        rival=c.versus,
        periods=periods,
        mean_diff_bps=_finite(c.mean_diff_bps),
        ci_low_bps=_finite(c.ci[0]),
        ci_high_bps=_finite(c.ci[1]),
        confidence=confidence,
        verdict="significant" if c.significant else "not significant",
    )


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = hits / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (mid - half, mid + half)


class _Cache:
    """Per-key memo that recomputes when the key's version changes (at most every
    ``RECOMPUTE_S``; meanwhile the previous value is served)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[Any, float, Any]] = {}

    def get(self, key: Any, version: Any, compute: Callable[[], T]) -> T:
        with self._lock:
            hit = self._items.get(key)
        now = time.monotonic()
        if hit is not None and (hit[0] == version or now - hit[1] < RECOMPUTE_S):
            return hit[2]
        value = compute()
        with self._lock:
            self._items[key] = (version, now, value)
            if len(self._items) > 256:
                self._items.pop(next(iter(self._items)))
        return value


class DashboardReader:
    """Queries behind the API routes; ``journal`` is a read-only :class:`Journal`."""

    def __init__(self, journal: Any, *, embedded: bool = True) -> None:
        self.journal = journal
        self.embedded = embedded
        self._cache = _Cache()

    # -- runs -----------------------------------------------------------------------------
    def latest_run_id(self) -> str | None:
        return latest_run_id(self.journal)

    def run_count(self) -> int:
        return len({d["run_id"] for d in self.journal.find("runs", {}, projection={"run_id": 1})})

    def _run_docs(self, run_id: str) -> list[dict[str, Any]]:
        return self.journal.find(
            "runs", {"run_id": run_id}, sort=[("ts_ns", 1)], projection={"strategies.config": 0}
        )

    def run_info(self, run_id: str) -> s.RunInfo | None:
        docs = self._run_docs(run_id)
        started = [d for d in docs if d.get("event") == "started"]
        if not started:
            return None
        first = started[0]
        ends = [d for d in docs if d.get("event") == "stopped"]
        # A resumed run starts again after a stop: it runs while the last event is a start.
        last = docs[-1]
        running = last.get("event") == "started"
        end = None if running or not ends else ends[-1]
        span = self.journal.find(
            "equity_latest", {"run_id": run_id}, projection={"ts_ns": 1, "_id": 0}
        )
        first_eq = self.journal.find(
            "equity", {"run_id": run_id}, sort=[("ts_ns", 1)], limit=1, projection={"ts_ns": 1}
        )
        return s.RunInfo(
            run_id=run_id,
            source=first.get("source"),
            exchange=first.get("exchange"),
            symbol=first.get("symbol"),
            started_ns=int(first["ts_ns"]),
            ended_ns=int(end["ts_ns"]) if end else None,
            # ``ended_by`` is the engine's newer name; ``stopped_by`` what older runs journaled.
            ended_by=(end.get("ended_by") or end.get("stopped_by")) if end else None,
            running=running,
            first_data_ns=int(first_eq[0]["ts_ns"]) if first_eq else None,
            last_data_ns=max((int(d["ts_ns"]) for d in span), default=None),
            strategies=[st["name"] for st in first.get("strategies", [])],
            capital=_f(first.get("arena", {}).get("capital")),
        )

    def runs(self, limit: int, offset: int) -> s.Page[s.RunInfo]:
        starts = self.journal.find(
            "runs", {"event": "started"}, sort=[("ts_ns", -1)], projection={"run_id": 1}
        )
        ids = list(dict.fromkeys(d["run_id"] for d in starts))
        items = [r for rid in ids[offset : offset + limit] if (r := self.run_info(rid))]
        return s.Page[s.RunInfo](items=items, total=len(ids), limit=limit, offset=offset)

    def _started(self, run_id: str) -> dict[str, Any]:
        docs = self.journal.find(
            "runs", {"run_id": run_id, "event": "started"}, sort=[("ts_ns", 1)], limit=1
        )
        if not docs:
            raise LookupError(f"no run {run_id!r} in the journal")
        return docs[0]

    def families(self, run_id: str) -> dict[str, str]:
        return {st["name"]: st["family"] for st in self._started(run_id).get("strategies", [])}

    def _version(self, run_id: str) -> tuple[Any, ...]:
        """Changes whenever any strategy of the run journals a new equity snapshot."""
        docs = self.journal.find(
            "equity_latest", {"run_id": run_id}, projection={"strategy": 1, "seq": 1, "ts_ns": 1}
        )
        return tuple(sorted((d["strategy"], d.get("ts_ns"), d.get("seq")) for d in docs))

    # -- leaderboard and verdict ----------------------------------------------------------
    def leaderboard(self, run_id: str) -> s.Leaderboard:
        return self._cache.get(
            ("board", run_id), self._version(run_id), lambda: self._leaderboard(run_id)
        )

    def _curves(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        curves: dict[str, list[dict[str, Any]]] = {}
        proj = {"strategy": 1, "ts_ns": 1, "equity": 1, "qty": 1, "_id": 0}
        docs = self.journal.find(
            "equity", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)], projection=proj
        )
        for doc in docs:
            curves.setdefault(doc["strategy"], []).append(doc)
        return curves

    def _leaderboard(self, run_id: str) -> s.Leaderboard:
        # The same report (rows, verdict sentence and intervals) as `arena report`.
        rep = build_report(self.journal, run_id, forecasts=False)
        out_rows = [self._row(i, r) for i, r in enumerate(rep.strategies, start=1)]
        v = rep.verdict
        headline = next((c for c in v.comparisons if c.versus == v.benchmark), None)
        intervals = [interval(c, v.periods, v.confidence) for c in v.comparisons]
        return s.Leaderboard(
            run_id=run_id,
            rows=out_rows,
            comparison=interval(headline, v.periods, v.confidence) if headline else None,
            sentence=v.sentence,
            intervals=intervals,
        )

    @staticmethod
    def _row(rank: int, r: ReportRow) -> s.StrategyRow:
        halted = None
        if r.halted is not None:
            halted = r.halted.reason
        return s.StrategyRow(
            rank=rank,
            strategy=r.name,
            family=r.family,
            is_ai=r.family == "ai",
            equity=r.equity,
            pnl=r.pnl,
            return_pct=r.return_pct,
            fees=r.fees,
            fills=r.fills,
            round_trips=r.round_trips,
            win_rate=_finite(r.win_rate),
            profit_factor=_finite(r.profit_factor),
            sharpe=_finite(r.sharpe),
            sortino=_finite(r.sortino),
            max_drawdown_pct=r.max_drawdown * 100,
            exposure_pct=r.exposure * 100,
            halted=halted,
        )

    # -- curves ---------------------------------------------------------------------------
    def equity(self, run_id: str, points: int) -> s.EquityCurves:
        return self._cache.get(
            ("equity", run_id, points),
            self._version(run_id),
            lambda: self._equity(run_id, points),
        )

    def _equity(self, run_id: str, points: int) -> s.EquityCurves:
        started = self._started(run_id)
        families = {st["name"]: st["family"] for st in started.get("strategies", [])}
        series = []
        for name, curve in self._curves(run_id).items():
            ts = np.array([d["ts_ns"] // 1_000_000 for d in curve], dtype=np.int64)
            ys = np.array([d["equity"] for d in curve], dtype=np.float64)
            pts = [s.SeriesPoint(t=t, y=y) for t, y in downsample_minmax(ts, ys, points)]
            series.append(s.EquitySeries(strategy=name, family=families.get(name, "?"), points=pts))
        capital = _f(started.get("arena", {}).get("capital"))
        return s.EquityCurves(run_id=run_id, capital=capital, series=series)

    # -- fills, positions, strategy detail -------------------------------------------------
    @staticmethod
    def fill(doc: dict[str, Any]) -> s.Fill:
        return s.Fill(
            id=str(doc["_id"]),
            strategy=doc["strategy"],
            ts_ns=int(doc["ts_ns"]),
            side=str(doc.get("side", "")),
            price=_f(doc.get("price")),
            qty=_f(doc.get("qty")),
            fee=_f(doc.get("fee")),
            realised=_f(doc.get("realised", 0)),
            is_maker=doc.get("is_maker"),
        )

    def fills(self, run_id: str, strategy: str | None, limit: int, offset: int) -> s.Page[s.Fill]:
        filt: dict[str, Any] = {"run_id": run_id}
        if strategy:
            filt["strategy"] = strategy
        docs = self.journal.find(
            "fills", filt, sort=[("ts_ns", -1), ("seq", -1)], limit=offset + limit
        )[offset:]
        total = self.journal.count("fills", filt)
        return s.Page[s.Fill](
            items=[self.fill(d) for d in docs], total=total, limit=limit, offset=offset
        )

    def positions(self, run_id: str) -> list[s.Position]:
        families = self.families(run_id)
        docs = self.journal.find("equity_latest", {"run_id": run_id})
        return [
            s.Position(
                strategy=d["strategy"],
                family=families.get(d["strategy"], "?"),
                qty=_f(d.get("qty")),
                avg_price=_f(d.get("avg_price")),
                mark=_f(d.get("mark")),
                equity=_f(d.get("equity")),
                realised=_f(d.get("realised")),
                unrealised=_f(d.get("unrealised")),
                fees=_f(d.get("fees")),
                ts_ns=int(d["ts_ns"]),
            )
            for d in sorted(docs, key=lambda d: str(d["strategy"]))
        ]

    def strategy(self, run_id: str, name: str, points: int) -> s.StrategyDetail:
        return self._cache.get(
            ("strategy", run_id, name, points),
            self._version(run_id),
            lambda: self._strategy(run_id, name, points),
        )

    def _strategy(self, run_id: str, name: str, points: int) -> s.StrategyDetail:
        families = self.families(run_id)
        if name not in families:
            raise LookupError(f"no strategy {name!r} in run {run_id!r}")
        proj = {"ts_ns": 1, "mark": 1, "qty": 1, "equity": 1, "_id": 0}
        curve = self.journal.find(
            "equity", {"run_id": run_id, "strategy": name}, sort=[("ts_ns", 1)], projection=proj
        )
        capital = _f(self._started(run_id).get("arena", {}).get("capital"))
        ts = np.array([d["ts_ns"] // 1_000_000 for d in curve], dtype=np.int64)
        mark = np.array([_f(d.get("mark")) for d in curve], dtype=np.float64)
        step = max(1, len(curve) // max(1, points))
        position = [
            s.PositionPoint(
                t=int(d["ts_ns"] // 1_000_000),
                qty=_f(d.get("qty")),
                pnl=_f(d.get("equity")) - capital,
            )
            for d in curve[::step]
        ]
        fills = self.journal.find(
            "fills", {"run_id": run_id, "strategy": name}, sort=[("ts_ns", -1)], limit=500
        )
        board = self.leaderboard(run_id)
        row = next((r for r in board.rows if r.strategy == name), None)
        events = self.risk_events(run_id, name, 50, 0).items
        return s.StrategyDetail(
            run_id=run_id,
            strategy=name,
            family=families[name],
            candles=candles(ts, mark, min(points, 240)),
            fills=[self.fill(d) for d in reversed(fills)],
            position=position,
            row=row,
            risk_events=events,
        )

    # -- forecasts -------------------------------------------------------------------------
    def forecasts(self, run_id: str, last: int) -> s.Forecasts:
        docs = self.journal.find(
            "predictions", {"run_id": run_id}, sort=[("ts_ns", -1)], limit=last
        )
        docs.reverse()
        preds = []
        for d in docs:
            base = _f(d.get("base_price"))
            path = [base * math.exp(_f(r)) for r in d.get("log_returns") or []]
            preds.append(
                s.Prediction(
                    ts_ns=int(d["ts_ns"]),
                    base_price=base,
                    predicted_price=_finite(_f(d.get("predicted_price"))),
                    path=path,
                    target_ts_ns=int(d.get("target_ts_ns") or d["ts_ns"]),
                    realised_price=_finite(_f(d.get("realised_price"))),
                    model_version=d.get("model_version"),
                )
            )
        prices = [s.SeriesPoint(t=p.ts_ns // 1_000_000, y=p.base_price) for p in preds]
        return s.Forecasts(
            run_id=run_id,
            predictions=preds,
            prices=prices,
            accuracy=accuracy(preds),
            model_version=preds[-1].model_version if preds else None,
        )

    # -- risk --------------------------------------------------------------------------------
    def risk_events(
        self, run_id: str, strategy: str | None, limit: int, offset: int
    ) -> s.Page[s.RiskEvent]:
        filt: dict[str, Any] = {"run_id": run_id}
        if strategy:
            filt["strategy"] = strategy
        docs = self.journal.find(
            "risk_events", filt, sort=[("ts_ns", -1), ("seq", -1)], limit=offset + limit
        )[offset:]
        items = [risk_event(d) for d in docs]
        total = self.journal.count("risk_events", filt)
        return s.Page[s.RiskEvent](items=items, total=total, limit=limit, offset=offset)

    def risk_state(self, run_id: str) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
        started = self._started(run_id)
        summaries = {n: d for n, d in self.journal.summaries().items() if d.get("run_id") == run_id}
        halted = {n: str(d["halted"]) for n, d in summaries.items() if d.get("halted")}
        vetoes = {n: int(d.get("vetoes") or 0) for n, d in summaries.items()}
        return dict(started.get("risk") or {}), halted, vetoes

    def model_events(self, run_id: str, limit: int = 50) -> list[dict[str, Any]]:
        docs = self.journal.find(
            "model_events", {"run_id": run_id}, sort=[("ts_ns", -1)], limit=limit
        )
        return [{k: v for k, v in d.items() if k not in ("_id", "seq")} for d in docs]

    def newest_prediction(self, run_id: str) -> dict[str, Any] | None:
        docs = self.journal.find(
            "predictions",
            {"run_id": run_id},
            sort=[("ts_ns", -1)],
            limit=1,
            projection={"ts_ns": 1, "model_version": 1},
        )
        return docs[0] if docs else None

    def data_time(self, run_id: str) -> int | None:
        docs = self.journal.find("equity_latest", {"run_id": run_id}, projection={"ts_ns": 1})
        return max((int(d["ts_ns"]) for d in docs), default=None)

    def summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        return {n: d for n, d in self.journal.summaries().items() if d.get("run_id") == run_id}


def risk_event(d: dict[str, Any]) -> s.RiskEvent:
    return s.RiskEvent(
        id=str(d["_id"]),
        ts_ns=int(d["ts_ns"]),
        type=str(d.get("type", "?")),
        strategy=d.get("strategy"),
        reason=str(d.get("reason") or ""),
    )


def accuracy(preds: Sequence[s.Prediction]) -> s.Accuracy:
    """Resolved forecasts only: error of the model vs persistence (no change), in bps of the
    base price, and the direction hit rate with a Wilson 95 % interval."""
    done = [p for p in preds if p.realised_price is not None and p.predicted_price is not None]
    if not done:
        return s.Accuracy(resolved=0, mae_bps=None, persistence_mae_bps=None, skill=None,
                          hit_rate=None, hit_ci_low=None, hit_ci_high=None)  # fmt: skip
    base = np.array([p.base_price for p in done])
    real = np.array([p.realised_price for p in done], dtype=np.float64)
    pred = np.array([p.predicted_price for p in done], dtype=np.float64)
    err = (pred - real) / base * 1e4
    pers = (base - real) / base * 1e4
    mse_p = float(np.mean(pers**2))
    moved = real != base
    hits = int(np.sum(np.sign(pred[moved] - base[moved]) == np.sign(real[moved] - base[moved])))
    n = int(moved.sum())
    lo, hi = wilson(hits, n)
    return s.Accuracy(
        resolved=len(done),
        mae_bps=float(np.mean(np.abs(err))),
        persistence_mae_bps=float(np.mean(np.abs(pers))),
        skill=1.0 - float(np.mean(err**2)) / mse_p if mse_p > 0 else None,
        hit_rate=hits / n if n else None,
        hit_ci_low=_finite(lo),
        hit_ci_high=_finite(hi),
    )
