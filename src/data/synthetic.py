"""SYNTHETIC trade tapes made from real recorded trades: a block bootstrap.

A season or a soak needs more days than were recorded. :func:`bootstrap_trades` draws blocks of
consecutive real trades (``block_s`` of market time each, uniformly from the source tape, with a
seeded generator: the same seed gives the same tape), lays them end to end in time, and rescales
each block's prices by one factor so its first trade opens at the previous block's last price
(the blocks join without a jump; within a block every return, size, side and inter-trade gap is
the real one). Trade ids are renumbered. The result is a plausible tape, NOT a market
recording: its long-horizon drift is a random walk of real block returns, and it has no news,
no regime of its own. Anything scored on it must say so (:data:`SYNTHETIC_NOTE`).

    trades = bootstrap_trades(real, days=30, seed=7)   # bench/soak.py; docs/data.md
    write_tardis_csv(trades, Path("season.csv.gz"))

The file written is a Tardis-style trades CSV (the loader's format), so ``arena trade
--replay-file`` replays it unchanged; its ``exchange`` column reads ``synthetic``.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from cryptoarena.data.records import BUY, SELL

logger = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
DAY_S = 86_400
SYNTHETIC_NOTE = (
    "SYNTHETIC tape: a block bootstrap of real recorded trades (price-rescaled blocks), "
    "not a market recording"
)


def bootstrap_trades(
    trades: pd.DataFrame,
    *,
    days: float,
    seed: int,
    block_s: float = 1_800.0,
    start_ns: int | None = None,
    tick: float = 0.01,
) -> pd.DataFrame:
    """``days`` of synthetic trades (the loader's columns: ``ts``, ``price``, ``size``, ``side``
    (``records.BUY``/``SELL``/``UNKNOWN_SIDE``), ``trade_id``)
    from the real ``trades`` (time-ordered, the loader's columns). Deterministic in ``seed``.
    ``start_ns``: the first trade's time (default: the source's first trade)."""
    if days <= 0 or block_s <= 0:
        raise ValueError("days and block_s must be positive")
    ts = trades["ts"].to_numpy(np.int64)
    if len(ts) < 2:
        raise ValueError("the source tape needs at least two trades")
    price = trades["price"].to_numpy(np.float64)
    size = trades["size"].to_numpy(np.float64)
    side = trades["side"].to_numpy(np.int8)
    block_ns = int(block_s * NS_PER_S)
    span = int(ts[-1] - ts[0])
    if span <= block_ns:
        raise ValueError(f"the source tape ({span / NS_PER_S:.0f} s) is shorter than a block")
    rng = np.random.default_rng(seed)
    total_ns = int(days * DAY_S * NS_PER_S)
    out_t: list[np.ndarray] = []
    out_p: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    at = int(ts[0] if start_ns is None else start_ns)
    end = at + total_ns
    last_price = float(price[0])
    while at < end:
        begin = int(ts[0]) + int(rng.integers(0, span - block_ns))
        lo, hi = np.searchsorted(ts, [begin, begin + block_ns])
        if hi <= lo:
            continue  # a block of silence: draw again
        t = ts[lo:hi] - begin + at
        p = price[lo:hi] * (last_price / price[lo])
        p = np.round(p / tick) * tick
        keep = t < end
        out_t.append(t[keep])
        out_p.append(p[keep])
        out_i.append(np.arange(lo, hi)[keep])
        last_price = float(p[-1])
        at += block_ns
    idx = np.concatenate(out_i)
    return pd.DataFrame(
        {
            "ts": np.concatenate(out_t),
            "price": np.concatenate(out_p),
            "size": size[idx],
            "side": side[idx],
            "trade_id": np.arange(1, len(idx) + 1),
        }
    )


def write_tardis_csv(trades: pd.DataFrame, path: Path, symbol: str = "BTCUSDT") -> Path:
    """Write ``trades`` as a Tardis trades CSV (gzip when ``path`` ends in .gz): the format
    :func:`cryptoarena.data.loaders.load_trades` reads, so a replay takes it unchanged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    us = trades["ts"].to_numpy(np.int64) // 1_000
    frame = pd.DataFrame(
        {
            "exchange": "synthetic",
            "symbol": symbol,
            "timestamp": us,
            "local_timestamp": us,
            "id": trades["trade_id"].to_numpy(),
            "side": np.select([trades["side"] == BUY, trades["side"] == SELL], ["buy", "sell"], ""),
            "price": trades["price"].map("{:.2f}".format),
            "amount": trades["size"].to_numpy(),
        }
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="") as stream:
        frame.to_csv(stream, index=False)
    return path
