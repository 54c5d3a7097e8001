"""The lake: partitioned Parquet, atomic and idempotent writes, range reads, compaction."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cryptoarena.data.bars import build_bars
from cryptoarena.data.ingest import check_lake, guess_symbol, import_file
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import UnknownFormatError, load_trades
from cryptoarena.data.samples import BINANCE_FEED, NAUTILUS_TRADES, sample_path


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_import_is_partitioned_and_idempotent(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    path = sample_path(BINANCE_FEED)
    first = import_file(lake, path)
    assert first.symbol == "BTCUSDT" and first.load.malformed == 0
    # The recording crosses midnight: two date partitions.
    assert [w.day for w in first.writes] == [date(2024, 8, 8), date(2024, 8, 9)]
    assert (tmp_path / "trades/symbol=BTCUSDT/date=2024-08-08/trades.parquet").exists()
    assert (tmp_path / "bars_1s/symbol=BTCUSDT/date=2024-08-09/bars.parquet").exists()
    before = files(tmp_path)
    again = import_file(lake, path)
    assert again.added == 0 and again.duplicates == first.added
    assert files(tmp_path) == before
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind


def test_read_back_time_range(tmp_path: Path) -> None:
    trades, _ = load_trades(sample_path(NAUTILUS_TRADES))
    lake = Lake(tmp_path)
    lake.write_trades("BTCUSDT", trades)
    pd.testing.assert_frame_equal(lake.read_trades("BTCUSDT"), trades)
    start, end = int(trades["ts"].iloc[100]), int(trades["ts"].iloc[900])
    window = lake.read_trades("BTCUSDT", start, end)
    expected = trades[(trades["ts"] >= start) & (trades["ts"] < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(window, expected)
    bars = lake.read_bars("BTCUSDT", start, end)
    full = build_bars(trades)
    assert bars["ts"].min() >= start and bars["ts"].max() < end
    np.testing.assert_array_equal(bars["close"], full[(full.ts >= start) & (full.ts < end)].close)
    assert lake.read_trades("ETHUSDT").empty and lake.read_bars("BTCUSDT", 0, 1).empty


def test_overlapping_imports_dedupe_by_trade_id(tmp_path: Path) -> None:
    trades, _ = load_trades(sample_path(NAUTILUS_TRADES))
    lake = Lake(tmp_path)
    lake.write_trades("BTCUSDT", trades.iloc[:1200])
    writes = lake.write_trades("BTCUSDT", trades.iloc[800:])
    assert writes[0].added == len(trades) - 1200 and writes[0].duplicates == 400
    pd.testing.assert_frame_equal(lake.read_trades("BTCUSDT"), trades)
    assert lake.info()[0].trades == len(trades)


def test_append_then_compact(tmp_path: Path) -> None:
    trades, _ = load_trades(sample_path(NAUTILUS_TRADES))
    lake = Lake(tmp_path)
    for i in range(0, len(trades), 500):
        lake.append_trades("BTCUSDT", trades.iloc[max(0, i - 50) : i + 500])  # overlapping
    assert lake.info()[0].pending_parts == 5
    pd.testing.assert_frame_equal(lake.read_trades("BTCUSDT"), trades)  # deduped on read
    done = lake.compact()
    assert len(done) == 1 and done[0].trades == len(trades)
    info = lake.info()[0]
    assert info.pending_parts == 0 and info.trades == len(trades) and info.bars == 47
    assert info.first_ns == trades["ts"].iloc[0] and info.last_ns == trades["ts"].iloc[-1]
    assert all(r.ok for r in check_lake(lake))


def test_bad_input_leaves_no_damage(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    with pytest.raises(FileNotFoundError):
        import_file(lake, tmp_path / "missing.csv")
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(UnknownFormatError):
        import_file(lake, junk)
    assert not (tmp_path / "lake").exists()


def test_guess_symbol() -> None:
    assert guess_symbol(Path("binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"), "X") == "BTCUSDT"
    assert guess_symbol(Path("bitstamp_BTCUSD_2015-05-01.log.bz2"), "X") == "BTCUSD"
    assert guess_symbol(Path("binance_spot_btcusdt_feed.gz"), "X") == "BTCUSDT"
    assert guess_symbol(Path("trades.csv"), "ETHUSDT") == "ETHUSDT"


BYBIT_DUMP = """timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional
1585180800.2,BTCUSDT,Buy,0.5,6700.5,PlusTick,a1,3.35025e+11,0.5,3350.25
1585180801.7,BTCUSDT,Sell,0.1,6700.0,MinusTick,a2,6.7e+10,0.1,670.0
1585180802.1,BTCUSDT,Buy,not-a-number,6700.5,PlusTick,a3,0,0,0
1585180803.9,BTCUSDT,Buy,0.2,6701.0,PlusTick,{last},1.3402e+11,0.2,1340.2
"""


def test_malformed_rows_are_counted_and_bad_files_refused(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    ok = tmp_path / "BTCUSDT2020-03-26.csv"
    ok.write_text(BYBIT_DUMP.format(last="a4"))
    result = import_file(lake, ok)
    assert result.load.malformed == 1 and result.added == 3
    dup = tmp_path / "dup-BTCUSDT2020-03-26.csv"
    dup.write_text(BYBIT_DUMP.format(last="a1"))
    before = files(tmp_path / "lake")
    with pytest.raises(ValueError, match="duplicate_ids"):
        import_file(lake, dup)
    assert files(tmp_path / "lake") == before


def test_reads_during_append_and_compaction_see_consistent_data(tmp_path: Path) -> None:
    import threading

    trades, _ = load_trades(sample_path(NAUTILUS_TRADES))
    lake = Lake(tmp_path)
    done = threading.Event()

    def writer() -> None:
        for i in range(0, 2000, 200):
            lake.append_trades("BTCUSDT", trades.iloc[i : i + 200])
            lake.compact()
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    while not done.is_set():
        frame = lake.read_trades("BTCUSDT")
        assert frame["trade_id"].is_unique
        assert len(frame) >= seen  # never loses rows it already showed
        seen = len(frame)
    thread.join()
    assert len(lake.read_trades("BTCUSDT")) == 2000


def test_kline_file_gets_a_precise_error(tmp_path: Path) -> None:
    from cryptoarena.data.samples import KLINES_2025

    with pytest.raises(UnknownFormatError, match="Binance klines"):
        import_file(Lake(tmp_path), sample_path(KLINES_2025))


def _overlapping_groups(path: Path, start: int, end: int) -> list[int]:
    """Row groups whose ts statistics overlap [start, end), read from the Parquet footer."""
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.names.index("ts")
    out = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if int(stats.max) >= start and int(stats.min) < end:
            out.append(i)
    return out


def test_one_hour_window_touches_only_its_row_groups(tmp_path: Path) -> None:
    """The real day (137,988 trades): a 1-hour read is pushed down to the row groups that hold
    that hour (issue #15 item 3), and returns exactly the rows of a full read's window."""
    from cryptoarena.data.samples import TARDIS_DAY

    trades, _ = load_trades(sample_path(TARDIS_DAY))
    lake = Lake(tmp_path)
    lake.write_trades("BTCUSDT", trades)
    day = date(2020, 2, 22)
    start = int(trades["ts"].iloc[0]) // 3_600_000_000_000 * 3_600_000_000_000 + 10 * 3_600 * 10**9
    end = start + 3_600 * 10**9
    for kind, name in (("bars_1s", "bars.parquet"), ("trades", "trades.parquet")):
        path = lake.partition(kind, "BTCUSDT", day) / name
        total = pq.ParquetFile(path).metadata.num_row_groups
        ((read_path, groups),) = lake.row_groups(kind, "BTCUSDT", start, end)
        assert read_path == path
        assert groups == _overlapping_groups(path, start, end)
        assert len(groups) == 1 < total, (kind, groups, total)  # its hour, not the day
    bars = lake.read_bars("BTCUSDT", start, end)
    full = lake.read_bars("BTCUSDT")
    expected = full[(full.ts >= start) & (full.ts < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(bars, expected)
    assert len(bars) == 3_600
    window = lake.read_trades("BTCUSDT", start, end)
    expected_trades = trades[(trades.ts >= start) & (trades.ts < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(window, expected_trades)
    # Appended parts are read with the same filter and de-duplicated after.
    lake.append_trades("BTCUSDT", trades[(trades.ts >= start - 10**9) & (trades.ts < end)])
    pd.testing.assert_frame_equal(lake.read_trades("BTCUSDT", start, end), expected_trades)
