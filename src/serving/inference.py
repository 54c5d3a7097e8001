"""Running the model for requests: bars in, forecast paths out.

Inference is CPU-bound (features in numpy, then the LSTM). Four ways to run it:

- ``batch_inline`` (default): requests that arrive while the model is busy are queued and run
  together as ONE ``predict_paths`` call (one vectorised feature pass, one network call), on
  the event loop. No thread hop and no GIL hand-over; the loop is blocked for one micro-batch
  (well under a millisecond on the tiny model), and reads the requests that arrived meanwhile
  right after it.
- ``batch``: the same micro-batches in a single inference thread, so a slow model cannot stall
  /health or new connections. Costs a thread hop and GIL hand-overs per batch.
- ``thread``: each request's forecast in the inference thread, no batching.
- ``inline``: each request's forecast on the event loop, no batching.

bench/serving.py compares them; docs/benchmarks.md has the numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from cryptoarena.data.records import BAR_COLUMNS
from cryptoarena.model.features import FeatureError
from cryptoarena.serving.schemas import BOOK_FIELDS, BarsIn
from cryptoarena.serving.slot import LoadedModel

logger = logging.getLogger(__name__)

InferenceMode = Literal["batch", "batch_inline", "thread", "inline"]
MAX_MICRO_BATCH = 64


Window = Mapping[str, Any]  # column name → values: a bar frame or bars_arrays(...)


def bars_arrays(bars: BarsIn) -> dict[str, np.ndarray]:
    """The request's bars as columns with the canonical bar dtypes (records.BAR_COLUMNS)."""
    data = {name: np.asarray(getattr(bars, name), dtype=np.float64) for name in BAR_COLUMNS}
    data["ts"] = np.asarray(bars.ts, dtype=np.int64)
    data["trades"] = np.asarray(bars.trades, dtype=np.int64)
    for name in bars.book_fields:
        data[name] = np.asarray(getattr(bars, name), dtype=np.float64)
    return data


def bars_frame(window: Window) -> pd.DataFrame:
    # Dict order is BAR_COLUMNS order; passing ``columns=`` would cost a reindex (~3× slower).
    cols = BAR_COLUMNS + tuple(f for f in BOOK_FIELDS if f in window)
    return pd.DataFrame({c: np.asarray(window[c]) for c in cols}, copy=False)


def uses_book(model: LoadedModel) -> bool:
    spec = getattr(model.forecaster, "spec", None)
    return bool(getattr(spec, "book", False))


@dataclass(frozen=True)
class Prediction:
    """One window's output: log returns 1…horizon s and, if the model has them, quantiles."""

    log_returns: np.ndarray  # (horizon,)
    quantiles: dict[str, np.ndarray] | None


def _paths(model: LoadedModel, windows: Sequence[Window]) -> np.ndarray:
    """(N, 1 + Q, horizon): point path, then one path per quantile level (Q may be 0)."""
    forecaster = model.forecaster
    predict_paths = getattr(forecaster, "predict_paths", None)
    if callable(predict_paths):
        # Features straight from the parsed column arrays: the model's own pipeline, one
        # vectorised pass over all windows of the micro-batch, one network call, no pandas.
        return np.asarray(predict_paths(windows), dtype=np.float64)
    frames = [bars_frame(w) for w in windows]  # any other ForecasterLike
    point = np.asarray(forecaster.predict(frames), dtype=np.float64)[:, None, :]
    quantile_fn = getattr(forecaster, "predict_quantiles", None)
    if getattr(model.info, "quantiles", ()) and callable(quantile_fn):
        return np.concatenate([point, np.asarray(quantile_fn(frames), dtype=np.float64)], axis=1)
    return point


def predict_windows(model: LoadedModel, windows: Sequence[Window]) -> list[Prediction]:
    """Forecast every window with one model call (features by the model's own pipeline)."""
    need = int(model.info.min_bars)
    book = uses_book(model)
    for i, w in enumerate(windows):
        missing = [f for f in BOOK_FIELDS if f not in w] if book else []
        if missing:
            raise FeatureError(
                f"window {i}: bars lack the order-book field(s) {', '.join(missing)}; this model "
                "uses book features (send bid, ask, bid_sz1, ask_sz1, bid_sz5, ask_sz5 per bar)"
            )
        if len(w["ts"]) < need:
            raise FeatureError(
                f"window {i} has {len(w['ts'])} bars; the model needs at least {need}"
            )
    paths = _paths(model, windows)
    if paths.ndim != 3 or paths.shape[0] != len(windows):
        raise RuntimeError(f"model returned shape {paths.shape} for {len(windows)} windows")
    for i in range(len(windows)):
        if not np.all(np.isfinite(paths[i, 0])):
            raise FeatureError(f"window {i} gives a non-finite forecast (bad bars?)")
    levels = tuple(getattr(model.info, "quantiles", ()) or ())
    if levels and paths.shape[1] != 1 + len(levels):
        logger.warning("ignoring quantiles of unexpected shape %s", paths.shape)
        levels = ()
    return [
        Prediction(
            paths[i, 0],
            {str(level): paths[i, 1 + j] for j, level in enumerate(levels)} if levels else None,
        )
        for i in range(len(windows))
    ]


class Runner:
    """Runs ``predict_windows`` in the configured mode; one instance per app."""

    def __init__(
        self, mode: InferenceMode = "batch", on_batch: Callable[[int], None] | None = None
    ) -> None:
        self.mode = mode
        self._on_batch = on_batch or (lambda n: None)  # windows per model call (for /metrics)
        # One inference thread: torch and pandas would only fight over the 2 cores otherwise.
        self._pool: ThreadPoolExecutor | None = None
        self._queue: list[tuple[LoadedModel, Window, asyncio.Future[Prediction]]] = []
        self._draining = False

    async def predict(self, model: LoadedModel, windows: list[Window]) -> list[Prediction]:
        if self.mode == "inline":
            self._on_batch(len(windows))
            return predict_windows(model, windows)
        if self.mode == "thread" or len(windows) > 1:
            self._on_batch(len(windows))
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor(), predict_windows, model, windows)
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.append((model, windows[0], future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return [await future]

    async def _drain(self) -> None:
        try:
            while self._queue:
                # One loop turn first: requests whose bytes already arrived get parsed and
                # join this batch instead of waiting for the next one (costs ~10 µs alone).
                await asyncio.sleep(0)
                batch, self._queue = self._queue[:MAX_MICRO_BATCH], self._queue[MAX_MICRO_BATCH:]
                # A swap can land between two requests: group by the model each request holds.
                groups: dict[int, list[tuple[LoadedModel, Window, asyncio.Future[Prediction]]]]
                groups = {}
                for item in batch:
                    groups.setdefault(id(item[0]), []).append(item)
                for items in groups.values():
                    model = items[0][0]
                    frames = [frame for _, frame, _ in items]
                    self._on_batch(len(frames))
                    try:
                        results = await self._call(model, frames)
                    except Exception as exc:
                        await self._one_by_one(items, exc)
                        continue
                    for (_, _, future), result in zip(items, results, strict=True):
                        if not future.done():  # the client may have gone away
                            future.set_result(result)
        finally:
            self._draining = False

    async def _one_by_one(
        self,
        items: list[tuple[LoadedModel, Window, asyncio.Future[Prediction]]],
        exc: Exception,
    ) -> None:
        """A batch failed: retry each window alone, so only the bad request gets the error."""
        if len(items) == 1:
            if not items[0][2].done():
                items[0][2].set_exception(exc)
            return
        for model, frame, future in items:
            try:
                [result] = await self._call(model, [frame])
            except Exception as one:
                if not future.done():
                    future.set_exception(one)
            else:
                if not future.done():
                    future.set_result(result)

    async def _call(self, model: LoadedModel, windows: list[Window]) -> list[Prediction]:
        if self.mode == "batch_inline":
            # On the loop: no thread hop and no GIL hand-over between the loop and the
            # inference thread (which can wait out the 5 ms switch interval under load).
            return predict_windows(model, windows)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), predict_windows, model, windows)

    def _executor(self) -> ThreadPoolExecutor:
        # Created on first use and again after close(): an app's lifespan may run twice.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
