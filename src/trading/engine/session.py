"""Builds a trading session from settings and options (feed, clock, exchange, forecasts,
journal) and runs the worker: what ``arena trade``, ``arena backtest`` and the demo share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
from cryptoarena.clock import Clock, LiveClock, SimClock
from cryptoarena.config import ENV_PREFIX, BybitEnv, Settings
from cryptoarena.data.book_replay import RecordedMarket
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.config import ArenaConfig
from cryptoarena.trading.engine import Worker, WorkerResult
from cryptoarena.trading.risk.killswitch import KillSwitch
from pydantic import SecretStr

if TYPE_CHECKING:
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig
    from cryptoarena.trading.forecasts.local import TrainedSpan
    from cryptoarena.trading.forecasts.pump import ForecastSource

logger = logging.getLogger(__name__)


class Source(StrEnum):
    REPLAY = "replay"
    BYBIT = "bybit"


class ExchangeKind(StrEnum):
    PAPER = "paper"
    BYBIT_DEMO = "bybit-demo"
    BYBIT_TESTNET = "bybit-testnet"
    BYBIT_MAINNET = "bybit-mainnet"


class SessionError(RuntimeError):
    """The session cannot start (bad options, missing keys, no data); the message says why."""


@dataclass(frozen=True)
class SessionOptions:
    source: Source = Source.REPLAY
    exchange: ExchangeKind = ExchangeKind.PAPER
    run_id: str | None = None
    # Replay: a trade file (default: the shipped real day), a slice of it, and the speed
    # (None = as fast as possible: a backtest).
    replay_file: Path | None = None
    # ...or a day of the collector's lake (settings.data.lake_dir): its trades of the arena's
    # symbol, with its recorded book (Bybit orderbook.50) when it has one.
    replay_day: date | None = None
    start_minute: float = 0.0
    minutes: float | None = None
    speed: float | None = None
    # Forecasts: the model server's URL (None: settings.serving.url), or an in-process source.
    forecast_url: str | None = None
    forecast_source: ForecastSource | None = None
    allow_mainnet: bool = False
    # Backtests with the AI arm trade only after the model's validation end unless this is set
    # (the run is then marked in-sample).
    allow_in_sample: bool = False


def default_run_id(options: SessionOptions) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{options.source.value}-{options.exchange.value}-{stamp}"


def replay_path(settings: Settings, options: SessionOptions) -> Path:
    """The trade file a replay reads (unless it replays a lake day)."""
    from cryptoarena.data.samples import TARDIS_DAY, sample_path

    return Path(options.replay_file or sample_path(TARDIS_DAY, settings.data.sample_dir))


def replay_trades(settings: Settings, options: SessionOptions, symbol: str) -> pd.DataFrame:
    from cryptoarena.data.loaders import load_trades

    if options.replay_day is not None:
        from cryptoarena.data.lake import Lake, day_start_ns

        if options.replay_file is not None:
            raise SessionError("replay a file or a lake day, not both")
        start = day_start_ns(options.replay_day)
        lake = Lake(settings.data.lake_dir)
        path: Path | str = f"the lake's {symbol} {options.replay_day} ({settings.data.lake_dir})"
        trades = lake.read_trades(symbol, start, start + 86_400 * NS_PER_S)
    else:
        path = replay_path(settings, options)
        trades, report = load_trades(path)
        if report.malformed:
            logger.warning("replay: %s", report.summary())
    if trades.empty:
        raise SessionError(f"no trades in {path}")
    t0 = int(trades["ts"].iloc[0]) + int(options.start_minute * 60 * NS_PER_S)
    keep = trades["ts"] >= t0
    if options.minutes is not None:
        keep &= trades["ts"] < t0 + int(options.minutes * 60 * NS_PER_S)
    sliced = trades[keep].reset_index(drop=True)
    if sliced.empty:
        raise SessionError(
            f"the replay slice of {path} is empty (start {options.start_minute} min)"
        )
    return sliced


def recorded_market(
    settings: Settings, options: SessionOptions, symbol: str, trades: pd.DataFrame | None
) -> RecordedMarket | None:
    """The recorded book a replay plays with its trades (None: the tape only): a Bitstamp feed
    log's own (L2 snapshots and L3 order events), or a lake day's recorded book (L2, Bybit
    ``orderbook.50`` from the collector). A trade file of any other format has none."""
    if options.source is not Source.REPLAY or trades is None or trades.empty:
        return None
    from cryptoarena.data.book_replay import lake_market, load_bitstamp_market

    if options.replay_day is not None:
        from cryptoarena.data.lake import BOOK, Lake

        lake = Lake(settings.data.lake_dir)
        if options.replay_day not in lake.days(symbol, BOOK):
            return None  # an earlier day's last state would be a stale book, not this day's
        first, last = int(trades["ts"].iloc[0]), int(trades["ts"].iloc[-1])
        return lake_market(lake, symbol, first, last + 1)
    from cryptoarena.data.loaders import is_bitstamp_log

    path = replay_path(settings, options)
    if not is_bitstamp_log(path):
        return None
    started = time.perf_counter()
    market, report = load_bitstamp_market(path)
    if report.malformed:
        logger.warning("replay book: %s", report.summary())
    logger.info("replay book: %s loaded in %.1f s", market.name, time.perf_counter() - started)
    return market


def make_exchange(
    settings: Settings,
    config: ArenaConfig,
    kind: ExchangeKind,
    clock: Clock,
    allow_mainnet: bool,
    market: RecordedMarket | None = None,
) -> Any:
    """Paper: one paper venue, each book on its own account there with the arena's capital
    (accounts ignored). Bybit: one BybitExchange per
    distinct bound account (its own keys), strategies without one on a paper venue fed by the
    same tape, all behind one :class:`AccountsExchange`. ``market``: the replay's recorded
    book, which the paper venue fills against (queue models l2/l3 refuse to start without)."""
    from cryptoarena.trading.exchange.paper import PaperExchange
    from cryptoarena.trading.exchange.queues import QueueModel, missing_book

    paper = paper_config(config)
    missing = missing_book(QueueModel(paper.queue_model), market)
    if missing is not None and (kind is ExchangeKind.PAPER or None in config.accounts().values()):
        raise SessionError(
            f"{missing}, and this run has none: replay a Bitstamp feed log (L2 and L3) or a "
            "lake day with a recorded book (--lake-day, L2), or use queue_model 'tape'"
        )
    if kind is ExchangeKind.PAPER:
        return PaperExchange(paper, clock=clock, market=market)
    from cryptoarena.trading.exchange.accounts import PAPER, AccountsExchange
    from cryptoarena.trading.exchange.bybit import BybitExchange

    env = {
        ExchangeKind.BYBIT_DEMO: BybitEnv.DEMO,
        ExchangeKind.BYBIT_TESTNET: BybitEnv.TESTNET,
        ExchangeKind.BYBIT_MAINNET: BybitEnv.MAINNET,
    }[kind]
    if env is BybitEnv.MAINNET and not allow_mainnet:
        raise SessionError("mainnet trades real money: pass --allow-mainnet if you mean it")
    bindings = {name: account or PAPER for name, account in config.accounts().items()}
    members: dict[str, Any] = {}
    for account in dict.fromkeys(a for a in bindings.values() if a != PAPER):
        key, secret = account_keys(settings, account)
        bybit = settings.bybit.model_copy(update={"env": env, "api_key": key, "api_secret": secret})
        # Signing needs wall-clock time even when the market data is a replay.
        members[account] = BybitExchange(bybit, clock=LiveClock())
    if any(a == PAPER for a in bindings.values()):
        members[PAPER] = PaperExchange(paper, clock=clock, market=market)
    return AccountsExchange(members, bindings, name=f"bybit-{env.value}")


def paper_config(config: ArenaConfig) -> PaperExchangeConfig:
    """The arena's paper venue: its capital per book, its queue model."""
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig

    capital = Decimal(str(config.arena.capital))  # per book: no book's margin is another's
    return PaperExchangeConfig(initial_balance=capital, queue_model=config.arena.queue_model)


def fill_rules_of(config: ArenaConfig, market: RecordedMarket | None) -> dict[str, object]:
    """The paper venue's fill rules as the run records them (queue model, book, taker rule)."""
    from cryptoarena.trading.exchange.queues import QueueModel, fill_rules

    venue = paper_config(config)
    return fill_rules(
        QueueModel(venue.queue_model),
        market,
        venue.queue_lookback_s,
        venue.queue_min_qty,
        min_trades=venue.queue_min_trades,
    )


def account_keys(settings: Settings, account: str) -> tuple[SecretStr, SecretStr]:
    """A bound account's API key and secret, from the environment only."""
    creds = settings.accounts.get(account)
    key, secret = (None, None) if creds is None else (creds.api_key, creds.api_secret)
    for field, value in (("api_key", key), ("api_secret", secret)):
        if value is None:
            var = f"{ENV_PREFIX}ACCOUNTS__{account.upper()}__{field.upper()}"
            raise SessionError(f"account {account!r} is bound to a strategy but {var} is not set")
    assert key is not None and secret is not None
    return key, secret


def make_feed(settings: Settings, options: SessionOptions, symbol: str) -> tuple[Any, Clock]:
    """The market feed and the clock that goes with it (replays run on exchange time)."""
    feed, clock, _ = make_feed_with_trades(settings, options, symbol)
    return feed, clock


def make_feed_with_trades(
    settings: Settings, options: SessionOptions, symbol: str
) -> tuple[Any, Clock, pd.DataFrame | None]:
    """:func:`make_feed`, plus a replay's trades (None for a live feed)."""
    if options.source is Source.REPLAY:
        from cryptoarena.data.replay_feed import ReplayFeed

        trades = replay_trades(settings, options, symbol)
        clock = SimClock(int(trades["ts"].iloc[0]))
        # The worker moves the simulated clock itself, tick by tick, as the bars close (the
        # feed would jump it to the end of each batch, ahead of the bars still to close).
        feed = ReplayFeed(trades, symbol=symbol, speed=options.speed, clock=None)
        return feed, clock, trades
    if options.speed is not None:
        raise SessionError("--speed only applies to --source replay")
    if options.replay_day is not None:
        raise SessionError("--lake-day only applies to --source replay")
    from cryptoarena.data.bybit_feed import BybitFeed, BybitFeedConfig

    return BybitFeed(BybitFeedConfig.from_settings(settings, symbol=symbol)), LiveClock(), None


@dataclass(frozen=True)
class ForecastPlan:
    """A session's forecasts: the source (None: the AI arm stands aside), what it is, and the
    span of the data its model was trained and validated on (None: unknown)."""

    source: ForecastSource | None
    described: str
    trained: TrainedSpan | None = None

    @property
    def valid_until_ns(self) -> int | None:
        return None if self.trained is None else self.trained.until_ns


def is_backtest(options: SessionOptions) -> bool:
    return options.source is Source.REPLAY and options.speed is None


async def _served_model(url: str) -> dict[str, Any] | None:
    """The served model's info (``/v1/model``) when a server with a model answers at ``url``."""
    import httpx

    try:
        async with httpx.AsyncClient(base_url=url, timeout=1.0) as http:
            if (await http.get("/ready")).status_code != 200:
                return None
            response = await http.get("/v1/model")
            info: dict[str, Any] = response.json() if response.status_code == 200 else {}
            return info
    except (httpx.HTTPError, ValueError):
        return None


async def make_forecasts(
    settings: Settings, options: SessionOptions, config: ArenaConfig, clock: Clock
) -> ForecastPlan:
    """The AI arm's forecasts. A backtest without an explicit ``--forecast-url`` uses the model
    server if one answers, else loads the ``@champion`` in-process (the same Forecaster);
    with neither it says so once, loudly, at the start, and the AI arm stands aside."""
    from cryptoarena.trading.forecasts.local import load_champion, trained_span

    uri = settings.mlflow.tracking_uri
    if options.forecast_source is not None:
        run = options.forecast_source.model_run_id
        return ForecastPlan(options.forecast_source, "in-process source", trained_span(uri, run))
    if not any(s.kind == "ai_forecast" for s in config.strategies):
        return ForecastPlan(None, "no AI arm")
    from cryptoarena.serving.client import ForecastClient

    url = options.forecast_url or settings.serving.url
    served = await _served_model(url)
    if served is None and options.forecast_url is None and is_backtest(options):
        champion = load_champion(settings, clock)
        if champion.source is None:
            logger.warning(
                "NO MODEL for the AI arm: no model server at %s and %s; the AI arm stands aside "
                "for the whole backtest (train one: arena demo, or arena train)",
                url,
                champion.described,
            )
            return ForecastPlan(None, f"no model: {champion.described}")
        logger.info("AI arm: no model server at %s; %s", url, champion.described)
        return ForecastPlan(champion.source, champion.described, trained_span(uri, champion.run_id))
    client = ForecastClient(
        url,
        timeout_s=config.arena.forecast_timeout_s,
        max_age_s=config.arena.forecast_max_age_s,
        clock=clock,
    )
    run = str(served.get("run_id") or "") if served else None
    described = f"the model served at {url}" if served else f"model server at {url} (not ready)"
    return ForecastPlan(client, described, trained_span(uri, run))


def out_of_sample(
    options: SessionOptions, plan: ForecastPlan, span: tuple[int, int] | None
) -> tuple[int, dict[str, Any]]:
    """(trade from, run notes): a backtest with the AI arm trades, for every strategy (a fair
    comparison), only on bars the model never saw. A replay wholly before or after the span the
    model was trained and validated on trades from its start; one that overlaps it trades only
    after the model's validation end (the bars before only warm the strategies up).
    ``allow_in_sample`` trades them too, and the run is marked in-sample."""
    trained = plan.trained
    if trained is None or not is_backtest(options) or plan.source is None or span is None:
        return 0, {"in_sample": None}
    until = trained.until_ns
    first, last = span
    seen = {"model_valid_until_ns": until, "model_trained_from_ns": trained.first_ns}
    if not trained.overlaps(first, last):
        return 0, {"in_sample": False, **seen}
    if options.allow_in_sample:
        logger.warning(
            "IN-SAMPLE backtest: the replay holds bars the model trained or validated on "
            "(%s to %s); the run is marked in-sample",
            "?" if trained.first_ns is None else _utc(trained.first_ns),
            _utc(until),
        )
        return 0, {"in_sample": True, **seen}
    if last < until:
        raise SessionError(
            f"the replay ends ({_utc(last)}) before the model's validation end ({_utc(until)}): "
            "nothing out of sample to trade (pass --allow-in-sample to score it in-sample, "
            "marked so)"
        )
    logger.warning(
        "out of sample: trading starts at %s, after the model's validation end (earlier bars "
        "only warm the strategies up; --allow-in-sample to trade them)",
        _utc(until),
    )
    return until, {"in_sample": False, **seen, "trade_from_ns": until}


def batch_forecasts(
    plan: ForecastPlan, trades: pd.DataFrame, config: ArenaConfig, clock: Clock
) -> ForecastPlan:
    """A backtest with an in-process model: every forecast of the replay computed up front in
    large batches (they depend only on past bars), instead of one inference per bar."""
    from cryptoarena.trading.forecasts.local import replay_bars
    from cryptoarena.trading.forecasts.pump import BatchSource

    if plan.source is None or not plan.source.capabilities.batches:
        return plan
    started = time.perf_counter()
    bars = replay_bars(trades, config.arena.symbol)
    source = cast(BatchSource, plan.source)
    batched = source.precompute(bars, window=config.arena.forecast_window, clock=clock)
    logger.info(
        "AI arm: %d forecasts computed in batches in %.1f s before the replay",
        batched.computed,
        time.perf_counter() - started,
    )
    return ForecastPlan(batched, f"{plan.described}, batched", plan.trained)


def _utc(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts_ns / NS_PER_S))


def _lake_bars(settings: Settings, config: ArenaConfig) -> Any:
    """The collector's recorded 1-second bars, read by time window."""
    from cryptoarena.data.lake import Lake

    lake = Lake(settings.data.lake_dir)
    return lambda start_ns, end_ns: lake.read_bars(config.arena.symbol, start_ns, end_ns)


async def run_session(
    settings: Settings, config: ArenaConfig, options: SessionOptions, *, handle_signals: bool = True
) -> WorkerResult:
    from cryptoarena import alerts
    from cryptoarena.trading.execution.markouts import MarkoutPrices
    from cryptoarena.trading.journal import Journal

    run_id = options.run_id or default_run_id(options)
    feed, clock, trades = make_feed_with_trades(settings, options, config.arena.symbol)
    span = None if trades is None else (int(trades["ts"].iloc[0]), int(trades["ts"].iloc[-1]))
    market = recorded_market(settings, options, config.arena.symbol, trades)
    exchange = make_exchange(
        settings, config, options.exchange, clock, options.allow_mainnet, market
    )
    plan = await make_forecasts(settings, options, config, clock)
    trade_from_ns, sample = out_of_sample(options, plan, span)
    if trades is not None and is_backtest(options):
        plan = batch_forecasts(plan, trades, config, clock)
    kill = KillSwitch(settings.trading.kill_file, settings.trading.kill_token)
    # A backtest on the paper venue journals through the bulk path (plain inserts in large
    # batches, buffered by the worker's Recorder): the same documents as a live run.
    bulk = is_backtest(options) and options.exchange is ExchangeKind.PAPER
    journal = Journal.open(settings, run_id=run_id, clock=clock, bulk=bulk)
    # Halts, the kill switch, model and journal trouble of a live run also go to the operator.
    journal = alerts.tap(journal, alerts.start(settings), live=not clock.simulated)
    try:
        worker = Worker(
            config,
            feed=feed,
            exchange=exchange,
            journal=journal,
            clock=clock,
            run_id=run_id,
            forecasts=plan.source,
            kill_switch=kill,
            source_name=options.source.value,
            durable_orders=options.exchange is not ExchangeKind.PAPER,
            recorded_bars=_lake_bars(settings, config) if options.source is Source.BYBIT else None,
            trade_from_ns=trade_from_ns,
            # Markouts against the recorded book's mid where the replay has one.
            markout_prices=MarkoutPrices(book=market.l2 if market is not None else None),
            run_notes={
                "forecasts": plan.described,
                "fills": fill_rules_of(config, market),
                **sample,
            },
        )
        if handle_signals:
            worker.install_signal_handlers()
        result = await worker.run()
    finally:
        await feed.close()
        journal.close()
    return result


def run_session_sync(
    settings: Settings, config: ArenaConfig, options: SessionOptions
) -> WorkerResult:
    return asyncio.run(run_session(settings, config, options))


def summary_line(result: WorkerResult, extra: Sequence[str] = ()) -> str:
    best = max(result.equity.items(), key=lambda kv: kv[1], default=("—", 0.0))
    parts = [
        f"{result.trades:,} trades",
        f"{result.decisions:,} decisions",
        f"{result.orders} orders",
        f"{result.fills} fills",
        f"best {best[0]} {best[1]:,.2f}",
        *extra,
    ]
    return ", ".join(parts)
