"""The dashboard's chart preparation on the server: min-max downsampling keeps extremes, OHLC
buckets leave gaps as gaps, the hit-rate interval."""

from __future__ import annotations

import numpy as np
import pytest
from cryptoarena.dashboard.reader import candles, downsample_minmax, wilson


def test_downsampling_keeps_the_trough_and_the_peak() -> None:
    ts = np.arange(10_000, dtype=np.int64)
    ys = np.sin(ts / 500.0) * 100 + 10_000
    ys[7_321] = 9_000.0  # a one-point drawdown
    ys[1_234] = 11_000.0
    out = downsample_minmax(ts, ys, 200)
    assert len(out) <= 200
    assert (7_321, 9_000.0) in out and (1_234, 11_000.0) in out
    assert [t for t, _ in out] == sorted(t for t, _ in out)
    short = downsample_minmax(ts[:50], ys[:50], 200)
    assert len(short) == 50


def test_candles_bucket_ohlc_and_skip_empty_buckets() -> None:
    ts = np.array([0, 1, 2, 3, 9, 10], dtype=np.int64)
    price = np.array([5.0, 7.0, 4.0, 6.0, 8.0, 9.0])
    out = candles(ts, price, 3)  # width 4 ms: [0..3], (empty), [8..11]
    assert [(c.t, c.o, c.h, c.l, c.c) for c in out] == [(0, 5, 7, 4, 6), (8, 8, 9, 8, 9)]
    assert candles(np.array([], dtype=np.int64), np.array([]), 10) == []


def test_wilson_interval() -> None:
    lo, hi = wilson(60, 100)
    assert lo == pytest.approx(0.502, abs=1e-3) and hi == pytest.approx(0.691, abs=1e-3)
    assert np.isnan(wilson(0, 0)[0])


def test_the_read_model_folds_markouts_once_each_into_counts_and_sums() -> None:
    from cryptoarena.dashboard.memory import MemoryStore

    store = MemoryStore()  # no journal: every run takes every document
    docs = [
        {"_id": f"r:1:{k}", "run_id": "r", "strategy": "s", "ts_ns": k, "seq": k,
         "is_maker": k % 2 == 0, "horizons_s": [1, 5, 15], "bps": [1.0, 2.0 * k, None],
         "ref": ["trade", "trade", None]}
        for k in range(1, 5)
    ]  # fmt: skip
    store.apply({"runs": [{"_id": "r:1:0", "run_id": "r", "event": "started"}], "markouts": docs})
    # The tail and a run's load may hand the same records again: folded once.
    store.apply({"markouts": docs[2:]})
    data = store.get("r")
    assert data is not None
    summary = data.markouts.summary("s")
    assert summary is not None and summary.records == 4
    one, five, fifteen = summary.horizons
    assert (one.fills, one.mean_bp) == (4, 1.0)
    assert five.mean_bp == pytest.approx(5.0) and (five.maker_fills, five.taker_fills) == (2, 2)
    assert fifteen.fills == 0 and fifteen.mean_bp is None
    # Fixed size: counts and sums per horizon, not the records.
    assert not hasattr(data.markouts.stats["s"], "docs")
    assert data.markouts.summary("other") is None


def test_the_newest_forecast_is_the_latest_by_time_and_sequence_whatever_the_arrival() -> None:
    import random

    from cryptoarena.dashboard.memory import FORECASTS_KEPT, RunData, doc_key

    rng = random.Random(5)
    data = RunData("r")
    assert data.newest_prediction is None
    times = list(range(1, FORECASTS_KEPT + 400))
    # Mostly in order, some late, some resolved again later (the same id, its outcome added).
    for k, ts in enumerate(times):
        if rng.random() < 0.05 and k > 10:
            ts = times[k - rng.randint(1, 10)]
        doc = {"_id": f"p{ts}", "ts_ns": ts, "seq": ts, "predicted_price": float(k)}
        data.add_prediction(doc)
        if rng.random() < 0.3:
            eid = rng.choice(list(data.predictions))
            data.add_prediction({**data.predictions[eid], "_id": eid, "realised_price": 1.0})
        assert data.newest_prediction is not None
        assert doc_key(data.newest_prediction) == max(map(doc_key, data.predictions.values()))
    assert len(data.predictions) == FORECASTS_KEPT


def test_a_route_reads_between_chunks_of_a_large_tail_batch() -> None:
    """The store's lock is held per chunk, not for a whole poll: a route waiting on it gets it
    while the batch is still being taken (before: only before or after the whole batch)."""
    import threading
    import time

    from cryptoarena.dashboard.memory import APPLY_CHUNK, MemoryStore

    store = MemoryStore()  # no journal: every run takes every document
    store.apply({"runs": [{"_id": "r:0", "run_id": "r", "event": "started"}]})
    n = APPLY_CHUNK * 40
    batch = {"equity": [
        {"_id": f"e{k}", "run_id": "r", "strategy": "s", "ts_ns": k * 10**9, "seq": k,
         "equity": 1.0, "qty": 0.0, "mark": 1.0}
        for k in range(1, n + 1)
    ]}  # fmt: skip
    data = store.get("r")
    assert data is not None and data.version == 0
    seen: list[int] = []
    waiting, done = threading.Event(), threading.Event()

    def route() -> None:
        while not done.is_set():
            with store.lock:
                seen.append(data.version)
            waiting.set()
            time.sleep(0)

    reader = threading.Thread(target=route)
    reader.start()
    assert waiting.wait(10)
    store.apply(batch)
    done.set()
    reader.join(10)
    assert data.version == n
    assert any(0 < v < n for v in seen), "the route never read while the batch was taken"
