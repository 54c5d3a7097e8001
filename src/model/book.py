"""Order-book data → per-second book columns next to the 1-second bars.

Two recorded sources: the Bitstamp 2015 raw log (top-20 ``order_book`` snapshots, ~2 s apart)
and a raw Binance websocket recording (hftbacktest format: ``bookTicker`` for the top of book,
``depth`` diffs for deeper levels). Each becomes, per second, the last known state —
``bid``, ``ask`` (best prices), ``bid_sz1``/``ask_sz1`` (sizes at the best level) and
``bid_sz5``/``ask_sz5`` (sizes summed over the best five levels) — forward-filled, NaN before
the first state. Where quotes exist the bar's ``close`` is the mid price (the target a book model
forecasts); the book features themselves live in :mod:`~cryptoarena.model.features`.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from cryptoarena.data.bars import build_bars
from cryptoarena.data.loaders import load_binance_feed
from cryptoarena.data.records import NS_PER_S, LoadReport

logger = logging.getLogger(__name__)

BOOK_COLUMNS = ("bid", "ask", "bid_sz1", "ask_sz1", "bid_sz5", "ask_sz5")
LEVELS = 5


def has_book(bars: pd.DataFrame) -> bool:
    """Whether a bar frame carries book columns with at least one known state."""
    return all(c in bars for c in BOOK_COLUMNS) and bool(np.isfinite(bars["bid"]).any())


def per_second(ts_ms: np.ndarray, rows: np.ndarray, first_s: int, n: int) -> pd.DataFrame:
    """The last state of each second (rows (m, 6) in BOOK_COLUMNS order), forward-filled."""
    out = np.full((n, len(BOOK_COLUMNS)), np.nan)
    if len(ts_ms):
        order = np.argsort(ts_ms, kind="stable")
        idx = ts_ms[order] // 1000 - first_s
        keep = (idx >= 0) & (idx < n)
        out[idx[keep]] = rows[order][keep]  # later states of a second overwrite earlier ones
    return pd.DataFrame(out, columns=list(BOOK_COLUMNS)).ffill()


def attach_book(bars: pd.DataFrame, book: pd.DataFrame, *, mid_close: bool = True) -> pd.DataFrame:
    """Bars with the book columns (aligned by position: both one row per second from the same
    first second). With ``mid_close`` the close becomes the mid wherever a quote is known, and
    high/low are widened to contain it."""
    if len(book) != len(bars):
        raise ValueError(f"book has {len(book)} seconds, bars {len(bars)}")
    out = bars.reset_index(drop=True).copy()
    for col in BOOK_COLUMNS:
        out[col] = book[col].to_numpy(np.float64)
    if mid_close:
        mid = (out["bid"] + out["ask"]).to_numpy() / 2
        known = np.isfinite(mid)
        close = np.where(known, mid, out["close"].to_numpy())
        out["close"] = close
        out["high"] = np.maximum(out["high"].to_numpy(), close)
        out["low"] = np.minimum(out["low"].to_numpy(), close)
    return out


def _bitstamp_states(path: Path, report: LoadReport) -> tuple[np.ndarray, np.ndarray]:
    ts: list[int] = []
    rows: list[tuple[float, ...]] = []
    with bz2.open(path, "rt") as f:
        for lineno, line in enumerate(f, start=1):
            if " order_book " not in line[:40]:
                continue
            try:
                ms, _, payload = line.rstrip("\n").split(" ", 2)
                data = json.loads(payload)
                bids = [(float(p), float(q)) for p, q in data["bids"][:LEVELS]]
                asks = [(float(p), float(q)) for p, q in data["asks"][:LEVELS]]
                if not bids or not asks or not 0 < bids[0][0] < asks[0][0]:
                    raise ValueError("crossed or empty book")
                rows.append(
                    (bids[0][0], asks[0][0], bids[0][1], asks[0][1],
                     sum(q for _, q in bids), sum(q for _, q in asks))
                )  # fmt: skip
                ts.append(int(ms))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    return np.asarray(ts, np.int64), np.asarray(rows, np.float64).reshape(-1, len(BOOK_COLUMNS))


def load_bitstamp_book_bars(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """The Bitstamp day's 1-second bars (close = mid) with its top-5 book columns."""
    from cryptoarena.model.bitstamp import load_bitstamp_bars

    bars, report = load_bitstamp_bars(path)
    ts, rows = _bitstamp_states(Path(path), report)
    first = int(bars["ts"].iloc[0]) // NS_PER_S
    return attach_book(bars, per_second(ts, rows, first, len(bars))), report


def _depth5(levels: dict[float, float], best: float, size1: float, bids: bool) -> float:
    """Best-level size (from the ticker) plus the next four levels of the diff-built book beyond
    it; levels at or inside the ticker's best are stale and ignored. NaN if too few levels."""
    import heapq

    if bids:
        deeper = heapq.nlargest(LEVELS - 1, (p for p in levels if p < best))
    else:
        deeper = heapq.nsmallest(LEVELS - 1, (p for p in levels if p > best))
    if len(deeper) < LEVELS - 1:
        return float("nan")
    return size1 + sum(levels[p] for p in deeper)


def _binance_states(path: Path, report: LoadReport) -> tuple[np.ndarray, np.ndarray]:
    """Top of book from ``bookTicker``; five-level depth from ``depth`` diffs applied to a book
    built from the recording. One state per second (the last), stamped in exchange time."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    top = (np.nan, np.nan, np.nan, np.nan)
    offset = 0  # exchange ms − recorder ms
    second: int | None = None
    ts: list[int] = []
    rows: list[tuple[float, ...]] = []

    def emit(sec: int) -> None:
        if np.isfinite(top[0]):
            b5 = _depth5(bids, top[0], top[2], bids=True)
            a5 = _depth5(asks, top[1], top[3], bids=False)
            rows.append((*top, b5, a5))
            ts.append(sec * 1000 + 999)

    opener = gzip.open if Path(path).suffix == ".gz" else open
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, start=1):
            is_ticker = "@bookTicker" in line[:80]
            if not is_ticker and "@depth" not in line[:80]:
                continue
            try:
                local_ns, payload = line.split(" ", 1)
                local_ms = int(local_ns) // 1_000_000
                data = json.loads(payload)["data"]
                # Spot tickers carry no exchange time: the recorder's clock, shifted by its last
                # measured offset from the exchange's (depth events carry both).
                stamp = int(data["E"]) if "E" in data else local_ms + offset
                if not is_ticker:
                    offset = stamp - local_ms
                sec = stamp // 1000
                if second is not None and sec > second:
                    emit(second)
                second = sec if second is None else max(second, sec)
                if is_ticker:
                    top = (float(data["b"]), float(data["a"]), float(data["B"]), float(data["A"]))
                    continue
                for side, book in (("b", bids), ("a", asks)):
                    for p, q in data[side]:
                        price, qty = float(p), float(q)
                        if qty > 0:
                            book[price] = qty
                        else:
                            book.pop(price, None)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    if second is not None:
        emit(second)
    return np.asarray(ts, np.int64), np.asarray(rows, np.float64).reshape(-1, len(BOOK_COLUMNS))


def load_binance_feed_book_bars(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """1-second bars of a raw Binance recording's trades, with its book columns (close = mid)."""
    trades, report = load_binance_feed(Path(path))
    if trades.empty:
        raise ValueError(f"{path}: no trades in the recording")
    bars = build_bars(trades, NS_PER_S).reset_index(drop=True)
    ts, rows = _binance_states(Path(path), report)
    first = int(bars["ts"].iloc[0]) // NS_PER_S
    return attach_book(bars, per_second(ts, rows, first, len(bars))), report


def load_book_bars(path: Path | str) -> pd.DataFrame:
    """Bars with book columns from a Bitstamp log (``.log.bz2``) or a raw Binance recording."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    loader = load_bitstamp_book_bars if p.name.endswith(".log.bz2") else load_binance_feed_book_bars
    bars, report = loader(p)
    if report.malformed:
        logger.warning("%s", report.summary())
    return bars
