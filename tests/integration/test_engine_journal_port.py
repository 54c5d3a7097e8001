"""The engine talks to its journal through the typed ports (engine/ports.py): the journal's
backlog is public (duties.py paces a backtest on it instead of reaching into the writer's
queue) and the bulk path is declared, not probed."""

from __future__ import annotations

import ast
import time
from pathlib import Path

from cryptoarena.clock import SimClock
from cryptoarena.trading.engine.result import WorkerResult
from cryptoarena.trading.engine.state import Recorder
from cryptoarena.trading.journal.journal import Journal

from tests.integration.trading_kit import journal_settings

ENGINE = Path(__file__).resolve().parents[2] / "src" / "trading" / "engine"


def test_the_backlog_drains_to_zero_and_a_bulk_journal_is_buffered(tmp_path: Path) -> None:
    clock = SimClock(1_700_000_000 * 10**9)
    with Journal.open(journal_settings(tmp_path), run_id="r", clock=clock) as journal:
        assert not journal.bulk and not Recorder(journal, WorkerResult("r")).buffered
        for i in range(2_000):
            journal.record("runs", {"event": "note", "i": i})
        assert journal.flush(30)
        deadline = time.monotonic() + 30
        while journal.backlog() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert journal.backlog() == 0
        assert len(journal.find("runs", {"run_id": "r"})) == 2_000
    with Journal.open(journal_settings(tmp_path), run_id="b", clock=clock, bulk=True) as bulk:
        assert Recorder(bulk, WorkerResult("r")).buffered


def test_the_engine_reaches_into_no_private_attribute_of_another_object() -> None:
    # ``x._name`` only on ``self`` / ``cls`` (duties.py read journal._writer._queue).
    assert ENGINE.is_dir(), f"missing {ENGINE}"
    found = []
    for path in sorted(ENGINE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_")):
                continue
            if node.attr.startswith("__") or (
                isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}
            ):
                continue
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and str(node.args[1].value).startswith("_")
                and not str(node.args[1].value).startswith("__")
            ):
                found.append(
                    f"{path.name}:{node.lineno} {node.func.id}(..., {node.args[1].value!r})"
                )
    assert found == []
