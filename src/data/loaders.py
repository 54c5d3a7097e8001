"""Loaders for the recorded formats we meet, each returning a trade (or bar) frame and a report.

Malformed rows are counted in the :class:`LoadReport` and left out, never silently dropped and
never fatal: one bad line in a day of trades must not lose the day.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import io
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from cryptoarena.data.records import (
    BUY,
    SELL,
    UNKNOWN_SIDE,
    LoadReport,
    Trade,
    empty_trades,
    trades_frame,
)
from pyarrow.lib import ArrowException

logger = logging.getLogger(__name__)

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "num_trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)


class UnknownFormatError(ValueError):
    """The file is not in any format cryptoarena knows how to read."""


class DamagedFileError(ValueError):
    """The file is cut short or corrupt (a truncated download, a broken archive)."""


_Loaded = TypeVar("_Loaded")


def _damage_named(load: Callable[[Path], _Loaded]) -> Callable[[Path], _Loaded]:
    """A loader whose decompression/parquet failures become one DamagedFileError naming the
    file (a truncated .gz raises EOFError, which click turns into a bare "Aborted.")."""

    @functools.wraps(load)
    def checked(path: Path) -> _Loaded:
        try:
            return load(path)
        except (EOFError, zlib.error, gzip.BadGzipFile, ArrowException) as exc:
            raise DamagedFileError(f"{path}: damaged or truncated file ({exc})") from None
        except OSError as exc:
            # bz2 says "Invalid data stream" with a bare OSError; anything with an errno or a
            # subclass (missing file, permission, a directory) is a real I/O error: as it is.
            if type(exc) is not OSError or exc.errno is not None:
                raise
            raise DamagedFileError(f"{path}: damaged or truncated file ({exc})") from None

    return checked


def _open_text(path: Path) -> io.TextIOWrapper:
    """The file as text, decompressed on the fly (gzip or bz2, told by the magic bytes): a
    format check reads a few KB instead of decompressing the whole file first. Close it."""
    with path.open("rb") as head:
        magic = head.read(3)
    raw: io.BufferedIOBase
    if magic[:2] == b"\x1f\x8b":
        raw = gzip.open(path, "rb")  # noqa: SIM115 (the caller closes the wrapper)
    elif magic == b"BZh":
        raw = bz2.open(path, "rb")  # noqa: SIM115
    else:
        raw = path.open("rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def _side_codes(values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    return np.select([text == "buy", text == "sell"], [BUY, SELL], UNKNOWN_SIDE).astype(np.int8)


def _finish(frame: pd.DataFrame, report: LoadReport, *, ts_ns: pd.Series) -> pd.DataFrame:
    """Coerce, refuse invalid rows (counted), and build the canonical trade frame."""
    price = pd.to_numeric(frame["price"], errors="coerce")
    size = pd.to_numeric(frame["size"], errors="coerce")
    ok = ts_ns.notna() & price.notna() & size.notna() & (price > 0) & (size > 0)
    bad = int((~ok).sum())
    if bad:
        report.refuse(bad, f"bad time, price or size (first at {_where(frame, ~ok)})")
    side = frame["side"] if "side" in frame else pd.Series(UNKNOWN_SIDE, index=frame.index)
    sides = _side_codes(side) if side.dtype == object else side.to_numpy(np.int8)
    out = trades_frame(
        ts_ns[ok].to_numpy(np.int64),
        price[ok].to_numpy(),
        size[ok].to_numpy(),
        np.asarray(sides)[ok.to_numpy()],
        frame["trade_id"][ok].to_numpy(),
    )
    report.rows = len(out)
    return out


def _where(frame: pd.DataFrame, bad: pd.Series) -> str:
    """Where the first bad row is, for people: its 1-based line in the file when known."""
    first = frame.index[bad.to_numpy()][0]
    return f"line {first}" if frame.index.name == "line" else f"row {first + 1}"


def _read_csv(path: Path, report: LoadReport, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV; rows with the wrong number of fields are counted, not fatal.

    The frame is indexed by each row's 1-based line number in the file (index name "line"),
    so a refused row can be pointed at in an editor."""
    with _open_text(path) as stream:
        text = stream.read()
    numbered = [i for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    frame = pd.read_csv(io.StringIO(text), on_bad_lines="skip", dtype=str, **kwargs)
    data_lines = numbered[0 if kwargs.get("header", "infer") is None else 1 :]
    skipped = len(data_lines) - len(frame)
    if skipped > 0:
        # pandas skips lines with too many fields; these formats quote nothing, so count commas.
        ncols = len(frame.columns)
        lines = text.splitlines()
        too_long = {n for n in data_lines if lines[n - 1].count(",") + 1 > ncols}
        where = f" (first at line {min(too_long)})" if too_long else ""
        report.refuse(skipped, f"wrong number of fields{where}")
        data_lines = [n for n in data_lines if n not in too_long]
    if len(data_lines) == len(frame):
        frame.index = pd.Index(data_lines, name="line")
    return frame


def load_tardis_trades(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """Tardis.dev trades CSV (exchange,symbol,timestamp µs,local_timestamp,id,side,price,amount)."""
    report = LoadReport(str(path))
    raw = _read_csv(path, report)
    raw = raw.rename(columns={"amount": "size", "id": "trade_id"})
    ts = pd.to_numeric(raw["timestamp"], errors="coerce") * 1000
    return _finish(raw, report, ts_ns=ts), report


def load_bybit_trade_dump(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """Bybit public dump: linear (timestamp s, side, size, price, trdMatchID…) or spot (id, ms…)."""
    report = LoadReport(str(path))
    raw = _read_csv(path, report)
    if "trdMatchID" in raw.columns:
        raw = raw.rename(columns={"trdMatchID": "trade_id"})
        seconds = pd.to_numeric(raw["timestamp"], errors="coerce")
        # Seconds as float carry sub-ms digits: round to µs before scaling to avoid float noise.
        ts = (seconds * 1_000_000).round() * 1000
    elif {"id", "volume", "side"} <= set(raw.columns):
        raw = raw.rename(columns={"id": "trade_id", "volume": "size"})
        ts = pd.to_numeric(raw["timestamp"], errors="coerce") * 1_000_000
    else:
        raise UnknownFormatError(f"{path}: not a Bybit trade dump (columns {list(raw.columns)})")
    return _finish(raw, report, ts_ns=ts), report


def parse_bybit_public_trade(message: dict[str, Any] | str | bytes) -> list[Trade]:
    """Trades from one Bybit v5 ``publicTrade.<symbol>`` WebSocket message."""
    msg = json.loads(message) if isinstance(message, str | bytes) else message
    topic = str(msg.get("topic", ""))
    if not topic.startswith("publicTrade."):
        raise ValueError(f"not a publicTrade message: topic {topic!r}")
    trades = []
    for item in msg.get("data") or []:
        trades.append(
            Trade(
                ts=int(item["T"]) * 1_000_000,
                price=float(item["p"]),
                size=float(item["v"]),
                side=BUY if item["S"] == "Buy" else SELL,
                trade_id=str(item["i"]),
                symbol=str(item["s"]),
            )
        )
    return trades


def _read_bytes(path: Path) -> bytes:
    with _open_text(path) as stream:
        return bytes(stream.buffer.read())


def _klines_fast(data: bytes) -> pd.DataFrame | None:
    """Every field parsed as float64 by Arrow's CSV reader in one pass (3x pandas' C parser on
    a million rows), or None when any row does not parse (wrong field count, not a number): the
    careful path then counts and drops it. Times fit float64 exactly (µs since 1970 < 2**53)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if not data.strip():
        return None
    columns = list(KLINE_COLUMNS)
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=columns),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.float64())
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    return table.to_pandas()


def _kline_bars(num: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Numeric kline columns → the project's bar frame (BAR_COLUMNS), bad rows refused."""
    ok = num[["open_time", "open", "high", "low", "close", "volume"]].notna().all(axis=1)
    ok &= (num["open"] > 0) & (num["close"] > 0)
    bad = int((~ok).sum())
    if bad:
        report.refuse(bad, "non-numeric or non-positive kline fields")
        num = num[ok]
    open_time = num["open_time"].to_numpy(np.int64)
    # A value above 1e14 is microseconds (2025 files); below it, milliseconds.
    ts = np.where(open_time > 10**14, open_time * 1000, open_time * 1_000_000)
    volume = num["volume"].to_numpy(np.float64)
    quote = num["quote_volume"].to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(volume > 0, quote / volume, num["close"].to_numpy())
    buy = num["taker_buy_base_volume"].to_numpy(np.float64)
    bars = pd.DataFrame(
        {
            "ts": ts.astype(np.int64),
            "open": num["open"].to_numpy(np.float64),
            "high": num["high"].to_numpy(np.float64),
            "low": num["low"].to_numpy(np.float64),
            "close": num["close"].to_numpy(np.float64),
            "volume": volume,
            "vwap": vwap,
            "trades": num["num_trades"].fillna(0).to_numpy(np.int64),
            "buy_volume": buy,
            "sell_volume": volume - buy,
        }
    )
    report.rows = len(bars)
    if bars["ts"].is_monotonic_increasing:
        return bars
    return bars.sort_values("ts", kind="stable").reset_index(drop=True)


@_damage_named
def _read_checked(path: Path) -> bytes:
    return _read_bytes(path)


def looks_like_klines(path: Path) -> bool:
    """The first line is a Binance kline row (12 numeric fields), as ``load_trades`` tells."""
    with _open_text(Path(path)) as stream:
        first = stream.readline().strip()
    fields = first.split(",")
    return len(fields) == len(KLINE_COLUMNS) and all(
        f.replace(".", "", 1).isdigit() for f in fields
    )


@_damage_named
def load_binance_klines(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """Binance kline CSV (no header; ms times in 2024 files, µs from 2025) → 1-minute bar frame."""
    report = LoadReport(str(path))
    num = _klines_fast(_read_bytes(path))
    if num is None:
        raw = _read_csv(path, report, header=None, names=list(KLINE_COLUMNS))
        num = raw.apply(pd.to_numeric, errors="coerce")
    return _kline_bars(num, report), report


def load_binance_klines_many(paths: Sequence[Path]) -> tuple[pd.DataFrame, LoadReport]:
    """Many daily kline files (either time unit, any order) → one sorted bar frame.

    The files' text is parsed in one pass (one parser start for months of files); if any row is
    malformed, each file goes through :func:`load_binance_klines` instead. Bars repeated across
    files (same open time) are kept once and counted in the report."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no kline files given")
    report = LoadReport(str(paths[0]) if len(paths) == 1 else f"{len(paths)} kline files")
    chunks = [_read_checked(p) for p in paths]
    num = _klines_fast(b"".join(c if c.endswith(b"\n") else c + b"\n" for c in chunks if c))
    if num is not None:
        bars = _kline_bars(num, report)
    else:
        frames = []
        for path in paths:
            one, rep = load_binance_klines(path)
            frames.append(one)
            if rep.malformed:
                report.refuse(rep.malformed, rep.summary())
        bars = pd.concat(frames, ignore_index=True).sort_values("ts", kind="stable")
    dup = bars["ts"].duplicated(keep="first")
    if dup.any():
        report.refuse(int(dup.sum()), "bar repeated across files (same open time)")
        bars = bars[~dup]
    bars = bars.reset_index(drop=True)
    report.rows = len(bars)
    return bars, report


def load_binance_feed(path: Path, stream_suffix: str = "@trade") -> tuple[pd.DataFrame, LoadReport]:
    """Raw Binance WS recording (``<local_ns> <json>`` lines) → the trades in it."""
    report = LoadReport(str(path))
    ts, price, size, side, ids = [], [], [], [], []
    with _open_text(path) as stream:
        for lineno, line in enumerate(stream, start=1):
            if stream_suffix not in line:
                continue
            try:
                _, payload = line.split(" ", 1)
                data = json.loads(payload)["data"]
                ts.append(int(data["T"]) * 1_000_000)
                price.append(float(data["p"]))
                size.append(float(data["q"]))
                # m = buyer is maker, so the taker sold.
                side.append(SELL if data["m"] else BUY)
                ids.append(str(data["t"]))
            except (ValueError, KeyError, TypeError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    if not ts:
        return empty_trades(), report
    frame = trades_frame(
        np.array(ts), np.array(price), np.array(size), np.array(side), np.array(ids)
    )
    bad = ~((frame["price"] > 0) & (frame["size"] > 0))
    report.refuse(int(bad.sum()), "non-positive price or size")
    frame = frame[~bad].reset_index(drop=True)
    report.rows = len(frame)
    return frame, report


def load_bitstamp_log(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """Bitstamp raw feed log (``<local_ms> <type> <json>`` lines): its ``trade`` messages.

    The 2015 feed carries no exchange time and no taker side on trades: the recorder's receive
    time stands in for the time and the side is unknown (0)."""
    report = LoadReport(str(path))
    ts, price, size, ids, linenos = [], [], [], [], []
    with _open_text(path) as stream:
        for lineno, line in enumerate(stream, start=1):
            if " trade " not in line:
                continue
            try:
                ms, kind, payload = line.split(" ", 2)
                if kind != "trade":
                    continue
                data = json.loads(payload)
                ts.append(int(ms) * 1_000_000)
                price.append(float(data["price"]))
                size.append(float(data["amount"]))
                ids.append(str(data["id"]))
                linenos.append(lineno)
            except (ValueError, KeyError, TypeError) as exc:
                report.refuse(1, f"line {lineno}: {exc.__class__.__name__}: {exc}")
    frame = pd.DataFrame(
        {"price": price, "size": size, "side": UNKNOWN_SIDE, "trade_id": ids},
        index=pd.Index(linenos, name="line"),
    )
    frame["side"] = frame["side"].astype(np.int8)
    return _finish(frame, report, ts_ns=pd.Series(ts, dtype="Int64", index=frame.index)), report


def load_nautilus_trades(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """nautilus_trader test parquet: timestamp, trade_id, price, quantity, buyer_maker."""
    report = LoadReport(str(path))
    raw = pd.read_parquet(path)
    # as_unit: parquet keeps ms resolution, and astype("int64") would give ms, not ns.
    stamps = pd.to_datetime(raw["timestamp"], utc=True).dt.as_unit("ns")
    ts = pd.Series(stamps.astype("int64"), index=raw.index)
    maker = raw["buyer_maker"].astype(str).str.lower() == "true"
    frame = pd.DataFrame(
        {
            "price": raw["price"],
            "size": raw["quantity"],
            "side": np.where(maker, SELL, BUY).astype(np.int8),
            "trade_id": raw["trade_id"].astype(str),
        }
    )
    return _finish(frame, report, ts_ns=ts), report


def _bitstamp_line(first: str) -> bool:
    return " order_" in first or " trade {" in first


def is_bitstamp_log(path: Path) -> bool:
    """A Bitstamp feed log (its trades, and its recorded book: ``data.book_replay``)."""
    with _open_text(Path(path)) as stream:
        return _bitstamp_line(stream.readline(4096))


@_damage_named
def load_trades(path: Path) -> tuple[pd.DataFrame, LoadReport]:
    """Detect the format of a recorded trade file and load it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix == ".parquet":
        return load_nautilus_trades(path)
    with _open_text(path) as stream:
        head = stream.read(4096)
    first = head.splitlines()[0] if head else ""
    if first.startswith("exchange,symbol,timestamp"):
        return load_tardis_trades(path)
    if "trdMatchID" in first or first.startswith("id,timestamp,price"):
        return load_bybit_trade_dump(path)
    if '"stream"' in head and "@trade" in head:
        return load_binance_feed(path)
    if _bitstamp_line(first):
        return load_bitstamp_log(path)
    fields = first.split(",")
    if len(fields) == len(KLINE_COLUMNS) and all(f.replace(".", "", 1).isdigit() for f in fields):
        raise UnknownFormatError(
            f"{path}: Binance klines (bars), not trades; read them with load_binance_klines"
        )
    raise UnknownFormatError(
        f"{path}: unknown trade format (first line {first[:80]!r}); known: Tardis CSV, "
        "Bybit trade dumps, raw Binance feed recordings, Bitstamp feed logs, nautilus parquet"
    )
