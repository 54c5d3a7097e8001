"""The console: the project's own lines and warnings only, library chatter in the log file,
wide tables when piped, telemetry off, progress in market time, and a demo that says what next."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptoarena.cli import app
from cryptoarena.config import Settings
from cryptoarena.console import PROGRESS, QUIET_ENV, make_console, quiet_libraries, setup_logging
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
ARENA = str(Path(sys.executable).with_name("arena"))


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_library_chatter_goes_to_the_log_file_not_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    log_file = tmp_path / "log" / "arena.log"
    assert setup_logging("INFO", log_file) == log_file
    logging.getLogger("httpx").info('HTTP Request: GET http://x/health "HTTP/1.1 200 OK"')
    logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
    logging.getLogger("cryptoarena.trading.engine.duties").info("progress: market time …")
    logging.getLogger("prefect.flow_runs").info("Beginning flow run 'x' for flow 'retrain'")
    logging.getLogger("httpx").warning("connection pool is full")
    logging.getLogger("cryptoarena.x").debug("not at INFO")
    console = capsys.readouterr().err
    assert "HTTP Request" not in console and "MLflow database" not in console
    assert "progress: market time" in console and "Beginning flow run" in console
    assert "connection pool is full" in console and "not at INFO" not in console
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = log_file.read_text()
    for line in ("HTTP Request", "MLflow database", "progress: market time", "pool is full"):
        assert line in written


def test_a_command_console_shows_warnings_in_one_short_line_and_logs_only_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    log_file = tmp_path / "arena.log"
    setup_logging("INFO", log_file, command=True)
    logging.getLogger("cryptoarena.trading.engine.duties").info("progress: market time …")
    logging.getLogger("cryptoarena.data.lake").warning("lake: 3 rows dropped")
    # a progress line of long work is shown as it is (no timestamp, no level)
    logging.getLogger("cryptoarena.trading.engine.duties").info("progress: 2 of 9", extra=PROGRESS)
    assert capsys.readouterr().err == "warning: lake: 3 rows dropped\nprogress: 2 of 9\n"
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert "progress: market time" in log_file.read_text()
    setup_logging("INFO", log_file, command=True, verbose=True)  # -v: everything, libraries too
    logging.getLogger("httpx").debug("HTTP Request: GET /x")
    assert "HTTP Request: GET /x" in capsys.readouterr().err


def test_piped_help_is_not_wrapped_at_80_columns_and_flags_show_no_type() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    done = subprocess.run(
        [ARENA, "--help"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    verbose = next(line for line in done.stdout.splitlines() if "--verbose" in line)
    assert "<bool>" not in verbose
    assert "(settings.log_file)" in verbose  # its help on one line, not wrapped at 80 columns


def test_setting_up_twice_does_not_double_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    setup_logging("INFO", tmp_path / "a.log")
    setup_logging("INFO", tmp_path / "a.log")
    logging.getLogger("cryptoarena.once").info("exactly once")
    assert capsys.readouterr().err.count("exactly once") == 1


def test_tables_keep_their_width_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(file=io.StringIO()).width >= 160
    monkeypatch.setenv("COLUMNS", "100")
    assert make_console(file=io.StringIO()).width == 100


def test_a_piped_import_table_shows_whole_file_names(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_") and k != "COLUMNS"}
    env |= {"ARENA_DATA__LAKE_DIR": str(tmp_path / "lake"), "ARENA_LOG_FILE": str(tmp_path / "l")}
    name = "binance_spot_btcusdt_trades_2021-01-08.parquet"
    done = subprocess.run(
        [ARENA, "data", "import", str(ROOT / "data" / "sample" / name)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "2021-01-08" in line)
    assert name in row  # one row, the whole name (at 80 columns it was "binance…")
    assert "HTTP Request" not in done.stderr


def test_telemetry_is_off_for_the_project_unless_the_user_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DO_NOT_TRACK", "0")  # the user's own choice stays
    quiet_libraries()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["DO_NOT_TRACK"] == "0"
    # python -m flows.<name> gets the same, before prefect is imported.
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    code = (
        "import flows, os, sys; e = os.environ; "
        "print(e['PREFECT_SERVER_ANALYTICS_ENABLED'], e['DO_NOT_TRACK'], 'prefect' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["false", "1", "False"], out.stderr


def test_a_flow_run_waits_for_its_temporary_prefect_api_on_a_busy_machine() -> None:
    # Issue #23: `arena flows run drift` (no PREFECT_API_URL) died with "Timed out while
    # attempting to connect to ephemeral Prefect API server" after Prefect's default 20 s.
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    code = (
        "import flows; from prefect.settings import "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as wait; print(wait.value())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert int(out.stdout) >= 120, out.stderr
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "7"  # the user's own choice wins
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert int(out.stdout) == 7, out.stderr


def test_the_demo_ends_by_saying_what_to_open_or_run_next(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import cryptoarena.demo as demo

    monkeypatch.setattr(demo, "DEMO_STEPS", ())  # only the closing part
    out = io.StringIO()
    settings = Settings(log_file=tmp_path / "arena.log")
    demo.run_demo(settings, console=make_console(file=out, width=200))
    text = out.getvalue()
    tail = text[text.index("what next") :]
    for expected in (
        "arena report",
        "arena serve",
        "http://127.0.0.1:8000/docs",
        "arena flows run retrain",
        f"mlflow ui --backend-store-uri {settings.mlflow.tracking_uri}",
        "prefect server start",
        f"journal: {settings.mongo.embedded_dir}",
        str(tmp_path / "arena.log"),
    ):
        assert expected in tail, expected


def test_backtest_progress_shows_market_time_and_a_rate(tmp_path: Path) -> None:
    config = tmp_path / "arena.toml"
    config.write_text('[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\n')
    env = {
        "ARENA_MONGO__EMBEDDED_DIR": str(tmp_path / "journal"),
        "ARENA_TRADING__KILL_FILE": str(tmp_path / "kill"),
        "ARENA_LOG_FILE": str(tmp_path / "arena.log"),
    }
    args = ["-v", "backtest", "--config", str(config), "--minutes", "21"]  # logs: -v
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "progress:" in line]
    assert len(lines) >= 2, result.output
    assert not any(re.search(r"t=\d{9,}", line) for line in lines)
    assert re.search(r"progress: market time 2020-02-22 \d\d:\d\d:\d\d UTC; trades=", lines[0])
    assert re.search(r"market time 2020-02-22 \d\d:\d\d:\d\d UTC \([\d,]+× real time\)", lines[1])


def test_secrets_are_masked_in_every_record_at_every_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_root_logging: None
) -> None:
    # Before: with -v, apprise's DEBUG lines wrote the alert URL's path token and header value
    # to the console and the log file.
    import apprise
    from cryptoarena.config import AlertSettings, BybitSettings, TradingSettings, secret_values

    url = "json://user:pw5ecret@127.0.0.1:9/hook/T0KENxyz42?+X-Api-Key=HEADERs3cret"
    settings = Settings(
        alerts=AlertSettings(urls=[url]),  # type: ignore[list-item]
        trading=TradingSettings(kill_token="kill-t0ken-99"),  # type: ignore[arg-type]
        bybit=BybitSettings(api_key="BYBITkey123", api_secret="BYBITsecret456"),  # type: ignore[arg-type]
    )
    secrets = ["pw5ecret", "T0KENxyz42", "HEADERs3cret", "kill-t0ken-99", "BYBITkey123",
               "BYBITsecret456"]  # fmt: skip
    log_file = tmp_path / "arena.log"
    setup_logging(
        "INFO", log_file, command=True, verbose=True, secrets=secret_values(settings)
    )  # as `arena -v` sets it up
    notifier = apprise.Apprise()
    assert notifier.add(url)
    assert not notifier.notify(body="halt", title="arena")  # port 9: refused, locally
    log = logging.getLogger("cryptoarena.test")
    log.debug("signing with %s and %s", "BYBITkey123", "BYBITsecret456")
    try:
        raise RuntimeError("kill token kill-t0ken-99 rejected")
    except RuntimeError:
        log.exception("failed")
    console = capsys.readouterr().err
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = log_file.read_text()
    for text in (console, written):
        assert "JSON POST URL: http://127.0.0.1:9/hook/***" in text  # apprise's DEBUG line
        assert "signing with *** and ***" in text and "RuntimeError: kill token ***" in text
        assert [s for s in secrets if s in text] == []
