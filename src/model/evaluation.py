"""Judging forecasts against what happened, always next to persistence (the no-change forecast).

Per model, at the headline horizon: MAE and RMSE in basis points, skill = 1 − MSE/MSE(persistence)
and MAE skill = 1 − MAE/MAE(persistence) (both from :func:`cryptoarena.model.skill.forecast_skill`),
directional accuracy on moves larger than round-trip fees, and a Diebold–Mariano test of squared
errors against persistence. Overlapping h-step forecasts make the loss differential
autocorrelated up to lag h − 1. Two variances of its mean are offered (:func:`dm_test`):

- ``"hln"`` (the default and what the gate uses): the textbook DM variance — autocovariances up
  to lag h − 1 with equal (rectangular) weights — with the Harvey–Leybourne–Newbold (1997)
  small-sample correction and a Student-t(n − 1) p-value: the published modified DM test.
- ``"hac"``: a Newey–West (Bartlett weights 1 − k/h, lag h − 1) variance and a normal p-value
  (statsmodels' ``cov_type="HAC"`` on a regression of the differential on a constant).

Bartlett weights shrink the (positive) autocovariances of overlapping errors, so the HAC variance
is smaller and its statistic larger; combined with the HLN factor (which the code used before)
the statistic was 17–24 % larger than the textbook one — less conservative than either test.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from cryptoarena.model.features import BP
from cryptoarena.model.skill import forecast_skill
from scipy import stats

logger = logging.getLogger(__name__)

# Bybit taker fee 5.5 bp per side: a move must beat a round trip to pay.
ROUND_TRIP_FEE_BP = 2 * 5.5
PERSISTENCE = "persistence"


DM_KINDS = ("hln", "hac")


def _autocov(dc: np.ndarray, lag: int) -> float:
    n = len(dc)
    return float(dc[lag:] @ dc[: n - lag]) / n


def dm_test(
    err_model: np.ndarray, err_base: np.ndarray, horizon: int, kind: str = "hln"
) -> tuple[float, float]:
    """(statistic, two-sided p-value) for equal MSE; negative statistic = model has lower loss.

    ``kind="hln"``: rectangular variance (falls back to Bartlett weights when it is not
    positive), HLN correction, t(n − 1). ``kind="hac"``: Newey–West variance, normal p-value.
    """
    if kind not in DM_KINDS:
        raise ValueError(f"DM kind must be one of {DM_KINDS}, got {kind!r}")
    d = np.asarray(err_model, np.float64) ** 2 - np.asarray(err_base, np.float64) ** 2
    n = len(d)
    if n < 2 * horizon + 2 or not np.any(d):
        return float("nan"), 1.0
    dc = d - d.mean()
    gammas = [_autocov(dc, lag) for lag in range(horizon)]
    bartlett = gammas[0] + 2.0 * sum((1.0 - k / horizon) * g for k, g in enumerate(gammas) if k)
    if kind == "hac":
        if bartlett <= 0:
            return float("nan"), 1.0
        stat = d.mean() / math.sqrt(bartlett / n)
        return float(stat), 2.0 * float(stats.norm.sf(abs(stat)))
    var = gammas[0] + 2.0 * sum(gammas[1:])
    if var <= 0:  # rectangular weights can go negative in small samples
        var = bartlett
    if var <= 0:
        return float("nan"), 1.0
    stat = d.mean() / math.sqrt(var / n)
    stat *= math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    return float(stat), 2.0 * float(stats.t.sf(abs(stat), df=n - 1))


def diebold_mariano(
    err_model: np.ndarray, err_base: np.ndarray, horizon: int
) -> tuple[float, float]:
    """The modified (HLN) Diebold–Mariano test: ``dm_test(..., kind="hln")``."""
    return dm_test(err_model, err_base, horizon, "hln")


def directional_accuracy(
    actual: np.ndarray, pred: np.ndarray, fee_bp: float = ROUND_TRIP_FEE_BP
) -> tuple[float, int]:
    """Share of moves larger than ``fee_bp`` whose sign was forecast (a zero forecast misses)."""
    big = np.abs(actual) * BP > fee_bp
    n_big = int(big.sum())
    if n_big == 0:
        return float("nan"), 0
    return float(np.mean(np.sign(pred[big]) == np.sign(actual[big]))), n_big


def fee_beating_signals(
    actual: np.ndarray, pred: np.ndarray, fee_bp: float = ROUND_TRIP_FEE_BP
) -> tuple[int, float, float]:
    """Forecasts larger than fees (what a trader would act on): (count, hit rate, mean net bp).

    Net bp = the realised move in the forecast's direction minus the round-trip fee.
    """
    sig = np.abs(pred) * BP > fee_bp
    n = int(sig.sum())
    if n == 0:
        return 0, float("nan"), float("nan")
    direction = np.sign(pred[sig])
    hit = float(np.mean(direction == np.sign(actual[sig])))
    net = float(np.mean(direction * actual[sig] * BP - fee_bp))
    return n, hit, net


def evaluate(
    actual: np.ndarray,
    preds: dict[str, np.ndarray],
    *,
    fee_bp: float = ROUND_TRIP_FEE_BP,
) -> dict[str, dict[str, Any]]:
    """Metrics per model; ``actual`` and each prediction are (N, horizon) log returns."""
    if actual.ndim != 2:
        raise ValueError("actual must be (N, horizon)")
    horizon = actual.shape[1]
    base = preds.get(PERSISTENCE, np.zeros_like(actual))
    base_mse_h = np.mean((base - actual) ** 2, axis=0)
    out: dict[str, dict[str, Any]] = {}
    for name, pred in preds.items():
        if pred.shape != actual.shape:
            raise ValueError(f"{name}: predictions {pred.shape} vs actual {actual.shape}")
        err = pred - actual
        mse_h = np.mean(err**2, axis=0)
        last = err[:, -1]
        dm_stat, dm_p = diebold_mariano(last, base[:, -1] - actual[:, -1], horizon)
        _, dm_hac_p = dm_test(last, base[:, -1] - actual[:, -1], horizon, "hac")
        acc, n_big = directional_accuracy(actual[:, -1], pred[:, -1], fee_bp)
        n_sig, sig_hit, sig_net = fee_beating_signals(actual[:, -1], pred[:, -1], fee_bp)
        with np.errstate(divide="ignore", invalid="ignore"):
            skill_h = np.where(base_mse_h > 0, 1.0 - mse_h / base_mse_h, np.nan)
        sk = forecast_skill(last * BP, (base[:, -1] - actual[:, -1]) * BP)
        out[name] = {
            "n": len(actual),
            "mae_bp": sk.mae,
            "rmse_bp": sk.rmse,
            "skill": _or_nan(sk.mse_skill),
            "mae_skill": _or_nan(sk.mae_skill),
            "skill_by_horizon": [float(s) for s in skill_h],
            "rmse_bp_by_horizon": [float(math.sqrt(m) * BP) for m in mse_h],
            "dir_acc_big": acc,
            "n_big_moves": n_big,
            "dm_stat": dm_stat,
            "dm_p": dm_p,
            "dm_hac_p": dm_hac_p,
            "n_signals": n_sig,
            "signal_hit_rate": sig_hit,
            "signal_net_bp": sig_net,
        }
    return out


def _or_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def headline_metrics(results: dict[str, dict[str, Any]], model: str) -> dict[str, float]:
    """Flat float metrics of one model (what goes into MLflow and ForecastModelInfo.metrics)."""
    r = results[model]
    keys = ("mae_bp", "rmse_bp", "skill", "mae_skill", "dir_acc_big", "dm_stat", "dm_p", "n_signals",
            "signal_net_bp")  # fmt: skip
    return {k: float(r[k]) for k in keys if r[k] is not None and math.isfinite(float(r[k]))}
