"""Lake reads on the real day (137,988 Binance BTCUSDT perp trades, 2020-02-22): a 1-hour window
of trades and of 1 s bars, and all the day's bars.

    .venv/bin/python -m bench.lake [--repeats N]

"before" is the previous read path, reproduced here: each day file written as one row group,
read whole with ``pd.read_parquet`` and filtered afterwards. "after" is :class:`Lake` today:
small row groups, ``pyarrow.dataset`` with the time filter pushed down to the row groups, then
de-duplication. Best of N repeats (the machine is shared), milliseconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from cryptoarena.data.lake import BARS, TRADES, Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.samples import TARDIS_DAY, sample_path

HOUR_NS = 3_600 * 10**9


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def old_read(files: list[Path], start: int | None, end: int | None) -> pd.DataFrame:
    """The previous path: whole files, concatenated, de-duplicated, sorted, then windowed."""
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if "trade_id" in frame:
        frame = frame[~frame["trade_id"].astype(str).duplicated(keep="first")]
    frame = frame.sort_values("ts", kind="stable")
    ts = frame["ts"].to_numpy(np.int64)
    keep = np.ones(len(frame), dtype=bool)
    if start is not None:
        keep &= ts >= start
    if end is not None:
        keep &= ts < end
    return frame[keep].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
        f", pyarrow {pa.__version__}, load average {os.getloadavg()[0]:.2f}"
    )
    trades, _ = load_trades(sample_path(TARDIS_DAY))
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "lake")
        (write,) = lake.write_trades("BTCUSDT", trades)
        old_files = {}
        for kind, name in ((TRADES, "trades.parquet"), (BARS, "bars.parquet")):
            src = lake.partition(kind, "BTCUSDT", write.day) / name
            old = Path(tmp) / f"old-{name}"
            pq.write_table(pq.read_table(src), old)  # one row group, as before
            old_files[kind] = [old]
        start = int(trades["ts"].iloc[0]) // HOUR_NS * HOUR_NS + 10 * HOUR_NS
        end = start + HOUR_NS
        cases = [
            ("trades, 1 h window", TRADES, start, end, lake.read_trades),
            ("bars, 1 h window", BARS, start, end, lake.read_bars),
            ("bars, whole day", BARS, None, None, lake.read_bars),
        ]
        print("| read | rows | before (ms) | after (ms) | row groups read (after) |")
        print("| --- | --- | --- | --- | --- |")
        for label, kind, lo, hi, read in cases:
            new = read("BTCUSDT", lo, hi)
            before = old_read(old_files[kind], lo, hi)
            assert len(new) == len(before)
            np.testing.assert_array_equal(new["ts"].to_numpy(), before["ts"].to_numpy())
            t_old = best_ms(lambda k=kind, a=lo, b=hi: old_read(old_files[k], a, b), args.repeats)
            t_new = best_ms(lambda r=read, a=lo, b=hi: r("BTCUSDT", a, b), args.repeats)
            ((_, groups),) = lake.row_groups(kind, "BTCUSDT", lo, hi)
            total = pq.ParquetFile(lake.row_groups(kind, "BTCUSDT")[0][0]).metadata.num_row_groups
            print(
                f"| {label} | {len(new):,} | {t_old:.1f} | {t_new:.1f} | {len(groups)} of {total} |"
            )


if __name__ == "__main__":
    main()
