"""Forecast quality from the prediction ledger: each model version against persistence.

A prediction is (base price at the bar close, predicted price ``horizon_s`` later); the worker
fills in the realised price when that time comes. Errors are of the log return in basis points:
the model's ``ln(predicted/realised)`` against persistence's ``ln(base/realised)`` (the forecast
"no change"); MSE skill and MAE skill come from the one definition
(:func:`cryptoarena.model.skill.forecast_skill`, also used by ``arena evaluate`` and the
dashboard). Directional accuracy counts realised moves ≠ 0 only; a forecast of no
move counts as wrong there (persistence, which never names a direction, would score 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from cryptoarena.model.skill import forecast_skill, price_errors_bp
from cryptoarena.trading.results.model import ForecastQuality

BP = 1e4


def forecast_quality(predictions: Iterable[Mapping[str, Any]]) -> list[ForecastQuality]:
    """One row per model version, from prediction documents (unresolved ones are skipped)."""
    docs = list(predictions)
    if not docs:
        return []
    # Column-wise: a day is 86,400 predictions; numpy does the arithmetic.
    base = np.array([_num(d.get("base_price")) for d in docs])
    pred = np.array([_num(d.get("predicted_price")) for d in docs])
    real = np.array([_num(d.get("realised_price")) for d in docs])
    versions = np.array([str(d.get("model_version", "?")) for d in docs])
    ok = (base > 0) & (pred > 0) & (real > 0)  # NaN (missing) compares False
    rows = []
    for version in sorted(set(versions[ok].tolist()), key=_version_key):
        sel = ok & (versions == version)
        predicted = np.log(pred[sel] / base[sel]) * BP
        realised = np.log(real[sel] / base[sel]) * BP
        sk = forecast_skill(*price_errors_bp(base[sel], pred[sel], real[sel]))
        moved = realised != 0.0
        hits = np.sign(predicted[moved]) == np.sign(realised[moved])
        horizon = next(
            (d.get("horizon_s") for d in docs if str(d.get("model_version", "?")) == version), None
        )
        rows.append(
            ForecastQuality(
                model_version=version,
                predictions=int(sel.sum()),
                horizon_s=int(horizon) if horizon is not None else None,
                mae_bps=sk.mae,
                persistence_mae_bps=sk.mae_base,
                skill=sk.mse_skill,
                mae_skill=sk.mae_skill,
                directional_accuracy=float(np.mean(hits)) if hits.size else None,
                moves=int(moved.sum()),
            )
        )
    return rows


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)
