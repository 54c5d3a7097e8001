"""A month of real 1 m klines: ``arena backtest --bars`` makes the same trades as backtesting.py
set to the same fill rule (next bar's open, Bybit taker fee, no slippage, one position at a
time, flips at one open). The peer's strategy, the satoshi instrument and the round trips read
from our journal are tests/bar_peer.py's, which bench/backtest_bars.py compares a year with."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import get_settings
from cryptoarena.trading.config import parse_arena_config
from cryptoarena.trading.engine.bar_session import BarRunOptions, run_bar_backtest
from cryptoarena.trading.exchange.paper import PaperExchangeConfig

from tests.bar_peer import (
    FEE,
    KLINES,
    NO_LIMITS,
    backtesting_py,
    our_trades,
    peer_data,
    satoshi_instrument,
)

MONTH = "BTCUSDT-1m-2024-03-*.csv.gz"
CONFIG = {
    # Rebalancing a drifting position is ours alone: only trade on target changes here.
    "arena": {"capital": 1_000_000.0, "min_trade_fraction": 0.5, "fee_rate": FEE},
    "risk": NO_LIMITS,
    "strategy": [
        {"name": "sma", "kind": "sma_cross", "params": {"fast": 20, "slow": 60, "bar_size": "1m"}}
    ],
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_TRADING__KILL_FILE", str(tmp_path / "kill"))


def test_a_month_of_klines_makes_backtesting_pys_trades() -> None:
    files = sorted(KLINES.glob(MONTH))
    if len(files) < 28:
        pytest.skip(
            f"needs the 28+ recorded 1 m kline files {MONTH} in {KLINES} (the shared data "
            "beside the checkout, or set ARENA_BENCH_KLINES)"
        )
    config = parse_arena_config(CONFIG)
    run_id = f"peer-{time.time_ns()}"
    options = BarRunOptions(
        files=tuple(files), run_id=run_id, slippage_bps=0.0, progress=False,
        fill=PaperExchangeConfig(instruments=(satoshi_instrument(),)),
    )  # fmt: skip
    result = run_bar_backtest(get_settings(), config, options)
    assert result.complete
    _, theirs = backtesting_py(*peer_data(files))
    ours = our_trades(run_id)
    assert len(theirs) > 500  # a month of 1 m crossovers: hundreds of trades
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours["entry_ns"], theirs["entry_ns"])
    np.testing.assert_array_equal(ours["exit_ns"], theirs["exit_ns"])
    # The peer's FractionalBacktest scales prices by 1e-8 and back: equal to rounding.
    np.testing.assert_allclose(ours["entry"], theirs["entry"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ours["exit"], theirs["exit"], rtol=1e-12, atol=0)
