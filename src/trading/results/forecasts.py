"""Forecast quality from the prediction ledger: each model version against persistence.

A prediction is (base price at the bar close, predicted price ``horizon_s`` later); the worker
fills in the realised price when that time comes. Errors are of the log return in basis points:
the model's ``|ln(predicted/realised)|`` against persistence's ``|ln(realised/base)|`` (the
forecast "no change"). Directional accuracy counts realised moves ≠ 0 only; a forecast of no
move counts as wrong there (persistence, which never names a direction, would score 0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from cryptoarena.trading.results.model import ForecastQuality

BP = 1e4


def forecast_quality(predictions: Iterable[Mapping[str, Any]]) -> list[ForecastQuality]:
    """One row per model version, from prediction documents with a realised price."""
    groups: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    horizons: dict[str, int] = {}
    for doc in predictions:
        base, pred, real = (
            doc.get("base_price"),
            doc.get("predicted_price"),
            doc.get("realised_price"),
        )
        if not base or not pred or not real:
            continue
        version = str(doc.get("model_version", "?"))
        groups[version].append((float(base), float(pred), float(real)))
        if doc.get("horizon_s") is not None:
            horizons.setdefault(version, int(doc["horizon_s"]))
    rows = []
    for version in sorted(groups, key=_version_key):
        arr = np.asarray(groups[version], dtype=np.float64)
        if not np.all(arr > 0):
            arr = arr[np.all(arr > 0, axis=1)]
        if len(arr) == 0:
            continue
        predicted = np.log(arr[:, 1] / arr[:, 0]) * BP
        realised = np.log(arr[:, 2] / arr[:, 0]) * BP
        mae = float(np.mean(np.abs(predicted - realised)))
        persistence = float(np.mean(np.abs(realised)))
        moved = realised != 0.0
        hits = np.sign(predicted[moved]) == np.sign(realised[moved])
        rows.append(
            ForecastQuality(
                model_version=version,
                predictions=len(arr),
                horizon_s=horizons.get(version),
                mae_bps=mae,
                persistence_mae_bps=persistence,
                skill=1.0 - mae / persistence if persistence > 0 else None,
                directional_accuracy=float(np.mean(hits)) if hits.size else None,
                moves=int(moved.sum()),
            )
        )
    return rows


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)
