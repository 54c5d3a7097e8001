"""Fill markouts (results/markouts.py) on a hand-made tape: the last trade at or before each
horizon, signed by the fill's side; NaN past the tape's end."""

from __future__ import annotations

import numpy as np
import pytest
from cryptoarena.trading.results.markouts import markouts_bps

S = 1_000_000_000


def test_markouts_read_the_last_trade_at_each_horizon_from_the_fills_side() -> None:
    tape_ts = np.array([0, S // 2, 3 * S, 10 * S, 20 * S])
    tape_px = np.array([100.0, 101.0, 99.0, 100.5, 100.0])
    got = markouts_bps(
        np.array([0, 10 * S]), np.array([100.0, 100.0]), np.array([1, -1]), tape_ts, tape_px
    )
    # The buy at 100: 101 after 1 s, 99 after 5 s, 100.5 after 15 s. The sell at 100 (t 10 s):
    # 100.5 after 1 s and 5 s (against it); its 15 s horizon lies past the tape: unknown.
    assert got[0] == pytest.approx([100.0, -100.0, 50.0], abs=1e-9)
    assert got[1, :2] == pytest.approx([-50.0, -50.0], abs=1e-9)
    assert np.isnan(got[1, 2])


def test_no_fills_or_no_tape_give_no_markouts() -> None:
    empty = np.array([], np.int64)
    assert markouts_bps(empty, empty, empty, np.array([0]), np.array([1.0])).shape == (0, 3)
    assert np.isnan(markouts_bps(np.array([0]), np.array([1.0]), np.array([1]), empty, empty)).all()
