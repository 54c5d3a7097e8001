"""Sweep grids: parsing, validation (one clear error), points, and the best point's DSR."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.trading.sweeps.backtest import PointResult, point_settings
from cryptoarena.trading.sweeps.grid import (
    GridPoint,
    Span,
    SweepError,
    base_arena,
    parse_assignment,
    parse_span,
    parse_spec,
    parse_value,
    points,
)
from cryptoarena.trading.sweeps.table import render_csv, render_markdown, summarise
from scipy.stats import kurtosis, norm, skew

ROOT = Path(__file__).resolve().parents[2]


def spec(**extra: object) -> dict[str, object]:
    return {"kind": "sma_cross", "params": {"bar_size": "5s"}, **extra}


def test_points_are_the_product_of_lists_and_spans_in_a_stable_order() -> None:
    s = parse_spec(
        spec(
            grid={"fast": [3, 5], "slow": [10, 20, 30]}, span=[{"minutes": 5}, {"start_minute": 5}]
        )
    )
    grid, skipped = points(s)
    assert skipped == []
    assert len(grid) == 2 * 3 * 2
    assert [p.point_id for p in grid[:3]] == ["p000", "p001", "p002"]
    first, second = grid[0], grid[1]
    assert first.params == {"bar_size": "5s", "fast": 3, "slow": 10}
    assert first.swept == {"fast": 3, "slow": 10}
    assert (first.span, second.span) == (Span(minutes=5), Span(start_minute=5))
    assert second.params == first.params
    assert len({(tuple(p.params.items()), p.span) for p in grid}) == len(grid)


def test_example_file_is_valid() -> None:
    from cryptoarena.trading.sweeps.grid import load_spec

    s = parse_spec(load_spec(ROOT / "configs" / "sweep.example.toml"))
    grid, _ = points(s)
    assert len(grid) == 3 * 3 * 2


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"kind": "nope"}, "unknown strategy kind 'nope'"),
        ({"kind": "ai_forecast"}, "needs a forecaster"),
        (spec(grid={"fast": []}), "grid.fast is an empty list"),
        (spec(grid={"fast": 3}), "grid.fast"),
        (spec(grid={"fast": [3, 3]}), "repeats a value"),
        (spec(typo=1), "typo"),
        (spec(grid={"bar_size": ["1s"]}), "both fixed (params) and swept"),
        (spec(span=[{"minutes": 0}]), "span.0.minutes"),
        (spec(span=[{"minutes": 5}, {"minutes": 5}]), "the same span is listed twice"),
        (spec(span=[]), "at least one span"),
    ],
)
def test_bad_grids_get_one_clear_line(data: dict[str, object], needle: str) -> None:
    with pytest.raises(SweepError) as info:
        points(parse_spec(data, "my.toml"))
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_a_point_the_strategy_refuses_fails_the_grid_or_is_skipped() -> None:
    data = spec(grid={"fast": [5, 20], "slow": [10, 30]})
    with pytest.raises(SweepError, match=r"refuses the point fast=20 slow=10: .*must be shorter"):
        points(parse_spec(data))
    grid, skipped = points(parse_spec({**data, "skip_invalid": True}))
    assert skipped == ["fast=20 slow=10"]
    assert [p.swept for p in grid] == [
        {"fast": 5, "slow": 10},
        {"fast": 5, "slow": 30},
        {"fast": 20, "slow": 30},
    ]


def test_too_many_points_is_refused_before_anything_runs() -> None:
    s = parse_spec(spec(grid={"fast": list(range(1, 101)), "slow": list(range(200, 300))}))
    with pytest.raises(SweepError, match="10,000 points, more than the limit of 100"):
        points(s, limit=100)


def test_command_line_values() -> None:
    assert parse_value("5") == 5
    assert parse_value("2.5") == 2.5
    assert parse_value("true") is True
    assert parse_value("1m") == "1m"
    assert parse_assignment("fast=3, 5,8", many=True) == ("fast", [3, 5, 8])
    assert parse_assignment("bar_size=5s", many=False) == ("bar_size", "5s")
    assert parse_span("30:60") == {"start_minute": 30.0, "minutes": 60.0}
    assert parse_span("30:") == {"start_minute": 30.0, "minutes": None}
    for bad in ("fast", "=1", "fast="):
        with pytest.raises(SweepError, match="expected key="):
            parse_assignment(bad, many=True)
    with pytest.raises(SweepError, match="expected a span START:MINUTES"):
        parse_span("a:b")


def test_points_keep_the_arena_files_money_and_limits(tmp_path: Path) -> None:
    arena = tmp_path / "arena.toml"
    arena.write_text(
        "[arena]\ncapital = 2500.0\nfee_rate = 0.001\n[risk.strategy]\nmax_orders_per_minute = 3\n"
        '[[strategy]]\nname = "x"\nkind = "buy_and_hold"\n'
    )
    from cryptoarena.trading.sweeps.grid import point_config

    base = base_arena(parse_spec(spec(arena=str(arena))))
    config = point_config(base, "sma_cross", {"fast": 3, "slow": 10}, "p007")
    assert config.arena.capital == 2500.0 and config.arena.fee_rate == 0.001
    assert config.risk.strategy.max_orders_per_minute == 3
    assert [(s.name, s.kind) for s in config.strategies] == [("p007", "sma_cross")]
    with pytest.raises(SweepError, match="arena config not found"):
        base_arena(parse_spec(spec(arena=str(tmp_path / "missing.toml"))))


def test_each_point_journals_in_its_own_folder(tmp_path: Path) -> None:
    from cryptoarena.config import Settings

    settings = Settings(mongo={"uri": "mongodb://db:27017"})  # type: ignore[arg-type]
    a = point_settings(settings, tmp_path / "p000")
    b = point_settings(settings, tmp_path / "p001")
    assert a.mongo.uri is None  # never the production database
    assert a.mongo.embedded_dir != b.mongo.embedded_dir
    assert a.mongo.embedded_dir.is_relative_to(tmp_path / "p000")
    assert a.trading.kill_file.is_relative_to(tmp_path / "p000")


def _result(i: int, returns: np.ndarray, **kw: object) -> PointResult:
    point = GridPoint(point_id=f"p{i:03d}", params={"fast": i}, swept={"fast": i}, span=Span())
    return PointResult(point=point, run_id=f"r{i}", pnl=float(returns.sum()), returns=returns, **kw)  # type: ignore[arg-type]


def _dsr_by_hand(returns: dict[str, np.ndarray]) -> tuple[str, float]:
    """Bailey & López de Prado (2014), written out independently of the project's code."""
    srs = {k: float(np.mean(r) / np.std(r, ddof=1)) for k, r in returns.items()}
    best = max(srs, key=lambda k: srs[k])
    n_trials = len(srs)
    v = float(np.var(list(srs.values()), ddof=1))
    gamma = 0.5772156649015329
    sr0 = math.sqrt(v) * (
        (1 - gamma) * norm.ppf(1 - 1 / n_trials) + gamma * norm.ppf(1 - 1 / (n_trials * math.e))
    )
    r = returns[best]
    sr, g3, g4 = srs[best], float(skew(r)), float(kurtosis(r, fisher=False))
    z = (sr - sr0) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return best, float(norm.cdf(z))


def test_best_point_and_its_deflated_sharpe_ratio() -> None:
    rng = np.random.default_rng(3)
    returns = {f"p{i:03d}": rng.normal(0.0002 * i, 0.001, 500) for i in range(6)}
    results = [_result(i, returns[f"p{i:03d}"]) for i in range(6)]
    flat = _result(6, np.zeros(500))  # never traded: no Sharpe ratio, not a trial
    broken = PointResult(point=_result(7, np.zeros(0)).point, run_id="r7", error="boom")
    summary = summarise("s", "sma_cross", [*results, flat, broken])
    best, dsr = _dsr_by_hand(returns)
    assert summary.best == best == "p005"
    assert summary.trials == 6 and summary.points == 8 and summary.failed == 1
    assert summary.dsr == pytest.approx(dsr, rel=1e-9)
    assert f"deflated Sharpe ratio {dsr:.3f} for 6 points" in summary.sentence
    assert [r["point"] for r in summary.rows][-1] == "p007"  # the failed point last
    table = render_markdown(summary)
    assert "| p005 |" in table and "best" in table and "boom" in table
    assert render_csv(summary).splitlines()[0].startswith("point,fast,start_minute")
