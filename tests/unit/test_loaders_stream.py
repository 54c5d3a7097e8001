"""Loaders stream compressed files, and Binance 1 m klines load in both timestamp units."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cryptoarena.data.loaders import (
    _open_text,
    load_binance_klines,
    load_binance_klines_many,
    load_trades,
)
from cryptoarena.data.records import BAR_COLUMNS
from cryptoarena.data.samples import sample_path

MIN_NS = 60 * 10**9


def _bytes_read() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.parametrize(
    "name", ["bitstamp_BTCUSD_2015-05-01.log.bz2", "binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"]
)
def test_the_format_check_reads_the_head_not_the_whole_file(name: str) -> None:
    path = sample_path(name)
    size = path.stat().st_size
    before = _bytes_read()
    with _open_text(path) as stream:
        head = stream.read(4096)
    used = _bytes_read() - before
    assert len(head) == 4096
    assert used < size / 3, f"read {used} of {size} bytes to see 4 KB"


def test_streamed_loaders_give_the_same_trades_as_the_plain_file(tmp_path: Path) -> None:
    src = sample_path("binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz")
    plain = tmp_path / "trades.csv"
    plain.write_bytes(gzip.decompress(src.read_bytes()))
    a, ra = load_trades(src)
    b, rb = load_trades(plain)
    pd.testing.assert_frame_equal(a, b)
    assert ra.rows == rb.rows and ra.malformed == rb.malformed == 0


ROWS_MS = [
    "1710115200000,100.0,101.0,99.0,100.5,2.0,1710115259999,201.0,10,1.5,150.75,0",
    "1710115260000,100.5,102.0,100.0,101.0,0.0,1710115319999,0.0,0,0.0,0.0,0",
]
ROWS_US = [
    "1741651200000000,200.0,201.0,199.0,200.5,4.0,1741651259999999,802.0,7,1.0,200.5,0",
    "1741651260000000,200.5,202.0,200.0,201.5,1.0,1741651319999999,201.5,3,1.0,201.5,0",
]


def _gz(path: Path, rows: list[str]) -> Path:
    path.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    return path


def test_klines_in_milliseconds_and_microseconds(tmp_path: Path) -> None:
    ms, _ = load_binance_klines(_gz(tmp_path / "ms.csv.gz", ROWS_MS))
    us, _ = load_binance_klines(_gz(tmp_path / "us.csv.gz", ROWS_US))
    assert tuple(ms.columns) == BAR_COLUMNS == tuple(us.columns)
    assert ms["ts"].tolist() == [1710115200 * 10**9, 1710115260 * 10**9]
    assert us["ts"].tolist() == [1741651200 * 10**9, 1741651260 * 10**9]
    assert ms["vwap"].tolist() == [100.5, 101.0]  # quote/volume; a bar with no volume: close
    assert ms["sell_volume"].tolist() == [0.5, 0.0] and us["trades"].tolist() == [7, 3]
    assert ms["ts"].dtype == np.int64 and ms["trades"].dtype == np.int64


def test_many_files_sorted_deduplicated_and_malformed_rows_counted(tmp_path: Path) -> None:
    us = _gz(tmp_path / "b.csv.gz", ROWS_US)
    ms = _gz(tmp_path / "a.csv.gz", ROWS_MS)
    again = _gz(tmp_path / "c.csv.gz", ROWS_MS[1:])
    bars, report = load_binance_klines_many([us, ms, again])
    assert bars["ts"].is_monotonic_increasing and len(bars) == 4
    assert report.malformed == 1 and "repeated" in report.examples[0]
    bad = _gz(tmp_path / "bad.csv.gz", [ROWS_US[0], "1741651260000000,oops,1,2", *ROWS_US[1:]])
    bars, report = load_binance_klines_many([ms, bad])
    assert len(bars) == 4 and report.malformed == 1


def test_the_shipped_kline_days_load_in_their_own_units() -> None:
    bars, report = load_binance_klines_many(
        [sample_path("BTCUSDT-1m-2025-03-11.csv.gz"), sample_path("BTCUSDT-1m-2024-03-11.csv.gz")]
    )
    assert report.malformed == 0 and len(bars) == 2 * 1440
    day = pd.to_datetime(bars["ts"], unit="ns", utc=True).dt.strftime("%Y-%m-%d")
    assert day.value_counts().to_dict() == {"2024-03-11": 1440, "2025-03-11": 1440}
    assert set(np.diff(bars["ts"].to_numpy()[:1440])) == {MIN_NS}
