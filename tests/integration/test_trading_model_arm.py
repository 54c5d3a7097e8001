"""The AI arm in a backtest: the champion in-process when no model server runs (issue #9 item
11), and out of sample by construction (issue #10 item 3)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.config import Settings
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine.session import (
    ExchangeKind,
    SessionError,
    SessionOptions,
    Source,
    run_session,
)
from cryptoarena.trading.journal import Journal

pytestmark = pytest.mark.slow

MODEL = "btcusdt-15s"
CONFIG = parse_arena_config(
    {
        "arena": {"fee_rate": 0.0},
        "strategy": [
            {"name": "ai", "kind": "ai_forecast", "params": {"margin_bps": 0}},
            {"name": "hold", "kind": "buy_and_hold"},
        ],
    }
)


@pytest.fixture(scope="module")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real MLflow registry with a tiny LSTM @champion trained on 00:00-02:00 of the day."""
    import torch
    from cryptoarena.model.datasets import load_bars
    from cryptoarena.model.train import train_tiny

    torch.set_num_threads(1)
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    train_tiny(uri, MODEL, load_bars(max_bars=7200), promote=True)
    return uri


def _settings(tmp: Path, uri: str) -> Settings:
    return Settings(
        mongo={"embedded_dir": tmp / "journal"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": uri},  # type: ignore[arg-type]
        serving={"url": "http://127.0.0.1:9", "model_name": MODEL},  # type: ignore[arg-type]
    )


def _options(run_id: str, start: float, minutes: float, **kw: Any) -> SessionOptions:
    return SessionOptions(source=Source.REPLAY, exchange=ExchangeKind.PAPER, run_id=run_id,
                          start_minute=start, minutes=minutes, speed=None, **kw)  # fmt: skip


def _runs(settings: Settings, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    with Journal.open(settings, run_id=run_id) as journal:
        started = journal.find("runs", {"run_id": run_id, "event": "started"})[0]
        orders = journal.find("orders", {"run_id": run_id})
        preds = journal.count("predictions", {"run_id": run_id})
    return started, orders, preds


async def test_backtest_without_a_server_trades_the_champion_out_of_sample(
    tmp_path: Path, tiny_registry: str
) -> None:
    """No model server: the AI arm used to stand aside silently (0 predictions). Now the
    champion runs in-process, and every strategy trades only after its validation end."""
    settings = _settings(tmp_path, tiny_registry)
    result = await run_session(settings, CONFIG, _options("oos", 60, 60), handle_signals=False)
    started, orders, preds = _runs(settings, "oos")
    assert "in-process" in started["forecasts"] and preds > 0
    until = started["model_valid_until_ns"]
    assert started["in_sample"] is False and started["trade_from_ns"] == until
    t0 = int(started["ts_ns"])  # the replay starts before the validation end
    assert t0 < until
    assert orders and all(o["ts_ns"] > until for o in orders)
    assert {o["strategy"] for o in orders} == {"ai", "hold"} and result.fills > 0


async def test_allow_in_sample_trades_from_the_start_and_marks_the_run(
    tmp_path: Path, tiny_registry: str
) -> None:
    settings = _settings(tmp_path, tiny_registry)
    options = _options("ins", 60, 20, allow_in_sample=True)
    await run_session(settings, CONFIG, options, handle_signals=False)
    started, orders, _ = _runs(settings, "ins")
    assert started["in_sample"] is True
    assert min(o["ts_ns"] for o in orders) < started["model_valid_until_ns"]
    # Without the flag, a replay that ends before the validation end is refused, clearly.
    with pytest.raises(SessionError, match="before the model's validation end"):
        await run_session(settings, CONFIG, _options("ins2", 60, 20), handle_signals=False)


async def test_no_server_and_no_champion_says_so_once_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}")
    with caplog.at_level(logging.WARNING):
        await run_session(settings, CONFIG, _options("blind", 60, 3), handle_signals=False)
    loud = [r for r in caplog.records if "NO MODEL for the AI arm" in r.getMessage()]
    assert len(loud) == 1 and "@champion" in loud[0].getMessage()
    started, _, preds = _runs(settings, "blind")
    assert started["forecasts"].startswith("no model") and preds == 0


async def test_batched_forecasts_equal_the_lock_step_ones(
    tmp_path: Path, tiny_registry: str
) -> None:
    """Issue #12 item 1: a backtest's AI forecasts computed for the whole replay in large
    batches before it starts equal the lock-step ones (one in-process inference per bar), and
    the AI arm decides the same."""
    import numpy as np
    from cryptoarena.model.registry import load_forecaster
    from cryptoarena.trading.forecasts.local import (
        LocalForecasts,
        PrecomputedForecasts,
        replay_bars,
    )

    from tests.integration.trading_kit import journal_settings, run_worker, tape_slice

    forecaster = load_forecaster(f"models:/{MODEL}@champion", tracking_uri=tiny_registry)
    trades = tape_slice(7800, 8)
    config = parse_arena_config(
        {"arena": {"fee_rate": 0.0},
         "strategy": [{"name": "ai", "kind": "ai_forecast", "params": {"margin_bps": 0}}]}
    )  # fmt: skip
    batched = PrecomputedForecasts(forecaster, replay_bars(trades), window=256, batch=100)
    got: dict[str, list[dict[str, Any]]] = {}
    for name, source in (("lockstep", LocalForecasts(forecaster)), ("batched", batched)):
        with Journal.open(journal_settings(tmp_path / name), run_id=name) as journal:
            await run_worker(config, trades, journal, run_id=name, source=source)
            journal.sync(30)
            got[name] = journal.find("predictions", {"run_id": name}, sort=[("bar_ts_ns", 1)])
            got[name + "/orders"] = journal.find("orders", {"run_id": name}, sort=[("seq", 1)])
    lock, batch = got["lockstep"], got["batched"]
    assert len(lock) > 200 and [p["bar_ts_ns"] for p in lock] == [p["bar_ts_ns"] for p in batch]
    np.testing.assert_allclose(
        np.array([p["log_returns"] for p in batch]),
        np.array([p["log_returns"] for p in lock]),
        rtol=1e-4,
        atol=1e-6,
    )
    assert [(o["side"], o["qty"], o["ts_ns"]) for o in got["batched/orders"]] == [
        (o["side"], o["qty"], o["ts_ns"]) for o in got["lockstep/orders"]
    ]


def test_the_demo_trades_both_ai_arms_out_of_sample(tmp_path: Path, tiny_registry: str) -> None:
    """Issue #10: the quick demo's trading step, with the quick demo's tiny champion, ends with
    both AI arms (taker and maker) filled on bars after the model's validation end, and says
    so: the out-of-sample span in the report and the AI arms' fills in the closing line. (It
    used to stop with "the replay ends before the model's validation end", and before that its
    single AI arm made thousands of forecasts and no fill.)"""
    import io

    from cryptoarena.trading.demo import demo_step
    from rich.console import Console

    settings = _settings(tmp_path, tiny_registry)
    out = io.StringIO()
    line = demo_step(settings, Console(file=out, width=200), quick=True)
    from cryptoarena.trading.results.report import build_report

    with Journal.open(settings, run_id="demo", readonly=True) as journal:
        started = journal.find("runs", {"event": "started"})[-1]
        fills = journal.find("fills", {"run_id": started["run_id"]})
        report = build_report(journal, started["run_id"])
    execution = {r.name: r.execution for r in report.strategies if r.family == "ai"}
    assert execution == {"ai_taker": "taker", "ai_maker": "maker"}
    until = started["model_valid_until_ns"]
    assert started["in_sample"] is False and started["trade_from_ns"] == until
    assert all(f["ts_ns"] > until for f in fills)
    by_arm = {arm: [f for f in fills if f["strategy"] == arm] for arm in ("ai_taker", "ai_maker")}
    assert by_arm["ai_taker"] and not any(f["is_maker"] for f in by_arm["ai_taker"])
    assert by_arm["ai_maker"] and all(f["is_maker"] for f in by_arm["ai_maker"])
    assert "out of sample: scored from" in out.getvalue()
    assert "ai · maker" in out.getvalue()  # the leaderboard tells the maker arm apart
    assert "out of sample: scored from" in line
    for arm, got in by_arm.items():
        assert f"{arm} {len(got)} fills" in line


def test_the_demos_suggested_backtest_runs_as_written_after_the_validation_end(
    tmp_path: Path, tiny_registry: str
) -> None:
    """The demo suggests `arena backtest --minutes 60`; it used to exit 2 ("the replay ends …
    before the model's validation end"). Without --start-minute the replay now starts a warm-up
    before that end, and --minutes counts bars the model never saw."""
    from cryptoarena.cli import app
    from typer.testing import CliRunner

    config = tmp_path / "arena.toml"
    config.write_text(
        '[[strategy]]\nname = "ai"\nkind = "ai_forecast"\n'
        '[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\n'
    )
    env = {
        "ARENA_MONGO__EMBEDDED_DIR": str(tmp_path / "journal"),
        "ARENA_MLFLOW__TRACKING_URI": tiny_registry,
        "ARENA_SERVING__URL": "http://127.0.0.1:9",
        "ARENA_SERVING__MODEL_NAME": MODEL,
        "ARENA_TRADING__KILL_FILE": str(tmp_path / "kill"),
        "ARENA_LOG_FILE": str(tmp_path / "arena.log"),
    }
    args = ["backtest", "--config", str(config), "--run-id", "next", "--minutes", "2"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "replay from minute" in result.output
    started, orders, _ = _runs(_settings(tmp_path, tiny_registry), "next")
    assert started["in_sample"] is False
    assert orders and all(o["ts_ns"] > started["model_valid_until_ns"] for o in orders)
