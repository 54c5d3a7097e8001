"""End to end: real recorded trades → a REAL model server (uvicorn, MLflow registry) → the
worker with every strategy on the paper exchange → the journal (litemongo)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from cryptoarena.config import Settings
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.engine.session import ExchangeKind, SessionOptions, Source, run_session
from cryptoarena.trading.journal import Journal

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

MODEL = "btcusdt-15s"


async def test_replay_through_a_real_model_server_into_the_journal(tmp_path, monkeypatch) -> None:
    import torch
    from cryptoarena.model.train import train_tiny
    from cryptoarena.serving.testing import run_server_process

    torch.set_num_threads(1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    info = train_tiny(uri, MODEL)  # the first 2 hours of the shipped day; we trade hours 3+
    settings = Settings(mongo={"embedded_dir": tmp_path / "journal"}, home=tmp_path)  # type: ignore[arg-type]
    config = all_strategies_config(bar_size="5s", fee_rate=0.0001, equity_every_s=5.0)
    worker_seen: list[Worker] = []
    original_run = Worker.run

    async def spy(self: Worker):  # keep the worker to check its books after the run
        worker_seen.append(self)
        return await original_run(self)

    monkeypatch.setattr(Worker, "run", spy)
    env = {"ARENA_MLFLOW__TRACKING_URI": uri, "ARENA_SERVING__MODEL_NAME": MODEL}
    # A loaded machine can take over a minute to import torch + MLflow and load the model.
    with run_server_process(env, ready=True, startup_timeout_s=150.0) as base_url:
        options = SessionOptions(
            source=Source.REPLAY,
            exchange=ExchangeKind.PAPER,
            run_id="e2e",
            start_minute=180.0,
            minutes=8.0,
            speed=None,
            forecast_url=base_url,
        )
        result = await run_session(settings, config, options, handle_signals=False)
    worker = worker_seen[0]

    with Journal.open(settings, run_id="e2e") as journal:
        names = {s.name for s in config.strategies}
        decisions = journal.find("decisions", {"run_id": "e2e"})
        real = Counter(d["strategy"] for d in decisions if not d["warming_up"])
        assert set(real) == names, f"no decisions after warm-up from {names - set(real)}"
        orders = journal.find("orders", {"run_id": "e2e"})
        fills = journal.find("fills", {"run_id": "e2e"})
        assert len(orders) == result.orders > 0 and len(fills) == result.fills > 0
        assert len({o["client_id"] for o in orders}) == len(orders)
        assert {f["strategy"] for f in fills} >= {"buy_hold", "sma_cross"}

        # The AI arm ran on the served model: one prediction per second once warm, each with
        # its realised price 15 s later (the last 15 s of the replay have no future to see).
        preds = journal.find("predictions", {"run_id": "e2e"}, sort=[("ts_ns", 1)])
        assert len(preds) > 300
        assert {p["model_version"] for p in preds} == {info.version}
        last_trade_ns = worker.state.last_trade_ns
        assert last_trade_ns is not None
        due = [p for p in preds if p["target_ts_ns"] <= last_trade_ns]
        assert len(due) >= len(preds) - 16
        for p in due:
            assert p["realised_price"] is not None and p["realised_ts_ns"] == p["target_ts_ns"]
        ai_decisions = [
            d for d in decisions if d["strategy"].startswith("ai_") and not d["warming_up"]
        ]
        assert any("model v" in d["reason"] for d in ai_decisions)

        # Books: equity = cash + position value − fees; fills rebuild them; the venue agrees.
        mark = Decimal(str(worker.state.last_price))
        for name, book in worker.books.items():
            assert book.equity(mark) == book.cash + book.qty * mark - book.fees
            assert book.fills == sum(1 for f in fills if f["strategy"] == name)
            fees = sum((Decimal(f["fee"]) for f in fills if f["strategy"] == name), Decimal(0))
            assert book.fees == fees
        # Each strategy trades its own account on the paper venue: the venue's total is the net.
        venue = worker.exchange.venue
        net = sum(b.qty for b in worker.books.values())
        assert sum(a.position("BTCUSDT").qty for a in venue.accounts.values()) == net
        latest = journal.latest_equity("e2e")
        assert set(latest) == names
        for doc in latest.values():
            assert doc["equity"] == pytest.approx(
                doc["cash"] + doc["qty"] * doc["mark"] - doc["fees"]
            )
