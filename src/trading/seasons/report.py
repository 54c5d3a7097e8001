"""``arena season report``: each UTC day a block (every strategy's P&L after fees, fills, halts,
forecast quality and the day's intraday bootstrap verdict), the cumulative P&L across days, the
season verdict from per-day paired differences with its power (``seasons.verdict``) and the
season's events: champion changes and halts in time order (``seasons.events``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from cryptoarena.config import Settings
from cryptoarena.model.champions import ChampionChange
from cryptoarena.trading.results.model import ForecastQuality, RunReport
from cryptoarena.trading.results.render import fmt, rank_text, status_text
from cryptoarena.trading.seasons.events import (
    HALT_TYPES,
    SeasonEvent,
    SeasonEvents,
    champion_events,
    halt_events,
    merged,
    read_champions,
)
from cryptoarena.trading.seasons.season import Season, SeasonError, load
from cryptoarena.trading.seasons.verdict import SeasonVerdict, season_verdict
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

logger = logging.getLogger(__name__)


class DayRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    strategy: str
    family: str
    rank: str  # "1", "=2", "—" (inactive)
    pnl: float  # after fees, USDT
    return_bp: float  # P&L after fees in basis points of the strategy's capital
    fees: float
    fills: int
    status: str  # halted at the day's end (at which limit) / inactive / ""
    # The first halt of the day, even one its UTC day's end released (daily loss).
    halted: str | None = None


class DayBlock(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: str
    run_id: str | None
    complete: bool
    rows: list[DayRow] = Field(default_factory=list)
    forecasts: list[ForecastQuality] = Field(default_factory=list)
    intraday: str = ""  # the day run's verdict sentence (intraday block bootstrap)
    intraday_ci: tuple[float, float] | None = None  # bp/day


class SeasonReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    config: str
    source: str
    days: list[DayBlock]
    # Cumulative P&L after fees at the end of each complete day, per strategy (USDT).
    cumulative: dict[str, list[float]]
    verdict: SeasonVerdict
    unit: str = "bp/day"
    events: SeasonEvents = SeasonEvents()


def day_block(day: str, report: RunReport, halts: dict[str, str] | None = None) -> DayBlock:
    capital = report.capital
    if capital is None or capital <= 0:
        raise SeasonError(f"run {report.run_id} records no capital: cannot express bp/day")
    rows = [
        DayRow(
            strategy=r.name,
            family=r.family,
            rank=rank_text(r),
            pnl=r.pnl,
            return_bp=r.pnl / capital * 1e4,
            fees=r.fees,
            fills=r.fills,
            status=status_text(r),
            halted=(halts or {}).get(r.name),
        )
        for r in report.strategies
    ]
    v = report.verdict
    return DayBlock(
        day=day,
        run_id=report.run_id,
        complete=bool(report.complete),
        rows=rows,
        forecasts=report.forecasts,
        intraday=v.sentence,
        intraday_ci=v.ci,
    )


def build(
    season: Season,
    reports: dict[str, RunReport],
    halts: dict[str, dict[str, str]] | None = None,
    events: Sequence[SeasonEvent] = (),
) -> SeasonReport:
    """The season's report from the run report of each day (keyed by run id), each run's
    strategy halts during the day (``halts[run_id][strategy]``: the first halt's reason) and
    every day's halt events (champion changes are added by :func:`with_champions`)."""
    blocks: list[DayBlock] = []
    for d in season.days:
        rep = reports.get(d.run_id or "")
        if rep is None or not d.complete:
            blocks.append(DayBlock(day=d.day, run_id=d.run_id, complete=False))
        else:
            blocks.append(day_block(d.day, rep, (halts or {}).get(rep.run_id)))
    done = [b for b in blocks if b.complete]
    names = sorted({r.strategy for b in done for r in b.rows})
    families = {r.strategy: r.family for b in done for r in b.rows}
    by_day = [{r.strategy: r for r in b.rows} for b in done]
    # Only strategies present every day take part (one config: all of them).
    names = [n for n in names if all(n in day for day in by_day)]
    returns = {n: [day[n].return_bp for day in by_day] for n in names}
    pnl = {n: sum(day[n].pnl for day in by_day) for n in names}
    fills = {n: sum(day[n].fills for day in by_day) for n in names}
    cumulative: dict[str, list[float]] = {}
    for n in names:
        total, path = 0.0, []
        for day in by_day:
            total += day[n].pnl
            path.append(total)
        cumulative[n] = path
    return SeasonReport(
        name=season.name,
        config=season.config,
        source=season.source,
        days=blocks,
        cumulative=cumulative,
        verdict=season_verdict(returns, families, pnl, fills),
        events=SeasonEvents(events=sorted(events, key=lambda e: e.at_ms)),
    )


def with_champions(
    rep: SeasonReport,
    changes: Sequence[ChampionChange],
    note: str | None = None,
    pending: bool = False,
) -> SeasonReport:
    """The report with the champion changes that belong to its season (``champion_events``)
    beside its halts; ``note`` says why the registry could not be read, ``pending`` that it
    is being read."""
    champions = champion_events([b.day for b in rep.days], changes)
    halts = [e for e in rep.events.events if e.kind == "halt"]
    update = {"champions_note": note, "champions_pending": pending}
    events = merged(champions.model_copy(update=update), halts)
    return rep.model_copy(update={"events": events})


def load_report(settings: Settings, name: str, *, champions: bool = True) -> SeasonReport:
    """Read-only: the manifest, each day's run from the journal and, with ``champions``, the
    served model's champion changes from the MLflow registry."""
    from cryptoarena.trading.journal import Journal
    from cryptoarena.trading.results.source import collect

    season = load(settings, name)
    reports: dict[str, RunReport] = {}
    halts: dict[str, dict[str, str]] = {}
    timeline: list[SeasonEvent] = []
    with Journal.open(settings, run_id="season-report", readonly=True) as journal:
        for d in season.days:
            if d.run_id and d.complete and journal.runs(d.run_id):
                reports[d.run_id] = collect(journal, d.run_id).report
                events = journal.find(
                    "risk_events",
                    {"run_id": d.run_id, "type": {"$in": list(HALT_TYPES)}},
                    projection={"_id": 0, "type": 1, "strategy": 1, "reason": 1, "ts_ns": 1},
                )
                day_halts = halt_events(d.run_id, events)
                first: dict[str, str] = {}
                for h in day_halts:
                    if h.scope == "strategy" and h.strategy:
                        first.setdefault(h.strategy, h.reason or "")
                halts[d.run_id] = first
                timeline += day_halts
    rep = build(season, reports, halts, timeline)
    return with_champions(rep, *read_champions(settings)) if champions else rep


def render_table(console: Console, rep: SeasonReport) -> None:
    console.print(
        f"season {rep.name}: {sum(b.complete for b in rep.days)} of {len(rep.days)} UTC days "
        f"complete ({rep.source}, config {rep.config})",
        highlight=False,
    )
    for b in rep.days:
        if not b.complete:
            console.print(
                f"\n{b.day}: not run yet" + (f" (run {b.run_id} incomplete)" if b.run_id else "")
            )
            continue
        t = Table(title=f"{b.day} UTC · run {b.run_id}", title_justify="left")
        for col in ("#", "strategy", "family", "P&L", "bp/day", "fees", "fills", "halted"):
            t.add_column(
                col, justify="right" if col in ("P&L", "bp/day", "fees", "fills") else "left"
            )
        for r in b.rows:
            t.add_row(
                r.rank,
                r.strategy,
                r.family,
                fmt(r.pnl),
                fmt(r.return_bp, ".1f"),
                fmt(r.fees),
                str(r.fills),
                r.status or (f"{r.halted} (released at the day's end)" if r.halted else ""),
            )
        console.print(t)
        for q in b.forecasts:
            console.print(
                f"  forecasts v{q.model_version}: {q.predictions} resolved, MAE {q.mae_bps:.3g} "
                f"bp vs no-change {q.persistence_mae_bps:.3g} bp",
                highlight=False,
            )
        console.print(f"  intraday (block bootstrap): {b.intraday}", highlight=False)
    if rep.cumulative:
        console.print("\ncumulative P&L after fees (USDT) at each day's end:")
        for n, path in sorted(rep.cumulative.items(), key=lambda kv: -kv[1][-1]):
            console.print(f"  {n}: " + " → ".join(fmt(x) for x in path), highlight=False)
    render_events(console, rep.events)
    v = rep.verdict
    console.print(f"\nSeason verdict (per-day paired differences): {v.sentence}", highlight=False)
    console.print(v.power, highlight=False)
    for c in v.comparisons:
        ci = f"[{fmt(c.ci[0], '.3g')}, {fmt(c.ci[1], '.3g')}]" if c.ci else "[—]"
        console.print(
            f"  {c.ai} − {c.versus}: {c.mean:+.3g} bp/day {ci}{' *' if c.significant else ''}",
            highlight=False,
        )


def _clock(at_ms: int, *, date: bool = False) -> str:
    t = dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M" if date else "%H:%M")


def champion_line(e: SeasonEvent) -> str:
    return f"{e.model} v{e.version} @champion ({e.how}): {e.message}"


def render_events(console: Console, ev: SeasonEvents) -> None:
    """The short events section: each champion change on its line, each day's halts on one."""
    champions = [e for e in ev.events if e.kind == "champion"]
    halts = [e for e in ev.events if e.kind == "halt"]
    console.print(
        f"\nevents (UTC): {len(champions)} champion change(s), {len(halts)} halt(s)",
        highlight=False,
    )
    if ev.champion_at_start is not None:
        e = ev.champion_at_start
        console.print(
            f"  champion at the season's start: {e.model} v{e.version} ({e.how}, crowned "
            f"{_clock(e.at_ms, date=True)})",
            highlight=False,
        )
    if ev.champions_note:
        console.print(f"  {ev.champions_note}", highlight=False)
    if ev.champions_outside:
        console.print(
            f"  {ev.champions_outside} later champion change(s) fall after the season's days "
            "(not its events)",
            highlight=False,
        )
    # Time order; consecutive halts of one day share a line.
    stops: list[SeasonEvent] = []

    def flush() -> None:
        if stops:
            names = ", ".join(
                f"{'all' if e.strategy == '*' else e.strategy} {_clock(e.at_ms)}" for e in stops
            )
            console.print(f"  {stops[0].day}  ‖ halted: {names}", highlight=False)
            stops.clear()

    for e in ev.events:
        if e.kind == "halt":
            if stops and stops[0].day != e.day:
                flush()
            stops.append(e)
        else:
            flush()
            console.print(f"  {_clock(e.at_ms, date=True)}  {champion_line(e)}", highlight=False)
    flush()
