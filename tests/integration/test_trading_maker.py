"""Maker execution through the real worker, router and paper exchange, on hand-made tapes
(issue #10 item 2): a maker arm joins the touch with a PostOnly limit, fills only when a later
trade prints through it (maker fee, is_maker), re-prices when the touch moves, cancels when the
target flips, when its forecast goes stale or when no target wanted it for its TTL (never on the
taker timeout), re-joins after a PostOnly reject, and leaves by market order when it must.

The venue runs the no-queue rule (``queue_model = "none"``: trades at the quote's price never
fill it) so each hand-made tape pins the router's mechanics; the queue models themselves are
tested in tests/unit/test_exchange_queues.py."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena.data.replay_feed import ReplayFeed
from cryptoarena.serving.client import SERVED, Forecast, ForecastUnavailable
from cryptoarena.trading.config import ArenaConfig, parse_arena_config
from cryptoarena.trading.engine import Worker
from cryptoarena.trading.journal import Journal
from cryptoarena.trading.risk import KillSwitch
from pydantic import SecretStr

from tests.integration.trading_kit import journal_settings, run_worker

S = 1_000_000_000
MS = 1_000_000
T0 = 1_699_999_980 * S  # on a minute: 1-minute bars close at T0 + 60 s, 120 s, …
BID, ASK = 10_000.0, 10_000.5

Row = tuple[float, float, float, int]  # (seconds after T0, price, size, taker side)


def quiet(start: int, end: int, bid: float = BID, ask: float = ASK) -> list[Row]:
    """A market that trades at its touch and never through it: a seller hits the bid, then a
    buyer lifts the ask, every second."""
    rows: list[Row] = []
    for s in range(start, end):
        rows += [(s + 0.2, bid, 0.3, -1), (s + 0.6, ask, 0.3, 1)]
    return rows


def tape(rows: Iterable[Row]) -> pd.DataFrame:
    rows = sorted(rows)
    return pd.DataFrame(
        {
            "ts": pd.array([T0 + round(r[0] * 1e9) for r in rows], dtype="int64"),
            "price": [r[1] for r in rows],
            "size": [r[2] for r in rows],
            "side": pd.array([r[3] for r in rows], dtype="int8"),
            "trade_id": [f"t{i}" for i in range(len(rows))],
        }
    )


class Script:
    """The AI arm's forecasts by the second of the bar they are made on: a 15 s log return, or
    None for an outage (the source raises, as a dead model server would)."""

    capabilities = SERVED
    model_run_id = None

    def __init__(self, plan: Callable[[int], float | None]) -> None:
        self.plan = plan

    async def health(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def forecast(self, symbol: str, bars: pd.DataFrame) -> Forecast:
        ts = int(bars["ts"].iloc[-1])
        move = self.plan((ts - T0) // S)
        if move is None:
            raise ForecastUnavailable("scripted outage")
        rets = tuple(move * (i + 1) / 15 for i in range(15))
        close = float(bars["close"].iloc[-1])
        return Forecast(symbol, ts, rets, tuple(close * math.exp(r) for r in rets), "script",
                        "1", 0)  # fmt: skip


def ai(execution: str = "maker", **params: Any) -> ArenaConfig:
    return parse_arena_config(
        {
            "arena": {"forecast_window": 16},
            "strategy": [
                {
                    "name": "ai_maker",
                    "kind": "ai_forecast",
                    "params": {"execution": execution, "threshold_bps": 1.0, **params},
                }
            ],
        }
    )


LONG, SHORT = 5e-4, -5e-4  # 5 bps, beyond the 1 bp threshold


async def run(
    tmp: Path, config: ArenaConfig, rows: list[Row], source: Any = None, **kw: Any
) -> dict[str, Any]:
    with Journal.open(journal_settings(tmp), run_id="m") as journal:
        kw.setdefault("venue", {"queue_model": "none"})
        worker, _ = await run_worker(config, tape(rows), journal, run_id="m", source=source, **kw)
        journal.sync(30)
        got = {
            kind: journal.find(kind, {"run_id": "m"}, sort=[("seq", 1)])
            for kind in ("orders", "order_updates", "fills", "decisions", "risk_events")
        }
    got["worker"] = worker
    return got


def at(doc: dict[str, Any]) -> float:
    return (doc["ts_ns"] - T0) / S


def updates_of(got: dict[str, Any], cid: str, status: str) -> list[dict[str, Any]]:
    return [u for u in got["order_updates"] if u["client_id"] == cid and u["status"] == status]


async def test_a_maker_buy_joins_the_bid_and_fills_only_through_it(tmp_path: Path) -> None:
    # Quiet at 10,000.0 / 10,000.5 (trades AT the bid never fill it), then a seller prints
    # through the bid at 9,999.9 at 40.3 s.
    rows = [*quiet(0, 60), (40.3, 9_999.9, 2.0, -1)]
    got = await run(tmp_path, ai(), rows, Script(lambda s: LONG if s >= 20 else 0.0))
    orders, fills = got["orders"], got["fills"]
    assert len(orders) == 1, orders
    (order,) = orders
    assert order["side"] == "Buy" and order["order_type"] == "Limit"
    assert order["time_in_force"] == "PostOnly" and Decimal(order["price"]) == Decimal(BID)
    assert at(order) < 30  # it rested through 10+ s of prints at its own price...
    (fill,) = fills  # ...and filled once, on the print through it
    assert fill["is_maker"] is True and Decimal(fill["price"]) == Decimal(BID)
    assert (fill["ts_ns"] - T0) == round(40.3 * S)
    qty = Decimal(fill["qty"])
    assert qty == Decimal(order["qty"]) and qty > 0
    assert Decimal(fill["fee"]) == (qty * Decimal(BID) * Decimal("0.0002")).quantize(
        Decimal("0.00000001")
    )
    # Resting past the 10 s taker timeout was not a reason to cancel it.
    assert not updates_of(got, order["client_id"], "Cancelled")


async def test_the_touch_moves_and_the_quote_is_amended(tmp_path: Path) -> None:
    # The market steps up 1.0 at 35 s: the bid the quote joined is left behind; the quote is
    # re-priced to the new bid, then a print through the NEW bid fills it there.
    rows = [*quiet(0, 35), *quiet(35, 70, BID + 1, ASK + 1), (55.3, BID + 0.9, 2.0, -1)]
    got = await run(tmp_path, ai(), rows, Script(lambda s: LONG if s >= 20 else 0.0))
    (order,) = got["orders"]
    assert Decimal(order["price"]) == Decimal(BID)
    amends = updates_of(got, order["client_id"], "Amend")
    assert [Decimal(a["price"]) for a in amends] == [Decimal(BID + 1)]
    assert 35 <= at(amends[0]) < 38
    (fill,) = got["fills"]
    assert Decimal(fill["price"]) == Decimal(BID + 1) and fill["is_maker"] is True


async def test_the_target_flips_the_quote_is_cancelled_and_the_other_side_joins(
    tmp_path: Path,
) -> None:
    rows = quiet(0, 60)
    got = await run(
        tmp_path, ai(), rows, Script(lambda s: LONG if 20 <= s < 35 else SHORT if s >= 35 else 0)
    )
    buy, sell = got["orders"]
    assert buy["side"] == "Buy" and Decimal(buy["price"]) == Decimal(BID)
    assert sell["side"] == "Sell" and Decimal(sell["price"]) == Decimal(ASK)
    assert sell["time_in_force"] == "PostOnly" and not got["fills"]
    (cancel,) = updates_of(got, buy["client_id"], "Cancelled")
    assert 35 <= at(cancel) <= at(sell) < 39  # cancelled on the flip, the ask joined at once


async def test_a_stale_forecast_cancels_the_quote(tmp_path: Path) -> None:
    # The model goes away at 30 s: its last forecast is stale 2.5 s later, the AI arm stands
    # aside, and its quote goes with it (long before the 15 s maker TTL).
    rows = quiet(0, 60)
    got = await run(
        tmp_path, ai(), rows, Script(lambda s: None if s >= 30 else LONG if s >= 20 else 0.0)
    )
    (order,) = got["orders"]
    (cancel,) = updates_of(got, order["client_id"], "Cancelled")
    assert 32 <= at(cancel) < 36
    stand = [d for d in got["decisions"] if d["target"] is None and at(d) >= 30]
    assert stand and "stand aside" in stand[0]["reason"]
    assert not got["fills"]


def hold(**params: Any) -> ArenaConfig:
    """Buy-and-hold on 1-minute bars as a maker: one target per minute, nothing in between."""
    return parse_arena_config(
        {
            "arena": {"order_timeout_s": 10.0},
            "strategy": [
                {
                    "name": "hold",
                    "kind": "buy_and_hold",
                    "params": {"bar_size": "1m", "execution": "maker", **params},
                }
            ],
        }
    )


async def test_a_quote_outlives_the_taker_timeout_but_not_its_ttl(tmp_path: Path) -> None:
    """The quote is placed at the first minute's close and no target confirms it for the next
    minute: 40 s later (4× the 10 s taker timeout, within the 60 s TTL) a print through the bid
    still fills it. With a 20 s TTL, it is cancelled after 20 s instead."""
    rows = [*quiet(0, 100), (100.3, BID - 0.1, 2.0, -1), *quiet(101, 110)]
    got = await run(tmp_path, hold(), rows)
    (order,) = got["orders"]
    assert 60 <= at(order) < 62
    (fill,) = got["fills"]
    assert fill["is_maker"] and (fill["ts_ns"] - order["ts_ns"]) > 35 * S
    assert not updates_of(got, order["client_id"], "Cancelled")

    short = await run(tmp_path / "ttl", hold(maker_ttl_s=20.0), rows)
    (order,) = short["orders"]
    (cancel,) = updates_of(short, order["client_id"], "Cancelled")
    assert 80 <= at(cancel) < 82 and not short["fills"]


async def test_a_post_only_reject_frees_the_slot_and_the_next_decision_joins_again(
    tmp_path: Path,
) -> None:
    """Until 30 s every second opens with a buyer printing 1.0 BELOW the bid just before our
    order arrives: a PostOnly buy at the bid would then take, and is cancelled with
    EC_PostOnlyWillTakeLiquidity. Each reject frees the slot; after 30 s the quote rests."""
    rows = quiet(0, 60) + [(s + 0.01, BID - 1, 0.1, 1) for s in range(0, 30)]
    got = await run(tmp_path, ai(), rows, Script(lambda s: LONG if s >= 20 else 0.0))
    orders = got["orders"]
    rejected = [
        o
        for o in orders
        if any(
            u.get("reason") == "EC_PostOnlyWillTakeLiquidity"
            for u in updates_of(got, o["client_id"], "Cancelled")
        )
    ]
    assert len(rejected) >= 3
    for first, second in itertools.pairwise(orders):
        if first in rejected:  # the next decision (a second later) joins again
            assert at(second) - at(first) <= 1.01
    last = orders[-1]
    assert last not in rejected and at(last) >= 30
    # It rests until the run stops (and cancels what is still open).
    assert all(at(u) >= 59 for u in updates_of(got, last["client_id"], "Cancelled"))


async def test_the_kill_switch_flattens_a_maker_by_market_order(tmp_path: Path) -> None:
    # Filled long as a maker at 25.3 s; the kill switch is engaged at 40 s: the flatten is a
    # market sell (reduce-only), not a quote at the ask.
    rows = [*quiet(0, 60), (25.3, BID - 0.1, 2.0, -1)]
    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))

    def kill(i: int, batch: Any) -> None:
        if batch[0].ts >= T0 + 40 * S and switch.read() is None:
            switch.engage("tok", "drill", by="test")

    got = await run(tmp_path, ai(), rows, Script(lambda s: LONG if s >= 20 else 0.0),
                    kill_switch=switch, on_trades=kill)  # fmt: skip
    entry, exit_ = got["orders"]
    assert entry["order_type"] == "Limit" and got["fills"][0]["is_maker"] is True
    assert exit_["side"] == "Sell" and exit_["order_type"] == "Market"
    assert exit_["price"] is None and exit_["reduce_only"] is True and at(exit_) >= 40
    assert got["fills"][-1]["is_maker"] is False
    assert got["worker"].books["ai_maker"].qty == 0


async def test_the_kill_switch_withdraws_a_resting_entry_quote(tmp_path: Path) -> None:
    # Flat with a bid resting when the kill switch is engaged at 30 s: the quote is cancelled at
    # once, so the print through it at 45 s opens nothing (the engine keeps no new risk working).
    rows = [*quiet(0, 60), (45.3, BID - 0.1, 2.0, -1)]
    switch = KillSwitch(tmp_path / "arena.kill", SecretStr("tok"))

    def kill(i: int, batch: Any) -> None:
        if batch[0].ts >= T0 + 30 * S and switch.read() is None:
            switch.engage("tok", "drill", by="test")

    got = await run(tmp_path, ai(), rows, Script(lambda s: LONG if s >= 20 else 0.0),
                    kill_switch=switch, on_trades=kill)  # fmt: skip
    (order,) = got["orders"]
    (cancel,) = updates_of(got, order["client_id"], "Cancelled")
    assert 30 <= at(cancel) < 32
    assert not got["fills"] and got["worker"].books["ai_maker"].qty == 0


async def test_a_quote_whose_cancel_failed_is_cancelled_again(tmp_path: Path) -> None:
    """The venue refuses the first cancel (a temporary outage): the quote still rests, nothing
    else is sent for it, and the cancel is tried again after ``order_timeout_s``."""
    from cryptoarena.clock import SimClock
    from cryptoarena.trading.exchange.errors import TemporaryExchangeError
    from cryptoarena.trading.exchange.paper import PaperExchange, PaperExchangeConfig

    class FirstCancelFails(PaperExchange):
        refused = 0

        async def cancel_order(self, symbol: str, client_id: str) -> Any:
            if not self.refused:
                self.refused += 1
                raise TemporaryExchangeError("service busy", code=10016)
            return await super().cancel_order(symbol, client_id)

    rows = quiet(0, 70)
    frame = tape(rows)
    # The venue runs on the worker's clock (the kit's run_worker builds the same one).
    clock = SimClock(int(frame["ts"].iloc[0]))
    venue = FirstCancelFails(
        PaperExchangeConfig(initial_balance=Decimal(10_000), queue_model="none"), clock=clock
    )
    script = Script(lambda s: LONG if 20 <= s < 35 else SHORT if s >= 35 else 0)
    with Journal.open(journal_settings(tmp_path), run_id="m") as journal:
        feed = ReplayFeed(frame, batch_ms=100, max_batch=20)
        worker = Worker(ai(), feed=feed, exchange=venue, journal=journal, clock=clock,
                        run_id="m", forecasts=script)  # fmt: skip
        await worker.run()
        journal.sync(30)
        got = {
            k: journal.find(k, {"run_id": "m"}, sort=[("seq", 1)])
            for k in ("orders", "order_updates")
        }
    assert venue.refused == 1
    buy, sell = got["orders"]
    (cancel,) = updates_of(got, buy["client_id"], "Cancelled")
    assert 45 <= at(cancel) < 49 and at(sell) >= at(cancel)  # 10 s after the refused cancel
