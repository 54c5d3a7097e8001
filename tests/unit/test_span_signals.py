"""The bar backtest's shortcuts equal the slow paths they stand for: decisions computed over a
whole span (from the strategy's twin, or the strategy stepped in a tight loop) equal the
strategy stepped bar by bar, and the vectorised loss checks equal ``on_equity`` at every mark."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.loaders import load_binance_klines_many
from cryptoarena.data.records import bars_to_records
from cryptoarena.data.samples import sample_path
from cryptoarena.trading.engine.runner import StrategyRunner
from cryptoarena.trading.engine.signals import Signals, compute_signals, generic_signals
from cryptoarena.trading.risk.limits import RiskConfig, StrategyLimits
from cryptoarena.trading.risk.manager import DAY_NS, RiskManager
from cryptoarena.trading.strategies import build_strategy
from cryptoarena.trading.strategies.base import StrategyContext

DAYS = ("BTCUSDT-1m-2024-03-11.csv.gz", "BTCUSDT-1m-2025-03-11.csv.gz")
MASK = re.compile(r"[-+]?\d[\d.,]*")
KINDS = [
    ("sma_cross", {"fast": 20, "slow": 60}),
    ("sma_cross", {"fast": 5, "slow": 20, "allow_short": False}),
    ("macd", {}),
    ("macd", {"fast": 5, "slow": 13, "signal": 4, "size": 0.5}),
    ("rsi_reversion", {}),
    ("rsi_reversion", {"period": 5, "lower": 40, "upper": 60, "allow_short": False}),
    ("bollinger", {}),
    ("bollinger", {"period": 10, "k": 1.0, "allow_short": False}),
    ("donchian", {}),
    ("vwap_reversion", {"period": 30}),
    ("vwap_reversion", {"period": 10, "threshold_bps": 3, "exit_bps": 1}),
]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    frame, _ = load_binance_klines_many([sample_path(d) for d in DAYS])
    return frame


def _stepped(kind: str, params: dict[str, object], bars: pd.DataFrame) -> list[tuple[object, ...]]:
    runner = StrategyRunner(build_strategy("s", kind, {**params, "bar_size": "1m"}))
    out = []
    for bar in bars_to_records(bars):
        d = runner.step(bar, StrategyContext(now_ns=bar.ts + 60 * 10**9, fee_rate=0.00055))
        out.append((d.target, d.reason, d.warming_up))  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize(("kind", "params"), KINDS)
def test_span_decisions_equal_the_strategy_stepped_bar_by_bar(
    kind: str, params: dict[str, object], bars: pd.DataFrame
) -> None:
    stepped = _stepped(kind, params, bars)
    for way in (compute_signals, generic_signals):
        runner = StrategyRunner(build_strategy("s", kind, {**params, "bar_size": "1m"}))
        _check(way(runner, bars, 0.00055), stepped, exact=way is compute_signals)
        assert (way is generic_signals) or runner.strategy.span_signals(bars) is not None


def _check(sig: Signals, stepped: list[tuple[object, ...]], *, exact: bool) -> None:
    assert sig.crash is None
    for j, (target, reason, warming) in enumerate(stepped):
        d = sig.decision(j)
        assert d.target == target and d.warming_up == warming, j
        if exact:  # vectorised: the exact reason, numbers included, on every bar
            assert d.reason == reason, j
    # Decision classes (what the journal deduplicates on) change exactly where the stepped
    # (target, masked reason) pairs change.
    pairs = [(t, MASK.sub("#", r)) for t, r, _ in stepped]
    changes = [j for j in range(1, len(pairs)) if pairs[j] != pairs[j - 1]]
    assert [j for j in range(1, len(sig.key)) if sig.key[j] != sig.key[j - 1]] == changes
    # Where the class changes, the reason is the stepped one (it is journaled there).
    for j in changes:
        assert sig.reason_at(j) == stepped[j][1]


def test_the_twin_sma_equals_the_generic_path(bars: pd.DataFrame) -> None:
    make = lambda: StrategyRunner(build_strategy("s", "sma_cross", {"fast": 20, "slow": 60}))  # noqa: E731
    fast, slow = compute_signals(make(), bars, 0.0), generic_signals(make(), bars, 0.0)
    assert np.array_equal(fast.target, slow.target, equal_nan=True)


def test_a_strategy_that_raises_stops_deciding_at_that_bar(bars: pd.DataFrame) -> None:
    runner = StrategyRunner(build_strategy("s", "rsi_reversion", {}))
    calls = {"n": 0}
    real = runner.strategy.on_bar

    def flaky(bar, ctx):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 100:
            raise RuntimeError("boom")
        return real(bar, ctx)

    runner.strategy.on_bar = flaky  # type: ignore[method-assign]
    sig = generic_signals(runner, bars, 0.0)
    assert sig.crash_at == 99 and sig.crash is not None and "boom" in sig.crash.error


def test_loss_checks_along_a_path_equal_on_equity_at_every_mark() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    ts = 1_700_000_000 * 10**9 + np.arange(n, dtype=np.int64) * 60 * 10**9  # crosses days
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    limits = StrategyLimits(max_daily_loss=0.04, max_drawdown=0.08)
    config = RiskConfig(strategy=limits)
    seen: list[dict[str, object]] = []
    one = RiskManager(config, {"a": 10_000.0}, seen.append)
    many = RiskManager(config, {"a": 10_000.0}, lambda doc: None)
    first_halt = None
    halted_then: dict[str, str] = {}
    for k in range(n):
        one.on_equity("a", float(equity[k]), int(ts[k]))
        if first_halt is None and "a" in one.halted:
            first_halt, halted_then = k, dict(one.halted)  # (a daily halt ends the next day)
    assert first_halt is not None and ts[first_halt] // DAY_NS > ts[0] // DAY_NS
    path = many.equity_path("a", ts, equity)
    assert path.breach == first_halt
    # The state after the marks before the halt is the one on_equity left there.
    two = RiskManager(config, {"a": 10_000.0}, lambda doc: None)
    for k in range(first_halt):
        two.on_equity("a", float(equity[k]), int(ts[k]))
    path.commit(first_halt - 1)
    assert many.marks == two.marks and many.marks
    many.on_equity("a", float(equity[first_halt]), int(ts[first_halt]))
    assert many.halted == halted_then
    # The total (global limits) the same way, from a state carried over.
    total = many.equity_path(None, ts[first_halt:], equity[first_halt:] * 3)
    assert 0 <= total.breach <= n - first_halt


@pytest.mark.parametrize("carried", ["none", "same day", "day before"])
def test_loss_checks_along_a_path_inside_one_day_equal_on_equity_at_every_mark(
    carried: str,
) -> None:
    # A path inside one UTC day (a block between fills) takes a shorter route: the marks it
    # commits and the breach it finds are still those of on_equity, mark by mark.
    rng = np.random.default_rng(11)
    n = 200
    day0 = 1_700_006_400 * 10**9  # a UTC midnight
    assert day0 % DAY_NS == 0
    ts = day0 + 3_600 * 10**9 + np.arange(n, dtype=np.int64) * 60 * 10**9
    assert ts[0] // DAY_NS == ts[-1] // DAY_NS  # the precondition of the short route
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    config = RiskConfig(strategy=StrategyLimits(max_daily_loss=0.02, max_drawdown=0.05))

    def fresh() -> RiskManager:
        risk = RiskManager(config, {"a": 10_000.0}, lambda doc: None)
        if carried != "none":  # a mark left earlier: today's, or yesterday's
            at = int(ts[0]) - (30 * 10**9 if carried == "same day" else DAY_NS)
            risk.on_equity("a", 10_150.0, at)
        return risk

    one, many = fresh(), fresh()
    first_halt = n
    for k in range(n):
        one.on_equity("a", float(equity[k]), int(ts[k]))
        if "a" in one.halted:
            first_halt = k
            break
    assert first_halt < n  # the path breaks the daily limit somewhere: the breach is checked
    path = many.equity_path("a", ts, equity)
    assert path.breach == first_halt
    for k in range(first_halt):
        step = fresh()
        for j in range(k + 1):
            step.on_equity("a", float(equity[j]), int(ts[j]))
        path.commit(k)
        assert many.marks == step.marks
