"""Each rule written once: every strategy's vectorised twin (``span_signals``) equals its
``on_bar`` stepped bar by bar, on real klines and on made-up markets full of flat stretches and
exact ties; and the crossover and band rules are exact (a flat market cannot flip them)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.loaders import load_binance_klines_many
from cryptoarena.data.records import bars_to_records
from cryptoarena.data.samples import sample_path
from cryptoarena.trading.strategies import STRATEGY_TYPES, build_strategy
from cryptoarena.trading.strategies.base import StrategyContext

DAYS = ("BTCUSDT-1m-2024-03-11.csv.gz", "BTCUSDT-1m-2025-03-11.csv.gz")
MASK = re.compile(r"[-+]?\d[\d.,]*")  # the decision journal's mask (engine/decide.py)
# Kinds without a twin: they read forecasts or the fee from the context bar by bar.
NO_TWIN = {"naive_forecaster", "ai_forecast"}
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "sma_cross": [{"fast": 20, "slow": 60}, {"fast": 1, "slow": 2}, {"fast": 5, "slow": 20}],
    "macd": [{}, {"fast": 5, "slow": 13, "signal": 4, "size": 0.5}],
    "rsi_reversion": [{}, {"period": 5, "lower": 40, "upper": 60, "allow_short": False}],
    "bollinger": [{}, {"period": 10, "k": 1.0, "allow_short": False}, {"period": 3, "k": 0.5}],
    "donchian": [{}, {"period": 3}],
    "vwap_reversion": [{"period": 30}, {"period": 10, "threshold_bps": 3, "exit_bps": 1}],
    "buy_and_hold": [{}],
}


def _frames() -> dict[str, pd.DataFrame]:
    frames: dict[str, pd.DataFrame] = {}
    paths = [sample_path(d) for d in DAYS]
    if all(p.exists() for p in paths):
        frames["klines"], _ = load_binance_klines_many(paths)
    rng = np.random.default_rng(11)
    for name, tick in (("flat-cents", 0.01), ("flat-tenths", 0.1)):
        # A random walk that mostly stands still: long runs of one price, moves of one tick,
        # prices that are not binary fractions: exact ties everywhere.
        n = 4000
        steps = rng.choice([-1, 0, 0, 0, 0, 0, 0, 1], size=n)
        close = np.round(62_000.37 + tick * np.cumsum(steps), 2)
        open_ = np.concatenate(([close[0]], close[:-1]))
        frames[name] = pd.DataFrame(
            {
                "ts": np.arange(n, dtype=np.int64) * 60 * 10**9,
                "open": open_,
                "high": np.maximum(open_, close),
                "low": np.minimum(open_, close),
                "close": close,
                "volume": rng.choice([0.0, 0.5, 1.0], size=n),
                "vwap": close,
                "trades": np.ones(n, dtype=np.int64),
                "buy_volume": np.zeros(n),
                "sell_volume": np.zeros(n),
            }
        )
    return frames


FRAMES = _frames()
CASES = [(k, p) for k, ps in VARIANTS.items() for p in ps]


def test_every_strategy_kind_but_the_forecast_ones_has_a_twin() -> None:
    # A new strategy must say its rule vectorised too, or be listed here with why not.
    bars = next(iter(FRAMES.values())).head(5)
    without = {
        kind
        for kind, cls in STRATEGY_TYPES.items()
        if build_strategy("s", kind, {}).span_signals(bars) is None
    }
    assert without == NO_TWIN
    assert set(VARIANTS) == set(STRATEGY_TYPES) - NO_TWIN  # each one is held equal below


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize(("kind", "params"), CASES)
def test_the_twin_equals_on_bar_stepped_bar_by_bar(
    kind: str, params: dict[str, Any], frame: str
) -> None:
    bars = FRAMES[frame]
    stepper = build_strategy("s", kind, params)
    twin = build_strategy("s", kind, params).span_signals(bars)
    assert twin is not None
    seen: dict[int, tuple[float | None, str]] = {}
    for j, bar in enumerate(bars_to_records(bars)):
        stepper.reason = ""
        target = stepper.on_bar(bar, StrategyContext(now_ns=bar.ts, fee_rate=0.00055))
        got = float(twin.target[j])
        assert (None if got != got else got) == target, (j, stepper.reason)
        assert twin.reason(j) == stepper.reason, j
        # Equal codes mean equal decisions up to the numbers in the reason.
        pair = (target, MASK.sub("#", stepper.reason))
        assert seen.setdefault(int(twin.code[j]), pair) == pair, j


def _exact_sma_side(closes: list[float], fast: int, slow: int) -> list[int]:
    """The documented rule in exact decimals: sign(SMA fast − SMA slow), 0 before both exist."""
    dec = [Fraction(repr(c)) for c in closes]
    out = []
    for j in range(len(dec)):
        if j + 1 < slow:
            out.append(0)
            continue
        f = sum(dec[j + 1 - fast : j + 1]) / fast
        s = sum(dec[j + 1 - slow : j + 1]) / slow
        out.append((f > s) - (f < s))
    return out


def test_a_flat_market_cannot_flip_the_sma_crossover() -> None:
    # After a move, the price stands still at 0.3: both averages are exactly 0.3 (a tie: no
    # opinion), while float running sums (add the new, drop the old) keep a residue that says
    # one is above the other.
    closes = [0.1, 0.7, 0.2, 0.9] + [0.3] * 40
    fast, slow = 2, 4
    running, window, noisy = 0.0, [], []
    for x in closes:
        window.append(x)
        running += x
        if len(window) > slow:
            running -= window.pop(0)
        noisy.append(running)
    assert any(v / slow != 0.3 for v in noisy[8:]), "precondition: the float sum drifts"
    exact = _exact_sma_side(closes, fast, slow)
    assert exact[8:] == [0] * (len(closes) - 8)
    strategy = build_strategy("s", "sma_cross", {"fast": fast, "slow": slow})
    frame = pd.DataFrame({"close": closes})
    twin = strategy.span_signals(frame)
    assert twin is not None
    stepped = []
    for x in closes:
        bar = bars_to_records(
            pd.DataFrame(
                {
                    "ts": [0], "open": [x], "high": [x], "low": [x], "close": [x], "volume": [1.0],
                    "vwap": [x], "trades": [1], "buy_volume": [0.0], "sell_volume": [0.0],
                }
            )
        )[0]  # fmt: skip
        stepped.append(strategy.on_bar(bar, StrategyContext(now_ns=0, fee_rate=0.0)))
    size = 1.0
    want = [None if s == 0 else size * s for s in exact]
    assert stepped == want
    assert [None if t != t else t for t in twin.target.tolist()] == want


def test_bollinger_bands_compare_exactly() -> None:
    # A window of 99, 101 (k = 1): mean 100, sd 1, so 101 sits exactly on the upper band and
    # 99 on the lower one: inside, not beyond (no entry); float arithmetic may say either.
    from cryptoarena.trading.strategies.indicators import BandSums, band_spread, beyond_band

    sums = BandSums(2)
    sums.update(99.0)
    assert sums.update(101.0)
    spread = band_spread(2, sums.total, sums.squares)
    offset = 2 * sums.last - sums.total
    assert not beyond_band(offset, spread, 1.0)
    assert beyond_band(offset, spread, 0.999999)


@pytest.mark.skipif("klines" not in FRAMES, reason="missing the shipped 1 m klines")
def test_sma_on_real_klines_follows_the_exact_rule() -> None:
    bars = FRAMES["klines"]
    closes = bars["close"].to_numpy(np.float64).tolist()
    exact = _exact_sma_side(closes, 5, 20)
    twin = build_strategy("s", "sma_cross", {"fast": 5, "slow": 20}).span_signals(bars)
    assert twin is not None
    sides = np.sign(np.nan_to_num(twin.target, nan=0.0)).astype(int).tolist()
    assert sides == exact
