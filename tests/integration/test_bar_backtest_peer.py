"""A month of real 1 m klines: ``arena backtest --bars`` makes the same trades as backtesting.py
set to the same fill rule (next bar's open, Bybit taker fee, no slippage, one position at a
time, flips at one open)."""

from __future__ import annotations

import time
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.config import get_settings
from cryptoarena.data.loaders import load_binance_klines_many
from cryptoarena.trading.arena_config import parse_arena_config
from cryptoarena.trading.bar_session import BarRunOptions, run_bar_backtest
from cryptoarena.trading.exchange.bar_fills import BarFillConfig
from cryptoarena.trading.exchange.models import Instrument
from cryptoarena.trading.journal import Journal

KLINES = Path("/work/shared/data/binance_spot_BTCUSDT_1m")
MONTH = "BTCUSDT-1m-2024-03-*.csv.gz"
FEE = 0.00055
# Fractional BTC as backtesting.py's FractionalBacktest trades it (1e-8), so that a book that
# lost most of its money still trades, as the peer's does.
SATOSHI = Instrument(
    symbol="BTCUSDT",
    tick_size=Decimal("0.01"),
    qty_step=Decimal("0.00000001"),
    min_qty=Decimal("0.00000001"),
    max_qty=Decimal("1000000"),
    min_notional=Decimal("0"),
    base_coin="BTC",
    quote_coin="USDT",
)
CONFIG = {
    # Rebalancing a drifting position is ours alone: only trade on target changes here.
    "arena": {"capital": 1_000_000.0, "min_trade_fraction": 0.5, "fee_rate": FEE},
    "risk": {
        "strategy": {"max_daily_loss": 1.0, "max_drawdown": 1.0,
                     "max_position_notional": 1e12, "max_order_notional": 1e12},
        "global": {"max_daily_loss": 1.0, "max_drawdown": 1.0, "max_gross_notional": 1e12},
    },
    "strategy": [
        {"name": "sma", "kind": "sma_cross", "params": {"fast": 20, "slow": 60, "bar_size": "1m"}}
    ],
}  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_TRADING__KILL_FILE", str(tmp_path / "kill"))


def peer_trades(bars: pd.DataFrame) -> pd.DataFrame:
    """backtesting.py, SMA 20/60 on TA-Lib's averages of the same closes."""
    talib = pytest.importorskip("talib")
    backtesting = pytest.importorskip("backtesting")
    from backtesting.lib import FractionalBacktest

    close = bars["close"].to_numpy(np.float64)
    fast, slow = talib.SMA(close, 20), talib.SMA(close, 60)

    class SmaCross(backtesting.Strategy):  # type: ignore[misc]
        def init(self) -> None:
            # Unscaled values (FractionalBacktest scales prices; a near tie would round apart).
            self.fast = self.I(lambda: fast, name="fast")
            self.slow = self.I(lambda: slow, name="slow")

        def next(self) -> None:
            if len(self.data) <= 60:  # our warm-up: the slow average's period
                return
            if self.fast[-1] > self.slow[-1] and not self.position.is_long:
                self.buy(size=0.999)
            elif self.fast[-1] < self.slow[-1] and not self.position.is_short:
                self.sell(size=0.999)

    data = pd.DataFrame(
        {"Open": bars["open"].to_numpy(), "High": bars["high"].to_numpy(),
         "Low": bars["low"].to_numpy(), "Close": close, "Volume": bars["volume"].to_numpy()},
        index=pd.to_datetime(bars["ts"].to_numpy(), utc=True),
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(
            data, SmaCross, cash=1_000_000, commission=FEE, exclusive_orders=True,
            trade_on_close=False,
        )  # fmt: skip
        trades = bt.run()._trades
    return pd.DataFrame(
        {
            "entry_ns": trades["EntryTime"].astype("int64").to_numpy(),
            "entry": trades["EntryPrice"].to_numpy(np.float64),
            "exit_ns": trades["ExitTime"].astype("int64").to_numpy(),
            "exit": trades["ExitPrice"].to_numpy(np.float64),
        }
    )


def our_trades(run_id: str) -> pd.DataFrame:
    """Round trips from the run's journaled fills (a flip is a close and an entry)."""
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


def test_a_month_of_klines_makes_backtesting_pys_trades() -> None:
    files = sorted(KLINES.glob(MONTH))
    if len(files) < 28:
        pytest.skip(f"the recorded 1 m klines are not at {KLINES}")
    bars, _ = load_binance_klines_many(files)
    config = parse_arena_config(CONFIG)
    run_id = f"peer-{time.time_ns()}"
    options = BarRunOptions(
        files=tuple(files), run_id=run_id, slippage_bps=0.0, progress=False,
        fill=BarFillConfig(instruments=(SATOSHI,)),
    )  # fmt: skip
    result = run_bar_backtest(get_settings(), config, options)
    assert result.complete
    ours, theirs = our_trades(run_id), peer_trades(bars)
    assert len(theirs) > 500  # a month of 1 m crossovers: hundreds of trades
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours["entry_ns"], theirs["entry_ns"])
    np.testing.assert_array_equal(ours["exit_ns"], theirs["exit_ns"])
    # The peer's FractionalBacktest scales prices by 1e-8 and back: equal to rounding.
    np.testing.assert_allclose(ours["entry"], theirs["entry"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours["exit"], theirs["exit"], rtol=1e-12, atol=0)
