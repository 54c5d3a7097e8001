"""The evidence gate: champion only on significant pooled evidence from the same folds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from cryptoarena.model.baselines import Ridge
from cryptoarena.model.cv import CVConfig, Fitter, cross_validate, persistence_fitter
from cryptoarena.model.features import FeatureSpec, Scaler
from cryptoarena.model.forecaster import Predictor
from cryptoarena.model.judge import pair_entry
from cryptoarena.model.registry import evidence_gate, parse_model_uri

SIG = {"n": 5000, "skill": 0.02, "dm_stat": -3.0, "dm_p": 0.003}
NOT_SIG = {"n": 5000, "skill": 0.004, "dm_stat": -0.9, "dm_p": 0.37}


def test_promotes_a_significant_candidate_when_there_is_no_champion() -> None:
    d = evidence_gate(SIG, None, None)
    assert d.promote and "no champion" in d.reason
    assert d.numbers["candidate_dm_p"] == 0.003 and d.numbers["alpha"] == 0.05
    assert d.tags()["gate.verdict"] == "promote" and d.tags()["gate.candidate_dm_p"] == "0.003"


@pytest.mark.parametrize(
    ("cand", "why"),
    [
        (NOT_SIG, "not significantly better than persistence"),
        ({**SIG, "dm_stat": 3.0}, "significantly WORSE than persistence"),
        ({**SIG, "dm_stat": math.nan}, "not comparable with persistence"),
        ({"n": 0}, "no untouched windows"),
    ],
)
def test_refuses_without_evidence_against_persistence(cand: dict, why: str) -> None:
    d = evidence_gate(cand, None, None)
    assert not d.promote and why in d.reason and d.tags()["gate.verdict"] == "refuse"


def test_alpha_is_configurable() -> None:
    assert not evidence_gate(SIG, None, None, alpha=0.001).promote
    assert evidence_gate(NOT_SIG, None, None, alpha=0.5).promote
    with pytest.raises(ValueError):
        evidence_gate(SIG, None, None, alpha=0.0)


def test_champion_rules() -> None:
    better = {"n": 5000, "dm_stat": -2.5, "dm_p": 0.01}
    tie = {"n": 5000, "dm_stat": -0.5, "dm_p": 0.6}
    assert evidence_gate(SIG, SIG, better, champion_version="3").promote
    refused = evidence_gate(SIG, SIG, tie, champion_version="3")
    assert not refused.promote
    assert "not significantly better than champion v3 (DM p 0.6" in refused.reason
    assert refused.tags()["gate.vs_champion_dm_p"] == "0.6"
    assert not evidence_gate(SIG, SIG, None, champion_version="3").promote


def test_a_champion_that_is_not_significant_does_not_waive_the_paired_test() -> None:
    """Issue #20: seeds 9 and 13 were promoted because a non-significant champion waived the
    paired test (paired p 0.36 / 0.50). Failed before: the old gate promoted this."""
    tie = {"n": 5000, "dm_stat": -0.9, "dm_p": 0.36}
    block = {"first": "2024-03-01T12:00:00", "last": "2024-03-01T23:59:00", "n": "5000"}
    d = evidence_gate(SIG, NOT_SIG, tie, champion_version="2", block=block)
    assert not d.promote and "champion v2" in d.reason and "DM p 0.36" in d.reason
    tags = d.tags()
    assert tags["gate.vs_champion_dm_p"] == "0.36" and tags["gate.champion_dm_p"] == "0.37"
    assert tags["gate.block_first"] == block["first"] and tags["gate.block_n"] == "5000"
    # A refusal reads as one: no "p ≥ alpha" for a significant candidate p.
    assert "significantly better than persistence (DM p 0.003 < 0.05)" in d.reason


# A synthetic day with a planted predictable component: persistent order-flow imbalance s_t
# (ofi_1 = s_t) pushes the next 1-second returns by 0.5 σ · s_t.
def _planted_bars(n: int = 24_000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = 0.97 * z[t - 1] + 0.25 * rng.normal()
    s = np.tanh(z)
    r = np.zeros(n)
    r[1:] = 1e-4 * (0.5 * s[:-1] + rng.normal(size=n - 1))
    close = 100.0 * np.exp(np.cumsum(r))
    return pd.DataFrame(
        {
            "ts": np.arange(n, dtype=np.int64) * 1_000_000_000,
            "open": close, "high": close, "low": close, "close": close, "vwap": close,
            "volume": np.full(n, 2.0), "trades": np.ones(n),
            "buy_volume": 1.0 + s, "sell_volume": 1.0 - s,
        }
    )  # fmt: skip


class _Scaled:
    def __init__(self, inner: Predictor, k: float) -> None:
        self.inner, self.k = inner, k

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.k * np.asarray(self.inner(x))


def _bagged_ridge(seed: int, shrink: float = 1.0) -> Fitter:
    """Ridge on a bootstrap resample of the fold's training rows: a seed-dependent fit."""

    def fit(feats: np.ndarray, targets: np.ndarray, train: np.ndarray) -> Predictor:
        rows = np.random.default_rng(seed).choice(train, size=len(train))
        x = feats[rows].astype(np.float64)
        return _Scaled(Ridge(Scaler.fit(x)).fit(x, targets[rows]), shrink)

    return fit


@pytest.fixture(scope="module")
def planted_cv() -> dict:
    spec = FeatureSpec()
    fitters = {"persistence": persistence_fitter(15), "champion": _bagged_ridge(1)}
    fitters |= {f"seed{s}": _bagged_ridge(s) for s in range(2, 7)}
    fitters["weak_champion"] = _bagged_ridge(1, shrink=0.25)
    return cross_validate(
        _planted_bars(), spec=spec, window=20, fitters=fitters, cfg=CVConfig(folds=5, n_boot=200)
    )


def test_refuses_a_copy_of_the_champion_with_another_seed(planted_cv: dict) -> None:
    pooled = planted_cv["pooled"]
    assert pooled["champion"]["significant"]  # the champion has a real edge
    # The luckiest other seed: lower pooled MSE than the champion (the old point-estimate gate
    # promoted exactly this), yet no better on a paired test.
    seeds = [f"seed{s}" for s in range(2, 7)]
    lucky = min(seeds, key=lambda m: pooled[m]["rmse_bp"])
    assert pooled[lucky]["rmse_bp"] < pooled["champion"]["rmse_bp"]
    d = evidence_gate(
        pooled[lucky], pooled["champion"], pair_entry(planted_cv, lucky, "champion"),
        champion_version="1",
    )  # fmt: skip
    assert not d.promote, d.reason
    assert "not significantly better than champion v1" in d.reason


def test_promotes_a_candidate_with_a_real_edge(planted_cv: dict) -> None:
    pooled = planted_cv["pooled"]
    assert pooled["weak_champion"]["significant"]  # a champion that is significant, but weaker
    pair = pair_entry(planted_cv, "champion", "weak_champion")
    d = evidence_gate(pooled["champion"], pooled["weak_champion"], pair, champion_version="1")
    assert d.promote and "significantly better than champion v1" in d.reason
    assert d.numbers["vs_champion_dm_p"] < 0.05


def test_model_uri_parsing() -> None:
    assert parse_model_uri("models:/btcusdt-15s@champion") == ("btcusdt-15s", "champion", None)
    assert parse_model_uri("models:/btcusdt-15s/3") == ("btcusdt-15s", None, "3")
    for bad in ("models:/x", "runs:/abc/model", "models:/x@", "models:/x/v1"):
        with pytest.raises(ValueError):
            parse_model_uri(bad)


def test_registry_name_per_symbol_and_horizon() -> None:
    from cryptoarena.config import Settings
    from cryptoarena.model.registry import registry_name

    assert registry_name("BTCUSDT", 15) == "btcusdt-15s" == Settings().serving.model_name
    with pytest.raises(ValueError):
        registry_name("BTC/USDT", 15)
