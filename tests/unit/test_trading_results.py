"""The verdict, its statistics and the report built from a real (embedded) journal.

Hand-computed values: PSR from its formula on a six-return sample, DSR from the numerical
example of Bailey & López de Prado (2014); the verdict sentence for each case; halts and an
incomplete run marked in every format; the most recently *started* run is the default.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.model import ReportFormat, RunReport
from cryptoarena.trading.results.render import render_markdown, render_table
from cryptoarena.trading.results.report import latest_run_id, print_report
from cryptoarena.trading.results.significance import (
    deflated_from_moments,
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    probabilistic_sharpe,
    psr_from_moments,
)
from cryptoarena.trading.results.source import collect
from cryptoarena.trading.results.verdict import Arm, VerdictConfig, decide, fmt_bp
from rich.console import Console

T0 = 1_582_333_200_000_000_000  # 2020-02-22 01:00 UTC
NS = 1_000_000_000


# -- PSR and DSR against hand-computed values -------------------------------------------------


def test_psr_matches_its_formula_computed_by_hand() -> None:
    r = [0.01, -0.005, 0.02, 0.0, 0.015, -0.01]
    # By hand: mean 0.005, deviations ±0.005, ±0.01, ±0.015 → sd = √(700e-6 / 5), SR = 0.005 / sd
    # = 0.42258; symmetric → γ₃ = 0; γ₄ = m₄/m₂² = 1.5;
    # z = 0.42258·√5 / √(1 + 0.125·0.42258²) = 0.93454; Φ(z) = 0.82499.
    sr = 0.005 / math.sqrt(700e-6 / 5)
    assert probabilistic_sharpe(np.array(r)) == pytest.approx(0.82499, abs=1e-5)
    assert psr_from_moments(sr, len(r), 0.0, 1.5) == pytest.approx(0.82499, abs=1e-5)
    # Against a benchmark Sharpe above the sample's, the probability falls below one half.
    assert psr_from_moments(sr, len(r), 0.0, 1.5, sr_star=0.6) < 0.5
    assert probabilistic_sharpe(np.array([0.01, 0.01, 0.01])) is None  # no variance


def test_dsr_reproduces_the_papers_example() -> None:
    # Bailey & López de Prado (2014), §5: annual SR 2.5 over 1,250 days, best of N = 100 trials
    # whose annual SRs vary by 0.5, skewness −3, kurtosis 10: SR₀ ≈ 0.1132 per day, DSR ≈ 0.90.
    days = 250
    sr = 2.5 / math.sqrt(days)
    var = 0.5 / days
    assert expected_max_sharpe(var, 100) == pytest.approx(0.1132, abs=1e-4)
    assert deflated_from_moments(sr, var, 100, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-4)
    # One trial: no deflation (SR₀ = 0, DSR = PSR).
    assert expected_max_sharpe(var, 1) == 0.0


def test_dsr_raises_the_bar_with_more_trials() -> None:
    rng = np.random.default_rng(3)
    returns = {f"s{i}": rng.normal(0.0, 1e-3, 2000) for i in range(20)}
    returns["edge"] = rng.normal(1e-4, 1e-3, 2000)
    few = deflated_sharpe({k: returns[k] for k in ("s0", "s1", "edge")})
    many = deflated_sharpe(returns)
    assert few is not None and many is not None
    assert few.best == many.best == "edge" and many.trials == 21
    assert many.threshold > few.threshold > 0.0
    assert few.dsr is not None and many.dsr is not None and many.dsr < few.dsr


# -- the verdict sentence, one per case --------------------------------------------------------


def _arms(ai_shift: float, *, ai_fills: int = 10, n: int = 3000) -> list[Arm]:
    rng = np.random.default_rng(11)
    classical = [Arm(f"c{i}", "classical", rng.normal(0.0, 1e-4, n), float(i), 5) for i in range(3)]
    if ai_fills == 0:
        ai = Arm("ai", "ai", np.zeros(n), 0.0, 0)
    else:
        ai = Arm("ai", "ai", rng.normal(ai_shift, 1e-4, n), 1.0, ai_fills)
    hold = Arm("hold", "reference", rng.normal(5e-5, 1e-4, n), 9.0, 1)
    return [ai, *classical, hold]


def test_verdict_ahead_behind_inconclusive_and_flat() -> None:
    cfg = VerdictConfig(resamples=500)
    ahead = decide(_arms(3e-5), period_s=5.0, config=cfg)
    assert ahead.case == "ai_ahead" and ahead.ci is not None and ahead.ci[0] > 0
    assert ahead.sentence.startswith("AI arm ai beat the classical mean by")
    assert "excludes zero" in ahead.sentence
    assert "bp/day (basis points of capital per day)" in ahead.sentence

    behind = decide(_arms(-3e-5), period_s=5.0, config=cfg)
    assert behind.case == "ai_behind" and behind.ci is not None and behind.ci[1] < 0
    assert behind.sentence.startswith("AI arm ai trailed the classical mean by")
    assert "excludes zero" in behind.sentence

    unsure = decide(_arms(0.0), period_s=5.0, config=cfg)
    assert unsure.case == "inconclusive" and unsure.ci is not None
    assert unsure.ci[0] < 0 < unsure.ci[1]
    assert unsure.sentence.startswith("Not significant yet: AI arm ai")
    assert "includes zero" in unsure.sentence

    flat = decide(_arms(0.0, ai_fills=0), period_s=5.0, config=cfg)
    assert flat.case == "ai_flat" and flat.ai_traded is False
    assert flat.sentence.startswith("The AI arm did not trade: standing aside")
    assert "the classical mean by" in flat.sentence

    # Never "not significant" next to an interval that excludes zero, in any case.
    for v in (ahead, behind, unsure, flat):
        assert v.ci is not None
        excludes = v.ci[0] > 0 or v.ci[1] < 0
        assert ("excludes zero" in v.sentence) == excludes
        assert ("Not significant" in v.sentence) == (not excludes and v.case != "ai_flat")
    # Reference arms are neither side; every classical strategy and the best one are compared.
    versus = {c.versus for c in ahead.comparisons}
    assert versus == {"classical mean", "c0", "c1", "best classical (c2)"}
    # Every strategy with a Sharpe ratio is a trial; a flat arm has none.
    assert ahead.selection is not None and ahead.selection.trials == 5
    assert flat.selection is not None and flat.selection.trials == 4


def test_flat_ai_against_losing_classical_names_the_margin() -> None:
    n = 2000
    losing = [Arm(f"c{i}", "classical", np.full(n, -2e-5) + 1e-6 * np.sin(np.arange(n) + i),
                  -1.0, 8) for i in range(2)]  # fmt: skip
    v = decide([Arm("ai", "ai", np.zeros(n), 0.0, 0), *losing], period_s=5.0,
               config=VerdictConfig(resamples=300))  # fmt: skip
    assert v.case == "ai_flat" and v.ci is not None and v.ci[0] > 0
    assert v.sentence.startswith(
        "The AI arm did not trade: standing aside beat the classical mean by 3,456 bp/day"
    )  # 2e-5 per 5 s snapshot = 0.2 bp × 17,280 snapshots a day


def test_a_run_shorter_than_a_day_says_its_bp_per_day_is_scaled_up_from_its_minutes() -> None:
    """An 8-minute demo's verdict read "+1,533 bp/day" as if a day had been measured."""
    cfg = VerdictConfig(resamples=200)
    short = decide(_arms(3e-5, n=96), period_s=5.0, config=cfg)  # 96 × 5 s: 8 minutes
    assert short.case != "too_little_data" and short.periods * 5.0 == 480
    assert short.sentence.endswith(
        " The run covers 8 minutes of returns, less than a day: every bp/day here is scaled up "
        "from those 8 minutes, not measured over a day."
    )
    flat = decide(_arms(0.0, ai_fills=0, n=96), period_s=5.0, config=cfg)
    assert flat.case == "ai_flat" and "scaled up from those 8 minutes" in flat.sentence
    hours = decide(_arms(3e-5, n=3000), period_s=5.0, config=cfg)  # 250 minutes
    assert "scaled up from those 250 minutes" in hours.sentence
    day = decide(_arms(3e-5, n=1440), period_s=60.0, config=cfg)  # a whole day of minutes
    assert day.case != "too_little_data" and "scaled" not in day.sentence


def test_no_verdict_without_data_or_arms() -> None:
    short = decide(_arms(1e-4, n=10), period_s=5.0, config=VerdictConfig(resamples=100))
    assert short.case == "too_little_data" and short.ci is None
    no_ai = [a for a in _arms(0.0) if a.family != "ai"]
    assert decide(no_ai, period_s=5.0).case == "no_ai_arm"
    no_classical = [a for a in _arms(0.0) if a.family != "classical"]
    assert decide(no_classical, period_s=5.0).case == "no_classical_arm"


def test_the_bootstrap_is_seeded() -> None:
    a = decide(_arms(1e-5), period_s=5.0, config=VerdictConfig(resamples=300, seed=5))
    b = decide(_arms(1e-5), period_s=5.0, config=VerdictConfig(resamples=300, seed=5))
    assert a.ci == b.ci and a.block_length == b.block_length and a.block_length is not None


# -- reports from a real journal ---------------------------------------------------------------


def _settings(tmp: Path) -> Settings:
    return Settings(mongo={"embedded_dir": tmp / "journal"}, home=tmp)  # type: ignore[arg-type]


STRATEGIES = [("ai", "ai_forecaster", "ai"), ("sma", "sma_cross", "classical"),
              ("rsi", "rsi_reversion", "classical"), ("hold", "buy_and_hold", "reference")]  # fmt: skip


def _record_run(
    settings: Settings,
    run_id: str,
    t0: int,
    *,
    n: int = 400,
    stop: bool = True,
    started: dict[str, object] | None = None,
    stopped: dict[str, object] | None = None,
    halt_event: bool = True,
) -> None:
    """A small run journaled the way the worker journals one (started, equity snapshots every
    5 s, a halt, predictions, stopped), on a simulated clock at market time ``t0``."""
    clock = SimClock(t0)
    rng = np.random.default_rng(len(run_id))
    with Journal.open(settings, run_id=run_id, clock=clock) as j:
        j.record("runs", {"event": "started", "incarnation": "i1",
                          "strategies": [{"name": s, "kind": k, "family": f} for s, k, f in STRATEGIES],
                          "arena": {"capital": 10_000.0}, **(started or {})})  # fmt: skip
        equity = {s: 10_000.0 for s, _, _ in STRATEGIES}
        for i in range(n):
            ts = t0 + i * 5 * NS
            clock.advance_to(ts)
            for name, _, _ in STRATEGIES:
                if name != "ai" and not (name == "sma" and i > n // 2):
                    equity[name] *= 1 + rng.normal(-1e-5, 1e-4)
                j.record("equity", {"strategy": name, "ts_ns": ts, "equity": equity[name],
                                    "qty": 0.0 if name == "ai" else 0.1, "fees": 1.5,
                                    "realised": 0.0, "unrealised": 0.0,
                                    "fills": 0 if name == "ai" else 4, "round_trips": 2,
                                    "wins": 1, "exact": {"capital": "10000",
                                                         "gross_profit": "3", "gross_loss": "1"}})  # fmt: skip
            if i == n // 2 and halt_event:
                j.record("risk_events", {"type": "halt", "strategy": "sma",
                                         "reason": "daily loss 2.1% > 2%", "ts_ns": ts})  # fmt: skip
            if i % 3 == 0:
                base = 9_700.0 + i
                j.record("predictions", {"ts_ns": ts, "base_price": base,
                                         "predicted_price": base * (1 + 1e-4),
                                         "realised_price": base * (1 + (2e-4 if i % 2 else -1e-4)),
                                         "model_version": "3", "horizon_s": 15})  # fmt: skip
        if stop:
            j.record("runs", stopped or {"event": "stopped", "stopped_by": "feed ended",
                              "risk": {"halted": {"sma": "daily loss 2.1% > 2%"}}})  # fmt: skip
        assert j.sync(60)


def test_default_report_is_the_most_recently_started_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #9 item 12: two backtests of the same day; the second replays *earlier* market
    time. Ordering by market time picked the first; the one started last must win."""
    settings = _settings(tmp_path)
    _record_run(settings, "first", T0 + 3600 * NS, n=40)
    time.sleep(0.01)
    _record_run(settings, "second", T0, n=40)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        assert latest_run_id(journal) == "second"
    print_report(settings, None, ReportFormat.json)
    assert json.loads(capsys.readouterr().out)["run_id"] == "second"


def test_report_marks_halts_incomplete_runs_and_serialises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    _record_run(settings, "crashed", T0, stop=False)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        data = collect(journal, "crashed", verdict=VerdictConfig(resamples=200))
    report = data.report
    assert report.complete is False and report.ended_by is None
    assert any("INCOMPLETE" in n for n in report.notes)
    rows = {r.name: r for r in report.strategies}
    assert set(rows) == {"ai", "sma", "rsi", "hold"}
    assert rows["sma"].halted is not None and rows["sma"].halted.reason == "daily loss 2.1% > 2%"
    assert rows["sma"].halted.ts_ns == T0 + 200 * 5 * NS
    assert rows["rsi"].halted is None and rows["ai"].fills == 0
    assert report.verdict.case == "ai_flat"
    assert report.verdict.sentence.startswith("The AI arm did not trade: standing aside")
    (q,) = report.forecasts
    assert q.model_version == "3" and q.predictions == 134 and q.horizon_s == 15
    assert q.directional_accuracy == pytest.approx(67 / 134)  # up-forecasts right on up-moves
    assert q.persistence_mae_bps == pytest.approx((67 * 2 + 67 * 1) / 134, rel=1e-3)

    # JSON: the fields scripts and the dashboard rely on, and it round-trips through the model.
    print_report(settings, "crashed", ReportFormat.json)
    doc = json.loads(capsys.readouterr().out)
    assert {"run_id", "complete", "ended_by", "strategies", "verdict"} <= set(doc)
    assert doc["complete"] is False and doc["ended_by"] is None
    sma = next(s for s in doc["strategies"] if s["name"] == "sma")
    assert {"name", "family", "pnl", "fees", "fills", "halted"} <= set(sma)
    assert sma["halted"]["reason"] == "daily loss 2.1% > 2%"
    assert isinstance(doc["verdict"]["sentence"], str) and len(doc["verdict"]["ci"]) == 2
    assert RunReport.model_validate(doc).run_id == "crashed"

    # Table and Markdown say the same: incomplete, halted with reason and time, the verdict.
    console = Console(record=True, width=200)
    render_table(console, report)
    text = console.export_text()
    assert (
        "INCOMPLETE" in text
        and "HALTED sma: daily loss 2.1% > 2% (2020-02-22 01:16:40 UTC)" in text
    )
    assert text.count("verdict:") == 1 and "The AI arm did not trade" in text
    md = render_markdown(report, tmp_path / "reports" / "crashed", data.curves)
    body = md.read_text()
    assert (
        "INCOMPLETE" in body
        and "**HALTED at the daily loss limit**: daily loss 2.1% > 2% (2020-02-22 01:16:40 UTC)"
        in body
    )
    for png in ("equity.png", "drawdowns.png", "comparison.png"):
        assert f"]({png})" in body
        assert (md.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_that_stopped_without_saying_if_it_completed_is_unknown(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _record_run(settings, "old", T0, n=60)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        report = collect(journal, "old", verdict=VerdictConfig(resamples=100)).report
        with pytest.raises(LookupError, match="no run 'nope'"):
            collect(journal, "nope")
    assert report.complete is None and report.ended_by == "feed ended"
    assert any("completeness unknown" in n for n in report.notes)


def test_bootstrap_memory_does_not_grow_with_resamples_on_a_30_day_run() -> None:
    """Issue #15 item 2: 30 days of 5-second snapshots (518,400 periods). The old bootstrap
    built a resamples × n index array (100 resamples here: 0.4 GB of indices, and as much
    again for the gathered values; 2,000 resamples: 8 GB). Bound: 128 MiB of Python/numpy
    allocations (tracemalloc), inputs included."""
    import tracemalloc

    from cryptoarena.trading.results.verdict import compare_ai_vs_classical

    n = 30 * 86_400 // 5
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        curves = [1e4 * np.cumprod(1 + rng.normal(0, 1e-4, n + 1)) for _ in range(4)]
        result = compare_ai_vs_classical(curves[0], curves[1:], resamples=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.periods == n and result.ci_low_bp_day < result.ci_high_bp_day
    assert peak < 128 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_bootstrap_means_equal_arch_resampled_means() -> None:
    """The bincount shortcut gives the same draws as arch's own ``apply`` with the same seed."""
    from arch.bootstrap import MovingBlockBootstrap
    from cryptoarena.trading.results.significance import bootstrap_column_means

    x = np.random.default_rng(2).normal(0, 1, (500, 3))
    ours = bootstrap_column_means(x, block=7, resamples=50, seed=9)
    bs = MovingBlockBootstrap(7, x, seed=np.random.default_rng(9))
    theirs = bs.apply(lambda a: a.mean(axis=0), reps=50)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_t(4, n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


@pytest.mark.parametrize("n", [8, 9, 40, 500, 17_280])
@pytest.mark.parametrize("phi", [0.0, 0.3, 0.9, -0.5])
def test_politis_white_equals_arch_optimal_block_length(n: int, phi: float) -> None:
    """The numpy Politis–White is arch's ``optimal_block_length`` (circular), to the rounding,
    on white noise, persistent and alternating series of every length the verdict meets."""
    from arch.bootstrap import optimal_block_length
    from cryptoarena.trading.results.significance import politis_white_circular

    x = _ar1(n, phi, seed=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        theirs = float(optimal_block_length(x)["circular"].iloc[0])
        ours = politis_white_circular(x)
    assert np.isfinite(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_block_length_is_arch_s_on_several_columns_and_degenerate_ones() -> None:
    """Several columns take the longest; constant and near-constant columns are handled as the
    arch-based code handled them (left out, or their length kept when finite)."""
    import math
    import warnings

    from arch.bootstrap import optimal_block_length
    from cryptoarena.trading.results.significance import block_length

    n = 3000
    cols = [_ar1(n, 0.8, 1), _ar1(n, 0.1, 2), np.zeros(n), np.r_[np.zeros(n - 1), 1e-300]]
    x = np.column_stack(cols)
    live = x[:, np.std(x, axis=0) > 0.0]
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lengths = optimal_block_length(live)["circular"].to_numpy(dtype=np.float64)
    lengths = lengths[np.isfinite(lengths)]
    expected = min(max(1, math.ceil(float(lengths.max()))), int(n * 0.25))
    assert expected > 1  # the persistent column sets it
    assert block_length(x) == expected
    assert block_length(np.zeros((100, 2))) == 1 and block_length(np.ones(5)) == 1


REPORT_IN_A_FRESH_PROCESS = """
import json, sys
from cryptoarena.config import Settings
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.results.source import build_report
settings = Settings(mongo={"embedded_dir": sys.argv[1]}, home=sys.argv[2])
with Journal.open(settings, run_id="reader", readonly=True) as journal:
    report = build_report(journal, "r1", forecasts=False)
assert report.verdict is not None and report.verdict.ci is not None, report.verdict
heavy = {"arch", "pandas", "pyarrow", "scipy", "statsmodels", "matplotlib"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


def test_a_report_with_its_verdict_imports_no_pandas_scipy_or_arch(tmp_path: Path) -> None:
    """Issue #19: the dashboard computes the leaderboard's report in its own process; arch (with
    pandas and statsmodels), scipy.stats and the lake's pandas/pyarrow stayed resident there
    (~200 MB of its 365 MB after a day)."""
    import subprocess
    import sys

    settings = _settings(tmp_path)
    _record_run(settings, "r1", T0, n=400)
    done = subprocess.run(
        [sys.executable, "-c", REPORT_IN_A_FRESH_PROCESS, str(tmp_path / "journal"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moments_equal_scipy_s_skewness_and_kurtosis(seed: int) -> None:
    """Computed without scipy (the PSR's and DSR's normal distribution is the standard
    library's: the hand-computed PSR and the paper's DSR above pin it)."""
    from scipy.stats import kurtosis, skew

    r = np.random.default_rng(seed).standard_t(3 + seed, 5000) * 1e-4 + 2e-6
    m = moments(r)
    assert m is not None
    assert m.skew == pytest.approx(float(skew(r)), rel=1e-10)
    assert m.kurtosis == pytest.approx(float(kurtosis(r, fisher=False)), rel=1e-10)


def test_long_runs_read_the_per_minute_read_model(tmp_path: Path) -> None:
    """When the journal keeps the ``equity_minute`` read model, a run longer than the raw limit
    is reported from it: one point per minute, and the report says so."""
    from cryptoarena.trading.results import source

    if not source.minute_model_available():
        pytest.skip("this journal keeps no per-minute equity read model")
    settings = _settings(tmp_path)
    _record_run(settings, "long", T0, n=400)  # 400 snapshots of 5 s: 34 minutes
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        raw = collect(journal, "long", verdict=VerdictConfig(resamples=100), per_minute=False)
        minute = collect(journal, "long", verdict=VerdictConfig(resamples=100), per_minute=True)
    assert len(raw.curves["rsi"].ts_ns) == 400
    assert len(minute.curves["rsi"].ts_ns) == 34
    assert np.all(np.diff(minute.curves["rsi"].ts_ns)[:-1] == 60 * NS)  # the last minute: partial
    assert any("equity_minute" in n for n in minute.report.notes)
    # Final figures come from the latest snapshot either way.
    assert {r.name: r.pnl for r in raw.report.strategies} == {
        r.name: r.pnl for r in minute.report.strategies
    }


def test_engine_stop_record_crash_and_in_sample_are_reported(tmp_path: Path) -> None:
    """The engine's newer records: ``ended_by``/``complete``/``error`` and ``halted`` with its
    time in the stop record (no risk event needed), ``in_sample`` in the start record."""
    settings = _settings(tmp_path)
    halted_at = T0 + 100 * 5 * NS
    _record_run(
        settings, "newer", T0, n=200, halt_event=False,
        started={"in_sample": True, "model_valid_until_ns": T0 + 3600 * NS},
        stopped={"event": "stopped", "stopped_by": "crash", "ended_by": "crash",
                 "complete": False, "error": "OverflowError: (34, 'Result too large')",
                 "halted": {"sma": {"reason": "drawdown 5% > 4%", "ts_ns": halted_at}}},
    )  # fmt: skip
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        data = collect(journal, "newer", verdict=VerdictConfig(resamples=100))
    report = data.report
    assert report.complete is False and report.ended_by == "crash"
    assert report.error == "OverflowError: (34, 'Result too large')"
    assert report.in_sample is True and report.notes[0].startswith("IN-SAMPLE")
    sma = next(r for r in report.strategies if r.name == "sma")
    assert sma.halted is not None and sma.halted.ts_ns == halted_at
    console = Console(record=True, width=200)
    render_table(console, report)
    text = console.export_text()
    assert "INCOMPLETE (ended by: crash)" in text and "IN-SAMPLE" in text
    assert "crashed: OverflowError" in text
    body = render_markdown(report, tmp_path / "md").read_text()
    assert "INCOMPLETE" in body and "IN-SAMPLE" in body and "drawdown 5% > 4%" in body


def test_report_command_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptoarena.cli import app
    from cryptoarena.config import get_settings
    from typer.testing import CliRunner

    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        empty = runner.invoke(app, ["report"])
        assert empty.exit_code == 1 and "the journal has no runs yet" in empty.output
        _record_run(_settings(tmp_path), "r1", T0, n=40)
        missing = runner.invoke(app, ["report", "--run-id", "nope"])
        assert missing.exit_code == 2 and "no run 'nope'" in missing.output
        unwritable = tmp_path / "file"
        unwritable.write_text("")
        bad = runner.invoke(app, ["report", "--format", "markdown", "--out", str(unwritable)])
        assert bad.exit_code == 2 and "cannot write the report" in bad.output
        assert "Traceback" not in bad.output
        ok = runner.invoke(app, ["report", "--format", "markdown"])
        assert ok.exit_code == 0 and (tmp_path / "reports" / "r1" / "report.md").exists()
    finally:
        get_settings.cache_clear()


def test_a_resumed_run_without_a_new_stop_record_is_incomplete(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _record_run(settings, "again", T0, n=40)  # first incarnation: stopped
    time.sleep(0.01)
    _record_run(settings, "again", T0 + 200 * NS, n=40, stop=False)  # resumed, no stop yet
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        report = collect(journal, "again", verdict=VerdictConfig(resamples=100)).report
    assert report.incarnations == 2
    assert report.complete is False and report.ended_by is None
    assert any("no stop record after the last start" in n for n in report.notes)


# -- issue #20 item 7: the verdict and ranking do not read noise as results ------------------


def test_every_ai_arm_has_its_interval_and_the_picked_headline_is_adjusted() -> None:
    """Two AI arms: the headline (best by P&L) says it was picked from two, its interval is
    widened to 97.5 % (Holm's first step), the other arm's own interval is in the sentence."""
    rng = np.random.default_rng(21)
    n = 3000
    classical = [Arm(f"c{i}", "classical", rng.normal(0.0, 1e-4, n), 0.0, 5) for i in range(3)]
    taker = Arm("ai_taker", "ai", rng.normal(1e-5, 1e-4, n), 5.0, 40)
    maker = Arm("ai_maker", "ai", rng.normal(-1e-5, 1e-4, n), -3.0, 12)
    v = decide([taker, maker, *classical], period_s=5.0, config=VerdictConfig(resamples=800))
    assert v.ai == "ai_taker" and v.ai_arms == 2
    assert v.headline_confidence == pytest.approx(0.975)
    assert "(best of 2 AI arms by P&L)" in v.sentence
    assert "97.5 % CI" in v.sentence and "widened for picking 1 of 2 arms (Holm)" in v.sentence
    # Each arm against the classical mean keeps its own 95 % interval; the headline's is wider.
    own = {c.ai: c for c in v.comparisons if c.versus == "classical mean"}
    assert set(own) == {"ai_taker", "ai_maker"}
    assert v.ci is not None
    assert v.ci[0] < own["ai_taker"].ci[0] and v.ci[1] > own["ai_taker"].ci[1]
    assert "Other AI arm against the classical mean: ai_maker" in v.sentence
    lo, hi = own["ai_maker"].ci
    assert f"95 % CI [{fmt_bp(lo)}, {fmt_bp(hi)}] bp/day" in v.sentence
    # Holm never makes a p-value smaller; the smaller raw p is doubled.
    for c in own.values():
        assert c.p_value is not None and c.p_holm is not None and c.p_holm >= c.p_value
    smallest = min(own.values(), key=lambda c: c.p_value or 1.0)
    assert smallest.p_holm == pytest.approx(min(1.0, 2 * (smallest.p_value or 0.0)))


def test_holm_adjusts_step_down() -> None:
    from cryptoarena.trading.results.significance import holm

    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adj == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})


def test_inactive_tied_and_halted_at_limit_strategies_are_shown_as_such(tmp_path: Path) -> None:
    """A strategy with no fills (P&L 0 in a losing market) is not ranked first: it has no rank;
    equal P&Ls share a rank; a strategy halted by its daily-loss limit is marked at the limit."""
    settings = _settings(tmp_path)
    _record_run(settings, "ranks", T0, n=80)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        report = collect(journal, "ranks", verdict=VerdictConfig(resamples=100)).report
    rows = {r.name: r for r in report.strategies}
    assert rows["ai"].fills == 0 and rows["ai"].pnl == 0.0
    assert max(r.pnl for r in report.strategies) == 0.0  # the idle arm has the best P&L...
    assert rows["ai"].rank is None and rows["ai"].inactive  # ...and is not ranked
    assert report.strategies[0].rank == 1 and report.strategies[0].name != "ai"
    assert report.strategies[-1].name == "ai"
    assert rows["sma"].at_limit == "daily loss" and rows["rsi"].at_limit is None
    console = Console(record=True, width=220)
    render_table(console, report)
    text = console.export_text()
    assert "inactive (no fills)" in text and "HALTED at the daily loss limit" in text

    from cryptoarena.trading.results.source import rank

    tied = rank([r.model_copy(update={"pnl": -5.001}) for r in report.strategies])
    active = [r for r in tied if not r.inactive]
    assert all(r.rank == 1 and r.tied for r in active) and len(active) == 3


def test_sharpe_is_per_day_from_daily_returns_never_annualised_from_snapshots() -> None:
    from cryptoarena.trading.results.stats import curve_stats, daily_returns

    rng = np.random.default_rng(8)
    step = 60 * NS
    # One day of 1-minute snapshots: the old report annualised this to a large number.
    ts = T0 + np.arange(1440) * step
    eq = 1e4 * np.cumprod(1 + rng.normal(-2e-5, 1e-4, len(ts)))
    one_day = curve_stats(ts, eq)
    assert one_day.sharpe_daily is None and one_day.sortino_daily is None
    assert one_day.calmar is None  # annualising a day's return is not shown either
    # Five days from 01:00 touch six UTC days: five returns from one day's close to the next.
    ts5 = T0 + np.arange(5 * 1440) * step
    eq5 = 1e4 * np.cumprod(1 + rng.normal(0, 1e-4, len(ts5)))
    five = curve_stats(ts5, eq5)
    day = ts5 // (86_400 * NS)
    closes = np.array([eq5[day == d][-1] for d in np.unique(day)])
    daily = np.diff(closes) / closes[:-1]
    np.testing.assert_allclose(daily_returns(ts5, eq5), daily, rtol=1e-12)
    assert five.days == len(daily) == 5
    assert five.sharpe_daily == pytest.approx(daily.mean() / daily.std(ddof=1), rel=1e-12)


def test_one_unit_for_the_verdict_in_every_format(tmp_path: Path) -> None:
    """bp/day, said in words, in the sentence, the table and the Markdown; no per-period or
    per-snapshot unit anywhere."""
    settings = _settings(tmp_path)
    _record_run(settings, "unit", T0, n=120)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        data = collect(journal, "unit", verdict=VerdictConfig(resamples=100))
    report = data.report
    assert report.verdict.unit == "bp/day"
    console = Console(record=True, width=220)
    render_table(console, report)
    body = render_markdown(report, tmp_path / "md", None).read_text()
    for text in (report.verdict.sentence, console.export_text(), body):
        assert "bp/day" in text and "basis points of capital per day" in text
        assert "per period" not in text and "per snapshot" not in text and "bps per" not in text


def test_every_report_says_which_queue_model_filled_the_quotes(tmp_path: Path) -> None:
    """Issue #20 item 1: the run record's queue model and taker rule (with the recorded book
    the run replayed) are printed in the report; runs recorded before either say so."""
    settings = _settings(tmp_path)
    arena = {"capital": 10_000.0, "queue_model": "l3"}
    fills = {"queue_model": "l3", "taker_fills": "book", "book": "bitstamp day (L3)"}
    _record_run(settings, "queued", T0, n=40, started={"arena": arena, "fills": fills})
    _record_run(settings, "older", T0, n=40)
    with Journal.open(settings, run_id="reader", readonly=True) as journal:
        queued = collect(journal, "queued", verdict=VerdictConfig(resamples=100)).report
        older = collect(journal, "older", verdict=VerdictConfig(resamples=100)).report
    console = Console(record=True, width=200)
    render_table(console, queued)
    text = console.export_text()
    assert "queue model l3: " in text
    assert "taker fills book: walk the recorded book (bitstamp day (L3))" in text
    assert any(n.startswith("queue model none (recorded before queue models)") for n in older.notes)
    assert any(n.startswith("taker fills tape (recorded before book replays)") for n in older.notes)


def test_the_comparison_plot_has_a_legend_for_its_colours() -> None:
    """comparison.png coloured bars red or grey with no legend saying what either meant."""
    from cryptoarena.trading.results.model import Comparison
    from cryptoarena.trading.results.plots import comparison_legend

    def comp(lo: float, hi: float) -> Comparison:
        return Comparison(ai="ai", versus="x", mean_diff_bp_day=(lo + hi) / 2, ci=(lo, hi),
                          significant=lo > 0 or hi < 0)  # fmt: skip

    labels = [p.get_label() for p in comparison_legend([comp(-3, -1), comp(-1, 2), comp(-2, 1)])]
    assert len(labels) == 2 and "below 0" in labels[0] and "spans 0" in labels[1]
