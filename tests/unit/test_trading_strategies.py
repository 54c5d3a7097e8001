"""Strategies: validated frozen configs, O(1) indicators that match pandas, and real-data runs."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.bars import build_bars, parse_bar_size
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Bar, bars_to_records
from cryptoarena.data.samples import TARDIS_DAY, sample_path
from cryptoarena.trading.strategies import STRATEGY_TYPES, UnknownStrategyError, build_strategy
from cryptoarena.trading.strategies.base import StrategyContext
from cryptoarena.trading.strategies.indicators import (
    BandSums,
    Ema,
    RollingExtremes,
    RollingVwap,
    Sma,
)
from pydantic import ValidationError


@lru_cache(maxsize=1)
def _first_hours() -> pd.DataFrame:
    trades, _ = load_trades(sample_path(TARDIS_DAY))
    return trades[trades["ts"] < trades["ts"].iloc[0] + 3 * 3600 * 10**9].reset_index(drop=True)


def _bars(bar_size: str) -> list[Bar]:
    return bars_to_records(build_bars(_first_hours(), parse_bar_size(bar_size)))


def test_indicators_match_pandas_on_real_closes() -> None:
    bars = build_bars(_first_hours(), parse_bar_size("1s")).head(3000)
    close = bars["close"]
    sma, ema, std, ext, vw = Sma(20), Ema(20), BandSums(20), RollingExtremes(20), RollingVwap(20)
    got_sma, got_ema, got_sd, got_hi, got_lo, got_vwap = [], [], [], [], [], []
    for row in bars.itertuples():
        got_sma.append(sma.update(row.close))
        got_ema.append(ema.update(row.close))
        s = std.stats() if std.update(row.close) else None
        got_sd.append(s[1] if s else None)
        ext.update(row.high, row.low)
        got_hi.append(ext.high if ext.ready else None)
        got_lo.append(ext.low if ext.ready else None)
        got_vwap.append(vw.update(row.vwap, row.volume))
    want_sma = close.rolling(20).mean()
    want_sd = close.rolling(20).std(ddof=0)
    want_ema = close.ewm(span=20, adjust=False).mean()  # differs only by its seed: compare late
    pv = (bars["vwap"] * bars["volume"]).rolling(20).sum()
    want_vwap = pv / bars["volume"].rolling(20).sum()
    np.testing.assert_allclose(np.array(got_sma[19:], float), want_sma[19:], rtol=1e-9)
    np.testing.assert_allclose(np.array(got_sd[19:], float), want_sd[19:], atol=1e-6)
    np.testing.assert_allclose(np.array(got_ema[500:], float), want_ema[500:], rtol=1e-9)
    np.testing.assert_allclose(np.array(got_hi[19:], float), bars["high"].rolling(20).max()[19:])
    np.testing.assert_allclose(np.array(got_lo[19:], float), bars["low"].rolling(20).min()[19:])
    ok = [i for i, v in enumerate(got_vwap) if v is not None]
    np.testing.assert_allclose(np.array([got_vwap[i] for i in ok]), want_vwap.iloc[ok], rtol=1e-9)


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("sma_cross", {"fast": 30, "slow": 10}, r"fast \(30\) must be shorter than slow \(10\)"),
        ("macd", {"fast": 26, "slow": 26}, "must be shorter"),
        ("rsi_reversion", {"lower": 60, "upper": 70}, "lower < 50 < upper"),
        ("vwap_reversion", {"threshold_bps": 5, "exit_bps": 6}, "exit_bps"),
        ("sma_cross", {"bar_size": "7x"}, "bar size"),
        ("sma_cross", {"size": 1.5}, "less than or equal to 1"),
        ("bollinger", {"nonsense": 1}, "Extra inputs"),
        ("ai_forecast", {"bar_size": "1m"}, "1-second bars"),
    ],
)
def test_bad_configs_get_clear_errors(kind: str, params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build_strategy("x", kind, params)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(UnknownStrategyError, match="sma_cross"):
        build_strategy("x", "martingale")


def test_configs_are_frozen() -> None:
    strategy = build_strategy("x", "sma_cross", {"fast": 5, "slow": 20})
    with pytest.raises(ValidationError):
        strategy.config.fast = 3  # type: ignore[misc]


@pytest.mark.parametrize("kind", sorted(set(STRATEGY_TYPES) - {"ai_forecast"}))
def test_every_classical_and_reference_strategy_trades_real_bars(kind: str) -> None:
    # Short periods on 1-minute (or 1-second) bars so three real hours give several signals.
    params = (
        {"bar_size": "1s"} if kind in ("buy_and_hold", "naive_forecaster") else {"bar_size": "1m"}
    )
    if kind == "naive_forecaster":
        params["margin_bps"] = 0.0
    strategy = build_strategy(kind, kind, params)
    ctx = StrategyContext(now_ns=0, fee_rate=0.0002)
    targets = [strategy.on_bar(bar, ctx) for bar in _bars(strategy.config.bar_size)]
    seen = {t for t in targets if t is not None}
    assert seen, f"{kind} never returned a target"
    assert all(-1.0 <= t <= 1.0 for t in seen)
    assert strategy.reason
    if kind != "buy_and_hold":
        assert len(seen) >= 2, f"{kind} never changed its mind: {seen}"


def test_ai_stands_aside_without_a_forecast_and_follows_a_strong_one() -> None:
    ai = build_strategy("ai", "ai_forecast", {"margin_bps": 1.0})
    bar = _bars("1s")[0]
    assert ai.on_bar(bar, StrategyContext(0, 0.00055, None, "forecast stale (3.1 s)")) is None
    assert ai.reason == "stand aside: forecast stale (3.1 s)"

    class F:
        bar_ts_ns = bar.ts
        model_version = "3"
        log_returns = tuple([0.0] * 14 + [0.0015])  # +15 bps > 2×5.5 + 1

    assert ai.on_bar(bar, StrategyContext(0, 0.00055, F())) == 1.0
    F.log_returns = tuple([0.0] * 14 + [0.0011])  # +11 bps < 12 bps hurdle
    assert ai.on_bar(bar, StrategyContext(0, 0.00055, F())) == 0.0
    assert "within hurdle" in ai.reason


def test_threshold_bps_replaces_the_fee_hurdle_and_a_maker_assumes_the_maker_fee() -> None:
    bar = _bars("1s")[0]

    class F:
        bar_ts_ns = bar.ts
        model_version = "3"
        log_returns = tuple([0.0] * 14 + [0.00005])  # +0.5 bps

    ctx = StrategyContext(0, 0.00055, F())
    default = build_strategy("ai", "ai_forecast", {"margin_bps": 1.0})
    assert default.on_bar(bar, ctx) == 0.0 and "hurdle 12.00" in default.reason
    low = build_strategy("ai", "ai_forecast", {"threshold_bps": 0.4})
    assert low.on_bar(bar, ctx) == 1.0 and "hurdle 0.40" in low.reason
    high = build_strategy("ai", "ai_forecast", {"threshold_bps": 0.6})
    assert high.on_bar(bar, ctx) == 0.0
    F.log_returns = tuple([0.0] * 14 + [-0.00005])
    assert low.on_bar(bar, ctx) == -1.0
    # No threshold: a maker's hurdle is the maker round trip (2 × 2 bps) plus the margin.
    F.log_returns = tuple([0.0] * 14 + [0.00045])  # +4.5 bps: < 12 taker, > 4 + 0.25 maker
    maker = build_strategy("ai", "ai_forecast", {"execution": "maker", "margin_bps": 0.25})
    taker = build_strategy("ai", "ai_forecast", {"margin_bps": 0.25})
    assert maker.on_bar(bar, ctx) == 1.0 and "hurdle 4.25" in maker.reason
    assert taker.on_bar(bar, ctx) == 0.0 and "hurdle 11.25" in taker.reason
    naive = build_strategy("n", "naive_forecaster", {"threshold_bps": 0.0})
    assert naive.config.hurdle_bps(ctx) == 0.0
