"""The lake: trades and 1-second bars as Parquet, partitioned by symbol and UTC date.

Layout under the lake root::

    trades/symbol=BTCUSDT/date=2020-02-22/trades.parquet       compacted trades of the day
    trades/symbol=BTCUSDT/date=2020-02-22/part-<ns>-<id>.parquet  appended by live recording
    bars_1s/symbol=BTCUSDT/date=2020-02-22/bars.parquet        1 s bars built from that day's trades
    book/symbol=BTCUSDT/date=2020-02-22/part-<ns>-<id>.parquet  top-N order-book snapshots (live)

Every file is written to a temporary name in its folder and renamed into place, so a reader or a
crash never sees half a file. Files are sorted by time and written in row groups that start at every
UTC hour (at most 65,536 trades or 3,600 bars each), whose min/max ``ts`` statistics let a windowed read skip
everything outside the window: reads go through ``pyarrow.dataset`` with the time filter pushed
down to the row groups (:meth:`Lake.row_groups` says which ones a window touches), and
duplicates (appended parts) are dropped after. Imports merge into the day's file and drop trades whose id is
already there, so importing the same file twice leaves the same content. Bars are always rebuilt
from the stored trades (never taken on trust) after each import or compaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from cryptoarena.data.bars import build_bars, empty_bars
from cryptoarena.data.records import NS_PER_S, TRADE_COLUMNS, empty_trades

logger = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * NS_PER_S
HOUR_NS = 3_600 * NS_PER_S
TRADES, BARS, BOOK = "trades", "bars_1s", "book"
_MAIN = {TRADES: "trades.parquet", BARS: "bars.parquet"}
# Row groups start at every UTC hour and hold at most this many rows, so a 1-hour window skips
# the rest of the day (a busy hour of trades is split further).
ROW_GROUP_ROWS = {TRADES: 65_536, BARS: 3_600, BOOK: 3_600}


@dataclass(frozen=True)
class PartitionWrite:
    """What one import or compaction did to one (symbol, date) partition."""

    symbol: str
    day: date
    added: int  # trades new to the lake
    duplicates: int  # trades already stored (same id)
    trades: int  # trades in the partition afterwards
    bars: int


@dataclass(frozen=True)
class PartitionInfo:
    symbol: str
    day: date
    trades: int
    bars: int
    first_ns: int | None
    last_ns: int | None
    pending_parts: int  # appended files not compacted yet


def day_of(ts_ns: int) -> date:
    return datetime.fromtimestamp(ts_ns // NS_PER_S, UTC).date()


def day_start_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * NS_PER_S


def _atomic_write(frame: pd.DataFrame, path: Path, row_group_rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not "*.parquet": readers list the partition while appends land (those take no lock).
    tmp = path.parent / f".{uuid.uuid4().hex}.tmp"
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with pq.ParquetWriter(tmp, table.schema) as writer:
            for lo, hi in _row_group_bounds(frame["ts"].to_numpy(np.int64), row_group_rows):
                writer.write_table(table.slice(lo, hi - lo), row_group_size=hi - lo)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file
    finally:
        tmp.unlink(missing_ok=True)


def _row_group_bounds(ts: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """Row ranges for the row groups: a new group at every UTC hour (so an hour's window reads
    its own group) and every ``max_rows`` rows within an hour. ``ts`` is sorted (or nearly:
    appended parts), so groups hold disjoint time ranges."""
    if len(ts) == 0:
        return [(0, 0)]
    hours = ts // HOUR_NS
    cuts = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist(), len(ts)]
    bounds: list[tuple[int, int]] = []
    for lo, hi in itertools.pairwise(cuts):
        bounds.extend((a, min(a + max_rows, hi)) for a in range(lo, hi, max_rows))
    return bounds


def _dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the first of each trade id (rows without an id are compared whole)."""
    ids = frame["trade_id"].astype(str)
    keyed = ids != ""
    dup = keyed & ids.duplicated(keep="first")
    dup |= ~keyed & frame.duplicated(keep="first")
    return frame[~dup]


class Lake:
    """Parquet trades and bars under ``root`` (``settings.data.lake_dir``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def partition(self, kind: str, symbol: str, day: date) -> Path:
        return self.root / kind / f"symbol={symbol}" / f"date={day.isoformat()}"

    @contextlib.contextmanager
    def _locked(self, symbol: str, day: date, *, shared: bool = False) -> Iterator[None]:
        # One writer per partition at a time (import and compaction may overlap); readers share
        # the lock so compaction cannot swap files between their listing and their reads.
        folder = self.partition(TRADES, symbol, day)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- writing -------------------------------------------------------------------------
    def write_trades(self, symbol: str, trades: pd.DataFrame) -> list[PartitionWrite]:
        """Merge trades into their days (dedupe by id), then rebuild those days' bars."""
        results = []
        for day, part in self._split_days(trades):
            with self._locked(symbol, day):
                results.append(self._merge(symbol, day, [part]))
        return results

    def append_trades(self, symbol: str, trades: pd.DataFrame) -> list[Path]:
        """Fast path for live recording: a new small file per day; :meth:`compact` merges them."""
        paths = []
        for day, part in self._split_days(trades):
            name = f"part-{int(part['ts'].iloc[0])}-{uuid.uuid4().hex[:8]}.parquet"
            path = self.partition(TRADES, symbol, day) / name
            _atomic_write(part, path, ROW_GROUP_ROWS[TRADES])
            paths.append(path)
        return paths

    def append_book(self, symbol: str, book: pd.DataFrame) -> list[Path]:
        """Order-book snapshots (``cryptoarena.data.book.book_frame``): a new part file per day.
        Book parts are never rewritten (no compaction), so reads need no lock."""
        paths: list[Path] = []
        if book.empty:
            return paths
        days = book["ts"].to_numpy(np.int64) // NS_PER_DAY
        for d in np.unique(days):
            part = book[days == d].reset_index(drop=True)
            name = f"part-{int(part['ts'].iloc[0])}-{uuid.uuid4().hex[:8]}.parquet"
            path = self.partition(BOOK, symbol, day_of(int(d) * NS_PER_DAY)) / name
            _atomic_write(part, path, ROW_GROUP_ROWS[BOOK])
            paths.append(path)
        return paths

    def read_book(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> pd.DataFrame:
        """Book snapshots with ``start_ns <= ts < end_ns``, by time (one row per ``ts``)."""
        expr = _ts_filter(start_ns, end_ns)
        tables = []
        for path in self._files(BOOK, symbol, start_ns, end_ns):
            fragments = _fragments(path, expr)
            for fragment in fragments:
                table = fragment.to_table(filter=expr) if expr is not None else fragment.to_table()
                if table.num_rows:
                    tables.append(table)
        if not tables:
            return pd.DataFrame({"ts": pd.Series(dtype=np.int64)})
        frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
        frame = frame.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
        return frame.reset_index(drop=True)

    def compact(self, symbol: str | None = None) -> list[PartitionWrite]:
        """Merge appended part files into each day's file and rebuild its bars."""
        results = []
        for sym in [symbol] if symbol else self.symbols():
            for day in self.days(sym):
                folder = self.partition(TRADES, sym, day)
                if not any(folder.glob("part-*.parquet")):
                    continue
                with self._locked(sym, day):
                    parts = sorted(folder.glob("part-*.parquet"))
                    frames = [pd.read_parquet(p) for p in parts]
                    results.append(self._merge(sym, day, frames))
                    for p in parts:
                        p.unlink()
        return results

    def _split_days(self, trades: pd.DataFrame) -> Iterator[tuple[date, pd.DataFrame]]:
        if trades.empty:
            return
        frame = trades[list(TRADE_COLUMNS)]
        days = frame["ts"].to_numpy(np.int64) // NS_PER_DAY
        for d in np.unique(days):
            yield day_of(int(d) * NS_PER_DAY), frame[days == d].reset_index(drop=True)

    def _merge(self, symbol: str, day: date, new: list[pd.DataFrame]) -> PartitionWrite:
        path = self.partition(TRADES, symbol, day) / _MAIN[TRADES]
        old = pd.read_parquet(path) if path.exists() else empty_trades()
        incoming = sum(len(f) for f in new)
        merged = _dedupe(pd.concat([old, *new], ignore_index=True))
        merged = merged.sort_values("ts", kind="stable").reset_index(drop=True)
        added = len(merged) - len(old)
        if added or not path.exists():
            _atomic_write(merged, path, ROW_GROUP_ROWS[TRADES])
        bars_path = self.partition(BARS, symbol, day) / _MAIN[BARS]
        bars = build_bars(merged) if len(merged) else empty_bars()
        if added or not bars_path.exists():
            _atomic_write(bars, bars_path, ROW_GROUP_ROWS[BARS])
        logger.info("lake %s %s: +%d trades (%d duplicate)", symbol, day, added, incoming - added)
        return PartitionWrite(symbol, day, added, incoming - added, len(merged), len(bars))

    # ---- reading -------------------------------------------------------------------------
    def symbols(self, kind: str = TRADES) -> list[str]:
        base = self.root / kind
        if not base.is_dir():
            return []
        return sorted(p.name.split("=", 1)[1] for p in base.glob("symbol=*") if p.is_dir())

    def days(self, symbol: str, kind: str = TRADES) -> list[date]:
        base = self.root / kind / f"symbol={symbol}"
        if not base.is_dir():
            return []
        return sorted(date.fromisoformat(p.name.split("=", 1)[1]) for p in base.glob("date=*"))

    def _files(
        self, kind: str, symbol: str, start_ns: int | None, end_ns: int | None
    ) -> Iterator[Path]:
        """The Parquet files of the days that overlap the window (caller holds no lock)."""
        for day in self.days(symbol, kind):
            lo = day_start_ns(day)
            if (end_ns is not None and lo >= end_ns) or (
                start_ns is not None and lo + NS_PER_DAY <= start_ns
            ):
                continue
            yield from sorted(self.partition(kind, symbol, day).glob("*.parquet"))

    def row_groups(
        self, kind: str, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[tuple[Path, list[int]]]:
        """Which row groups of which files a window read touches: those whose ``ts``
        statistics can overlap ``[start_ns, end_ns)`` (the filter pyarrow pushes down)."""
        out = []
        expr = _ts_filter(start_ns, end_ns)
        for path in self._files(kind, symbol, start_ns, end_ns):
            groups = _fragments(path, expr)
            out.append((path, [g.id for f in groups for g in f.row_groups]))
        return out

    def _read(
        self, kind: str, symbol: str, start_ns: int | None, end_ns: int | None
    ) -> list[pa.Table]:
        tables: list[pa.Table] = []
        expr = _ts_filter(start_ns, end_ns)
        for day in self.days(symbol, kind):
            lo = day_start_ns(day)
            if (end_ns is not None and lo >= end_ns) or (
                start_ns is not None and lo + NS_PER_DAY <= start_ns
            ):
                continue
            with self._locked(symbol, day, shared=True):
                for path in sorted(self.partition(kind, symbol, day).glob("*.parquet")):
                    if expr is None:  # the whole file: no pruning to do
                        tables.append(pq.read_table(path))
                        continue
                    fragments = _fragments(path, expr)
                    if not fragments:
                        continue
                    dataset = ds.FileSystemDataset(
                        fragments, fragments[0].physical_schema, ds.ParquetFileFormat()
                    )
                    table = dataset.to_table(filter=expr)
                    if table.num_rows:
                        tables.append(table)
        return tables

    def read_trades(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> pd.DataFrame:
        """Trades with ``start_ns <= ts < end_ns`` (uncompacted parts included, deduped)."""
        tables = self._read(TRADES, symbol, start_ns, end_ns)
        if not tables:
            return empty_trades()
        frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
        if len(tables) > 1:  # appended parts may repeat trades of the day's file
            frame = _dedupe(frame)
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def read_bars(
        self, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> pd.DataFrame:
        """1-second bars with ``start_ns <= ts < end_ns``."""
        tables = self._read(BARS, symbol, start_ns, end_ns)
        if not tables:
            return empty_bars()
        frame = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def info(self) -> list[PartitionInfo]:
        """What the lake holds, from Parquet metadata (no data pages are read)."""
        out = []
        for symbol in self.symbols():
            for day in self.days(symbol):
                folder = self.partition(TRADES, symbol, day)
                main = folder / _MAIN[TRADES]
                trades, first, last = 0, None, None
                if main.exists():
                    meta = pq.ParquetFile(main).metadata
                    trades = meta.num_rows
                    first, last = _ts_span(meta)
                bars_file = self.partition(BARS, symbol, day) / _MAIN[BARS]
                bars = pq.ParquetFile(bars_file).metadata.num_rows if bars_file.exists() else 0
                parts = len(list(folder.glob("part-*.parquet")))
                out.append(PartitionInfo(symbol, day, trades, bars, first, last, parts))
        return out


def _ts_filter(start_ns: int | None, end_ns: int | None) -> pc.Expression | None:
    expr = None
    if start_ns is not None:
        expr = pc.field("ts") >= pa.scalar(int(start_ns), pa.int64())
    if end_ns is not None:
        below = pc.field("ts") < pa.scalar(int(end_ns), pa.int64())
        expr = below if expr is None else expr & below
    return expr


def _fragments(path: Path, expr: pc.Expression | None) -> list[ds.ParquetFileFragment]:
    """One fragment per row group of ``path`` that the filter cannot rule out by statistics."""
    fragment = next(iter(ds.dataset(path, format="parquet").get_fragments()))
    assert isinstance(fragment, ds.ParquetFileFragment)
    if expr is None:
        return [fragment]
    return list(fragment.split_by_row_group(expr))


def _ts_span(meta: pq.FileMetaData) -> tuple[int | None, int | None]:
    col = meta.schema.names.index("ts")
    lows, highs = [], []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if stats is not None and stats.has_min_max:
            lows.append(int(stats.min))
            highs.append(int(stats.max))
    return (min(lows), max(highs)) if lows else (None, None)
