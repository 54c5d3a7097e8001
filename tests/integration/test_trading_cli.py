"""The commands as users run them: `arena trade` stopped by SIGTERM, `arena kill` across
processes (token-protected), `arena report` from the journal."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cryptoarena.trading.journal import Journal

from tests.integration.trading_kit import ARENA, ROOT, arena_env, journal_settings, start_arena

pytestmark = pytest.mark.slow

CONFIG = """
[arena]
fee_rate = 0.0001
equity_every_s = 2.0
flatten_on_kill = true

[[strategy]]
name = "hold"
kind = "buy_and_hold"

[[strategy]]
name = "naive"
kind = "naive_forecaster"
params = { margin_bps = 0.0 }
"""


def _env(tmp: Path) -> dict[str, str]:
    return arena_env(tmp, ARENA_TRADING__KILL_TOKEN="s3cret-kill")


def _wait_for_fill(
    tmp: Path, run_id: str, strategy: str, proc: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    """Until the running worker's journal holds a fill of ``strategy`` (read beside the writer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with Journal.open(journal_settings(tmp), run_id="probe", readonly=True) as journal:
            if journal.find("fills", {"run_id": run_id, "strategy": strategy}):
                return
        time.sleep(0.2)
    raise AssertionError(f"no fill of {strategy} in run {run_id} within {timeout} s")


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"{text!r} never appeared: {path.read_text()[-2000:] if path.exists() else ''}"
    )


def test_trade_is_killed_across_processes_then_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "arena.toml").write_text(CONFIG)
    env = _env(tmp_path)
    log = tmp_path / "trade.log"
    args = ["trade", "--config", str(tmp_path / "arena.toml"), "--source", "replay",
            "--exchange", "paper", "--run-id", "live1", "--start-minute", "60", "--speed", "40"]  # fmt: skip
    proc = start_arena(args, env, log)
    try:
        _wait_for(log, "progress:", proc)
        _wait_for_fill(tmp_path, "live1", "hold", proc)  # buy-and-hold is long: a kill must flatten
        wrong = subprocess.run(
            [ARENA, "kill", "--token", "nope"], cwd=ROOT, env=env, capture_output=True
        )
        assert wrong.returncode == 2 and b"wrong kill token" in wrong.stderr
        assert not (tmp_path / "arena.kill").exists()
        ok = subprocess.run(
            [ARENA, "kill", "--reason", "test drill"], cwd=ROOT, env=env, capture_output=True
        )
        assert ok.returncode == 0, ok.stderr
        # The worker polls the file each second, flattens, and says so.
        _wait_for(log, "every book is flat", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    released = subprocess.run([ARENA, "kill", "--release"], cwd=ROOT, env=env, capture_output=True)
    # A release record (signed when a token is set), which the workers verify.
    assert released.returncode == 0
    assert json.loads((tmp_path / "arena.kill").read_text())["engaged"] is False

    with Journal.open(journal_settings(tmp_path), run_id="live1") as journal:
        runs = journal.find("runs", {"run_id": "live1"}, sort=[("seq", 1)])
        assert [r["event"] for r in runs] == ["started", "stopped"]
        assert runs[1]["stopped_by"] == "signal SIGTERM"
        kills = journal.find("risk_events", {"run_id": "live1", "type": "kill"})
        assert len(kills) == 1 and kills[0]["reason"] == "test drill"
        # Flattened on the kill: the books end flat; every order after the kill reduced risk.
        assert Decimal(runs[1]["books_qty"]) == 0 == Decimal(runs[1]["exchange_qty"])
        latest = journal.latest_equity("live1")
        assert {d["qty"] for d in latest.values()} == {0.0}
        # The flatten goes out on the very tick that saw the kill (same ts_ns).
        after = journal.find("orders", {"run_id": "live1", "ts_ns": {"$gte": kills[0]["ts_ns"]}})
        assert after and all(float(o["position_before"]) != 0 for o in after)

    report = subprocess.run(
        [ARENA, "report", "--run-id", "live1"], cwd=ROOT, env=env, capture_output=True
    )
    assert report.returncode == 0, report.stderr
    assert b"leaderboard" in report.stdout and b"hold" in report.stdout
    missing = subprocess.run(
        [ARENA, "report", "--run-id", "nope"], cwd=ROOT, env=env, capture_output=True
    )
    assert missing.returncode == 2 and b"no run 'nope'" in missing.stderr


def test_bad_config_is_refused_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[strategy]]\nname = "x"\nkind = "sma_cross"\nparams = { fast = 9, slow = 3 }\n'
    )
    out = subprocess.run([ARENA, "backtest", "--config", str(bad)], cwd=ROOT, env=_env(tmp_path),
                         capture_output=True)  # fmt: skip
    assert out.returncode == 2 and b"must be shorter" in out.stderr
    assert not (tmp_path / "journal").exists()


def test_demo_step_without_a_model_still_trades_and_says_why(tmp_path: Path) -> None:
    from cryptoarena.config import Settings
    from cryptoarena.trading.demo import demo_step
    from rich.console import Console

    settings = Settings(
        mongo={"embedded_dir": tmp_path / "journal"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'empty.db'}"},  # type: ignore[arg-type]
        serving={"url": "http://127.0.0.1:9"},  # type: ignore[arg-type]
    )
    console = Console(record=True, width=160)
    line = demo_step(settings, console, quick=True)
    text = " ".join(console.export_text().split())
    assert "@champion in the registry at" in text and "the AI arm stands aside" in text
    assert "leaderboard" in text and "sma_cross" in text
    assert line.startswith("trading: 10 strategies replayed 8 min of real tape")
    assert "AI vs classical: None of the 2 AI arms traded: standing aside" in line
