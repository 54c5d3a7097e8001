"""Statistics: known values on small curves, and the bootstrap says "not significant" on noise."""

from __future__ import annotations

import numpy as np
import pytest
from cryptoarena.trading.results.stats import (
    SECONDS_PER_YEAR,
    calmar,
    max_drawdown,
    period_returns,
    sharpe,
    sortino,
    strategy_stats,
)
from cryptoarena.trading.results.verdict import compare_ai_vs_classical


def test_drawdown_returns_and_ratios_on_a_known_curve() -> None:
    eq = np.array([100.0, 110.0, 99.0, 105.0, 120.0])
    assert max_drawdown(eq) == pytest.approx(0.1)  # 110 → 99
    np.testing.assert_allclose(period_returns(eq), [0.1, -0.1, 6 / 99, 15 / 105])
    r = period_returns(eq)
    year_s = 365 * 86400  # one period per year: no annualisation factor
    # By hand: mean = (6/99 + 15/105) / 4 = 0.0508658; sample sd = 0.1060376; the only loss is
    # -0.1, so the downside deviation is sqrt(0.01 / 4) = 0.05.
    assert sharpe(r, year_s) == pytest.approx(0.4796957, rel=1e-6)
    assert sortino(r, year_s) == pytest.approx(1.0173160, rel=1e-6)
    assert sharpe(np.array([0.01, 0.01]), 5.0) is None  # no variance, no ratio
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_strategy_stats_from_equity_snapshots() -> None:
    curve = [
        {"ts_ns": i * 5_000_000_000, "equity": e, "qty": q, "fees": 1.0, "realised": 2.0,
         "unrealised": 0.5, "fills": 4, "round_trips": 2, "wins": 1,
         "exact": {"gross_profit": "6", "gross_loss": "2"}}
        for i, (e, q) in enumerate([(1000.0, 0.0), (1010.0, 0.1), (1005.0, 0.1), (1004.0, 0.0)])
    ]  # fmt: skip
    s = strategy_stats("x", "classical", curve, 1000.0)
    assert s.pnl == pytest.approx(4.0) and s.return_pct == pytest.approx(0.4)
    assert s.win_rate == 0.5 and s.profit_factor == 3.0 and s.expectancy == 2.0
    assert s.exposure == 0.5 and s.max_drawdown == pytest.approx(6 / 1010)
    assert s.snapshots == 4


def test_bootstrap_is_not_fooled_by_noise_but_sees_a_real_edge() -> None:
    rng = np.random.default_rng(1)
    noise = [1e4 * np.cumprod(1 + rng.normal(0, 1e-4, 2000)) for _ in range(4)]
    same = compare_ai_vs_classical(noise[0], noise[1:])
    assert same.verdict.startswith("Not significant yet")
    assert same.ci_low_bp_day < 0 < same.ci_high_bp_day
    edge = 1e4 * np.cumprod(1 + rng.normal(0, 1e-4, 2000) + 2e-5)
    better = compare_ai_vs_classical(edge, noise[1:])
    assert (
        better.verdict.startswith("AI arm ai beat the classical mean") and better.ci_low_bp_day > 0
    )
    short = compare_ai_vs_classical(noise[0][:10], [n[:10] for n in noise[1:]])
    assert short.verdict.startswith("No verdict yet")


def test_ratios_agree_with_empyrical() -> None:
    """empyrical-reloaded (a dev dependency only) as the oracle for Sharpe, Sortino, maximum
    drawdown and Calmar on a random-walk equity curve of 5-second snapshots."""
    empyrical = pytest.importorskip("empyrical")
    rng = np.random.default_rng(4)
    equity = 1e4 * np.cumprod(1 + rng.normal(2e-6, 1e-4, 5000))
    r = period_returns(equity)
    period_s = 5.0
    per_year = SECONDS_PER_YEAR / period_s
    assert sharpe(r, period_s) == pytest.approx(
        empyrical.sharpe_ratio(r, annualization=per_year), rel=1e-9
    )
    assert sortino(r, period_s) == pytest.approx(
        empyrical.sortino_ratio(r, annualization=per_year), rel=1e-9
    )
    # empyrical reports a drawdown as a negative fraction of the peak.
    assert max_drawdown(equity) == pytest.approx(-empyrical.max_drawdown(r), rel=1e-9)
    # Calmar: annualised compound return / drawdown, over the same span (n periods of 5 s).
    short = equity[:200]  # a short span: the annualised return stays finite
    assert calmar(short, span_s=period_s * (len(short) - 1)) == pytest.approx(
        empyrical.calmar_ratio(period_returns(short), annualization=per_year), rel=1e-6
    )
