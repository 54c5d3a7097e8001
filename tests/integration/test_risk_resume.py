"""Risk state survives a SIGKILL: a resumed run makes the decisions the uninterrupted one made.

Real ``arena trade --source replay`` and ``arena backtest`` subprocesses on the shipped real
day, killed with SIGKILL at moments chosen by conditions (the run's own log: a halt, progress
lines, orders sent), resumed with the same ``--run-id``; every book, every order and every halt
is compared with an uninterrupted run of the same command.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.execution.orders import run_tag
from cryptoarena.trading.journal import KINDS, Journal
from cryptoarena.trading.portfolio.ledger import Ledger

from tests.integration.trading_kit import arena_env, journal_settings, start_arena

pytestmark = pytest.mark.slow

CAPITAL = "10000.0"

# Classical strategies only (no model server), a daily-loss limit tight enough that some halt
# within the slice (the probe: 0.2 % of the book's capital).
CONFIG = f"""
[arena]
capital = {CAPITAL}
fee_rate = 0.00055
equity_every_s = 5.0
backtest_equity_every_s = 60.0

[risk.strategy]
max_position_notional = 20000.0
max_order_notional = 20000.0
max_orders_per_minute = 12
max_daily_loss = 0.002
max_drawdown = 0.10

[[strategy]]
name = "sma_cross"
kind = "sma_cross"
params = {{ fast = 5, slow = 20, bar_size = "1m" }}

[[strategy]]
name = "macd"
kind = "macd"
params = {{ fast = 12, slow = 26, signal = 9, bar_size = "1m" }}

[[strategy]]
name = "rsi"
kind = "rsi_reversion"
params = {{ period = 14, lower = 30, upper = 70, bar_size = "1m" }}

[[strategy]]
name = "bollinger"
kind = "bollinger"
params = {{ period = 20, k = 2.0, bar_size = "1m" }}

[[strategy]]
name = "donchian"
kind = "donchian"
params = {{ period = 20, bar_size = "1m" }}

[[strategy]]
name = "vwap"
kind = "vwap_reversion"
params = {{ period = 30, threshold_bps = 10, exit_bps = 2, bar_size = "1m" }}
"""

# The repro: 4 market hours from minute 430 of the shipped day at 400x.
TRADE = ["trade", "--source", "replay", "--speed", "400", "--start-minute", "430",
         "--minutes", "240"]  # fmt: skip
# The three-moment tests: the same start, two hours (every strategy halts in the first 80
# minutes), and a backtest over the same span.
TRADE_2H = [*TRADE[:-1], "120"]
BACKTEST = ["backtest", "--start-minute", "430", "--minutes", "120"]

Outcome = dict[str, Any]
# Time order, ties in recording order across incarnations (an event id sorts by the session
# that wrote it, then its seq; seq alone restarts with each incarnation).
RECORDED = [("ts_ns", 1), ("_id", 1)]


def _start(tmp: Path, command: list[str], run_id: str) -> subprocess.Popen[bytes]:
    args = [*command, "--config", str(tmp / "arena.toml"), "--run-id", run_id]
    return start_arena(args, arena_env(tmp, OMP_NUM_THREADS="1"), tmp / f"{run_id}.log")


def _progress_orders(line: str) -> int:
    return int(line.split("orders=")[1].split()[0])


def _wait_for(
    log: Path,
    proc: subprocess.Popen[bytes],
    ready: Callable[[list[str]], bool],
    what: str,
    since: int = 0,
) -> None:
    """Until ``ready`` holds on the log's lines from byte ``since`` on (this incarnation's),
    the process still running."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ready(log.read_bytes()[since:].decode(errors="replace").splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached before the run ended: {what}\n{log.read_text()[-3000:]}")


def _after(marker: Callable[[str], bool], progress_lines: int) -> Callable[[list[str]], bool]:
    """Ready once ``marker`` matched a line and that many progress lines followed it: the
    journal's writer (50 ms batches) has long made the marked events durable by then."""

    def ready(lines: list[str]) -> bool:
        hits = [i for i, line in enumerate(lines) if marker(line)]
        if not hits:
            return False
        return sum("progress:" in line for line in lines[hits[0] :]) >= progress_lines

    return ready


def _journaled(tmp: Path, kind: str, filt: dict[str, Any], n: int) -> Callable[[], bool]:
    """True once ``n`` documents of ``kind`` of the crash run are durable in the journal: a
    backtest buffers its events (up to half a second of wall time), so a log line alone does
    not say they survive a kill."""

    def ready() -> bool:
        with Journal.open(journal_settings(tmp), run_id="crash", readonly=True) as journal:
            return len(journal.find(kind, {"run_id": "crash", **filt}, limit=n)) >= n

    return ready


def _both(
    logged: Callable[[list[str]], bool], durable: Callable[[], bool]
) -> Callable[[list[str]], bool]:
    return lambda lines: logged(lines) and durable()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def _outcome(tmp: Path, run_id: str) -> Outcome:
    """Every order (without its ids), every book (rebuilt from the fills) and every halt."""
    with Journal.open(journal_settings(tmp), run_id=run_id) as journal:
        orders = journal.find("orders", {"run_id": run_id}, sort=RECORDED)
        fills = journal.find("fills", {"run_id": run_id}, sort=RECORDED)
        events = journal.find("risk_events", {"run_id": run_id}, sort=RECORDED)
        runs = journal.find("runs", {"run_id": run_id}, sort=RECORDED)
    books: dict[str, Ledger] = {}
    for f in fills:
        book = books.setdefault(f["strategy"], Ledger(f["strategy"], capital=Decimal(CAPITAL)))
        book.apply_fill(Side(f["side"]), Decimal(f["qty"]), Decimal(f["price"]), Decimal(f["fee"]))
    halt_types = {"halt", "global_halt", "halt_released", "kill", "kill_released"}
    return {
        "orders": [
            (o["strategy"], o["side"], o["qty"], o["order_type"], o["reduce_only"], o["ts_ns"])
            for o in orders
        ],
        "books": {n: (b.qty, b.cash, b.fees, b.fills) for n, b in sorted(books.items())},
        "halts": [
            (e["type"], e["strategy"], e["reason"], e["ts_ns"])
            for e in events
            if e["type"] in halt_types
        ],
        "starts": [r for r in runs if r["event"] == "started"],
        "order_docs": orders,
    }


def _assert_same_decisions(resumed: Outcome, baseline: Outcome) -> None:
    assert baseline["orders"] and baseline["halts"], "the baseline must trade and halt"
    assert resumed["halts"] == baseline["halts"]
    assert resumed["orders"] == baseline["orders"]
    assert resumed["books"] == baseline["books"]


def _baseline(tmp: Path, command: list[str]) -> Outcome:
    proc = _start(tmp, command, "base")
    assert proc.wait(600) == 0, (tmp / "base.log").read_text()[-3000:]
    return _outcome(tmp, "base")


def _is_halt(line: str) -> bool:
    return "halted:" in line and "strategy " in line


@pytest.mark.timeout(900)  # five runs of a loaded 2-core machine
# Where a kill lands is up to the machine's speed; the journal-cut test below puts the
# checkpoint inside an order's life on purpose.
@pytest.mark.parametrize("command", [TRADE_2H, BACKTEST], ids=["trade-replay", "backtest"])
def test_sigkill_at_three_moments_then_resume_equals_the_uninterrupted_run(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "arena.toml").write_text(CONFIG)
    baseline = _baseline(tmp_path, command)
    log = tmp_path / "crash.log"

    def orders_sent(lines: list[str]) -> bool:
        return any("progress:" in x and _progress_orders(x) >= 4 for x in lines)

    def progress(n: int) -> Callable[[list[str]], bool]:
        return lambda lines: sum("progress:" in x for x in lines) >= n

    # Each kill waits on the log of the incarnation it kills: 1, orders sent (before the
    # halts); 2, just after a halt; 3, later (a restored halt goes on holding).
    # The first two wait until what they mark is durable (else a resume has nothing to restore).
    moments = [
        _both(orders_sent, _journaled(tmp_path, "orders", {}, 4)),
        _both(_after(_is_halt, 1), _journaled(tmp_path, "risk_events", {"type": "halt"}, 1)),
        progress(3),
    ]
    for ready in moments:
        size = log.stat().st_size if log.exists() else 0
        proc = _start(tmp_path, command, "crash")
        _wait_for(log, proc, ready, "the kill moment", since=size)
        _kill(proc)
    last = _start(tmp_path, command, "crash")
    assert last.wait(600) == 0, log.read_text()[-3000:]

    resumed = _outcome(tmp_path, "crash")
    assert len(resumed["starts"]) == 4
    assert all(s["restored"]["risk_restored"] for s in resumed["starts"][1:])
    _assert_same_decisions(resumed, baseline)


@pytest.mark.timeout(600)
def test_a_strategy_halted_for_daily_loss_stays_halted_after_a_sigkill(tmp_path: Path) -> None:
    """The issue's repro: macd halts for daily loss, the run is killed, the same command again
    must neither halt it a second time nor let it place an order."""
    (tmp_path / "arena.toml").write_text(CONFIG)
    log = tmp_path / "H.log"
    first = _start(tmp_path, TRADE, "H")
    _wait_for(log, first, _after(lambda line: "strategy macd halted" in line, 2), "macd halts")
    _kill(first)
    second = _start(tmp_path, TRADE, "H")
    assert second.wait(600) == 0, log.read_text()[-3000:]

    assert log.read_text().count("strategy macd halted") == 1, log.read_text()[-3000:]
    out = _outcome(tmp_path, "H")
    halts = [h for h in out["halts"] if h[0] == "halt" and h[1] == "macd"]
    assert len(halts) == 1 and "daily loss" in halts[0][2]
    second_incarnation = out["starts"][1]["incarnation"]
    after = [
        o for o in out["order_docs"]
        if o["strategy"] == "macd" and o["incarnation"] == second_incarnation
    ]  # fmt: skip
    assert after == [], after


def _crash_at(tmp: Path, cut_ns: int, run_id: str) -> None:
    """The journal a SIGKILL leaves when everything up to ``cut_ns`` was durable: the baseline's
    events at or before it, as run ``run_id`` (its client ids carry that run's tag)."""
    with Journal.open(journal_settings(tmp), run_id=run_id) as journal:
        for kind in KINDS:
            for doc in journal.find(kind, {"run_id": "base", "ts_ns": {"$lte": cut_ns}}):
                if kind == "runs" and doc["event"] != "started":
                    continue
                doc = {k: v for k, v in doc.items() if k not in ("_id", "seq", "run_id")}
                if "client_id" in doc:
                    doc["client_id"] = doc["client_id"].replace(run_tag("base"), run_tag(run_id))
                journal.record(kind, doc)
        assert journal.flush(30.0)


@pytest.mark.timeout(600)
def test_a_resume_with_orders_in_flight_at_the_checkpoint_equals_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    """Checkpoints inside an order's life: partly filled with its rest still to fill (and to
    expire), and an exit whose follow-up (the rest of the target) is still to be sent. Fails
    when the paper venue's working order or the router's follow-up is not restored."""
    (tmp_path / "arena.toml").write_text(CONFIG)
    baseline = _baseline(tmp_path, BACKTEST)
    with Journal.open(journal_settings(tmp_path), run_id="base", readonly=True) as journal:
        fills = journal.find("fills", {"run_id": "base"}, sort=RECORDED)
        follow_ups = journal.find("follow_ups", {"run_id": "base"}, sort=RECORDED)
    times: dict[str, list[int]] = {}
    for f in fills:
        times.setdefault(f["client_id"], []).append(int(f["ts_ns"]))
    # An order filled over several instants: the checkpoint at its first fill.
    partly = next(t[0] for t in times.values() if len(set(t)) >= 3)
    # A follow-up set when its exit was sent: the checkpoint there.
    pending = next(int(d["ts_ns"]) for d in follow_ups if d["follow_up"] is not None)
    for k, cut in enumerate((partly, pending)):
        run_id = f"cut{k}"
        _crash_at(tmp_path, cut, run_id)
        proc = _start(tmp_path, BACKTEST, run_id)
        assert proc.wait(600) == 0, (tmp_path / f"{run_id}.log").read_text()[-3000:]
        resumed = _outcome(tmp_path, run_id)
        restored = resumed["starts"][-1]["restored"]
        assert restored["checkpoint_ns"] == cut
        assert restored["orders_working"] >= 1
        assert k == 0 or restored["follow_ups"] >= 1
        _assert_same_decisions(resumed, baseline)
