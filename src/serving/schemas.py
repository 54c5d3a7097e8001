"""Request and response bodies of the forecast server, named by role.

Bars travel column-wise (``{"ts": [...], "close": [...], ...}``, the columns of
``records.BAR_COLUMNS``): it is the shape the model consumes, it is compact, and pydantic checks
each number in Rust. A 422 then names the column and the index (``body.bars.close.17``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MAX_BARS = 4096  # a request carries recent bars, not a history
MAX_BATCH = 64
SYMBOL_PATTERN = r"^[A-Z0-9]{2,20}$"

# Every number must be finite (no NaN/inf); prices positive, volumes not negative.
# The upper bounds keep sums and products inside float range (features stay finite).
# Strict: a JSON true/false or "9650.5" is not a number (lax mode would read true as 1.0).
Price = Annotated[float, Field(gt=0, lt=1e12, allow_inf_nan=False, strict=True)]
Volume = Annotated[float, Field(ge=0, lt=1e15, allow_inf_nan=False, strict=True)]
Timestamp = Annotated[int, Field(gt=0, lt=2**63, strict=True)]
Count = Annotated[int, Field(ge=0, lt=2**53, strict=True)]

BAR_NS = 1_000_000_000  # the model reads consecutive one-second bars
MAX_BAR_ERRORS = 10  # a 422 names the first problems, not thousands
BAR_VALUES = ("open", "high", "low", "close", "volume", "buy_volume", "sell_volume")
# Sums of the same trades added in another order may differ in the last bits: tolerate that,
# and nothing a real bar could show.
SUM_RTOL = 1e-9


def _one_second_apart(ts: list[int]) -> list[int]:
    for i in range(1, len(ts)):
        if ts[i] - ts[i - 1] != BAR_NS:
            raise PydanticCustomError(
                "not_one_second_apart",
                "bar times must be strictly increasing, one second apart (empty seconds are "
                "explicit bars): ts[{index}]={value} is {gap_s} s after ts[{prev_index}]",
                {
                    "index": i,
                    "value": ts[i],
                    "gap_s": (ts[i] - ts[i - 1]) / BAR_NS,
                    "prev_index": i - 1,
                },
            )
    return ts


class BarsIn(BaseModel):
    """The most recent one-second bars, oldest first, one list per column (all the same length).

    ``ts`` is each bar's open time in nanoseconds since the epoch (UTC); the forecast refers to
    the close of the last bar.
    """

    model_config = ConfigDict(extra="forbid")

    ts: Annotated[
        list[Timestamp], Field(min_length=2, max_length=MAX_BARS), AfterValidator(_one_second_apart)
    ]
    open: list[Price]
    high: list[Price]
    low: list[Price]
    close: list[Price]
    volume: list[Volume]
    vwap: list[Price]
    trades: list[Count]
    buy_volume: list[Volume]
    sell_volume: list[Volume]

    @model_validator(mode="after")
    def _same_length(self) -> BarsIn:
        n = len(self.ts)
        for name in type(self).model_fields:
            got = len(getattr(self, name))
            if got != n:
                raise PydanticCustomError(
                    "length_mismatch",
                    "column '{column}' has {got} values but ts has {n}",
                    {"column": name, "got": got, "n": n},
                )
        return self

    def __len__(self) -> int:
        return len(self.ts)


class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTCUSDT",
                    "bars": {
                        "ts": [1582329600000000000, 1582329601000000000],
                        "open": [9650.0, 9651.5],
                        "high": [9652.0, 9652.0],
                        "low": [9649.5, 9651.0],
                        "close": [9651.5, 9651.0],
                        "volume": [3.2, 1.1],
                        "vwap": [9650.8, 9651.4],
                        "trades": [41, 12],
                        "buy_volume": [2.0, 0.4],
                        "sell_volume": [1.2, 0.7],
                    },
                }
            ]
        },
    )

    symbol: Annotated[str, Field(pattern=SYMBOL_PATTERN, examples=["BTCUSDT"])]
    bars: BarsIn


class BatchForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ForecastRequest], Field(min_length=1, max_length=MAX_BATCH)]


class ForecastResponse(BaseModel):
    symbol: str
    bar_ts_ns: int = Field(description="Open time (ns) of the last bar; its close is the base.")
    base_price: float = Field(description="Close of the last bar.")
    horizons_s: list[int] = Field(description="Seconds ahead: 1 … horizon.")
    log_returns: list[float] = Field(description="Forecast log return from base_price.")
    prices: list[float] = Field(description="base_price · exp(log_return).")
    quantiles: dict[str, list[float]] | None = Field(
        default=None,
        description="Log-return quantiles by level ('0.1': [...]), if the model has them.",
    )
    model_name: str
    model_version: str
    compute_ms: float = Field(description="Server time spent on this forecast (features + model).")


class BatchForecastResponse(BaseModel):
    forecasts: list[ForecastResponse]
    model_name: str
    model_version: str
    compute_ms: float


class ModelInfoResponse(BaseModel):
    name: str
    version: str
    run_id: str
    uri: str
    horizon: int
    window: int
    min_bars: int
    quantiles: list[float]
    metrics: dict[str, float]
    loaded_at: datetime
    symbols: list[str]
    promotion: str = Field(
        default="", description="How @champion was set: gate | bootstrap | forced ('' if unknown)."
    )
    gate: str = Field(default="", description="The promotion gate's verdict with its numbers.")


class HealthResponse(BaseModel):
    status: str = "ok"


class ReadyResponse(BaseModel):
    ready: bool
    model_version: str | None = None
    reason: str | None = None


class ReloadResponse(BaseModel):
    previous_version: str | None
    version: str
    swapped: bool


class ErrorResponse(BaseModel):
    """Body of 401/403/503 answers: why the request could not be served."""

    detail: str


def impossible_bars(cols: Mapping[str, np.ndarray]) -> list[tuple[str, int, str]]:
    """Bars no market can print, as (column, index, why): at most ``MAX_BAR_ERRORS`` of them.

    The schema checked each number on its own; these are the relations between a bar's columns:
    low ≤ open, close ≤ high; buy and sell volume each at most the volume. (Not buy + sell =
    volume: bars from klines may not know the taker side.)
    """
    o, h, lo, c, v = (cols[k] for k in ("open", "high", "low", "close", "volume"))
    buy, sell = cols["buy_volume"], cols["sell_volume"]
    ceiling = v * (1 + SUM_RTOL)  # the most buy or sell volume a bar can have
    # The common case in few array passes (low ≤ min(open, close) ≤ max(open, close) ≤ high
    # implies low ≤ high); the detailed checks below run only for a bad request.
    if (
        (lo <= np.minimum(o, c)).all()
        and (np.maximum(o, c) <= h).all()
        and (np.maximum(buy, sell) <= ceiling).all()
    ):
        return []
    checks: list[tuple[str, np.ndarray, str]] = [
        ("high", h < lo, "high {high} is below low {low}"),
        # (When high < low, that is the one error: open and close cannot be inside either.)
        (
            "open",
            (h >= lo) & ((o < lo) | (o > h)),
            "open {open} is outside [low {low}, high {high}]",
        ),
        (
            "close",
            (h >= lo) & ((c < lo) | (c > h)),
            "close {close} is outside [low {low}, high {high}]",
        ),
        ("buy_volume", buy > ceiling, "buy_volume {buy_volume} exceeds volume {volume}"),
        ("sell_volume", sell > ceiling, "sell_volume {sell_volume} exceeds volume {volume}"),
    ]
    found: list[tuple[str, int, str]] = []
    for column, bad, why in checks:
        for i in np.flatnonzero(bad)[: MAX_BAR_ERRORS - len(found)]:
            values = {name: float(cols[name][i]) for name in BAR_VALUES}
            found.append((column, int(i), f"impossible bar {i}: " + why.format(**values)))
    return found


def validation_error(loc: tuple[str | int, ...], msg: str, kind: str, value: Any) -> dict[str, Any]:
    """One entry of a 422 body in FastAPI's own shape, for checks that need the model."""
    return {"loc": list(loc), "msg": msg, "type": kind, "input": value}


def _safe(value: Any) -> Any:
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)[:200]


def json_safe_error(error: Any) -> dict[str, Any]:
    """A 422 entry that always encodes: NaN/inf inputs as text, no echo of whole bar lists."""
    out: dict[str, Any] = {
        "loc": [p if isinstance(p, int | str) else str(p) for p in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "value_error")),
    }
    value = error.get("input")
    if not isinstance(value, list | dict):
        out["input"] = _safe(value)
    ctx = error.get("ctx")
    if isinstance(ctx, dict):
        out["ctx"] = {str(k): _safe(v) for k, v in ctx.items()}
    return out
