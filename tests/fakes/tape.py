"""A slice of the real shipped trade tape (Binance BTCUSDT perpetual, 2020-02-22) as Trades."""

from __future__ import annotations

from functools import lru_cache

from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import Trade
from cryptoarena.data.samples import TARDIS_DAY, sample_path


@lru_cache(maxsize=1)
def _day() -> tuple[Trade, ...]:
    frame, _ = load_trades(sample_path(TARDIS_DAY))
    frame = frame.head(20_000)
    return tuple(
        Trade(int(ts), float(p), float(s), int(side), str(tid), "BTCUSDT")
        for ts, p, s, side, tid in zip(
            frame["ts"],
            frame["price"],
            frame["size"],
            frame["side"],
            frame["trade_id"],
            strict=True,
        )
    )


def real_tape(count: int = 2000, start: int = 0) -> list[Trade]:
    """``count`` consecutive real trades from the shipped day, starting at index ``start``."""
    return list(_day()[start : start + count])
