"""A 3-day season end to end on real recorded klines (issue #19 item 2): `arena season start`
runs one bar backtest per UTC day, survives a crash mid-season (the restart runs only the days
without a complete run), and `arena season report` shows a block per day and the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptoarena.cli import app
from cryptoarena.config import Settings, get_settings
from cryptoarena.dashboard.app import create_app
from cryptoarena.trading.seasons.season import SeasonDay, load, open_season, run_pending
from fastapi.testclient import TestClient
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
KLINES = REPO.parent / "shared" / "data" / "binance_spot_BTCUSDT_1m"
DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]
CONFIG = REPO / "configs" / "arena.example.toml"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _files() -> list[Path]:
    files = [KLINES / f"BTCUSDT-1m-{d}.csv.gz" for d in DAYS]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"recorded klines missing from ../shared/data: {', '.join(missing)}")
    return files


def test_a_three_day_season_survives_a_crash_and_reports_each_day(settings: Settings) -> None:
    files = _files()
    runner = CliRunner()
    # A worker that dies during the second day: the first day's run is complete, the second's
    # attempt is recorded in the manifest, the third never started.
    season = open_season(settings, "s3", CONFIG, files, 300.0)

    class Crash(Exception):
        pass

    def run_until_day_two(day: SeasonDay, run_id: str) -> bool:
        if day.day == DAYS[1]:
            raise Crash
        result = runner.invoke(
            app,
            [
                "backtest",
                "--bars",
                "-c",
                str(CONFIG),
                "--run-id",
                run_id,
                "--equity-every",
                "300",
                day.file,
            ],
        )
        assert result.exit_code == 0, result.output
        return True

    with pytest.raises(Crash):
        run_pending(settings, season, run_until_day_two)
    after_crash = load(settings, "s3")
    assert [d.complete for d in after_crash.days] == [True, False, False]
    assert after_crash.days[1].run_id == f"s3-{DAYS[1]}" and after_crash.days[1].attempts == 1

    status = runner.invoke(app, ["season", "status", "s3"])
    assert status.exit_code == 0 and "1 of 3 UTC days complete" in status.output
    assert "interrupted" in status.output

    # The restart runs only what is missing; the cut-off day gets a new run id.
    again = runner.invoke(app, ["season", "start", "s3", "-c", str(CONFIG), *map(str, files)])
    assert again.exit_code == 0, again.output
    resumed = load(settings, "s3")
    assert all(d.complete for d in resumed.days)
    assert [d.run_id for d in resumed.days] == [
        f"s3-{DAYS[0]}",
        f"s3-{DAYS[1]}-r2",
        f"s3-{DAYS[2]}",
    ]
    assert resumed.days[0].attempts == 1  # the complete day was not run twice

    out = runner.invoke(app, ["season", "report", "s3", "--json"])
    assert out.exit_code == 0, out.output
    rep = json.loads(out.output)
    assert [b["day"] for b in rep["days"]] == DAYS and all(b["complete"] for b in rep["days"])
    for block in rep["days"]:
        assert block["rows"] and all(r["fills"] >= 0 for r in block["rows"])
        assert {"pnl", "return_bp", "fees", "status", "rank"} <= set(block["rows"][0])
    # Halts during a day are in its block even when the day's end released them (the example
    # config's daily-loss limit stops most strategies on each of these real days).
    assert all(any(r["halted"] for r in b["rows"]) for b in rep["days"])
    assert any("daily loss" in (r["halted"] or "") for r in rep["days"][0]["rows"])
    # Cumulative P&L at each day's end is the running sum of that strategy's day P&Ls.
    name = rep["days"][0]["rows"][0]["strategy"]
    per_day = [next(r["pnl"] for r in b["rows"] if r["strategy"] == name) for b in rep["days"]]
    assert rep["cumulative"][name] == pytest.approx(
        [sum(per_day[: i + 1]) for i in range(3)], abs=1e-9
    )
    # The example config's AI arm needs ticks and a model: bar days have none, and it says so.
    assert rep["verdict"]["sentence"].startswith("No season verdict: the season's runs have no AI")
    table = runner.invoke(app, ["season", "report", "s3"])
    assert table.exit_code == 0 and all(f"{d} UTC" in table.output for d in DAYS)

    # The dashboard's season route serves the same report.
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/seasons").json() == ["s3"]
        served = client.get("/api/seasons/s3").json()
        assert served["cumulative"] == rep["cumulative"] and served["verdict"] == rep["verdict"]
        assert client.get("/api/seasons/nope").status_code == 404


def test_one_season_one_config_and_bad_input_is_one_line(
    settings: Settings, tmp_path: Path
) -> None:
    files = _files()
    runner = CliRunner()
    open_season(settings, "s1", CONFIG, files[:1], 300.0)
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.read_text() + "\n# changed\n")
    changed = runner.invoke(app, ["season", "start", "s1", "-c", str(other), str(files[1])])
    assert changed.exit_code == 2 and "one season, one config" in changed.output
    gap = runner.invoke(
        app, ["season", "start", "s2", "-c", str(CONFIG), str(files[0]), str(files[2])]
    )
    assert gap.exit_code == 2 and "not consecutive" in gap.output
    assert "Traceback" not in gap.output
    missing = runner.invoke(app, ["season", "report", "nope"])
    assert missing.exit_code == 2 and "error: no season 'nope'" in missing.output
