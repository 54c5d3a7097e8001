"""Skill against the no-change forecast (persistence), defined once.

Every place that reports a forecaster's skill calls :func:`forecast_skill`: ``arena evaluate``
and the training report (:mod:`cryptoarena.model.evaluation`, :mod:`cryptoarena.model.cv`), the
trading report (``trading.results.forecasts``) and the dashboard (``dashboard.reader``).

- **MSE skill** = 1 − MSE(model) / MSE(persistence): the loss the model is trained on and the
  one the Diebold–Mariano tests compare; rewards getting the large moves right.
- **MAE skill** = 1 − MAE(model) / MAE(persistence): the typical error; a forecaster that
  shrinks toward zero can have positive MSE skill and negative MAE skill at the same time
  (returns are fat-tailed), which is why both are shown.

Errors are of the log return over the horizon: model error = ln(predicted / realised), the
persistence error = ln(base / realised) (it forecasts a zero return). Any unit works (the ratios
are unitless); the MAE fields are in the unit of the errors given (bp everywhere in this
project). Only pairs where both errors are finite count, so both skills always come from the
same forecasts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Skill:
    n: int  # forecasts scored
    mae: float
    mae_base: float  # persistence's MAE on the same forecasts
    rmse: float
    rmse_base: float
    mse_skill: float | None  # None when persistence's error is 0 (nothing to beat)
    mae_skill: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def forecast_skill(err: np.ndarray, err_base: np.ndarray) -> Skill:
    """Both skills of errors ``err`` against persistence's errors ``err_base`` (same forecasts,
    same order). Raises on a length mismatch; empty input gives n = 0 and NaN/None fields."""
    e = np.asarray(err, np.float64).ravel()
    b = np.asarray(err_base, np.float64).ravel()
    if e.shape != b.shape:
        raise ValueError(f"errors {e.shape} and persistence errors {b.shape} differ in length")
    ok = np.isfinite(e) & np.isfinite(b)
    e, b = e[ok], b[ok]
    if not len(e):
        nan = float("nan")
        return Skill(0, nan, nan, nan, nan, None, None)
    mse, mse_b = float(np.mean(e * e)), float(np.mean(b * b))
    mae, mae_b = float(np.mean(np.abs(e))), float(np.mean(np.abs(b)))
    return Skill(
        n=len(e),
        mae=mae,
        mae_base=mae_b,
        rmse=math.sqrt(mse),
        rmse_base=math.sqrt(mse_b),
        mse_skill=1.0 - mse / mse_b if mse_b > 0 else None,
        mae_skill=1.0 - mae / mae_b if mae_b > 0 else None,
    )


def price_errors_bp(
    base: np.ndarray, predicted: np.ndarray, realised: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(model errors, persistence errors) in bp of the log return, from prices: what the
    journal's prediction documents hold (base price at the forecast, predicted and realised
    price at the horizon)."""
    base, pred, real = (np.asarray(a, np.float64) for a in (base, predicted, realised))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(pred / real) * 1e4, np.log(base / real) * 1e4
