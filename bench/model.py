"""Model benchmarks: training throughput over one real day of 1 s bars, in-process inference latency.

Run: ``.venv/bin/python -m bench.model [--threads 2] [--epochs 2] [--hidden 32] [--layers 1]``
Drift check (time and detections, Binance training reference vs the Bitstamp day):
``.venv/bin/python -m bench.model --drift``
Prints a JSON summary and a Markdown table for docs/benchmarks.md. No MLflow, no disk writes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import pytorch_lightning as pl
import torch
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import FeatureSpec, last_window_features, min_bars
from cryptoarena.model.fit import fit_lstm, prepare
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, TorchPredictor
from cryptoarena.model.lstm import LSTMConfig


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.train_s: list[float] = []
        self.total_s: list[float] = []
        self._t0 = self._t1 = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._t1 = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        now = time.perf_counter()
        self.train_s.append(self._t1 - self._t0)
        self.total_s.append(now - self._t0)


def _latency(fn, reps: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
    }


def drift_bench(reps: int = 5) -> None:
    """Feature drift of the Bitstamp day against the Binance day's training reference."""
    from cryptoarena.model.datasets import second_venue_bars
    from cryptoarena.model.drift import DriftConfig, column_drift, feature_frame

    spec = FeatureSpec()
    prepared = prepare(load_bars(), spec, 60)
    reference = prepared.reference_sample()
    current = feature_frame(second_venue_bars(), spec)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        result = column_drift(reference, current, DriftConfig(), scaler=prepared.scaler)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "rows": [len(reference), len(current)],
                "best_ms": 1000 * min(times),
                "drifted": f"{len(result.drifted)}/{len(result.scores)}",
                "ret_1": result.scores["ret_1"],
            },
            indent=2,
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--drift", action="store_true", help="benchmark the drift check instead")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    if args.drift:
        drift_bench()
        return

    torch.set_num_threads(args.threads)
    t = time.perf_counter()
    bars = load_bars()
    spec = FeatureSpec()
    cfg = LSTMConfig(window=args.window, hidden=args.hidden, layers=args.layers,
                     max_epochs=args.epochs, patience=args.epochs, num_threads=args.threads)  # fmt: skip
    prepared = prepare(bars, spec, cfg.window)
    prep_s = time.perf_counter() - t
    timer = EpochTimer()
    module, _ = fit_lstm(prepared, cfg, callbacks=[timer])
    n_train = len(prepared.split.train)

    info = ForecastModelInfo(name="bench", version="0", run_id="", window=cfg.window,
                             min_bars=min_bars(spec, cfg.window))  # fmt: skip
    forecaster = Forecaster(info, spec, TorchPredictor(module.net))
    need = info.min_bars
    ends = np.linspace(need, len(bars), 64).astype(int)
    windows = [bars.iloc[e - need : e] for e in ends]
    x64 = last_window_features(windows, spec, cfg.window)
    latency = {
        "predict_bars_b1": _latency(lambda: forecaster.predict(windows[:1]), args.reps),
        "predict_bars_b64": _latency(lambda: forecaster.predict(windows), max(20, args.reps // 10)),
        "net_only_b1": _latency(lambda: forecaster.predict_features(x64[:1]), args.reps),
        "net_only_b64": _latency(lambda: forecaster.predict_features(x64), args.reps),
    }
    best_train = min(timer.train_s)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "loadavg_at_end": os.getloadavg(),
        "config": cfg.model_dump(include={"window", "hidden", "layers", "batch_size"}),
        "threads": args.threads,
        "bars": len(bars),
        "train_windows": n_train,
        "load_and_features_s": prep_s,
        "train_epoch_s": timer.train_s,
        "epoch_with_val_s": timer.total_s,
        "train_samples_per_s": n_train / best_train,
        "full_day_epoch_s_est": len(prepared.features) / (n_train / best_train),
        "latency": latency,
    }
    print(json.dumps(result, indent=2))
    print()
    print("| metric | value |\n|---|---|")
    print(f"| training samples/s (best epoch) | {result['train_samples_per_s']:,.0f} |")
    print(f"| seconds per training epoch ({n_train:,} windows) | {best_train:.1f} |")
    print(f"| seconds per epoch incl. validation | {min(timer.total_s):.1f} |")
    print(
        f"| est. seconds per epoch over all {len(bars):,} bars | {result['full_day_epoch_s_est']:.1f} |"
    )
    for key, value in latency.items():
        print(f"| {key} median / p95 (ms) | {value['median_ms']:.2f} / {value['p95_ms']:.2f} |")


if __name__ == "__main__":
    main()
