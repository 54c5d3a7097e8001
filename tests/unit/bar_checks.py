"""Shared checks for the bar builders' tests: generated trade tapes and bar-frame equality."""

from __future__ import annotations

import numpy as np
import pandas as pd
from cryptoarena.data.records import NS_PER_S, trades_frame
from hypothesis import strategies as st

# Exact columns must match bit for bit; sums may differ in the last bits (summation order).
EXACT = ("ts", "open", "high", "low", "close", "trades")
SUMS = ("volume", "vwap", "buy_volume", "sell_volume")


def assert_same_bars(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert len(a) == len(b)
    for col in EXACT:
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
    for col in SUMS:
        np.testing.assert_allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-11, err_msg=col)


@st.composite
def trade_frames(draw: st.DrawFn, max_trades: int = 200) -> pd.DataFrame:
    """Trades up to 3 s apart (often in the same nanosecond), any price, size and side."""
    n = draw(st.integers(1, max_trades))
    gaps = draw(st.lists(st.integers(0, 3 * NS_PER_S), min_size=n, max_size=n))
    ts = 1_700_000_000 * NS_PER_S + np.cumsum(gaps)
    price = draw(st.lists(st.floats(1.0, 1e6, allow_nan=False), min_size=n, max_size=n))
    size = draw(st.lists(st.floats(1e-6, 1e3, allow_nan=False), min_size=n, max_size=n))
    side = draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n))
    return trades_frame(ts, np.array(price), np.array(size), np.array(side), np.arange(n))
