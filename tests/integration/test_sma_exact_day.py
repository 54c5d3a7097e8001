"""SMA 5/20 on the whole shipped day's 1-second bars: the engine's fills equal an
exact-arithmetic implementation of the documented rule (issue #20 item 8).

The oracle (test_backtest_oracle.py) sums the closes in integer cents, so "above", "below" and
a tie mean what they say. The day has exact ties of the two averages (flat seconds repeat a
price): there a float running sum says ±1 by rounding noise, the documented rule says "no
opinion, keep the position".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.samples import TARDIS_DAY, sample_path

from tests.integration.test_backtest_oracle import NS, oracle, run_sma
from tests.integration.trading_kit import tardis_day

pytestmark = pytest.mark.slow


async def test_sma_fills_over_the_shipped_day_equal_the_exact_rule() -> None:
    if not sample_path(TARDIS_DAY).exists():
        pytest.skip(f"missing the shipped day {TARDIS_DAY}")
    trades = tardis_day()
    # Precondition: the day has exact ties, where float noise could decide.
    sec = trades["ts"].to_numpy(np.int64) // NS
    last = np.searchsorted(sec, np.arange(sec[0], sec[-1]), side="right") - 1
    cents = np.rint(trades["price"].to_numpy(np.float64)[last] * 100).astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(cents)))
    i = np.arange(20, len(cents))
    ties = 20 * (csum[i + 1] - csum[i + 1 - 5]) == 5 * (csum[i + 1] - csum[i + 1 - 20])
    assert ties.sum() > 100
    got, _ = await run_sma(trades, "exact")
    want = oracle(trades, ties=True)
    assert len(want) > 1000, "too few fills to say anything"
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
