"""Views for the dashboard API. Curves, fills, forecasts and risk events come from the
in-memory read model of the journal (:mod:`~cryptoarena.dashboard.memory`); the leaderboard and
the verdict are ``arena report``'s own :class:`RunReport`
(:func:`cryptoarena.trading.results.source.build_report` on the read-only journal), so the page
shows the same sentence and numbers.

Figures that need a whole run (leaderboard, equity curves, a strategy's detail) are cached per
run and recomputed in the background when the run journals new equity snapshots.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from cryptoarena.dashboard import schemas as s
from cryptoarena.dashboard.memory import (
    MemoryStore,
    Point,
    RunData,
    TieredCurve,
    doc_key,
    point,
)
from cryptoarena.dashboard.report_child import CHILD_ABOVE_S, ReportChild
from cryptoarena.dashboard.tail import Tail
from cryptoarena.trading.results.model import Comparison as ReportComparison
from cryptoarena.trading.results.model import StrategyRow as ReportRow
from cryptoarena.trading.results.render import sample_line
from cryptoarena.trading.results.source import build_report, wall_ns

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_POINTS = 2000
# A run whose figures changed is recomputed at most this often (a live run snapshots every few
# seconds; the stream tells the page when to ask again).
RECOMPUTE_S = 3.0
# A view is recomputed at most 1 / (1 + IDLE_PER_COST) of the time: 20 %.
IDLE_PER_COST = 4.0


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
        ai=c.ai,
        periods=periods,
        mean_diff_bp_day=_finite(c.mean_diff_bp_day),
        ci_low_bp_day=_finite(c.ci[0]),
        ci_high_bp_day=_finite(c.ci[1]),
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


def _timed(compute: Callable[[], tuple[T, float]]) -> tuple[T, float]:
    """``compute()``'s value and its CPU seconds: this thread's, plus what it says it spent
    elsewhere (a child process)."""
    started = time.thread_time()
    value, elsewhere = compute()
    return value, time.thread_time() - started + elsewhere


class _Cache:
    """Per-key memo, stale-while-revalidate: when the key's version changed, the previous value
    is served while one background thread recomputes, at most every ``RECOMPUTE_S`` or
    ``IDLE_PER_COST`` times its last computation's CPU, whichever is longer (a month-long run's
    report costs seconds: recomputed back to back it would hold a core and the GIL for ever);
    only a key never computed is computed in the request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Any, tuple[Any, float, Any]] = {}  # version, next due, value
        self._busy: set[Any] = set()

    def get(self, key: Any, version: Any, compute: Callable[[], T]) -> T:
        return self.get_costed(key, version, lambda: (compute(), 0.0))

    def get_costed(self, key: Any, version: Any, compute: Callable[[], tuple[T, float]]) -> T:
        """:meth:`get` of a computation that returns its value and the CPU seconds it spent
        outside this thread (in a child process): the recompute's pace counts them too."""
        with self._lock:
            hit = self._items.get(key)
            stale = hit is not None and hit[0] != version and key not in self._busy
            if stale and hit is not None and time.monotonic() >= hit[1]:
                self._busy.add(key)
                threading.Thread(
                    target=self._recompute, args=(key, version, compute), daemon=True
                ).start()
        if hit is not None:
            return hit[2]
        value, cost = _timed(compute)
        self._put(key, version, value, cost)
        return value

    def _recompute(self, key: Any, version: Any, compute: Callable[[], tuple[Any, float]]) -> None:
        try:
            self._put(key, version, *_timed(compute))
        except Exception as exc:  # keep serving the previous value
            logger.warning("dashboard: recomputing %s failed: %s", key, exc)
        finally:
            with self._lock:
                self._busy.discard(key)

    def _put(self, key: Any, version: Any, value: Any, cost_s: float) -> None:
        due = time.monotonic() + max(RECOMPUTE_S, IDLE_PER_COST * cost_s)
        with self._lock:
            self._items[key] = (version, due, value)
            if len(self._items) > 256:
                self._items.pop(next(iter(self._items)))


class DashboardReader:
    """Queries behind the API routes. Run data comes from the in-memory read model (fed by a
    :mod:`~cryptoarena.dashboard.tail` of the journal); the small read models (summaries,
    model events) from ``journal``, a read-only :class:`Journal`."""

    def __init__(
        self,
        journal: Any,
        tail: Tail,
        *,
        embedded: bool = True,
        report_child: ReportChild | None = None,
    ) -> None:
        self.journal = journal
        self.tail = tail
        self.embedded = embedded
        self.store = MemoryStore(journal)
        self._cache = _Cache()
        self._poll_lock = threading.Lock()
        # Long runs' leaderboards are built in a child process (report_child.py); without one
        # (tests, a caller's own reader) always here.
        self.report_child = report_child
        self._board_cpu: dict[str, float] = {}  # run -> CPU seconds of its last report

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        """Read what the journal gained since the last poll into memory; returns the new docs."""
        with self._poll_lock:
            new = self.store.apply(self.tail.poll())
            if self.store.latest is not None:
                self.store.get(self.store.latest)  # the latest run is always held
            return new

    def close(self) -> None:
        if self.report_child is not None:
            self.report_child.close()
        self.tail.close()

    def cached_json(self, name: str, run_id: str, *args: Any) -> bytes:
        """The JSON of a heavy view, serialised once per change of the run's data (these answers
        are up to a few hundred KB: serialising them per request would dominate)."""
        data = self._data(run_id)
        version = (data.version, data.pred_version) if name == "forecasts" else data.version
        build = getattr(self, name)
        return self._cache.get(
            ("json", name, run_id, *args),
            version,
            lambda: build(run_id, *args).model_dump_json().encode(),
        )

    # -- runs -----------------------------------------------------------------------------
    def latest_run_id(self) -> str | None:
        # The most recently started run, by the wall clock of its start (as `arena report`).
        return self.store.latest

    def _data(self, run_id: str) -> RunData:
        data = self.store.get(run_id)
        if data is None or data.started is None:
            raise LookupError(f"no run {run_id!r} in the journal")
        return data

    def run_count(self) -> int:
        return len(self.store.started_runs())

    def run_info(self, run_id: str) -> s.RunInfo | None:
        data = self.store.get(run_id)
        if data is None or data.started is None:
            return None
        return self._run_info(data)

    def _run_info(self, data: RunData) -> s.RunInfo | None:
        run_id = data.run_id
        first = data.started
        if first is None:
            return None
        with self.store.lock:
            last = data.events[-1]
            ends = [d for d in data.events if d.get("event") == "stopped"]
            firsts = [c.first_ns for c in data.curves.values() if c.first_ns is not None]
            lasts = [c.last.ts_ns for c in data.curves.values() if c.last is not None]
        # A resumed run starts again after a stop: it runs while its last event is a start.
        running = last.get("event") == "started"
        end = None if running or not ends else ends[-1]
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
            first_data_ns=int(min(firsts)) if firsts else None,
            last_data_ns=int(max(lasts)) if lasts else None,
            strategies=[st["name"] for st in first.get("strategies", [])],
            capital=_f(first.get("arena", {}).get("capital")),
        )

    def runs(self, limit: int, offset: int) -> s.Page[s.RunInfo]:
        """Every run, the most recently started first (wall clock of the start, as the latest
        run); a run not held in memory is described from its ``runs`` records and its
        ``equity_latest`` documents (its data span), without reading its history."""
        with self.store.lock:
            started = [(run, list(docs)) for run, docs in self.store.events.items()
                       if any(d.get("event") == "started" for d in docs)]  # fmt: skip
        started.sort(key=lambda rd: _start_key(rd[1]), reverse=True)
        items = []
        for run, docs in started[offset : offset + limit]:
            held = self.store.runs.get(run)
            if held is not None and held.loaded:
                info = self._run_info(held)
            else:
                info = self._run_info(_light_run(self.journal, run, docs))
            if info is not None:
                items.append(info)
        return s.Page[s.RunInfo](items=items, total=len(started), limit=limit, offset=offset)

    def families(self, run_id: str) -> dict[str, str]:
        started = self._data(run_id).started or {}
        return {st["name"]: st["family"] for st in started.get("strategies", [])}

    def _capital(self, run_id: str) -> float:
        started = self._data(run_id).started or {}
        return _f(started.get("arena", {}).get("capital"))

    def _version(self, run_id: str) -> int:
        return self._data(run_id).version

    # -- leaderboard and verdict ----------------------------------------------------------
    def leaderboard(self, run_id: str) -> s.Leaderboard:
        data = self._data(run_id)
        # Halts and the stop record change the report too, not only new snapshots.
        version = (data.version, data.risk.total, len(data.events))
        return self._cache.get_costed(("board", run_id), version, lambda: self._leaderboard(run_id))

    def _curves(self, run_id: str) -> dict[str, list[Point]]:
        data = self._data(run_id)
        with self.store.lock:
            return {name: data.curve(name) for name in data.curves}

    def _leaderboard(self, run_id: str) -> tuple[s.Leaderboard, float]:
        """The run's leaderboard, off the request path (the cache recomputes it in the
        background), and the CPU it cost outside this thread: in a child process once the
        run's report costs more than ``CHILD_ABOVE_S`` (a long run), here otherwise."""
        if self.report_child is not None and self._board_cpu.get(run_id, 0.0) > CHILD_ABOVE_S:
            built = self.report_child.build(run_id)
            self._board_cpu[run_id] = built.cpu_s
            return built.board, built.cpu_s
        started = time.thread_time()
        board = leaderboard_of(self.journal, run_id)
        self._board_cpu[run_id] = time.thread_time() - started
        return board, 0.0

    # -- curves ---------------------------------------------------------------------------
    def equity(self, run_id: str, points: int) -> s.EquityCurves:
        return self._cache.get(
            ("equity", run_id, points),
            self._version(run_id),
            lambda: self._equity(run_id, points),
        )

    def _equity(self, run_id: str, points: int) -> s.EquityCurves:
        families = self.families(run_id)
        series = []
        for name, curve in self._curves(run_id).items():
            ts = np.array([p.ts_ns // 1_000_000 for p in curve], dtype=np.int64)
            ys = np.array([p.equity for p in curve], dtype=np.float64)
            pts = [s.SeriesPoint(t=t, y=y) for t, y in downsample_minmax(ts, ys, points)]
            series.append(s.EquitySeries(strategy=name, family=families.get(name, "?"), points=pts))
        return s.EquityCurves(run_id=run_id, capital=self._capital(run_id), series=series)

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
        page, total = self._page("fills", self._data(run_id), strategy, limit, offset)
        return s.Page[s.Fill](
            items=[self.fill(d) for d in page], total=total, limit=limit, offset=offset
        )

    def _page(
        self, kind: str, data: RunData, strategy: str | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first: from memory when the page lies in what it keeps, else from the
        journal (``run_id`` / ``strategy`` + ``ts_ns`` index, newest first)."""
        recent = data.fills if kind == "fills" else data.risk
        with self.store.lock:
            kept, total = recent.newest(strategy)
        if offset + limit <= len(kept) or len(kept) >= total:
            return kept[::-1][offset : offset + limit], total
        filt = {"run_id": data.run_id, **({"strategy": strategy} if strategy else {})}
        docs = self.journal.find(kind, filt, sort=[("ts_ns", -1)], limit=offset + limit)
        return docs[offset : offset + limit], total

    def positions(self, run_id: str) -> list[s.Position]:
        families = self.families(run_id)
        data = self._data(run_id)
        with self.store.lock:
            docs = list(data.last_equity.values())
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
        data = self._data(run_id)
        with self.store.lock:
            curve = data.curve(name)
            fills, _ = data.fills.newest(name)
            markouts = data.markouts.summary(name)
        capital = self._capital(run_id)
        ts = np.array([p.ts_ns // 1_000_000 for p in curve], dtype=np.int64)
        mark = np.array([p.mark for p in curve], dtype=np.float64)
        step = max(1, len(curve) // max(1, points))
        position = [
            s.PositionPoint(t=int(p.ts_ns // 1_000_000), qty=p.qty, pnl=p.equity - capital)
            for p in curve[::step]
        ]
        board = self.leaderboard(run_id)
        row = next((r for r in board.rows if r.strategy == name), None)
        events = self.risk_events(run_id, name, 50, 0).items
        return s.StrategyDetail(
            run_id=run_id,
            strategy=name,
            family=families[name],
            candles=candles(ts, mark, min(points, 240)),
            fills=[self.fill(d) for d in fills],
            position=position,
            row=row,
            risk_events=events,
            markouts=markouts,
        )

    # -- forecasts -------------------------------------------------------------------------
    def forecasts(self, run_id: str, last: int) -> s.Forecasts:
        data = self._data(run_id)
        with self.store.lock:
            docs = sorted(data.predictions.values(), key=doc_key)[-last:]
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
        page, total = self._page("risk_events", self._data(run_id), strategy, limit, offset)
        return s.Page[s.RiskEvent](
            items=[risk_event(d) for d in page], total=total, limit=limit, offset=offset
        )

    def risk_state(self, run_id: str) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
        started = self._data(run_id).started or {}
        summaries = self.summaries(run_id)
        halted = {n: str(d["halted"]) for n, d in summaries.items() if d.get("halted")}
        vetoes = {n: int(d.get("vetoes") or 0) for n, d in summaries.items()}
        return dict(started.get("risk") or {}), halted, vetoes

    def model_events(self, run_id: str, limit: int = 50) -> list[dict[str, Any]]:
        docs = self.journal.find("model_events", {"run_id": run_id})
        docs.sort(key=doc_key, reverse=True)
        return [{k: v for k, v in d.items() if k not in ("_id", "seq")} for d in docs[:limit]]

    def newest_prediction(self, run_id: str) -> dict[str, Any] | None:
        return self._data(run_id).newest_prediction  # one reference: read without the lock

    def data_time(self, run_id: str) -> int | None:
        data = self._data(run_id)
        with self.store.lock:
            lasts = [c.last.ts_ns for c in data.curves.values() if c.last is not None]
        return max(lasts, default=None)

    def summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        # A small read model (one document per strategy): cheap to read whole.
        return {n: d for n, d in self.journal.summaries().items() if d.get("run_id") == run_id}


def _start_key(docs: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    start = next(d for d in docs if d.get("event") == "started")
    return (wall_ns(start) or 0, int(start.get("ts_ns") or 0))


def _light_run(journal: Any, run_id: str, events: list[dict[str, Any]]) -> RunData:
    """A run not held in memory, for the run list: its records and, from ``equity_latest``,
    where its data ends (the first snapshot of each strategy, one indexed document each)."""
    data = RunData(run_id, events=events)
    for last in journal.find("equity_latest", {"run_id": run_id}):
        name = str(last["strategy"])
        # A compacted run keeps its early minutes only in the per-minute read model.
        firsts = [d for kind in ("equity", "equity_minute")
                  for d in journal.find(kind, {"run_id": run_id, "strategy": name},
                                        sort=[("ts_ns", 1)], limit=1)]  # fmt: skip
        curve = data.curves[name] = TieredCurve()
        for doc in (*sorted(firsts, key=doc_key)[:1], last):
            curve.add(point(doc))
    return data


def risk_event(d: dict[str, Any]) -> s.RiskEvent:
    return s.RiskEvent(
        id=str(d["_id"]),
        ts_ns=int(d["ts_ns"]),
        type=str(d.get("type", "?")),
        strategy=d.get("strategy"),
        reason=str(d.get("reason") or ""),
    )


def accuracy(preds: Sequence[s.Prediction]) -> s.Accuracy:
    """Resolved forecasts only: error of the model vs persistence (no change) in bp of the log
    return, both skills from the one definition (``model.skill.forecast_skill``, as in ``arena
    evaluate`` and the trading report), and the direction hit rate with a Wilson 95 % interval."""
    from cryptoarena.model.skill import forecast_skill, price_errors_bp

    done = [p for p in preds if p.realised_price is not None and p.predicted_price is not None]
    if not done:
        return s.Accuracy(resolved=0, mae_bps=None, persistence_mae_bps=None, skill=None,
                          hit_rate=None, hit_ci_low=None, hit_ci_high=None)  # fmt: skip
    base = np.array([p.base_price for p in done])
    real = np.array([p.realised_price for p in done], dtype=np.float64)
    pred = np.array([p.predicted_price for p in done], dtype=np.float64)
    sk = forecast_skill(*price_errors_bp(base, pred, real))
    moved = real != base
    hits = int(np.sum(np.sign(pred[moved] - base[moved]) == np.sign(real[moved] - base[moved])))
    n = int(moved.sum())
    lo, hi = wilson(hits, n)
    return s.Accuracy(
        resolved=len(done),
        mae_bps=sk.mae,
        persistence_mae_bps=sk.mae_base,
        skill=sk.mse_skill,
        mae_skill=sk.mae_skill,
        hit_rate=hits / n if n else None,
        hit_ci_low=_finite(lo),
        hit_ci_high=_finite(hi),
    )


def leaderboard_of(journal: Any, run_id: str) -> s.Leaderboard:
    """The same report (rows, verdict sentence and intervals) as `arena report`, built by the
    same function on the journal itself (it reads indexed windows and, for long runs, the
    per-minute read model)."""
    rep = build_report(journal, run_id, forecasts=False)
    out_rows = [board_row(r) for r in rep.strategies]
    v = rep.verdict
    # The headline is the verdict's own AI arm against the benchmark (not the first arm's),
    # with its interval as the verdict states it (widened when picked from several arms).
    headline = next((c for c in v.comparisons if c.versus == v.benchmark and c.ai == v.ai), None)
    if headline is not None and v.ci is not None:
        headline = headline.model_copy(update={"ci": v.ci})
    level = v.headline_confidence or v.confidence
    intervals = [interval(c, v.periods, v.confidence) for c in v.comparisons]
    return s.Leaderboard(
        run_id=run_id,
        rows=out_rows,
        comparison=interval(headline, v.periods, level) if headline else None,
        sentence=v.sentence,
        intervals=intervals,
        sample=sample_line(rep),
    )


def board_row(r: ReportRow) -> s.StrategyRow:
    halted = None
    if r.halted is not None:
        halted = r.halted.reason
    return s.StrategyRow(
        rank=r.rank,
        tied=r.tied,
        inactive=r.inactive,
        at_limit=r.at_limit,
        strategy=r.name,
        family=r.family,
        is_ai=r.family == "ai",
        execution=r.execution,
        equity=r.equity,
        pnl=r.pnl,
        return_pct=r.return_pct,
        fees=r.fees,
        fills=r.fills,
        round_trips=r.round_trips,
        win_rate=_finite(r.win_rate),
        profit_factor=_finite(r.profit_factor),
        sharpe_daily=_finite(r.sharpe_daily),
        sortino_daily=_finite(r.sortino_daily),
        psr=_finite(r.psr),
        max_drawdown_pct=r.max_drawdown * 100,
        exposure_pct=r.exposure * 100,
        halted=halted,
    )
