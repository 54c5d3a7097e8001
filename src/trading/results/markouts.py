"""Fill markouts: how the market moved after each fill, from the fill's side (issue #20 item 2).

The markout of a fill at horizon ``h`` is the last trade price at or before ``fill time + h``
against the fill price, in basis points, signed so that positive is good for the filled side
(the price rose after a buy, fell after a sell). Negative maker markouts are adverse selection:
quotes filled just before the market moved through them.
"""

from __future__ import annotations

import numpy as np

HORIZONS_S = (1, 5, 15)
NS_PER_S = 1_000_000_000


def markouts_bps(
    fill_ts: np.ndarray,
    fill_px: np.ndarray,
    fill_side: np.ndarray,
    tape_ts: np.ndarray,
    tape_px: np.ndarray,
    horizons_s: tuple[int, ...] = HORIZONS_S,
) -> np.ndarray:
    """(n fills, len(horizons_s)) markouts in bps; NaN where the tape ends before the horizon.
    ``fill_side`` is +1 for a buy, -1 for a sell; ``tape_ts`` must be sorted."""
    fill_ts = np.asarray(fill_ts, np.int64)
    fill_px = np.asarray(fill_px, np.float64)
    side = np.asarray(fill_side, np.float64)
    tape_ts = np.asarray(tape_ts, np.int64)
    tape_px = np.asarray(tape_px, np.float64)
    out = np.full((len(fill_ts), len(horizons_s)), np.nan)
    if not len(tape_ts) or not len(fill_ts):
        return out
    last = tape_ts[-1]
    for k, h in enumerate(horizons_s):
        at = fill_ts + h * NS_PER_S
        idx = np.searchsorted(tape_ts, at, side="right") - 1
        ok = (idx >= 0) & (at <= last)
        mark = tape_px[np.clip(idx, 0, len(tape_px) - 1)]
        out[ok, k] = side[ok] * (mark[ok] / fill_px[ok] - 1.0) * 1e4
    return out
