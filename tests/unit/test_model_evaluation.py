"""Code tests of the evaluation: skill, directional accuracy, Diebold–Mariano with HAC."""

from __future__ import annotations

import numpy as np
import pytest
from cryptoarena.model.evaluation import diebold_mariano, directional_accuracy, evaluate


def _ar_noise(n: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """Overlapping h-step sums of white noise: autocorrelated like real h-step errors."""
    e = rng.normal(size=n + h)
    return np.convolve(e, np.ones(h), mode="valid")[:n]


def test_dm_equal_forecasts_is_not_significant() -> None:
    e = np.random.default_rng(0).normal(size=1000)
    assert diebold_mariano(e, e, 15) == (pytest.approx(float("nan"), nan_ok=True), 1.0)


def test_dm_detects_a_clearly_better_model() -> None:
    rng = np.random.default_rng(1)
    base = _ar_noise(5000, 15, rng)
    better = 0.5 * base + 0.1 * rng.normal(size=5000)
    stat, p = diebold_mariano(better, base, 15)
    assert stat < 0 and p < 1e-3
    stat, p = diebold_mariano(base, better, 15)
    assert stat > 0 and p < 1e-3


def test_dm_hac_is_more_conservative_than_iid_on_overlapping_errors() -> None:
    rng = np.random.default_rng(2)
    base = _ar_noise(3000, 15, rng)
    other = base + 0.3 * _ar_noise(3000, 15, rng)
    _, p_hac = diebold_mariano(other, base, 15)
    _, p_iid = diebold_mariano(other, base, 1)
    assert p_hac > p_iid


def test_dm_p_values_are_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(3)
    ps = []
    for _ in range(200):
        a, b = _ar_noise(600, 5, rng), _ar_noise(600, 5, rng)
        ps.append(diebold_mariano(a, b, 5)[1])
    rejected = np.mean(np.array(ps) < 0.05)
    assert 0.0 < rejected < 0.15  # near the nominal 5%, not wildly oversized


def test_directional_accuracy_counts_only_moves_beyond_fees() -> None:
    actual = np.array([20e-4, -20e-4, 5e-4, -30e-4])
    pred = np.array([1e-4, 1e-4, -9e-4, 0.0])
    acc, n = directional_accuracy(actual, pred, fee_bp=11)
    assert n == 3 and acc == pytest.approx(1 / 3)  # a zero forecast is a miss
    assert directional_accuracy(np.zeros(3), np.ones(3))[1] == 0


def test_evaluate_skill_relative_to_persistence() -> None:
    rng = np.random.default_rng(4)
    actual = rng.normal(scale=1e-4, size=(500, 15))
    res = evaluate(
        actual,
        {"persistence": np.zeros_like(actual), "oracle": actual, "half": actual / 2},
    )
    assert res["persistence"]["skill"] == 0.0
    assert res["oracle"]["skill"] == 1.0 and res["oracle"]["mae_bp"] == 0.0
    assert res["half"]["skill"] == pytest.approx(0.75)
    assert len(res["half"]["skill_by_horizon"]) == 15
    with pytest.raises(ValueError):
        evaluate(actual, {"bad": actual[:, :3]})


def test_fee_beating_signals() -> None:
    from cryptoarena.model.evaluation import fee_beating_signals

    actual = np.array([20e-4, -5e-4, 3e-4, 0.0])
    pred = np.array([12e-4, 15e-4, 1e-4, -20e-4])
    n, hit, net = fee_beating_signals(actual, pred, fee_bp=11)
    assert n == 3 and hit == pytest.approx(1 / 3)
    assert net == pytest.approx(((20 - 11) + (-5 - 11) + (0 - 11)) / 3)
    assert fee_beating_signals(actual, np.zeros(4))[0] == 0


def test_dm_hac_matches_statsmodels() -> None:
    """Oracle: statsmodels' HAC (Bartlett, maxlags h − 1) t-statistic of the mean differential."""
    import statsmodels.api as sm
    from cryptoarena.model.evaluation import dm_test

    rng = np.random.default_rng(5)
    h = 15
    base = _ar_noise(4000, h, rng)
    other = 0.9 * base + 0.4 * _ar_noise(4000, h, rng)
    d = other**2 - base**2
    fit = sm.OLS(d, np.ones_like(d)).fit(
        cov_type="HAC", cov_kwds={"maxlags": h - 1, "use_correction": False}
    )
    stat, p = dm_test(other, base, h, "hac")
    assert stat == pytest.approx(float(fit.tvalues[0]), rel=1e-10)
    assert p == pytest.approx(float(fit.pvalues[0]), rel=1e-8)


def test_dm_default_is_textbook_variance_with_hln_correction() -> None:
    """Pins the variance choice (docs/model.md): rectangular weights up to lag h − 1, the HLN
    factor, t(n − 1); the old Bartlett + HLN mix gave a larger (less conservative) statistic."""
    from scipy import stats

    rng = np.random.default_rng(6)
    h, n = 15, 3000
    base = _ar_noise(n, h, rng)
    other = base + 0.3 * _ar_noise(n, h, rng) - 0.05
    d = other**2 - base**2
    dc = d - d.mean()
    gam = [float(dc[k:] @ dc[: n - k]) / n for k in range(h)]
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    textbook = d.mean() / np.sqrt((gam[0] + 2 * sum(gam[1:])) / n) * hln
    stat, p = diebold_mariano(other, base, h)
    assert stat == pytest.approx(textbook, rel=1e-10)
    assert p == pytest.approx(2 * stats.t.sf(abs(textbook), n - 1), rel=1e-8)
    bartlett = gam[0] + 2 * sum((1 - k / h) * g for k, g in enumerate(gam) if k)
    old = d.mean() / np.sqrt(bartlett / n) * hln
    assert abs(old) > 1.1 * abs(stat)  # the old mix overstated the evidence
