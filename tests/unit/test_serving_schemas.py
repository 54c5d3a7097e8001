"""Serving request schemas, 422 bodies and the client's Forecast, without a model."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from typing import Any

import pytest
from cryptoarena.data.records import NS_PER_S
from cryptoarena.serving.client import Forecast, ForecastClient, ForecastUnavailable, bars_payload
from cryptoarena.serving.schemas import ForecastRequest, json_safe_error
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

T0 = 1_582_329_600 * NS_PER_S


def bars(n: int, *, ts: list[int] | None = None, close: float = 9650.0) -> dict[str, list[Any]]:
    return {
        "ts": ts or [T0 + i * NS_PER_S for i in range(n)],
        "open": [close] * n,
        "high": [close + 1] * n,
        "low": [close - 1] * n,
        "close": [close] * n,
        "volume": [1.5] * n,
        "vwap": [close] * n,
        "trades": [3] * n,
        "buy_volume": [1.0] * n,
        "sell_volume": [0.5] * n,
    }


def errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        ForecastRequest.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


def test_a_valid_request_parses() -> None:
    req = ForecastRequest.model_validate({"symbol": "BTCUSDT", "bars": bars(5)})
    assert len(req.bars) == 5 and req.bars.close[-1] == 9650.0


def test_each_problem_is_named_by_field_and_index() -> None:
    b = bars(6)
    b["close"][2] = -1.0
    b["volume"][4] = float("nan")
    b["trades"][1] = 2.5
    got = errors({"symbol": "btc usdt", "bars": b})
    assert set(got) == {"symbol", "bars.close.2", "bars.volume.4", "bars.trades.1"}
    assert "finite" in got["bars.volume.4"] and "greater than 0" in got["bars.close.2"]


def test_columns_must_agree_and_unknown_fields_are_refused() -> None:
    b = bars(4)
    b["vwap"] = b["vwap"][:3]
    assert (
        "column 'vwap' has 3 values but ts has 4"
        in errors({"symbol": "BTCUSDT", "bars": b})["bars"]
    )
    b = bars(4)
    b["mid"] = [1.0] * 4
    assert "bars.mid" in errors({"symbol": "BTCUSDT", "bars": b})


# The start leaves room for 40 gaps of -1: every time stays positive (Timestamp > 0), so the
# spacing is the only error (hypothesis found start=1, gaps=[-1]: a time of 0 is its own error).
@settings(max_examples=60, deadline=None)
@given(
    st.integers(41, 10**18),
    st.lists(st.sampled_from([NS_PER_S] * 4 + [0, -1, 1, NS_PER_S - 1, 2 * NS_PER_S]), min_size=1, max_size=40),
)  # fmt: skip
def test_times_are_accepted_iff_one_second_apart(start: int, gaps: list[int]) -> None:
    ts = [start]
    for gap in gaps:
        ts.append(ts[-1] + gap)
    data = {"symbol": "BTCUSDT", "bars": bars(len(ts), ts=ts)}
    if all(b - a == NS_PER_S for a, b in pairwise(ts)):
        ForecastRequest.model_validate(data)
    else:
        first = next(i for i in range(1, len(ts)) if ts[i] - ts[i - 1] != NS_PER_S)
        msg = errors(data)["bars.ts"]
        assert "one second apart" in msg and f"ts[{first}]" in msg


def test_a_time_that_is_not_positive_is_refused_as_such() -> None:
    data = {"symbol": "BTCUSDT", "bars": bars(2, ts=[1, 0])}
    assert "bars.ts.1" in errors(data)


def test_422_entries_always_encode_as_json() -> None:
    entry = json_safe_error(
        {
            "loc": ("body", "bars", "high", 3),
            "msg": "m",
            "type": "t",
            "input": math.nan,
            "ctx": {"gt": 0.0},
        }
    )
    assert json.loads(json.dumps(entry, allow_nan=False))["input"] == "nan"
    big = json_safe_error(
        {"loc": ("body", "bars", "ts"), "msg": "m", "type": "t", "input": [1] * 5000}
    )
    assert "input" not in big


def forecast(bar_ts: int, received: int) -> Forecast:
    return Forecast("BTCUSDT", bar_ts, (0.0,) * 15, (1.0,) * 15, "m", "1", received)


def test_staleness_counts_from_the_bar_close_or_the_receipt_whichever_is_older() -> None:
    f = forecast(T0, T0 + NS_PER_S)  # received the moment the bar closed
    assert not f.is_stale(T0 + 3 * NS_PER_S, 2.0)
    assert f.is_stale(T0 + 3 * NS_PER_S + 1, 2.0)
    late = forecast(T0, T0 + 10 * NS_PER_S)  # the bar was already old when it came back
    assert late.is_stale(T0 + 10 * NS_PER_S, 2.0)


async def test_client_checks_its_arguments_and_the_bars() -> None:
    import pandas as pd

    with pytest.raises(ValueError, match="timeout_s"):
        ForecastClient("http://127.0.0.1:9", timeout_s=0)
    with pytest.raises(ForecastUnavailable, match="lack columns"):
        bars_payload(pd.DataFrame({"ts": [1], "close": [1.0]}))
    async with ForecastClient("http://127.0.0.1:9") as client:
        with pytest.raises(ForecastUnavailable, match="no bars"):
            await client.forecast("BTCUSDT", pd.DataFrame(bars(0)))
