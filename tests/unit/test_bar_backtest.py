"""``arena backtest --bars``: hand-made klines with known fills, both timestamp units, the
report of a bar run, strategies left out, and every user mistake in one line."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from cryptoarena.cli import app
from cryptoarena.config import get_settings
from cryptoarena.data.samples import sample_path
from cryptoarena.trading.journal import Journal
from typer.testing import CliRunner

runner = CliRunner()
MIN_MS = 60_000
# 2024-12-31 23:55 UTC (ms): the last minutes of a 2024 file (ms), then 2025 (µs).
T0_MS = 1_735_689_300_000
CLOSES = [100.0, 100.0, 102.0, 104.0, 100.0, 99.0, 98.0]
OPENS = [100.0, 100.0, 100.0, 103.0, 104.0, 101.0, 99.0]

CONFIG = """
[arena]
capital = 10000.0
[[strategy]]
name = "sma"
kind = "sma_cross"
params = { fast = 1, slow = 2, bar_size = "1m" }
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_DATA__LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_TRADING__KILL_FILE", str(tmp_path / "kill"))
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")


def _row(open_time: int, o: float, c: float, unit: int) -> str:
    high, low = max(o, c) + 0.5, min(o, c) - 0.5
    close_time = open_time + 59_999 * unit
    return f"{open_time},{o},{high},{low},{c},1.5,{close_time},{1.5 * c},10,0.7,{0.7 * c},0"


def write_klines(folder: Path, symbol: str = "BTCUSDT") -> list[Path]:
    """Seven 1 m bars across new year: five in a ms file (2024), two in a µs file (2025)."""
    day1 = folder / f"{symbol}-1m-2024-12-31.csv"
    day2 = folder / f"{symbol}-1m-2025-01-01.csv"
    rows1 = [_row(T0_MS + i * MIN_MS, OPENS[i], CLOSES[i], 1) for i in range(5)]
    rows2 = [_row((T0_MS + i * MIN_MS) * 1000, OPENS[i], CLOSES[i], 1000) for i in range(5, 7)]
    day1.write_text("\n".join(rows1) + "\n")
    day2.write_text("\n".join(rows2) + "\n")
    return [day1, day2]


def _config(tmp_path: Path, text: str = CONFIG) -> str:
    path = tmp_path / "arena.toml"
    path.write_text(text)
    return str(path)


def _backtest_klines(
    tmp_path: Path, t0: int, opens: list[float], closes: list[float], config: str, run_id: str
) -> None:
    """One day's 1 m klines (opens and closes from ``t0``) backtested with ``config``."""
    path = tmp_path / "BTCUSDT-1m-2024-06-01.csv"
    rows = [_row(t0 + i * MIN_MS, opens[i], closes[i], 1) for i in range(len(closes))]
    path.write_text("\n".join(rows) + "\n")
    args = ["backtest", "-c", _config(tmp_path, config), "--run-id", run_id, "--slippage-bps", "0"]
    result = runner.invoke(app, [*args, "--bars", str(path)])
    assert result.exit_code == 0, result.output


def _fills(run_id: str) -> list[dict[str, object]]:
    with Journal.open(get_settings(), run_id=run_id, readonly=True) as journal:
        return journal.find("fills", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)])


def test_fills_at_the_next_open_plus_slippage_with_taker_fees(tmp_path: Path) -> None:
    files = write_klines(tmp_path)
    args = ["backtest", "-c", _config(tmp_path), "--run-id", "bars1", "--slippage-bps", "2"]
    result = runner.invoke(app, [*args, "--bars", *map(str, files)])
    assert result.exit_code == 0, result.output
    fills = _fills("bars1")
    # Bar 2 closes up (sma1 102 > sma2 101): long, filled at bar 3's open 103 + 2 bp.
    # Bar 4 closes down (100 < 102): the flip, a close and a new entry, both at bar 5's open
    # 101 - 2 bp (bar 5 is in the µs file). Bars 5 and 6 keep it short.
    ts = [f["ts_ns"] for f in fills]
    assert ts == [(T0_MS + 3 * MIN_MS) * 10**6] + [(T0_MS + 5 * MIN_MS) * 10**6] * 2
    assert [f["side"] for f in fills] == ["Buy", "Sell", "Sell"]
    buy = Decimal("103") * Decimal("1.0002")
    sell = Decimal("101") * Decimal("0.9998")
    assert [Decimal(str(f["price"])) for f in fills] == [buy, sell, sell]
    qty = Decimal(str(fills[0]["qty"]))
    assert qty == (Decimal(10000) / Decimal(102)).quantize(Decimal("0.001"), "ROUND_DOWN")
    assert Decimal(str(fills[1]["qty"])) == qty  # the close is the whole position
    for f in fills:
        fee = Decimal(str(f["qty"])) * Decimal(str(f["price"])) * Decimal("0.00055")
        assert abs(Decimal(str(f["fee"])) - fee) < Decimal("1e-8")
        assert f["is_maker"] is False


def test_a_bar_runs_markouts_are_recorded_as_unknown(tmp_path: Path) -> None:
    from cryptoarena.trading.execution.markouts import NO_TICKS

    files = write_klines(tmp_path)
    args = ["backtest", "-c", _config(tmp_path), "--run-id", "bars-mk"]
    result = runner.invoke(app, [*args, "--bars", *map(str, files)])
    assert result.exit_code == 0, result.output
    fills = _fills("bars-mk")
    with Journal.open(get_settings(), run_id="bars-mk", readonly=True) as journal:
        marks = journal.find("markouts", {"run_id": "bars-mk"})
    # 1 m klines hold no price 1, 5 or 15 s after a fill: one record per fill, every one None.
    assert fills and sorted(m["exec_id"] for m in marks) == sorted(f["exec_id"] for f in fills)
    assert all(m["bps"] == [None, None, None] and m["missing"] == NO_TICKS for m in marks)


def test_a_bar_run_is_in_the_json_report_with_its_strategies(tmp_path: Path) -> None:
    files = write_klines(tmp_path)
    text = (
        CONFIG
        + '\n[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\n'
        + (
            '\n[[strategy]]\nname = "quoter"\nkind = "sma_cross"\n'
            'params = { fast = 2, slow = 3, bar_size = "1m", execution = "maker" }\n'
        )
    )
    args = ["backtest", "-c", _config(tmp_path, text), "--run-id", "bars2", "--bars"]
    result = runner.invoke(app, [*args, *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "left out" in result.output and "hold" in result.output  # 1 s bars: not 1 m klines
    again = runner.invoke(app, [*args, *map(str, files)])
    assert "already exists" in one_error_line(again)
    report = runner.invoke(app, ["report", "--run-id", "bars2", "--format", "json"])
    assert report.exit_code == 0, report.output
    doc = json.loads(report.output)
    text_doc = json.dumps(doc)
    assert "sma" in text_doc and '"hold"' not in text_doc
    with Journal.open(get_settings(), run_id="bars2", readonly=True) as journal:
        runs = journal.runs("bars2")
    started = next(r for r in runs if r["event"] == "started")
    stopped = next(r for r in runs if r["event"] == "stopped")
    assert started["source"] == "bars" and "hold" in started["skipped"]
    # A maker quotes at the tape's touch: klines have none, so it is left out, saying why.
    assert "no touch" in started["skipped"]["quoter"]
    assert [s["name"] for s in started["strategies"]] == ["sma"]
    assert stopped["complete"] is True and stopped["bars"] == 7


def one_error_line(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    files = [str(p) for p in write_klines(tmp_path)]
    base = ["backtest", "-c", config]
    line = one_error_line(runner.invoke(app, [*base, "--bars", str(tmp_path / "nope.csv")]))
    assert "no such file" in line
    trades = str(sample_path("binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"))
    line = one_error_line(runner.invoke(app, [*base, "--bars", trades]))
    assert "not a Binance kline file" in line
    (tmp_path / "eth").mkdir()
    eth = write_klines(tmp_path / "eth", "ETHUSDT")
    line = one_error_line(runner.invoke(app, [*base, "--bars", files[0], str(eth[0])]))
    assert "mixes symbols" in line and "ETHUSDT" in line and "BTCUSDT" in line
    line = one_error_line(runner.invoke(app, [*base, files[0]]))
    assert "need --bars" in line
    line = one_error_line(runner.invoke(app, [*base, "--bars"]))
    assert "needs kline files" in line
    whole = sample_path("BTCUSDT-1m-2024-03-11.csv.gz").read_bytes()
    cut = tmp_path / "cut" / "BTCUSDT-1m-2024-03-11.csv.gz"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) // 3])  # an interrupted download
    line = one_error_line(runner.invoke(app, [*base, "--bars", str(cut)]))
    assert "damaged or truncated" in line and cut.name in line
    ai_only = '[[strategy]]\nname = "ai"\nkind = "ai_forecast"\n'
    line = one_error_line(
        runner.invoke(app, ["backtest", "-c", _config(tmp_path, ai_only), "--bars", *files])
    )
    assert "no strategy" in line and "ai" in line


def test_a_daily_loss_halts_at_the_bar_whose_close_breaks_it(tmp_path: Path) -> None:
    # Long 100 BTC from 100 (bar 1's open); a 5 % daily loss of 10,000 is 500: with the entry
    # fee (5.5) the close of 95 (bar 6) breaks it, no equity snapshot is due in these minutes,
    # so only a check at every close halts there; the flatten fills at bar 7's open.
    t0 = 1_717_243_200_000  # 2024-06-01 12:00 UTC: no new day inside the run
    closes = [100.0, 99.0, 98.0, 97.0, 96.0, 95.5, 95.0, 94.0, 93.0]
    opens = [100.0, 100.0, 99.0, 98.0, 97.0, 96.0, 95.5, 94.5, 94.0]
    config = """
[arena]
capital = 10000.0
[risk.strategy]
max_daily_loss = 0.05
[[strategy]]
name = "hold"
kind = "buy_and_hold"
params = { bar_size = "1m" }
"""
    _backtest_klines(tmp_path, t0, opens, closes, config, "halt1")
    with Journal.open(get_settings(), run_id="halt1", readonly=True) as journal:
        halts = journal.find("risk_events", {"run_id": "halt1", "type": "halt"})
    assert len(halts) == 1 and "daily loss" in halts[0]["reason"]
    assert halts[0]["ts_ns"] == (t0 + 7 * MIN_MS) * 10**6  # bar 6's close
    fills = _fills("halt1")
    assert [(f["side"], f["ts_ns"]) for f in fills] == [
        ("Buy", (t0 + 1 * MIN_MS) * 10**6),
        ("Sell", (t0 + 7 * MIN_MS) * 10**6),  # bar 7's open
    ]
    assert Decimal(str(fills[1]["price"])) == Decimal("94.5")


def test_a_halted_book_journals_no_decisions_and_its_snapshot_keeps_the_last_reason(
    tmp_path: Path,
) -> None:
    # SMA 1/2 trades the first bars and loses more than 5 % of the day: halted (and, alone, the
    # whole arena). The closes zigzag after, so it changes its decision on every bar: none is
    # routed, none journaled, and the final snapshot still names the last one's reason.
    t0 = 1_717_243_200_000  # 2024-06-01 12:00 UTC: no new day inside the run
    closes = [100.0, 101.0, 90.0, 92.0, 89.0, 93.0, 88.0]
    opens = [100.0, 100.0, 101.0, 90.0, 92.0, 89.0, 93.0]
    config = CONFIG.replace("[[strategy]]", "[risk.strategy]\nmax_daily_loss = 0.05\n[[strategy]]")
    _backtest_klines(tmp_path, t0, opens, closes, config, "mute")
    with Journal.open(get_settings(), run_id="mute", readonly=True) as journal:
        (halt,) = journal.find("risk_events", {"run_id": "mute", "type": "halt"})
        decisions = journal.find("decisions", {"run_id": "mute"}, sort=[("ts_ns", 1)])
        (summary,) = journal.find("summaries", {"run_id": "mute"})
    assert halt["ts_ns"] <= (t0 + 5 * MIN_MS) * 10**6  # two zigzag bars after it at least
    assert decisions and all(d["ts_ns"] <= halt["ts_ns"] for d in decisions)
    assert summary["halted"] and summary["ts_ns"] == (t0 + 7 * MIN_MS) * 10**6  # the run's end
    assert "88" in summary["last_decision"], summary["last_decision"]  # the last bar's decision
    assert summary["last_decision"] != decisions[-1]["reason"]


def test_a_5m_strategy_decides_at_the_close_of_its_fifth_minute(tmp_path: Path) -> None:
    # 1 m klines aggregated into 5 m bars: the third 5 m bar (minutes 10-14) closes up, so the
    # strategy goes long at minute 14's close and fills at minute 15's open.
    t0 = 1_717_243_200_000  # 12:00 UTC, on a 5 m boundary
    closes = [100.0] * 10 + [101.0] * 5 + [101.5, 102.0]
    opens = [100.0] * 15 + [100.5, 101.5]
    config = CONFIG.replace('bar_size = "1m"', 'bar_size = "5m"')
    _backtest_klines(tmp_path, t0, opens, closes, config, "five")
    fills = _fills("five")
    assert [(f["side"], f["ts_ns"]) for f in fills] == [("Buy", (t0 + 15 * MIN_MS) * 10**6)]
    assert Decimal(str(fills[0]["price"])) == Decimal("100.5")
    with Journal.open(get_settings(), run_id="five", readonly=True) as journal:
        decisions = journal.find("decisions", {"run_id": "five"}, sort=[("ts_ns", 1)])
    assert decisions[-1]["target"] == 1.0
    assert decisions[-1]["bar_ts_ns"] == (t0 + 10 * MIN_MS) * 10**6  # the 5 m bar's open
    assert decisions[-1]["ts_ns"] == (t0 + 15 * MIN_MS) * 10**6  # decided at its close


def test_a_daily_loss_halt_ends_at_the_next_utc_day_and_the_strategy_trades_again(
    tmp_path: Path,
) -> None:
    # As above, but the run crosses midnight: the halt (bar 6's close) ends at the first close
    # of the next UTC day, and buy-and-hold buys again at the open after it. Before, a daily
    # halt lasted for the rest of the run: a month of klines halted every strategy for good
    # within its first days.
    t0 = 1_717_285_800_000  # 2024-06-01 23:50 UTC
    midnight_ns = 1_717_286_400_000 * 10**6
    closes = [100.0, 99.0, 98.0, 97.0, 96.0, 95.5, 95.0, 94.0, 93.0] + [93.0] * 6
    opens = [100.0, 100.0, 99.0, 98.0, 97.0, 96.0, 95.5, 94.5, 94.0] + [93.0] * 6
    day1 = tmp_path / "BTCUSDT-1m-2024-06-01.csv"
    day2 = tmp_path / "BTCUSDT-1m-2024-06-02.csv"
    rows = [_row(t0 + i * MIN_MS, opens[i], closes[i], 1) for i in range(len(closes))]
    day1.write_text("\n".join(rows[:10]) + "\n")
    day2.write_text("\n".join(rows[10:]) + "\n")
    config = """
[arena]
capital = 10000.0
[risk.strategy]
max_daily_loss = 0.05
max_drawdown = 0.5
[risk.global]
max_daily_loss = 0.5
max_drawdown = 0.5
[[strategy]]
name = "hold"
kind = "buy_and_hold"
params = { bar_size = "1m" }
"""
    args = ["backtest", "-c", _config(tmp_path, config), "--run-id", "halt2", "--slippage-bps", "0"]
    result = runner.invoke(app, [*args, "--bars", str(day1), str(day2)])
    assert result.exit_code == 0, result.output
    with Journal.open(get_settings(), run_id="halt2", readonly=True) as journal:
        events = journal.find("risk_events", {"run_id": "halt2"}, sort=[("ts_ns", 1)])
    kinds = [(e["type"], e.get("strategy")) for e in events if "halt" in e["type"]]
    assert kinds == [("halt", "hold"), ("halt_released", "hold")]
    released = next(e for e in events if e["type"] == "halt_released")
    assert released["ts_ns"] == midnight_ns  # the first close of the new UTC day
    fills = _fills("halt2")
    assert [(f["side"], f["ts_ns"]) for f in fills] == [
        ("Buy", (t0 + 1 * MIN_MS) * 10**6),
        ("Sell", (t0 + 7 * MIN_MS) * 10**6),
        ("Buy", midnight_ns),  # the open after the release (bar 10 opens at midnight)
    ]
    # The report shows the halts in force at the end: this one ended with its day.
    report = runner.invoke(app, ["report", "--run-id", "halt2", "--format", "json"])
    assert report.exit_code == 0, report.output
    (row,) = json.loads(report.output)["strategies"]
    assert row["name"] == "hold" and row["halted"] is None


def test_a_kill_switch_engaged_before_a_bar_run_stops_its_first_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The switch was read only in housekeeping, which a bar run reaches only once something is
    # due: the first decision's order went out before the kill was known.
    from cryptoarena.trading.risk import KillSwitch
    from pydantic import SecretStr

    monkeypatch.setenv("ARENA_TRADING__KILL_TOKEN", "tok")
    get_settings.cache_clear()
    KillSwitch(tmp_path / "kill", SecretStr("tok")).engage("tok", "engaged before the run")
    config = '[arena]\ncapital = 10000.0\n[[strategy]]\nname = "hold"\nkind = "buy_and_hold"\n'
    config += 'params = { bar_size = "1m" }\n'
    args = ["backtest", "-c", _config(tmp_path, config), "--run-id", "killed1", "--bars"]
    result = runner.invoke(app, [*args, *map(str, write_klines(tmp_path))])
    assert result.exit_code == 0, result.output
    assert _fills("killed1") == []
    with Journal.open(get_settings(), run_id="killed1", readonly=True) as journal:
        assert journal.find("orders", {"run_id": "killed1"}) == []
        kinds = [e["type"] for e in journal.find("risk_events", {"run_id": "killed1"})]
    assert kinds[:1] == ["kill"]


def test_the_last_equity_snapshot_is_at_the_last_bar_not_the_last_event(tmp_path: Path) -> None:
    # The shipped 2024-03-11 klines cut at 16:40 (1,000 bars): sma 20/60's last order is long
    # before the end. The run's final snapshot must still be at the last bar's close, marked at
    # its close (issue #20 item 8: it was at the last event).
    day = sample_path("BTCUSDT-1m-2024-03-11.csv.gz")
    if not day.exists():
        pytest.skip(f"missing the shipped klines {day}")
    import gzip

    with gzip.open(day, "rt") as f:
        rows = f.read().splitlines()[:1000]
    cut = tmp_path / "BTCUSDT-1m-2024-03-11.csv"
    cut.write_text("\n".join(rows) + "\n")
    text = CONFIG.replace("fast = 1, slow = 2", "fast = 20, slow = 60")
    args = ["backtest", "-c", _config(tmp_path, text), "--run-id", "bars-end", "--bars", str(cut)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with Journal.open(get_settings(), run_id="bars-end", readonly=True) as journal:
        snaps = journal.find("equity", {"run_id": "bars-end"}, sort=[("ts_ns", 1)])
        fills = journal.find("fills", {"run_id": "bars-end"}, sort=[("ts_ns", 1)])
    last = rows[-1].split(",")
    last_close_ns = (int(last[0]) + MIN_MS) * 1_000_000
    assert fills and fills[-1]["ts_ns"] < last_close_ns - 10 * MIN_MS * 1_000_000
    final = [s for s in snaps if s["strategy"] == "sma"][-1]
    assert final["ts_ns"] == last_close_ns
    assert final["mark"] == float(last[4]) and final["qty"] != 0  # an open position, marked


def test_an_entry_the_book_cannot_margin_is_refused_as_on_the_tape(tmp_path: Path) -> None:
    """The bar run's venue is the paper venue: its margin check holds on bars too (the old bar
    venue filled any size). At leverage 0.5 a whole-equity long needs twice the wallet."""
    from cryptoarena.trading.config import parse_arena_config
    from cryptoarena.trading.engine.bar_session import BarRunOptions, run_bar_backtest
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig

    config = parse_arena_config(
        {
            "arena": {"capital": 10000.0},
            "strategy": [
                {
                    "name": "sma",
                    "kind": "sma_cross",
                    "params": {"fast": 1, "slow": 2, "bar_size": "1m"},
                }
            ],
        }
    )
    options = BarRunOptions(
        files=tuple(write_klines(tmp_path)), run_id="margin", progress=False,
        fill=PaperExchangeConfig(leverage=Decimal("0.5")),
    )  # fmt: skip
    result = run_bar_backtest(get_settings(), config, options)
    assert result.complete and result.orders > 0  # it tried: the long at bar 2's close
    assert _fills("margin") == []
    with Journal.open(get_settings(), run_id="margin", readonly=True) as journal:
        refused = journal.find("order_updates", {"run_id": "margin", "status": "Rejected"})
    assert refused and all("ab not enough" in r["reason"] for r in refused)


def test_a_bar_drive_needs_a_venue_that_declares_bar_fills(tmp_path: Path) -> None:
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.config import parse_arena_config
    from cryptoarena.trading.engine import Worker
    from cryptoarena.trading.engine.bar_drive import BarDrive, NoFeed, PulledUpdates
    from cryptoarena.trading.engine.bar_session import load_bars
    from cryptoarena.trading.exchange.accounts import PAPER, AccountsExchange
    from cryptoarena.trading.exchange.paper import PaperExchange

    config = parse_arena_config(
        {"strategy": [{"name": "sma", "kind": "sma_cross", "params": {"bar_size": "1m"}}]}
    )
    clock = SimClock(T0_MS * 10**6)
    # Its paper member fills from bars, but the accounts venue itself declares no bar_fills.
    exchange = AccountsExchange({PAPER: PaperExchange(clock=clock)}, {"sma": PAPER}, "accounts")
    assert not exchange.capabilities.bar_fills
    with Journal.open(get_settings(), run_id="nobars", clock=clock, bulk=True) as journal:
        worker = Worker(config, feed=NoFeed("BTCUSDT"), exchange=exchange, journal=journal,
                        clock=clock, run_id="nobars")  # fmt: skip
        with pytest.raises(ValueError, match="needs a venue that fills from bars"):
            BarDrive(worker, exchange, PulledUpdates(), load_bars(write_klines(tmp_path)))


def _documents(run_id: str) -> dict[str, list[str]]:
    """Every journal document of a run, as text, with what differs between two runs of the
    same inputs (run id, incarnation, the ids made from them) masked."""
    import re

    from cryptoarena.trading.journal import schema

    out: dict[str, list[str]] = {}
    with Journal.open(get_settings(), run_id=run_id, readonly=True) as journal:
        for coll in schema.KINDS:
            docs = journal.find(coll, {"run_id": run_id}, sort=[("seq", 1)])
            texts = [json.dumps(d, sort_keys=True, default=str) for d in docs]
            out[coll] = texts
    incarnations = {m for t in out["runs"] for m in re.findall(r'"incarnation": "([a-z0-9]+)"', t)}
    assert incarnations  # the masks below rely on it

    def mask(text: str) -> str:
        text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "U", text)
        for inc in incarnations:
            text = text.replace(inc, "INC")
        text = re.sub(r'"[0-9a-f]{8}-(\d\d-INC)', r'"C-\1', text)
        return re.sub(r"[0-9a-f]{16}:", "S:", text.replace(run_id, "RUN"))

    return {coll: [mask(t) for t in texts] for coll, texts in out.items()}


# Four strategies (one on 5 m bars) under limits that halt them within the day.
QUIET_HALTS = """
[arena]
capital = 10000.0
[risk.strategy]
max_daily_loss = 0.004
max_drawdown = 0.006
[risk.global]
max_daily_loss = 0.5
max_drawdown = 0.5
[[strategy]]
name = "sma"
kind = "sma_cross"
params = { fast = 20, slow = 60, bar_size = "1m" }
[[strategy]]
name = "rsi"
kind = "rsi_reversion"
params = { bar_size = "1m" }
[[strategy]]
name = "boll5"
kind = "bollinger"
params = { bar_size = "5m" }
[[strategy]]
name = "hold"
kind = "buy_and_hold"
params = { bar_size = "1m" }
"""
# No limits and a small min_trade_fraction: books re-size to their target between changes of
# their decision's class (the order-size pre-check finds those bars).
QUIET_RESIZE = """
[arena]
capital = 10000.0
min_trade_fraction = 0.001
[[strategy]]
name = "sma"
kind = "sma_cross"
params = { fast = 20, slow = 60, bar_size = "1m" }
[[strategy]]
name = "hold"
kind = "buy_and_hold"
params = { bar_size = "1m" }
"""


@pytest.mark.parametrize("config", [QUIET_HALTS, QUIET_RESIZE], ids=["halts", "resize"])
def test_skipping_quiet_bars_journals_what_the_bar_by_bar_loop_journals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, config: str
) -> None:
    # Issue #21 item 3: bars on which nothing can happen are jumped over (decisions known over
    # the span, the order-size pre-check vectorised). The shipped day of klines with four
    # strategies (one on 5 m bars) and limits that halt within the day: the documents equal
    # those of the loop that visits every bar.
    import logging

    from cryptoarena.trading.engine import bar_drive

    day = sample_path("BTCUSDT-1m-2024-03-11.csv.gz")
    if not day.exists():
        pytest.skip(f"missing the shipped klines {day}")
    path = _config(tmp_path, config)

    def run(run_id: str) -> dict[str, list[str]]:
        args = ["backtest", "-c", path, "--run-id", run_id, "--slippage-bps", "0", "--bars"]
        result = runner.invoke(app, [*args, str(day)])
        assert result.exit_code == 0, result.output
        return _documents(run_id)

    with caplog.at_level(logging.INFO, logger="cryptoarena.trading.engine.bar_drive"):
        skipped = run("quiet-run-a1")
    said = [r.getMessage() for r in caplog.records if "quiet bars skipped" in r.getMessage()]
    assert said and not said[-1].endswith(" 0 quiet bars skipped"), said  # the skip path ran
    monkeypatch.setattr(bar_drive, "_MIN_QUIET", 10**9)  # every bar visited
    walked = run("quiet-run-b2")
    assert walked["fills"]
    if config is QUIET_HALTS:  # the limits halted books
        assert [t for t in walked["risk_events"] if '"type": "halt"' in t]
    else:  # orders without a change of class: re-sizing (a decision's class per order)
        assert len(walked["orders"]) > len(walked["decisions"]) // 2
    assert skipped == walked
