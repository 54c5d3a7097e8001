"""Serving a model with order-book features: the request carries the six book columns per bar
(as the live join makes them); a book model refuses bars without them with a 422 that names the
fields; the book fields stay optional for every other model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptoarena.config import ServingSettings, Settings
from cryptoarena.data.book import BOOK_COLUMNS
from cryptoarena.data.records import BAR_COLUMNS
from cryptoarena.model.features import FeatureSpec, min_bars
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo
from cryptoarena.serving.app import create_app
from fastapi.testclient import TestClient

WINDOW = 30


class LinearPredictor:
    """A real (fixed) linear map of the last feature row: enough to see every input count."""

    def __init__(self, n_features: int, horizon: int) -> None:
        rng = np.random.default_rng(0)
        self.w = rng.normal(0, 1e-4, (n_features, horizon))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        last = x[:, -1, :].astype(np.float64)
        return (np.nan_to_num(last) @ self.w)[:, None, :]


class MemorySource:
    description = "memory"

    def __init__(self, forecaster: Forecaster) -> None:
        self.forecaster = forecaster

    def champion_version(self) -> str | None:
        return "1"

    def load(self, version: str) -> Forecaster:
        return self.forecaster


def forecaster(book: bool) -> Forecaster:
    spec = FeatureSpec(book=book)
    info = ForecastModelInfo(
        name="btcusdt-15s",
        version="1",
        run_id="r",
        window=WINDOW,
        min_bars=min_bars(spec, WINDOW),
        feature_names=spec.names,
    )
    return Forecaster(info, spec, LinearPredictor(spec.n_features, info.horizon))


def client_for(book: bool) -> Iterator[tuple[TestClient, Forecaster]]:
    model = forecaster(book)
    settings = Settings(serving=ServingSettings(poll_interval_s=3600))
    with TestClient(create_app(settings, source=MemorySource(model))) as client:
        yield client, model


@pytest.fixture
def book_client() -> Iterator[tuple[TestClient, Forecaster]]:
    yield from client_for(True)


@pytest.fixture
def trades_client() -> Iterator[tuple[TestClient, Forecaster]]:
    yield from client_for(False)


def book_bars(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    mid = 65_000 + np.cumsum(rng.normal(0, 0.5, n))
    half = 0.05 + rng.uniform(0, 0.2, n)
    vol = rng.integers(0, 4, n) / 4
    return pd.DataFrame(
        {
            "ts": 1_767_571_200_000_000_000 + np.arange(n, dtype=np.int64) * 10**9,
            "open": mid,
            "high": mid + half,
            "low": mid - half,
            "close": mid,
            "volume": vol,
            "vwap": mid,
            "trades": (vol * 4).astype(np.int64),
            "buy_volume": vol / 2,
            "sell_volume": vol / 2,
            "bid": mid - half,
            "ask": mid + half,
            "bid_sz1": rng.uniform(0.1, 3, n),
            "ask_sz1": rng.uniform(0.1, 3, n),
            "bid_sz5": rng.uniform(3, 9, n),
            "ask_sz5": rng.uniform(3, 9, n),
        }
    )


def body(bars: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "bars": {c: bars[c].tolist() for c in columns}}


def test_book_model_forecasts_from_book_fields_as_in_process(
    book_client: tuple[TestClient, Forecaster],
) -> None:
    client, model = book_client
    bars = book_bars(model.info.min_bars + 5)
    reply = client.post("/v1/forecast", json=body(bars, BAR_COLUMNS + BOOK_COLUMNS))
    assert reply.status_code == 200, reply.text
    served = np.array(reply.json()["log_returns"])
    local = model.predict([bars])[0]
    np.testing.assert_allclose(served, local, rtol=1e-5, atol=1e-9)
    # The book columns change the forecast: they are really read.
    moved = bars.assign(bid_sz1=bars["bid_sz1"] * 3)
    other = client.post("/v1/forecast", json=body(moved, BAR_COLUMNS + BOOK_COLUMNS))
    assert other.status_code == 200 and other.json()["log_returns"] != reply.json()["log_returns"]


def test_book_model_refuses_bars_without_book_fields_naming_them(
    book_client: tuple[TestClient, Forecaster],
) -> None:
    client, model = book_client
    bars = book_bars(model.info.min_bars)
    reply = client.post("/v1/forecast", json=body(bars, BAR_COLUMNS))
    assert reply.status_code == 422
    text = reply.text
    assert "bid" in text and "ask_sz5" in text and "book" in text
    partial = body(bars, (*BAR_COLUMNS, "bid", "ask"))
    reply = client.post("/v1/forecast", json=partial)
    assert reply.status_code == 422 and "bid_sz1" in reply.text and "'bid'" not in reply.text


def test_book_fields_must_match_the_bars_and_be_valid(
    book_client: tuple[TestClient, Forecaster],
) -> None:
    client, model = book_client
    bars = book_bars(model.info.min_bars)
    short = body(bars, BAR_COLUMNS + BOOK_COLUMNS)
    short["bars"]["ask"] = short["bars"]["ask"][:-1]
    reply = client.post("/v1/forecast", json=short)
    assert reply.status_code == 422 and "'ask'" in reply.text
    negative = body(bars, BAR_COLUMNS + BOOK_COLUMNS)
    negative["bars"]["bid_sz5"][3] = -1.0
    reply = client.post("/v1/forecast", json=negative)
    assert reply.status_code == 422 and "bid_sz5" in reply.text


def test_trade_only_model_ignores_optional_book_fields(
    trades_client: tuple[TestClient, Forecaster],
) -> None:
    client, model = trades_client
    bars = book_bars(model.info.min_bars)
    plain = client.post("/v1/forecast", json=body(bars, BAR_COLUMNS))
    with_book = client.post("/v1/forecast", json=body(bars, BAR_COLUMNS + BOOK_COLUMNS))
    assert plain.status_code == with_book.status_code == 200
    assert plain.json()["log_returns"] == with_book.json()["log_returns"]
