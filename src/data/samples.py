"""The real recorded data shipped in data/sample/ (see its README for provenance)."""

from __future__ import annotations

from pathlib import Path

# The one full day of liquid BTCUSDT ticks: training and evaluation of the forecaster.
TARDIS_DAY = "binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"
# Ten minutes of raw Binance spot websocket (trades, depth, BBO): pipeline smoke tests.
BINANCE_FEED = "binance_spot_btcusdt_feed_20240808.gz"
# 46 seconds of Binance spot trades: tiny unit-test fixture.
NAUTILUS_TRADES = "binance_spot_btcusdt_trades_2021-01-08.parquet"
# One day of Binance spot 1-minute klines in each timestamp unit (ms in 2024, µs in 2025).
KLINES_2024 = "BTCUSDT-1m-2024-03-11.csv.gz"
KLINES_2025 = "BTCUSDT-1m-2025-03-11.csv.gz"
# A second venue and year: Bitstamp BTC/USD raw feed for 2015-05-01.
BITSTAMP_DAY = "bitstamp_BTCUSD_2015-05-01.log.bz2"


def sample_path(name: str, sample_dir: Path | None = None) -> Path:
    """Path of a shipped sample; a clear error when the checkout lacks it."""
    base = sample_dir or Path(__file__).resolve().parents[2] / "data" / "sample"
    path = base / name
    if not path.exists():
        raise FileNotFoundError(f"shipped sample {name!r} not found under {base}")
    return path
