"""Purged, embargoed cross-validation over every usable span of a bar frame.

The usable anchors (complete inputs and labels, no hole in the seconds they read) are cut into K
contiguous folds in time order. A fold's training anchors keep a distance of window + lookback +
horizon bars from its test anchors on both sides (purge before, embargo after), so no bar a test
label reads is read by a training input and no training label reads a test input bar. The
walk-forward scheme (the default) trains only on anchors before the fold (fold 0 is not scored);
the blocked scheme also trains on anchors after it.

Models that are fitted (persistence, EWMA drift, ridge) are refitted per fold on its training
anchors. A fixed model (a registered LSTM) is scored only on the anchors it never saw: those
outside its training span (plus the same gap), given as ``exclude`` time ranges.

Pooled over the folds: MAE/RMSE/skill, skill's 95 % interval from a circular moving-block
bootstrap (blocks of ``block_s`` bars), Diebold–Mariano tests (HLN and HAC) against persistence,
and the same tests pairwise between models on the anchors both were scored on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from cryptoarena.data.records import NS_PER_S
from cryptoarena.model.baselines import EwmaDrift, Persistence, Ridge
from cryptoarena.model.evaluation import PERSISTENCE, dm_test
from cryptoarena.model.features import BP, FeatureSpec, Scaler, compute_features, compute_targets
from cryptoarena.model.forecaster import Forecaster, Predictor
from cryptoarena.model.skill import forecast_skill
from cryptoarena.model.windows import gather, split_gap, utc_day, valid_anchors

logger = logging.getLogger(__name__)

Scheme = Literal["walk_forward", "blocked"]
# (features (n, F) float32, targets (n, H), training anchors) → a fitted predictor.
Fitter = Callable[[np.ndarray, np.ndarray, np.ndarray], Predictor]


@dataclass(frozen=True)
class CVConfig:
    folds: int = 6
    scheme: Scheme = "walk_forward"
    alpha: float = 0.05  # significance level reported with each test
    block_s: int = 300  # bootstrap block length in bars (volatility clusters for minutes)
    n_boot: int = 2000
    seed: int = 7
    by_day: bool = False  # one fold per UTC day (several collected days) instead of K folds

    def __post_init__(self) -> None:
        if self.folds < 2 or self.scheme not in ("walk_forward", "blocked"):
            raise ValueError("cv needs folds >= 2 and scheme walk_forward or blocked")
        if not 0 < self.alpha < 1 or self.block_s < 1 or self.n_boot < 100:
            raise ValueError("cv needs 0 < alpha < 1, block_s >= 1 and n_boot >= 100")


@dataclass(frozen=True)
class Fold:
    index: int
    test: np.ndarray  # anchors scored
    train: np.ndarray  # anchors a fitted model may learn from


def contiguous_anchors(
    ts: np.ndarray, *, window: int, lookback: int, horizon: int, step_ns: int = NS_PER_S
) -> np.ndarray:
    """Valid anchors whose whole read span (inputs back to the lookback, labels ahead) has no
    hole: every bar exactly ``step_ns`` after the previous one (the lake may hold several days)."""
    n = len(ts)
    anchors = valid_anchors(n, window=window, lookback=lookback, horizon=horizon)
    if n < 2 or not len(anchors):
        return anchors
    breaks = np.concatenate([[0], np.cumsum(np.diff(ts) != step_ns)])  # breaks[i]: holes ≤ i
    first_read = anchors - window + 1 - lookback
    return anchors[breaks[anchors + horizon] == breaks[first_read]]


def make_folds(
    anchors: np.ndarray, *, k: int, gap: int, scheme: Scheme, ts: np.ndarray | None = None
) -> list[Fold]:
    """K contiguous folds of ``anchors`` with purge + embargo ``gap`` around each test block;
    with ``ts`` (bar times) one fold per UTC day instead."""
    if ts is not None:
        days = utc_day(ts[anchors])
        blocks = [anchors[days == d] for d in np.unique(days)]
        if len(blocks) < 2:
            raise ValueError("folds by day need windows on at least two UTC days")
    elif len(anchors) < k * (gap + 30):
        raise ValueError(f"{len(anchors)} usable windows are too few for {k} folds (gap {gap})")
    else:
        blocks = np.array_split(anchors, k)
    folds = []
    for i, test in enumerate(blocks):
        past = anchors[anchors <= test[0] - gap]
        train = (
            past
            if scheme == "walk_forward"
            else np.concatenate([past, anchors[anchors >= test[-1] + gap]])
        )
        if len(train) == 0:  # the first walk-forward fold has no past
            continue
        folds.append(Fold(i, test, train))
    return folds


def persistence_fitter(horizon: int) -> Fitter:
    return lambda feats, targets, train: Persistence(horizon)


def ewma_fitter(spec: FeatureSpec, horizon: int) -> Fitter:
    return lambda feats, targets, train: EwmaDrift(spec, horizon)


class _Columns:
    """A predictor that sees only some feature columns (e.g. trades-only inside a book spec)."""

    def __init__(self, inner: Predictor, columns: np.ndarray) -> None:
        self.inner, self.columns = inner, columns

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.inner(x[:, :, self.columns]))


def ridge_fitter(alpha: float = 10.0, columns: Sequence[int] | None = None) -> Fitter:
    """Ridge on the fold's training anchors, its scaler fitted on those rows only (optionally
    on a subset of the feature columns)."""

    def fit(feats: np.ndarray, targets: np.ndarray, train: np.ndarray) -> Predictor:
        cols = np.arange(feats.shape[1]) if columns is None else np.asarray(columns)
        rows = feats[train][:, cols].astype(np.float64)
        return _Columns(Ridge(Scaler.fit(rows), alpha=alpha).fit(rows, targets[train]), cols)

    return fit


def default_fitters(spec: FeatureSpec) -> dict[str, Fitter]:
    h = spec.horizon
    return {
        PERSISTENCE: persistence_fitter(h),
        "ewma_drift": ewma_fitter(spec, h),
        "ridge": ridge_fitter(),
    }


def skill_interval(
    loss_model: np.ndarray, loss_base: np.ndarray, cfg: CVConfig
) -> tuple[float, float]:
    """95 % circular moving-block bootstrap interval of 1 − ΣL_model/ΣL_base (O(n) memory)."""
    n = len(loss_model)
    if n < 2 * cfg.block_s or not np.any(loss_base):
        return float("nan"), float("nan")
    block = cfg.block_s
    n_blocks = math.ceil(n / block)
    # Block sums at every start (circular), from cumulative sums of the doubled series.
    sums = []
    for loss in (loss_model, loss_base):
        c = np.concatenate([[0.0], np.cumsum(np.concatenate([loss, loss[:block]]))])
        sums.append(c[block : n + block] - c[:n])
    rng = np.random.default_rng(cfg.seed)
    skills = np.empty(cfg.n_boot)
    for b in range(cfg.n_boot):
        starts = rng.integers(0, n, size=n_blocks)
        skills[b] = 1.0 - sums[0][starts].sum() / sums[1][starts].sum()
    lo, hi = np.quantile(skills, [0.025, 0.975])
    return float(lo), float(hi)


def _metrics(err: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Errors and both skills (one definition: :func:`forecast_skill`); persistence's error is
    −actual."""
    sk = forecast_skill(err * BP, -actual * BP)
    nan = float("nan")
    return {
        "n": len(err),
        "mae_bp": sk.mae,
        "rmse_bp": sk.rmse,
        "skill": nan if sk.mse_skill is None else sk.mse_skill,
        "mae_skill": nan if sk.mae_skill is None else sk.mae_skill,
    }


def _tests(err: np.ndarray, err_base: np.ndarray, horizon: int) -> dict[str, float]:
    hln_stat, hln_p = dm_test(err, err_base, horizon, "hln")
    hac_stat, hac_p = dm_test(err, err_base, horizon, "hac")
    return {"dm_stat": hln_stat, "dm_p": hln_p, "dm_hac_stat": hac_stat, "dm_hac_p": hac_p}


def window_frame(
    model: str, fold: int, anchors: np.ndarray, ts: np.ndarray, actual: np.ndarray,
    pred: np.ndarray,
) -> pd.DataFrame:  # fmt: skip
    """Per-window forecasts and errors at the headline horizon (bp), one row per window: what an
    evaluation saves so its DM tests can be audited (``err_bp`` vs ``persistence_err_bp``)."""
    return pd.DataFrame(
        {
            "model": model,
            "fold": fold,
            "anchor": np.asarray(anchors, np.int64),
            "ts": ts[anchors],
            "actual_bp": actual * BP,
            "pred_bp": pred * BP,
            "err_bp": (pred - actual) * BP,
            "persistence_err_bp": -actual * BP,
        }
    )


def usable_mask(ts: np.ndarray, anchors: np.ndarray, exclude: Sequence[tuple[int, int]],
                margin_ns: int) -> np.ndarray:  # fmt: skip
    """Anchors whose timestamps lie outside every ``exclude`` range widened by ``margin_ns``."""
    ok = np.ones(len(anchors), dtype=bool)
    t = ts[anchors]
    for lo, hi in exclude:
        ok &= (t < lo - margin_ns) | (t > hi + margin_ns)
    return ok


def cross_validate(
    bars: pd.DataFrame,
    *,
    spec: FeatureSpec,
    window: int,
    fitters: Mapping[str, Fitter] | None = None,
    fixed: Mapping[str, Forecaster] | None = None,
    exclude: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    cfg: CVConfig | None = None,
    windows: list[pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Per-fold and pooled results (the report's ``cv`` section); see the module docstring.

    ``exclude[name]``: time ranges (ns) a fixed model was trained or tuned on; its anchors there
    (widened by the gap) are not scored. ``windows``: when given, every scored window's forecast
    and error is appended to it (:func:`window_frame`).
    """
    cfg = cfg or CVConfig()
    fitters = dict(fitters if fitters is not None else default_fitters(spec))
    fixed = dict(fixed or {})
    exclude = dict(exclude or {})
    bars = bars.reset_index(drop=True)
    horizon = spec.horizon
    lookback = max([spec.lookback] + [f.spec.lookback for f in fixed.values()])
    win = max([window] + [f.info.window for f in fixed.values()])
    gap = split_gap(window=win, lookback=lookback, horizon=horizon)
    ts = bars["ts"].to_numpy(np.int64)
    anchors = contiguous_anchors(ts, window=win, lookback=lookback, horizon=horizon)
    feats = compute_features(bars, spec).astype(np.float32)
    targets = compute_targets(bars, horizon)
    # Only windows whose every feature row is finite (book data may start late or pause).
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(feats).all(axis=1))])
    anchors = anchors[bad[anchors + 1] == bad[anchors + 1 - win]]
    folds = make_folds(
        anchors, k=cfg.folds, gap=gap, scheme=cfg.scheme, ts=ts if cfg.by_day else None
    )
    fixed_feats = {
        name: feats if f.spec == spec else compute_features(bars, f.spec).astype(np.float32)
        for name, f in fixed.items()
    }
    names = list(fitters) + list(fixed)
    errors: dict[str, list[np.ndarray]] = {m: [] for m in names}
    scored: dict[str, list[np.ndarray]] = {m: [] for m in names}
    below: dict[str, list[np.ndarray]] = {m: [] for m in fixed}
    fold_rows = []
    for fold in folds:
        actual = targets[fold.test, -1]
        row: dict[str, Any] = {
            "fold": fold.index,
            "first": str(np.datetime64(int(ts[fold.test[0]]), "ns").astype("datetime64[s]")),
            "last": str(np.datetime64(int(ts[fold.test[-1]]), "ns").astype("datetime64[s]")),
            "n": len(fold.test),
            "n_train": len(fold.train),
            "models": {},
        }
        x = gather(feats, fold.test, window)
        for name, fitter in fitters.items():
            pred = np.asarray(fitter(feats, targets, fold.train)(x), np.float64)
            err = pred.reshape(len(x), -1, horizon)[:, 0, -1] - actual
            if windows is not None:
                windows.append(window_frame(name, fold.index, fold.test, ts, actual, err + actual))
            errors[name].append(err)
            scored[name].append(fold.test)
            row["models"][name] = _metrics(err, actual)
        for name, model in fixed.items():
            ok = usable_mask(ts, fold.test, exclude.get(name, ()), gap * NS_PER_S)
            if not ok.any():
                continue
            a = fold.test[ok]
            xf = gather(fixed_feats[name], a, model.info.window)
            paths = model.predict_feature_paths(xf)
            err = paths[:, 0, -1] - targets[a, -1]
            if windows is not None:
                windows.append(
                    window_frame(name, fold.index, a, ts, targets[a, -1], paths[:, 0, -1])
                )
            if model.info.quantiles:  # share of outcomes at or below each quantile forecast
                below[name].append(targets[a, -1][:, None] <= paths[:, 1:, -1])
            errors[name].append(err)
            scored[name].append(a)
            row["models"][name] = _metrics(err, targets[a, -1])
        fold_rows.append(row)
    pooled: dict[str, Any] = {}
    by_anchor: dict[str, pd.Series] = {}
    for name in names:
        if not errors[name]:
            pooled[name] = {"n": 0}
            continue
        a = np.concatenate(scored[name])
        err = np.concatenate(errors[name])
        by_anchor[name] = pd.Series(err, index=a)
        actual = targets[a, -1]
        entry: dict[str, Any] = _metrics(err, actual)
        entry["n_folds"] = len(errors[name])
        if name != PERSISTENCE:
            entry |= _tests(err, actual, horizon)
            entry["skill_ci95"] = list(skill_interval(err**2, actual**2, cfg))
            entry["significant"] = bool(entry["dm_p"] < cfg.alpha and entry["dm_stat"] < 0)
        if below.get(name):
            hits = np.concatenate(below[name])
            qs = fixed[name].info.quantiles
            entry["quantile_coverage"] = {
                f"{q:g}": float(hits[:, j].mean()) for j, q in enumerate(qs)
            }
            # Outcomes inside the outer band (lowest to highest quantile forecast).
            entry["band_coverage"] = float(np.mean(~hits[:, 0] & hits[:, -1]))
            entry["band"] = [qs[0], qs[-1]]
        pooled[name] = entry
    pairwise = []
    models = [m for m in names if m != PERSISTENCE and m in by_anchor]
    for i, a_name in enumerate(models):
        for b_name in models[i + 1 :]:
            common = by_anchor[a_name].index.intersection(by_anchor[b_name].index)
            if len(common) < 2 * horizon + 2:
                continue
            ea = by_anchor[a_name].loc[common].to_numpy()
            eb = by_anchor[b_name].loc[common].to_numpy()
            tests = _tests(ea, eb, horizon)
            pairwise.append({"a": a_name, "b": b_name, "n": len(common), **tests})
    return {
        "scheme": cfg.scheme,
        "k": len(folds) + (cfg.scheme == "walk_forward"),
        "by_day": cfg.by_day,
        "gap": gap,
        "horizon": horizon,
        "alpha": cfg.alpha,
        "block_s": cfg.block_s,
        "anchors": len(anchors),
        "folds": fold_rows,
        "pooled": pooled,
        "pairwise": pairwise,
    }
