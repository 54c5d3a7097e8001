"""From the journal to a :class:`RunReport`: read models first, indexed windows only.

Reads, all through the journal's public ``find`` (its pymongo-like API):

- ``runs`` of the run (``run_id``, indexed): capital, strategies and families from the
  ``started`` record; how the run ended from the last ``stopped`` record.
- ``equity_latest`` (read model, one document per run and strategy): the book's final counters.
- ``equity`` per strategy through ``Journal.equity_window`` (the ``run_id + strategy + ts_ns``
  index; for long runs the per-minute ``equity_minute`` read model), projected to
  ``ts_ns``/``equity``/``qty``: the curves the ratios and the verdict need.
- ``risk_events`` of the run, halts only: who was halted, why and when; and residuals the
  venue would refuse (``dust``), counted per strategy.
- ``predictions`` of the run (``run_id``, indexed): forecast quality of the resolved ones.
- ``markouts`` of the run (``run_id``, indexed): per strategy the mean fill markout at 1, 5 and
  15 s, folded into counts and sums (``results.markouts.MarkoutStats``).

No aggregation runs over the whole journal. ``complete`` and ``ended_by`` are read defensively:
a run journaled before runs recorded them gets ``None`` ("unknown"), and the notes say so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from cryptoarena.trading.results.forecasts import forecast_quality
from cryptoarena.trading.results.markouts import fold
from cryptoarena.trading.results.model import Halt, RunReport, StrategyRow
from cryptoarena.trading.results.significance import probabilistic_sharpe
from cryptoarena.trading.results.stats import curve_stats, stats_from_latest
from cryptoarena.trading.results.verdict import Arm, VerdictConfig, aligned_returns, decide

logger = logging.getLogger(__name__)


class ReportJournal(Protocol):
    """What a report reads: the journal's query and its equity windows (raw or per minute).
    (``engine.ports.JournalFind`` states the same ``find``; importing it would load the engine
    package, and with it pandas, into every report and the dashboard.)"""

    def find(
        self,
        kind: str,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]: ...

    def equity_window(
        self,
        run_id: str,
        strategy: str | None = None,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        per_minute: bool = False,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Curve:
    ts_ns: np.ndarray
    equity: np.ndarray
    qty: np.ndarray


def wall_ns(doc: Mapping[str, Any]) -> int | None:
    """When a ``runs`` record was written, by the wall clock (not replayed market time).

    An explicit ``wall_ns`` field wins when the worker records one; otherwise the journal's event
    id carries it: ``<run_id>:<session hex>:<seq>``, where the session is the wall clock (ns)
    at which the writing process opened the journal, i.e. just before the run started."""
    explicit = doc.get("wall_ns")
    if isinstance(explicit, int):
        return explicit
    eid = doc.get("_id")
    if not isinstance(eid, str):
        return None
    parts = eid.rsplit(":", 2)
    if len(parts) != 3:
        return None
    try:
        return int(parts[1], 16)
    except ValueError:
        return None


def latest_run_id(journal: ReportJournal) -> str | None:
    """The most recently *started* run (wall clock of its start), not the one with the latest
    market time: two backtests of the same day replay the same times."""
    started = journal.find(
        "runs", {"event": "started"}, projection={"run_id": 1, "ts_ns": 1, "seq": 1, "wall_ns": 1}
    )
    if not started:
        return None
    best = max(started, key=lambda d: (wall_ns(d) or 0, int(d.get("ts_ns", 0)), d.get("seq", 0)))
    return str(best["run_id"])


# Longer runs read their curves from the journal's per-minute read model (when it keeps one):
# a day of 5 s snapshots is 17,280 documents per strategy, 1,440 per-minute ones.
RAW_SNAPSHOT_LIMIT = 4_000
EQUITY_MINUTE = "equity_minute"


def minute_model_available() -> bool:
    from cryptoarena.trading.journal import COLLECTIONS

    return EQUITY_MINUTE in COLLECTIONS


def load_curves(
    journal: ReportJournal, run_id: str, names: Sequence[str], *, per_minute: bool = False
) -> dict[str, Curve]:
    """Each strategy's equity snapshots in time order (one indexed ``run_id + strategy`` query
    per strategy); ``per_minute`` reads the last snapshot of each minute instead."""
    out: dict[str, Curve] = {}
    projection = {"_id": 0, "ts_ns": 1, "equity": 1, "qty": 1}
    for name in names:
        docs = journal.equity_window(run_id, name, per_minute=per_minute, projection=projection)
        if not docs:
            continue
        ts = np.fromiter((d["ts_ns"] for d in docs), dtype=np.int64, count=len(docs))
        eq = np.fromiter((d["equity"] for d in docs), dtype=np.float64, count=len(docs))
        qty = np.fromiter((d.get("qty", 0.0) for d in docs), dtype=np.float64, count=len(docs))
        order = np.argsort(ts, kind="stable")  # already in order; cheap insurance
        # A restarted run may snapshot the same instant twice: keep the later record.
        ts, eq, qty = ts[order], eq[order], qty[order]
        last = np.append(ts[1:] != ts[:-1], True)
        out[name] = Curve(ts[last], eq[last], qty[last])
    return out


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def reads_minute_model(start: Mapping[str, Any], latest: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether a run's report reads the per-minute read model (runs longer than
    ``RAW_SNAPSHOT_LIMIT`` snapshots per strategy) rather than every raw snapshot; journal
    compaction deletes raw snapshots only of such runs, so no report changes."""
    return minute_model_available() and _expected_snapshots(start, latest) > RAW_SNAPSHOT_LIMIT


def _expected_snapshots(start: Mapping[str, Any], latest: Mapping[str, Mapping[str, Any]]) -> float:
    # A backtest journals equity at its own interval (recorded in its "started" record).
    arena = start.get("arena") or {}
    every = float(start.get("equity_journal_every_s") or arena.get("equity_every_s") or 5.0)
    end = max((int(d.get("ts_ns", 0)) for d in latest.values()), default=0)
    begin = int(start.get("ts_ns", end))
    return max(0.0, (end - begin) / 1e9 / every)


def _dust_notes(journal: ReportJournal, run_id: str) -> list[str]:
    """Per strategy: residuals the venue would refuse (below its minimum order), each noted
    once by the router instead of being sent and refused every bar."""
    events = journal.find(
        "risk_events",
        {"run_id": run_id, "type": "dust"},
        projection={"_id": 0, "strategy": 1, "action": 1},
    )
    counts: dict[tuple[str, str], int] = {}
    for e in events:
        key = (str(e.get("strategy")), str(e.get("action", "not sent")))
        counts[key] = counts.get(key, 0) + 1
    return [
        f"{name}: {n} residual{'s' if n > 1 else ''} below the venue's minimum order, "
        f"{action} (dust)"
        for (name, action), n in sorted(counts.items())
    ]


def _halts(
    journal: ReportJournal, run_id: str, stopped: Mapping[str, Any] | None
) -> dict[str, Halt]:
    """``strategy -> Halt`` for the halts in force at the end (a daily-loss halt that its UTC day's
    end released is not); key ``"*"`` for a global halt or an unreleased kill switch."""
    events = journal.find(
        "risk_events",
        {
            "run_id": run_id,
            "type": {"$in": ["halt", "global_halt", "halt_released", "kill", "kill_released"]},
        },
        projection={"_id": 0, "type": 1, "strategy": 1, "reason": 1, "ts_ns": 1},
    )
    events.sort(key=lambda d: int(d.get("ts_ns", 0)))
    halts: dict[str, Halt] = {}
    kill: Halt | None = None
    for e in events:
        kind, reason, ts = e.get("type"), str(e.get("reason", "")), e.get("ts_ns")
        if kind == "halt" and e.get("strategy") and e["strategy"] not in halts:
            halts[str(e["strategy"])] = Halt(reason=reason, ts_ns=ts, scope="strategy")
        elif kind == "global_halt" and "*" not in halts:
            halts["*"] = Halt(reason=reason, ts_ns=ts, scope="global")
        elif kind == "halt_released":  # a daily-loss halt ended with its UTC day
            key = str(e["strategy"]) if e.get("strategy") else "*"
            if key != "*" or (key in halts and halts[key].scope == "global"):
                halts.pop(key, None)
        elif kind == "kill":
            kill = kill or Halt(reason=reason, ts_ns=ts, scope="kill")
        elif kind == "kill_released":
            kill = None
    if kill is not None and "*" not in halts:
        halts["*"] = kill
    # A run whose risk events were lost still has its final state in the stop record: newer
    # engines write ``halted: {name: {reason, ts_ns}}``, older ones ``risk.halted: {name: reason}``.
    stop = stopped or {}
    risk = stop.get("risk") or {}
    for source in (stop.get("halted") or {}, risk.get("halted") or {}):
        for name, value in source.items():
            if isinstance(value, Mapping):
                ts = value.get("ts_ns")
                halt = Halt(
                    reason=str(value.get("reason", "")),
                    ts_ns=int(ts) if isinstance(ts, int) else None,
                )
            else:
                halt = Halt(reason=str(value))
            halts.setdefault(str(name), halt)
    if risk.get("global_halt") and "*" not in halts:
        halts["*"] = Halt(reason=str(risk["global_halt"]), scope="global")
    return halts


def _ending(
    runs: list[dict[str, Any]],
) -> tuple[bool | None, str | None, list[str], int, dict[str, Any] | None]:
    """(complete, ended_by, notes, incarnations, the stop record of the last start) from the
    run's records in write order."""
    notes: list[str] = []
    starts = [r for r in runs if r.get("event") == "started"]
    last_start = max((wall_ns(r) or 0 for r in starts), default=0)
    stops = [r for r in runs if r.get("event") == "stopped" and (wall_ns(r) or 0) >= last_start]
    if not stops:
        notes.append(
            "INCOMPLETE or still running: no stop record after the last start "
            "(the run is still going, or it crashed before recording how it ended)"
        )
        return False if starts else None, None, notes, len(starts), None
    stop = stops[-1]
    ended_by = stop.get("ended_by", stop.get("stopped_by"))
    complete = stop.get("complete")
    if not isinstance(complete, bool):
        complete = None
        notes.append(
            "completeness unknown: this run's stop record has no 'complete' field "
            "(journaled before runs recorded it)"
        )
    elif not complete:
        notes.append(f"INCOMPLETE run: ended by {ended_by or 'unknown cause'}")
    ended = str(ended_by) if ended_by is not None else None
    return complete, ended, notes, len(starts), stop


# Halt reasons that mean a loss limit capped the P&L (the risk manager's wording).
LIMIT_PREFIXES = {"daily loss": "daily loss", "drawdown": "drawdown"}


def limit_of(halt: Halt | None) -> str | None:
    """The loss limit a halt stopped the strategy at ("daily loss", "drawdown"), if any."""
    if halt is None or halt.scope != "strategy":
        return None
    return next((v for k, v in LIMIT_PREFIXES.items() if halt.reason.startswith(k)), None)


def rank(rows: Sequence[StrategyRow]) -> list[StrategyRow]:
    """Rows by P&L after fees, best first. A strategy with no fills is inactive: last, with no
    rank (its zero P&L says nothing about its rule). P&Ls equal to the cent share a rank."""
    active = sorted((r for r in rows if r.fills > 0), key=lambda r: r.pnl, reverse=True)
    idle = sorted((r for r in rows if r.fills <= 0), key=lambda r: r.name)
    cents = [round(r.pnl, 2) for r in active]
    out: list[StrategyRow] = []
    for i, r in enumerate(active):
        first = cents.index(cents[i])  # the first row with this P&L gives the shared rank
        tied = cents.count(cents[i]) > 1
        out.append(r.model_copy(update={"rank": first + 1, "tied": tied, "inactive": False}))
    out += [r.model_copy(update={"rank": None, "tied": False, "inactive": True}) for r in idle]
    return out


@dataclass(frozen=True)
class ReportData:
    report: RunReport
    curves: dict[str, Curve]  # for the plots


def build_report(
    journal: ReportJournal,
    run_id: str,
    *,
    verdict: VerdictConfig | None = None,
    forecasts: bool = True,
) -> RunReport:
    """The report of ``run_id``; ``LookupError`` when the journal has no such run."""
    return collect(journal, run_id, verdict=verdict, forecasts=forecasts).report


def collect(
    journal: ReportJournal,
    run_id: str,
    *,
    verdict: VerdictConfig | None = None,
    forecasts: bool = True,
    per_minute: bool | None = None,
) -> ReportData:
    """Everything the report says, and the curves for its plots. ``per_minute=None`` chooses:
    runs longer than ``RAW_SNAPSHOT_LIMIT`` snapshots per strategy read the per-minute read
    model when the journal keeps one; shorter runs read every snapshot."""
    # The venue's queue models import pandas (recorded books): not when the dashboard starts.
    from cryptoarena.trading.exchange.queues import queue_note, taker_note

    runs = journal.find("runs", {"run_id": run_id})
    runs.sort(key=lambda d: (wall_ns(d) or 0, int(d.get("seq", 0))))
    starts = [r for r in runs if r.get("event") == "started"]
    if not starts:
        raise LookupError(f"no run {run_id!r} in the journal")
    start = starts[-1]
    arena = start.get("arena") or {}
    run_capital = float(arena.get("capital", 0.0)) or None
    info = {s["name"]: s for s in start.get("strategies", [])}
    complete, ended_by, notes, incarnations, stop = _ending(runs)

    latest = {d["strategy"]: d for d in journal.find("equity_latest", {"run_id": run_id})}
    names = list(info) + [n for n in latest if n not in info]
    if per_minute is None:
        per_minute = reads_minute_model(start, latest)
    curves = load_curves(journal, run_id, names, per_minute=per_minute)
    if per_minute and not curves:  # a journal written before the read model existed
        per_minute = False
        curves = load_curves(journal, run_id, names)
    if per_minute:
        notes.append(
            "curves, ratios and the verdict use the last equity snapshot of each minute "
            "(the journal's equity_minute read model); final P&L, fees and fills are exact"
        )
    halts = _halts(journal, run_id, stop)
    markouts = fold(journal.find("markouts", {"run_id": run_id}))

    returns = aligned_returns({n: (c.ts_ns, c.equity) for n, c in curves.items()})
    rows: list[StrategyRow] = []
    arms: list[Arm] = []
    period_s: float | None = None
    for name in names:
        curve = curves.get(name)
        last = latest.get(name)
        if curve is None or last is None:
            continue
        exact = last.get("exact") or {}
        capital = float(exact.get("capital", run_capital or last.get("equity", 0.0)))
        family = str(info.get(name, {}).get("family", "?"))
        cs = curve_stats(curve.ts_ns, curve.equity, curve.qty)
        period_s = period_s or (cs.period_s or None)
        s = stats_from_latest(name, family, last, capital, cs)
        halt = halts.get(name) or halts.get("*")
        rows.append(
            StrategyRow(
                name=name,
                family=family,
                kind=info.get(name, {}).get("kind"),
                execution=(info.get(name, {}).get("config") or {}).get("execution"),
                capital=capital,
                equity=s.equity,
                pnl=s.pnl,
                return_pct=s.return_pct,
                realised=s.realised,
                unrealised=s.unrealised,
                fees=s.fees,
                fills=s.fills,
                round_trips=s.round_trips,
                win_rate=s.win_rate,
                profit_factor=s.profit_factor,
                expectancy=s.expectancy,
                sharpe_daily=s.sharpe_daily,
                sortino_daily=s.sortino_daily,
                days=cs.days,
                calmar=s.calmar,
                max_drawdown=s.max_drawdown,
                exposure=s.exposure,
                snapshots=s.snapshots,
                psr=probabilistic_sharpe(returns.get(name, np.empty(0))),
                halted=halt,
                at_limit=limit_of(halt),
                markouts=markouts[name].summary() if name in markouts else None,
            )
        )
        arms.append(Arm(name, family, returns.get(name, np.empty(0)), s.pnl, s.fills))
    rows = rank(rows)
    for row in rows:
        if row.halted is not None:
            notes.append(f"{row.name} HALTED: {row.halted.reason}")
        if row.inactive:
            notes.append(f"{row.name} inactive: no fills, not ranked")
    notes += _dust_notes(journal, run_id)
    quality = []
    if forecasts:
        # The run's predictions through the run_id index, whole: on the embedded store a
        # residual filter or a projection is evaluated in Python and costs more than it saves.
        preds = journal.find("predictions", {"run_id": run_id})
        quality = forecast_quality(preds)
    ts_all = [c.ts_ns for c in curves.values() if len(c.ts_ns)]
    in_sample = start.get("in_sample")
    if in_sample is True:
        notes.insert(0, "IN-SAMPLE: scored on bars the model was trained or validated on")
    notes.append(queue_note((start.get("arena") or {}).get("queue_model"), start.get("fills")))
    if "bars" not in start:  # a bar run's takers fill at the next open (its own fill_rule)
        notes.append(taker_note(start.get("fills")))
    error = stop.get("error") if stop else None
    if error:
        notes.append(f"crashed: {error}")
    report = RunReport(
        run_id=run_id,
        error=str(error) if error else None,
        in_sample=in_sample if isinstance(in_sample, bool) else None,
        model_valid_until_ns=_int_or_none(start.get("model_valid_until_ns")),
        trade_from_ns=_int_or_none(start.get("trade_from_ns")),
        started_wall_ns=wall_ns(start),
        start_ns=int(min(t[0] for t in ts_all)) if ts_all else None,
        end_ns=int(max(t[-1] for t in ts_all)) if ts_all else None,
        complete=complete,
        ended_by=ended_by,
        incarnations=incarnations,
        capital=run_capital,
        strategies=rows,
        verdict=decide(arms, period_s=period_s, config=verdict),
        forecasts=quality,
        notes=notes,
    )
    return ReportData(report, curves)
