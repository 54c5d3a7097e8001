"""Is an edge real? Probabilistic and deflated Sharpe ratios, and a moving-block bootstrap.

- PSR (Bailey & López de Prado, 2012): the probability that the true per-period Sharpe ratio
  exceeds a benchmark ``sr_star``, given the sample's length, skewness and kurtosis:
  ``Φ((SR − SR*)·√(n−1) / √(1 − γ₃·SR + (γ₄−1)/4·SR²))``. SR is per period (not annualised),
  from the sample standard deviation (ddof=1); γ₃ and γ₄ are the sample skewness and (Pearson,
  normal = 3) kurtosis with population moments.
- DSR (Bailey & López de Prado, 2014): the PSR of the best of N tried strategies against the
  Sharpe ratio the best of N would reach by luck alone,
  ``SR₀ = √V[SR] · ((1−γ)·Φ⁻¹(1−1/N) + γ·Φ⁻¹(1−1/(N·e)))`` (γ = Euler–Mascheroni), where V[SR]
  is the variance of the N per-period Sharpe estimates. The more strategies, the higher the bar.
- The bootstrap resamples the per-period returns of every strategy *jointly* (rows of one
  matrix), so a difference of column means is a paired bootstrap of the difference: a moving
  block bootstrap (memory grows with n, never with n × resamples) with the block length chosen
  from the data by Politis–White. Both are written here in numpy, draw for draw the same as
  ``arch``'s ``MovingBlockBootstrap`` and ``optimal_block_length`` (the tests' oracle): ``arch``
  brings pandas and statsmodels, ~100 MB in the dashboard that shows the verdict.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# numpy and the standard library only: every leaderboard the dashboard computes runs this, and
# scipy.stats (~60 MB resident) or arch (pandas, statsmodels: ~100 MB) would stay in its process.

logger = logging.getLogger(__name__)

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class Moments:
    """Per-period Sharpe ratio and the shape of the returns it came from."""

    n: int
    sharpe: float
    skew: float
    kurtosis: float  # Pearson (normal = 3)


def moments(returns: np.ndarray) -> Moments | None:
    """None when the Sharpe ratio is undefined (fewer than 3 returns, or no variance)."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 3:
        return None
    sd = float(np.std(r, ddof=1))
    if not sd > 0.0:
        return None
    mean = float(np.mean(r))
    dev = r - mean
    m2 = float(np.mean(dev**2))
    m3 = float(np.mean(dev**3))
    m4 = float(np.mean(dev**4))
    # As scipy.stats.skew/kurtosis (bias=True): NaN when the variance is lost in rounding.
    lost = m2 <= (np.finfo(np.float64).resolution * mean) ** 2
    return Moments(
        n=len(r),
        sharpe=mean / sd,
        skew=math.nan if lost else m3 / m2**1.5,
        kurtosis=math.nan if lost else m4 / m2**2,
    )


def psr_from_moments(
    sr: float, n: int, skewness: float, kurt: float, sr_star: float = 0.0
) -> float:
    """Probabilistic Sharpe ratio from the per-period Sharpe ``sr`` of ``n`` returns."""
    denom = 1.0 - skewness * sr + (kurt - 1.0) / 4.0 * sr * sr
    if n < 2 or not denom > 0.0:
        return float("nan")
    return NormalDist().cdf((sr - sr_star) * math.sqrt(n - 1) / math.sqrt(denom))


def probabilistic_sharpe(returns: np.ndarray, sr_star: float = 0.0) -> float | None:
    m = moments(returns)
    if m is None:
        return None
    value = psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, sr_star)
    return None if math.isnan(value) else value


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """SR₀: the per-period Sharpe the best of ``n_trials`` reaches with no skill at all."""
    if n_trials < 2 or not sr_variance > 0.0:
        return 0.0
    return math.sqrt(sr_variance) * (
        (1.0 - EULER_GAMMA) * NormalDist().inv_cdf(1.0 - 1.0 / n_trials)
        + EULER_GAMMA * NormalDist().inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    )


def deflated_from_moments(
    sr: float, sr_variance: float, n_trials: int, n: int, skewness: float, kurt: float
) -> float:
    return psr_from_moments(sr, n, skewness, kurt, expected_max_sharpe(sr_variance, n_trials))


@dataclass(frozen=True)
class Deflated:
    best: str
    trials: int
    sharpe: float  # per period
    threshold: float  # SR₀, per period
    dsr: float | None


def deflated_sharpe(returns: dict[str, np.ndarray]) -> Deflated | None:
    """DSR of the strategy with the highest per-period Sharpe among ``returns`` (the trials:
    every strategy whose Sharpe is defined)."""
    trials = {name: m for name, r in returns.items() if (m := moments(r)) is not None}
    if not trials:
        return None
    best = max(trials, key=lambda k: trials[k].sharpe)
    m = trials[best]
    srs = np.array([t.sharpe for t in trials.values()])
    var = float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0
    threshold = expected_max_sharpe(var, len(srs))
    value = psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, threshold)
    return Deflated(best, len(srs), m.sharpe, threshold, None if math.isnan(value) else value)


def politis_white_circular(x: np.ndarray) -> float:
    """Politis–White (2004, with Patton–Politis–White's 2009 correction) optimal block length of
    a circular/moving block bootstrap of the 1-D ``x``, as ``arch``'s ``optimal_block_length``
    computes it (its ``circular`` column): the flat-top lag window's bandwidth m is twice the
    first lag after which k_n autocorrelations stay inside ±2·√(log10(n)/n), and
    ``b = (2·G² / (4/3·σ̂⁴))^(1/3) · n^(1/3)``, at most min(3√n, n/3). Not finite when the series
    has no variance at the lags used."""
    nobs = x.shape[0]
    eps = x - x.mean(0)
    b_max = float(np.ceil(min(3 * np.sqrt(nobs), nobs / 3)))
    kn = max(5, int(np.log10(nobs)))
    m_max = int(np.ceil(np.sqrt(nobs))) + kn
    cv = 2 * np.sqrt(np.log10(nobs) / nobs)
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    opt_m: int | None = None
    # arch's own sums (normalised by the shifted tails, not a common length): same numbers.
    for i in range(m_max + 1):
        v1 = eps[i + 1 :] @ eps[i + 1 :]
        v2 = eps[: -(i + 1)] @ eps[: -(i + 1)]
        cross = eps[i:] @ eps[: nobs - i]
        acv[i] = cross / nobs
        abs_acorr[i] = np.abs(cross) / np.sqrt(v1 * v2)
        if i >= kn and opt_m is None and np.all(abs_acorr[i - kn : i] < cv):
            opt_m = i - kn
    m = min(2 * max(opt_m, 1) if opt_m is not None else m_max, m_max)
    g = 0.0
    lr_acv = float(acv[0])
    for k in range(1, m + 1):  # the flat-top window, summed in order (as arch: same rounding)
        lam = 1 if k / m <= 1 / 2 else 2 * (1 - k / m)
        g += 2 * lam * k * acv[k]
        lr_acv += 2 * lam * acv[k]
    b_cb = ((2 * g**2) / (4 / 3 * lr_acv**2)) ** (1 / 3) * nobs ** (1 / 3)
    return float(min(b_cb, b_max))


def block_length(series: np.ndarray, *, max_fraction: float = 0.25) -> int:
    """Politis–White block length for a moving-block bootstrap of ``series`` (one column or
    several: the longest), at least 1 and at most ``max_fraction`` of the sample."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    if n < 8:
        return 1
    live = x[:, np.std(x, axis=0) > 0.0]
    if live.shape[1] == 0:
        return 1
    # Near-constant columns divide by ~0 (warnings); their length is still usable.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lengths = np.array([politis_white_circular(col) for col in live.T], dtype=np.float64)
    lengths = lengths[np.isfinite(lengths)]
    if len(lengths) == 0:
        return 1
    return int(min(max(1, math.ceil(float(lengths.max()))), max(1, int(n * max_fraction))))


def moving_block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """One moving-block resample of ``n`` rows: ⌈n/block⌉ blocks of ``block`` consecutive rows,
    each starting uniformly in [0, n − block], joined and cut to n (the draws of ``arch``'s
    ``MovingBlockBootstrap.update_indices`` from the same generator)."""
    blocks = -(-n // block)
    starts = rng.integers(n - block + 1, size=blocks, dtype=np.int64)
    return (starts[:, None] + np.arange(block)).ravel()[:n]


def bootstrap_column_means(
    matrix: np.ndarray, *, block: int, resamples: int, seed: int
) -> np.ndarray:
    """``resamples`` × k bootstrap means of the columns of ``matrix`` (n × k), rows resampled
    in moving blocks of ``block`` (:func:`moving_block_indices`, seeded).

    Memory is O(n + resamples × k): one index vector of n at a time, never resamples × n. The
    mean of a resample is computed from how often each row was drawn (``bincount``), which is
    the same number as the mean of the gathered rows and ~6× faster than gathering them."""
    x = np.ascontiguousarray(matrix, dtype=np.float64)
    n = x.shape[0]
    xt = np.ascontiguousarray(x.T)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, x.shape[1]), dtype=np.float64)
    for rep in range(resamples):
        idx = moving_block_indices(n, block, rng)
        out[rep] = xt @ np.bincount(idx, minlength=n) / n
    return out


def percentile_ci(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_p_value(draws: np.ndarray) -> float:
    """Two-sided p of a zero mean from bootstrap draws of it: twice the share of draws on the
    far side of zero (at least one draw's worth: 0 would claim more than the draws can say)."""
    d = np.asarray(draws, dtype=np.float64)
    if len(d) == 0:
        return float("nan")
    tail = min(float(np.mean(d <= 0.0)), float(np.mean(d >= 0.0)))
    return float(min(1.0, 2.0 * max(tail, 1.0 / len(d))))


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error over the named tests): the i-th
    smallest p times (k − i + 1), made monotone, capped at 1."""
    order = sorted(p_values, key=lambda name: p_values[name])
    k = len(order)
    out: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (k - i) * p_values[name]))
        out[name] = running
    return out
