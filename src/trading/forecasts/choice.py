"""Which model a replay will use, before it starts, and where its out-of-sample part begins.

A backtest with the AI arm trades only bars the model never saw: a replay that overlaps the span
it was trained and validated on trades only after its validation end (the session refuses one
that ends before it); a replay wholly outside that span trades from its start. `arena demo` and
`arena backtest` without --start-minute start an overlapping replay a warm-up before that end,
so `--minutes N` means N minutes of bars the model never saw, whatever day it was trained on.

The AI arm's model is the registry's ``@champion`` (or the model server), or with
``arena backtest --forecaster book-ridge`` the order-book ridge (:mod:`cryptoarena.model.book_ridge`)
fitted on the first ``--train-minutes`` of the replayed book and tracked in MLflow.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S

if TYPE_CHECKING:
    from cryptoarena.trading.forecasts.local import TrainedSpan

logger = logging.getLogger(__name__)

# Replayed before the first out-of-sample bar: the longest classical strategy's warm-up and the
# forecast window of 256 one-second bars both fit in it.
WARMUP_MINUTES = 20.0


class Forecaster(StrEnum):
    """Where the AI arm's forecasts come from."""

    CHAMPION = "champion"  # the model server, else the registry's @champion in-process
    BOOK_RIDGE = "book-ridge"  # the order-book ridge fitted on the replay's first minutes


@dataclass(frozen=True)
class ForecastChoice:
    """The forecasts a replay will use: ``source`` to hand to the session (None: the server at
    ``served_at``, which the session finds itself, or no model), what they are, and the span
    its model was trained and validated on (None: unknown)."""

    source: Any
    described: str
    trained: TrainedSpan | None
    served_at: str | None = None
    # The book ridge's skill against persistence on the replay after its training span.
    held_out: dict[str, Any] | None = None

    @property
    def valid_until_ns(self) -> int | None:
        return None if self.trained is None else self.trained.until_ns


def choose_forecasts(settings: Settings, url: str | None = None) -> ForecastChoice:
    """The model served at ``url`` (default: settings.serving.url) if it answers, else the
    ``@champion`` loaded in-process (returned as ``source`` so it is loaded once), else none."""
    from cryptoarena.trading.engine.session import _served_model
    from cryptoarena.trading.forecasts.local import load_champion, trained_span

    url = url or settings.serving.url
    uri = settings.mlflow.tracking_uri
    served = asyncio.run(_served_model(url))
    if served is not None:
        trained = trained_span(uri, str(served.get("run_id") or ""))
        return ForecastChoice(None, f"the model served at {url}", trained, served_at=url)
    champion = load_champion(settings)
    if champion.source is None:
        return ForecastChoice(None, champion.described, None)
    return ForecastChoice(champion.source, champion.described, trained_span(uri, champion.run_id))


def replay_span(settings: Settings, replay_file: Path | None = None) -> tuple[int, int]:
    """(first, last) trade time (ns) of the replay file (default: the shipped real day)."""
    from cryptoarena.data.loaders import load_trades
    from cryptoarena.data.samples import TARDIS_DAY, sample_path

    path = replay_file or sample_path(TARDIS_DAY, settings.data.sample_dir)
    trades, _ = load_trades(Path(path))
    return int(trades["ts"].iloc[0]), int(trades["ts"].iloc[-1])


def minute_of(settings: Settings, ts_ns: int, replay_file: Path | None = None) -> float:
    """Minutes from the replay file's first trade (default: the shipped real day) to ``ts_ns``."""
    return (ts_ns - replay_span(settings, replay_file)[0]) / (60 * NS_PER_S)


def book_ridge_forecasts(
    settings: Settings, replay_file: Path, train_minutes: float, *, window: int
) -> ForecastChoice:
    """The order-book ridge as the AI arm's forecasts over a replay that carries a book: fitted
    on the book's first ``train_minutes`` (per-second book bars, close = mid), judged against
    persistence on the rest, tracked in MLflow (settings.mlflow.tracking_uri), and every
    forecast of the replay computed up front from the same book bars (a lookup by bar time,
    like the champion's batched forecasts; ``window`` bars of history at most, as the pump
    sends)."""
    from cryptoarena.model.book import has_book, load_book_bars
    from cryptoarena.model.book_ridge import fit_book_ridge, held_out_skill, track
    from cryptoarena.trading.forecasts.local import PrecomputedForecasts, trained_span

    if train_minutes <= 0:
        raise ValueError(f"--train-minutes must be positive, got {train_minutes}")
    bars = load_book_bars(replay_file)
    if not has_book(bars):
        raise ValueError(f"{replay_file} carries no order book: the book ridge needs one")
    first = int(bars["ts"].iloc[0])
    fit = fit_book_ridge(bars, first + int(train_minutes * 60 * NS_PER_S))
    held_out = held_out_skill(fit, bars)
    uri = settings.mlflow.tracking_uri
    fit = track(fit, held_out, uri, f"{Path(replay_file).name} first {train_minutes:g} min")
    info = fit.forecaster.info
    logger.info(
        "book ridge fitted on %d anchors; held out (%s to %s, %d): MSE skill %+.4f "
        "[%+.4f, %+.4f], DM p %.2g",
        fit.n_train, held_out["first"], held_out["last"], held_out["n"], held_out["skill"],
        held_out["skill_lo"], held_out["skill_hi"], held_out["dm_p"],
    )  # fmt: skip
    source = PrecomputedForecasts(fit.forecaster, bars, window=window)
    return ForecastChoice(
        source,
        f"{info.name} v{info.version} (run {info.run_id}), fitted on the replay's first "
        f"{train_minutes:g} min, batched",
        trained_span(uri, info.run_id, info.horizon),
        held_out=held_out,
    )
