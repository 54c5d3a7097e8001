"""The bar backtest's peer comparison, shared by tests/integration/test_bar_backtest_peer.py
and bench/backtest_bars.py so both compare the same way: where the recorded klines are, the fee
and risk settings, the satoshi instrument, backtesting.py set to our fill rule (next bar's open,
Bybit taker fee, no slippage, one position at a time, a flip at one open) and the round trips
read back from our journal. Test-side code: backtesting.py and TA-Lib are dev dependencies."""

from __future__ import annotations

import os
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The recorded klines: ARENA_BENCH_KLINES, else the shared data beside the checkout.
KLINES = Path(
    os.environ.get(
        "ARENA_BENCH_KLINES",
        Path(__file__).resolve().parents[1].parent / "shared/data/binance_spot_BTCUSDT_1m",
    )
)
FEE = 0.00055
NO_LIMITS = {
    "strategy": {"max_daily_loss": 1.0, "max_drawdown": 1.0,
                 "max_position_notional": 1e12, "max_order_notional": 1e12},
    "global": {"max_daily_loss": 1.0, "max_drawdown": 1.0, "max_gross_notional": 1e12},
}  # fmt: skip


def satoshi_instrument() -> Any:
    from cryptoarena.trading.exchange.models import Instrument

    # Fractional BTC like the peer's FractionalBacktest: a book that lost most of its money
    # still trades, so the trade lists stay comparable to the end.
    return Instrument(
        symbol="BTCUSDT", tick_size=Decimal("0.01"), qty_step=Decimal("0.00000001"),
        min_qty=Decimal("0.00000001"), max_qty=Decimal("1000000"), min_notional=Decimal("0"),
        base_coin="BTC", quote_coin="USDT",
    )  # fmt: skip


def our_trades(run_id: str) -> pd.DataFrame:
    from cryptoarena.config import get_settings
    from cryptoarena.trading.journal import Journal

    with Journal.open(get_settings(), run_id=run_id, readonly=True) as journal:
        fills = journal.find("fills", {"run_id": run_id}, sort=[("ts_ns", 1), ("seq", 1)])
    rows, position, entry = [], Decimal(0), None
    for fill in fills:
        if position == 0:
            entry = fill
        position += Decimal(fill["qty"]) * (1 if fill["side"] == "Buy" else -1)
        if position == 0 and entry is not None:
            rows.append(
                (entry["ts_ns"], float(entry["price"]), fill["ts_ns"], float(fill["price"]))
            )
    return pd.DataFrame(rows, columns=["entry_ns", "entry", "exit_ns", "exit"])


def peer_data(paths: list[Path]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    import talib
    from cryptoarena.data.loaders import load_binance_klines_many

    bars, _ = load_binance_klines_many(paths)
    close = bars["close"].to_numpy(np.float64)
    data = pd.DataFrame(
        {"Open": bars["open"].to_numpy(), "High": bars["high"].to_numpy(),
         "Low": bars["low"].to_numpy(), "Close": close, "Volume": bars["volume"].to_numpy()},
        index=pd.to_datetime(bars["ts"].to_numpy(), utc=True),
    )  # fmt: skip
    return data, talib.SMA(close, 20), talib.SMA(close, 60)


def backtesting_py(
    data: pd.DataFrame, fast: np.ndarray, slow: np.ndarray
) -> tuple[float, pd.DataFrame]:
    import backtesting
    from backtesting.lib import FractionalBacktest

    class SmaCross(backtesting.Strategy):  # type: ignore[misc]
        def init(self) -> None:
            # TA-Lib's averages of the unscaled closes (FractionalBacktest scales prices).
            self.fast = self.I(lambda: fast, name="fast")
            self.slow = self.I(lambda: slow, name="slow")

        def next(self) -> None:
            if len(self.data) <= 60:  # the same warm-up as ours
                return
            if self.fast[-1] > self.slow[-1] and not self.position.is_long:
                self.buy(size=0.999)
            elif self.fast[-1] < self.slow[-1] and not self.position.is_short:
                self.sell(size=0.999)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(data, SmaCross, cash=1_000_000, commission=FEE,
                                exclusive_orders=True, trade_on_close=False)  # fmt: skip
        started = time.perf_counter()
        trades = bt.run()._trades
        elapsed = time.perf_counter() - started
    return elapsed, pd.DataFrame(
        {
            "entry_ns": trades["EntryTime"].astype("int64").to_numpy(),
            "entry": trades["EntryPrice"].to_numpy(np.float64),
            "exit_ns": trades["ExitTime"].astype("int64").to_numpy(),
            "exit": trades["ExitPrice"].to_numpy(np.float64),
        }
    )
