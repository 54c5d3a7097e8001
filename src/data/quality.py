"""Data-quality checks for trade and bar frames, returning a structured report.

Used by the tests over the shipped data, by ``arena data import`` and by the collect flow. Errors
make data unfit to use (time running backwards, duplicate trade ids, inconsistent OHLC,
non-positive prices); warnings describe real-world facts worth knowing (gaps in the tape).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from cryptoarena.data.records import BAR_COLUMNS, NS_PER_S

logger = logging.getLogger(__name__)

# Exchange times outside this window are not plausible UTC epoch nanoseconds (unit mix-ups).
MIN_TS_NS = 1_230_768_000 * NS_PER_S  # 2009-01-01
MAX_TS_NS = 4_102_444_800 * NS_PER_S  # 2100-01-01

TRADE_DTYPES = {"ts": "int64", "price": "float64", "size": "float64", "side": "int8"}
BAR_DTYPES = {c: "float64" for c in BAR_COLUMNS} | {"ts": "int64", "trades": "int64"}


@dataclass(frozen=True)
class Finding:
    check: str
    severity: Literal["error", "warning"]
    count: int
    detail: str


@dataclass(frozen=True)
class Gap:
    """No data between ``start_ns`` and ``end_ns`` (longer than the tolerance)."""

    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


@dataclass
class QualityReport:
    source: str
    kind: Literal["trades", "bars"]
    rows: int
    first_ns: int | None = None
    last_ns: int | None = None
    findings: list[Finding] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def add(self, check: str, count: int, detail: str, severity: str = "error") -> None:
        if count:
            self.findings.append(
                Finding(check, "error" if severity == "error" else "warning", count, detail)
            )

    def summary(self) -> str:
        state = "ok" if self.ok else "FAILED"
        text = f"{self.source}: {self.kind} {self.rows:,} rows, {state}"
        if self.gaps:
            longest = max(g.seconds for g in self.gaps)
            text += f", {len(self.gaps)} gaps (longest {longest:,.0f} s)"
        for f in self.findings:
            if f.check != "gaps":
                text += f"; {f.severity} {f.check}: {f.count} ({f.detail})"
        return text


def _check_schema(frame: pd.DataFrame, dtypes: dict[str, str], report: QualityReport) -> bool:
    missing = [c for c in dtypes if c not in frame.columns]
    report.add("schema", len(missing), f"missing columns {missing}")
    wrong = [
        f"{c}:{frame[c].dtype}"
        for c, t in dtypes.items()
        if c in frame and str(frame[c].dtype) != t
    ]
    report.add("dtypes", len(wrong), f"expected {dtypes}, got {wrong}")
    return not missing


def _first_index(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_time(ts: np.ndarray, report: QualityReport, *, strict: bool) -> None:
    if len(ts) == 0:
        return
    report.first_ns, report.last_ns = int(ts.min()), int(ts.max())
    implausible = (ts < MIN_TS_NS) | (ts > MAX_TS_NS)
    report.add("utc_time", int(implausible.sum()), "timestamps outside 2009..2100 (wrong unit?)")
    diff = np.diff(ts)
    back = diff < 0 if not strict else diff <= 0
    if back.any():
        i = _first_index(back)
        what = "not strictly increasing" if strict else "time runs backwards"
        report.add("monotonic_time", int(back.sum()), f"{what} (first at row {i + 1})")


def _gaps(ts: np.ndarray, tolerance_ns: int) -> list[Gap]:
    if len(ts) < 2:
        return []
    diff = np.diff(ts)
    idx = np.flatnonzero(diff > tolerance_ns)
    return [Gap(int(ts[i]), int(ts[i + 1])) for i in idx]


def check_trades(
    trades: pd.DataFrame, *, source: str = "trades", gap_tolerance_s: float = 60.0
) -> QualityReport:
    """Schema, monotonic UTC time, duplicate ids, positive prices/sizes, valid sides, gaps."""
    report = QualityReport(source, "trades", len(trades))
    if not _check_schema(trades, {**TRADE_DTYPES, "trade_id": "object"}, report):
        return report
    ts = trades["ts"].to_numpy(np.int64)
    _check_time(ts, report, strict=False)
    ids = trades["trade_id"].astype(str)
    dup = ids.duplicated(keep="first") & (ids != "")
    report.add("duplicate_ids", int(dup.sum()), f"e.g. {list(ids[dup].head(3))}")
    price = trades["price"].to_numpy(np.float64)
    report.add("positive_price", int((~(price > 0)).sum()), "price <= 0 or NaN")
    size = trades["size"].to_numpy(np.float64)
    report.add("positive_size", int((~(size > 0)).sum()), "size <= 0 or NaN")
    side = trades["side"].to_numpy()
    report.add("side", int((~np.isin(side, (-1, 0, 1))).sum()), "side not in {-1, 0, 1}")
    report.gaps = _gaps(ts, int(gap_tolerance_s * NS_PER_S))
    report.add("gaps", len(report.gaps), f"no trade for more than {gap_tolerance_s:g} s", "warning")
    return report


def check_bars(
    bars: pd.DataFrame,
    *,
    source: str = "bars",
    bar_ns: int = NS_PER_S,
    gap_tolerance_s: float = 60.0,
) -> QualityReport:
    """Schema, strictly increasing aligned times, OHLC consistency, positive prices, volumes, gaps.

    A gap is a span longer than the tolerance with no bar rows or only bars without trades."""
    report = QualityReport(source, "bars", len(bars))
    if not _check_schema(bars, BAR_DTYPES, report):
        return report
    ts = bars["ts"].to_numpy(np.int64)
    _check_time(ts, report, strict=True)
    report.add("aligned_time", int((ts % bar_ns != 0).sum()), f"ts not a multiple of {bar_ns} ns")
    o, h, lo, c = (bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    report.add("high", int((~(h >= np.maximum(o, c))).sum()), "high < max(open, close)")
    report.add("low", int((~(lo <= np.minimum(o, c))).sum()), "low > min(open, close)")
    positive = (o > 0) & (h > 0) & (lo > 0) & (c > 0)
    report.add("positive_price", int((~positive).sum()), "OHLC <= 0 or NaN")
    vol = bars["volume"].to_numpy(np.float64)
    report.add("volume", int((~(vol >= 0)).sum()), "negative or NaN volume")
    split = bars["buy_volume"].to_numpy(np.float64) + bars["sell_volume"].to_numpy(np.float64)
    report.add(
        "buy_sell_volume", int((split > vol * (1 + 1e-9) + 1e-12).sum()), "buy + sell > volume"
    )
    traded = bars["trades"].to_numpy(np.int64) > 0
    vwap = bars["vwap"].to_numpy(np.float64)
    eps = 1e-9 * np.abs(h)
    bad_vwap = traded & (vol > 0) & ((vwap < lo - eps) | (vwap > h + eps))
    report.add("vwap", int(bad_vwap.sum()), "VWAP outside [low, high]", "warning")
    # Gaps: time between consecutive bars that had trades (missing rows or explicit empty bars).
    active = ts[traded | (vol > 0)] if "trades" in bars else ts
    report.gaps = _gaps(active, int(gap_tolerance_s * NS_PER_S) + bar_ns)
    report.add(
        "gaps", len(report.gaps), f"no trades for more than {gap_tolerance_s:g} s", "warning"
    )
    return report
