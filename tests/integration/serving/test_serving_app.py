"""The forecast server in-process (TestClient, lifespan included) on a real MLflow registry."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.registry import load_forecaster
from cryptoarena.serving.app import create_app
from cryptoarena.serving.client import bars_payload
from fastapi.testclient import TestClient

from tests.floats import assert_float32_close, assert_prices_close

TOKEN = "s3cret-admin"


def body(bars: pd.DataFrame, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {"symbol": symbol, "bars": bars_payload(bars)}


@pytest.fixture(scope="module")
def client(registry: Any, settings_for: Any) -> Any:
    app = create_app(settings_for(registry, admin_token=TOKEN, poll_interval_s=3600))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def champion(registry: Any) -> Any:
    return load_forecaster(f"models:/{registry.name}@champion", tracking_uri=registry.tracking_uri)


def test_forecast_equals_the_in_process_model_on_real_bars(
    client: TestClient, champion: Any, recent_bars: pd.DataFrame
) -> None:
    n = champion.info.min_bars
    for end in (n, n + 37, len(recent_bars)):
        window = recent_bars.iloc[end - n : end].reset_index(drop=True)
        r = client.post("/v1/forecast", json=body(window))
        assert r.status_code == 200, r.text
        got = r.json()
        expected = champion.predict([window])[0]
        assert_float32_close(got["log_returns"], expected)
        assert_prices_close(got["prices"], float(window["close"].iloc[-1]), expected)
        assert got["bar_ts_ns"] == int(window["ts"].iloc[-1])
        assert got["horizons_s"] == list(range(1, 16))
        assert (got["model_name"], got["model_version"]) == ("btcusdt-15s", "1")
        assert got["compute_ms"] > 0


def test_longer_history_uses_only_the_last_bars(
    client: TestClient, champion: Any, recent_bars: pd.DataFrame
) -> None:
    short = recent_bars.iloc[-champion.info.min_bars :]
    a = client.post("/v1/forecast", json=body(recent_bars)).json()["log_returns"]
    b = client.post("/v1/forecast", json=body(short)).json()["log_returns"]
    assert_float32_close(a, b)


def test_batch_equals_single_forecasts(
    client: TestClient, champion: Any, recent_bars: pd.DataFrame
) -> None:
    n = champion.info.min_bars
    wins = [recent_bars.iloc[i : i + n].reset_index(drop=True) for i in (0, 50, 100, 200)]
    r = client.post("/v1/forecast/batch", json={"items": [body(w) for w in wins]})
    assert r.status_code == 200, r.text
    got = np.array([f["log_returns"] for f in r.json()["forecasts"]])
    assert_float32_close(got, champion.predict(wins))
    assert [f["bar_ts_ns"] for f in r.json()["forecasts"]] == [int(w["ts"].iloc[-1]) for w in wins]


def test_model_info_ready_health(client: TestClient, champion: Any) -> None:
    info = client.get("/v1/model").json()
    assert info["name"] == "btcusdt-15s" and info["version"] == "1"
    assert info["run_id"] == champion.info.run_id
    assert info["min_bars"] == champion.info.min_bars and info["horizon"] == 15
    assert info["metrics"] == pytest.approx(champion.info.metrics)
    assert info["loaded_at"]
    # train_tiny(promote=True) forces the alias: /v1/model says so, with the gate's verdict.
    assert info["promotion"] == "forced" and info["gate"].startswith(("promoted", "refused"))
    assert client.get("/ready").json() == {"ready": True, "model_version": "1", "reason": None}
    assert client.get("/health").json() == {"status": "ok"}


def _errors(r: Any) -> list[tuple[str, str]]:
    assert r.status_code == 422, r.text
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in r.json()["detail"]]


def test_bad_input_is_a_422_naming_the_field(client: TestClient, recent_bars: pd.DataFrame) -> None:
    good = body(recent_bars.iloc[-100:])

    few = body(recent_bars.iloc[-10:])
    [(loc, msg)] = _errors(client.post("/v1/forecast", json=few))
    assert loc == "body.bars.ts" and "too few bars" in msg and "80" in msg

    unknown = {**good, "symbol": "ETHUSDT"}
    [(loc, msg)] = _errors(client.post("/v1/forecast", json=unknown))
    assert loc == "body.symbol" and "unknown symbol" in msg

    bad = json.loads(json.dumps(good))
    bad["bars"]["close"][17] = -5.0
    bad["bars"]["ts"][40] = bad["bars"]["ts"][39]
    errors = dict(_errors(client.post("/v1/forecast", json=bad)))
    assert "greater than 0" in errors["body.bars.close.17"]
    assert "strictly increasing" in errors["body.bars.ts"] and "ts[40]" in errors["body.bars.ts"]

    # NaN is not JSON, but Python clients send it; it must be named, not crash the encoder.
    marked = json.loads(json.dumps(good))
    marked["bars"]["high"][3] = 123456.789012
    text = json.dumps(marked).replace("123456.789012", "NaN")
    r = client.post("/v1/forecast", content=text, headers={"content-type": "application/json"})
    [(loc, msg)] = _errors(r)
    assert loc == "body.bars.high.3" and "finite" in msg

    typed = json.loads(json.dumps(good))
    typed["bars"]["volume"][0] = "lots"
    assert _errors(client.post("/v1/forecast", json=typed))[0][0] == "body.bars.volume.0"

    short = json.loads(json.dumps(good))
    short["bars"]["vwap"].pop()
    [(loc, msg)] = _errors(client.post("/v1/forecast", json=short))
    assert loc == "body.bars" and "'vwap' has 99 values" in msg

    batch = {"items": [good, few]}
    [(loc, _)] = _errors(client.post("/v1/forecast/batch", json=batch))
    assert loc == "body.items.1.bars.ts"


def test_admin_reload_needs_the_token(client: TestClient) -> None:
    assert client.post("/v1/model/reload").status_code == 401
    wrong = client.post("/v1/model/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    ok = client.post("/v1/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.json() == {"previous_version": "1", "version": "1", "swapped": False}


def test_metrics_count_requests_and_show_the_version(client: TestClient) -> None:
    client.get("/health")
    text = client.get("/metrics").text
    assert 'arena_serving_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'arena_serving_request_seconds_bucket{le="0.005",route="/v1/forecast"}' in text
    assert "arena_serving_model_version 1.0" in text
    assert 'arena_serving_model_info{name="btcusdt-15s"' in text


def test_no_champion_yet_means_503_then_the_poller_loads_it(
    tmp_path: Any, settings_for: Any, registry: Any, recent_bars: pd.DataFrame
) -> None:
    import time

    from cryptoarena.model.train import train_tiny

    empty = type(registry)(f"sqlite:///{tmp_path / 'm.db'}", registry.name, "", "")
    app = create_app(settings_for(empty, poll_interval_s=0.2))
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        r = c.get("/ready")
        assert r.status_code == 503 and "no @champion alias yet" in r.json()["reason"]
        r = c.post("/v1/forecast", json=body(recent_bars))
        assert r.status_code == 503 and "no model loaded" in r.json()["detail"]
        assert r.headers["retry-after"]
        assert c.get("/v1/model").status_code == 503
        train_tiny(empty.tracking_uri, empty.name)
        deadline = time.monotonic() + 10
        while c.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.post("/v1/forecast", json=body(recent_bars)).status_code == 200


@pytest.mark.parametrize("mode", ["batch", "batch_inline"])
async def test_micro_batches_match_single_calls_and_isolate_a_bad_window(
    champion: Any, recent_bars: pd.DataFrame, mode: str
) -> None:
    import asyncio

    from cryptoarena.model.features import FeatureError
    from cryptoarena.serving.inference import Runner
    from cryptoarena.serving.slot import LoadedModel

    sizes: list[int] = []
    runner = Runner(mode, on_batch=sizes.append)  # type: ignore[arg-type]
    model = LoadedModel(champion, "1", "test")
    n = champion.info.min_bars
    wins = [recent_bars.iloc[i : i + n].reset_index(drop=True) for i in range(0, 120, 10)]
    bad = recent_bars.iloc[:5]  # too short for the features: only its own request may fail
    try:
        results = await asyncio.gather(
            *(runner.predict(model, [w]) for w in [*wins[:6], bad, *wins[6:]]),
            return_exceptions=True,
        )
    finally:
        runner.close()
    assert isinstance(results[6], FeatureError)
    good = [r[0].log_returns for r in results if not isinstance(r, BaseException)]
    assert_float32_close(np.array(good), champion.predict(wins))
    assert max(sizes) > 1  # requests that queued while the model was busy ran together


def test_quantile_model_serves_its_quantile_paths(
    tmp_path: Any,
    settings_for: Any,
    registry: Any,
    day_bars: pd.DataFrame,
    recent_bars: pd.DataFrame,
) -> None:
    from cryptoarena.model.train import TINY_CONFIG, train

    uri = f"sqlite:///{tmp_path / 'q.db'}"
    cfg = TINY_CONFIG.model_copy(update={"quantiles": (0.1, 0.9)})
    result = train(
        day_bars.iloc[:7200], tracking_uri=uri, name=registry.name, cfg=cfg, promote="force"
    )
    served = load_forecaster(f"models:/{registry.name}@champion", tracking_uri=uri)
    window = recent_bars.iloc[-result.info.min_bars :].reset_index(drop=True)
    app = create_app(settings_for(type(registry)(uri, registry.name, "", "")))
    with TestClient(app) as c:
        got = c.post("/v1/forecast", json=body(window)).json()
        assert c.get("/v1/model").json()["quantiles"] == [0.1, 0.9]
    expected = served.predict_quantiles([window])[0]
    assert set(got["quantiles"]) == {"0.1", "0.9"}
    assert_float32_close(got["quantiles"]["0.1"], expected[0])
    assert_float32_close(got["quantiles"]["0.9"], expected[1])
    assert_float32_close(got["log_returns"], served.predict([window])[0])


def test_a_champion_that_fails_to_load_leaves_the_old_one_serving(
    registry: Any, settings_for: Any, recent_bars: pd.DataFrame
) -> None:
    from cryptoarena.model.registry import set_alias
    from cryptoarena.serving.slot import RegistrySource

    class BrokenVersion(RegistrySource):
        """The real registry, except that version 2's artifacts are unreadable."""

        def load(self, version: str) -> Any:
            if version == registry.challenger:
                raise OSError("artifact store: permission denied")
            return super().load(version)

    source = BrokenVersion(registry.name, registry.tracking_uri)
    app = create_app(settings_for(registry, admin_token=TOKEN, poll_interval_s=3600), source=source)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as c:
        set_alias(
            registry.name, "champion", registry.challenger, tracking_uri=registry.tracking_uri
        )
        try:
            r = c.post("/v1/model/reload", headers=auth)
            assert r.status_code == 503
            assert "loading version 2 failed" in r.json()["detail"]
            assert "still serving version 1" in r.json()["detail"]
            assert c.get("/ready").json()["model_version"] == "1"
            f = c.post("/v1/forecast", json=body(recent_bars))
            assert f.status_code == 200 and f.json()["model_version"] == "1"
        finally:
            set_alias(
                registry.name, "champion", registry.champion, tracking_uri=registry.tracking_uri
            )
        assert c.post("/v1/model/reload", headers=auth).json()["swapped"] is False


def test_the_same_app_can_run_its_lifespan_twice(
    registry: Any, settings_for: Any, recent_bars: pd.DataFrame
) -> None:
    app = create_app(settings_for(registry, admin_token=TOKEN, poll_interval_s=3600))
    for _ in range(2):
        with TestClient(app) as c:
            assert c.post("/v1/forecast", json=body(recent_bars)).status_code == 200
            r = c.post("/v1/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
