"""Model behaviour tests (Made-With-ML layer 3) on a small LSTM trained on real bars, in memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cryptoarena.model.baselines import EwmaDrift, Persistence
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import FeatureSpec, compute_features, min_bars
from cryptoarena.model.fit import Prepared, fit_lstm, prepare
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, TorchPredictor
from cryptoarena.model.judge import baselines
from cryptoarena.model.lstm import LSTMConfig

from tests.floats import assert_float32_close

CFG = LSTMConfig(
    window=20, hidden=8, max_epochs=2, batch_size=128, limit_train_batches=10, patience=1
)
SPEC = FeatureSpec()


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    torch.set_num_threads(1)
    return prepare(load_bars(max_bars=5000), SPEC, CFG.window)


def _forecaster(net: torch.nn.Module, cfg: LSTMConfig = CFG) -> Forecaster:
    info = ForecastModelInfo(
        name="t",
        version="0",
        run_id="",
        window=cfg.window,
        min_bars=min_bars(SPEC, cfg.window),
        quantiles=cfg.quantiles,
    )
    return Forecaster(info, SPEC, TorchPredictor(net))


@pytest.fixture(scope="module")
def forecaster(prepared: Prepared) -> Forecaster:
    module, _ = fit_lstm(prepared, CFG)
    return _forecaster(module.net)


def _scaled(bars: pd.DataFrame, k: float) -> pd.DataFrame:
    out = bars.copy()
    for col in ("open", "high", "low", "close", "vwap"):
        out[col] = out[col] * k
    return out


def test_fast_dev_run_smoke(prepared: Prepared) -> None:
    module, info = fit_lstm(prepared, CFG, fast_dev_run=True)
    assert info["epochs_run"] <= 1
    out = module.net(torch.zeros(3, CFG.window, SPEC.n_features))
    assert out.shape == (3, 1, 15)


def test_training_is_seeded_and_reproducible(prepared: Prepared, forecaster: Forecaster) -> None:
    again, _ = fit_lstm(prepared, CFG)
    for a, b in zip(
        again.net.state_dict().values(), forecaster.predictor.net.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_output_shape_and_finiteness(prepared: Prepared, forecaster: Forecaster) -> None:
    bars = prepared.bars
    need = forecaster.info.min_bars
    windows = [bars.iloc[e - need : e] for e in (need, 2000, len(bars))]
    out = forecaster.predict(windows)
    assert out.shape == (3, 15) and out.dtype == np.float64
    assert np.isfinite(out).all()
    assert np.abs(out).max() < 0.01  # a 15 s forecast of 1% would be absurd
    # Extra history in front of a window changes nothing: only the last rows are used.
    # (Float32 matmuls round differently for another batch size or CPU: float32 tolerance.)
    longer = forecaster.predict([bars.iloc[: len(bars)]])
    assert_float32_close(longer[0], out[2])
    # Batch forecasts over a long frame equal one-window forecasts.
    anchors = np.array([need - 1, 1999, len(bars) - 1])
    assert_float32_close(forecaster.predict_bars(bars, anchors), out)


def test_invariant_to_a_constant_shift_of_price_level(
    prepared: Prepared, forecaster: Forecaster
) -> None:
    bars = prepared.bars
    need = forecaster.info.min_bars
    windows = [bars.iloc[e - need : e] for e in (1000, 3000, 4900)]
    base = forecaster.predict(windows)
    # Doubling is exact in binary floating point and every feature is a return or ratio, so the
    # features are bit for bit the same; the float32 network then gets a float32 tolerance.
    for w in windows:
        np.testing.assert_array_equal(
            compute_features(_scaled(w, 2.0), SPEC), compute_features(w, SPEC)
        )
    assert_float32_close(forecaster.predict([_scaled(w, 2.0) for w in windows]), base)
    other = forecaster.predict([_scaled(w, 0.731) for w in windows])
    np.testing.assert_allclose(other, base, rtol=1e-4, atol=1e-9)


def test_baselines_share_the_interface(prepared: Prepared) -> None:
    x = np.random.default_rng(0).normal(size=(4, CFG.window, SPEC.n_features)).astype(np.float32)
    for name, predictor in baselines(prepared).items():
        out = predictor(x)
        assert out.shape == (4, 1, 15), name
        assert np.isfinite(out).all()
    assert not Persistence(15)(x).any()
    drift = EwmaDrift(SPEC, 15)(x)[:, 0, :]
    np.testing.assert_allclose(drift[:, 14], 15 * drift[:, 0])


def test_quantile_head_trains_and_orders(prepared: Prepared) -> None:
    cfg = CFG.model_copy(update={"quantiles": (0.1, 0.5, 0.9), "max_epochs": 1})
    module, _ = fit_lstm(prepared, cfg)
    f = _forecaster(module.net, cfg)
    windows = [prepared.bars.iloc[-f.info.min_bars :]]
    q = f.predict_quantiles(windows)
    assert q.shape == (1, 3, 15) and np.isfinite(q).all()
    assert f.predict(windows).shape == (1, 15)
    with pytest.raises(ValueError):
        LSTMConfig(quantiles=(0.9, 0.1))


_CHILD = """
import sys, torch
from cryptoarena.model.datasets import load_bars
from cryptoarena.model.features import FeatureSpec
from cryptoarena.model.fit import fit_lstm, prepare
from cryptoarena.model.lstm import LSTMConfig
cfg = LSTMConfig.model_validate_json(sys.argv[1])
module, info = fit_lstm(prepare(load_bars(max_bars=5000), FeatureSpec(), cfg.window), cfg)
torch.save({"state": module.net.state_dict(), "val": info["best_val_loss"]}, sys.argv[2])
"""


def test_training_reproduces_in_a_fresh_process(
    prepared: Prepared, forecaster: Forecaster, tmp_path: Path
) -> None:
    """Same seed, data and thread count → bit-identical weights and validation loss in another
    process (nothing carried over from this process's RNG or thread state)."""
    out = tmp_path / "child.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", _CHILD, CFG.model_dump_json(), str(out)],
        check=True, env=env, timeout=240, capture_output=True,
    )  # fmt: skip
    child = torch.load(out)
    mine = forecaster.predictor.net.state_dict()  # type: ignore[attr-defined]
    assert child["state"].keys() == mine.keys()
    for key, value in mine.items():
        torch.testing.assert_close(child["state"][key], value, rtol=0, atol=0)
    _, info = fit_lstm(prepared, CFG)
    assert child["val"] == info["best_val_loss"]


def test_seed_ensemble_with_shrink_is_one_exportable_network(prepared: Prepared) -> None:
    from cryptoarena.model.fit import fit_model
    from cryptoarena.model.lstm import EnsembleNet

    cfg = CFG.model_copy(update={"members": 2, "shrink": True, "max_epochs": 1})
    net, info = fit_model(prepared, cfg)
    assert isinstance(net, EnsembleNet) and len(net.members) == 2
    assert 0.0 <= info["shrink_mean"] <= 1.0 and "member1.best_val_loss" in info
    x = torch.from_numpy(
        prepared.features[prepared.split.test[:8, None] - np.arange(CFG.window)[::-1]]
    )
    with torch.inference_mode():
        out = net(x)
        mean = torch.stack([m(x) for m in net.members]).mean(dim=0)
    torch.testing.assert_close(out[:, 0, :], mean[:, 0, :] * net.shrink)
    # Seeds differ, so the members differ.
    w0, w1 = (m.state_dict()["lstm.weight_ih_l0"] for m in net.members)
    assert not torch.equal(w0, w1)
    exported = torch.export.export(net, (x,))
    torch.testing.assert_close(exported.module()(x), out)
