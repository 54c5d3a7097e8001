"""The functions the retrain and drift flows call (the flows themselves run in
tests/integration/test_flows.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import DataSettings, Settings
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import load_trades
from cryptoarena.data.records import NS_PER_S
from cryptoarena.data.samples import NAUTILUS_TRADES, sample_path
from cryptoarena.model import mlops


def test_sample_bars_cut_and_tail() -> None:
    settings = Settings()
    bars = mlops.load_source_bars(settings, "sample", max_bars=600, last_s=120)
    assert len(bars) == 120
    assert (bars["ts"].diff().dropna() == NS_PER_S).all()
    full = mlops.load_source_bars(settings, "sample", max_bars=600)
    assert bars["ts"].iloc[-1] == full["ts"].iloc[-1]


def test_lake_bars(tmp_path: Path) -> None:
    trades, _ = load_trades(sample_path(NAUTILUS_TRADES))
    Lake(tmp_path / "lake").write_trades("BTCUSDT", trades)
    settings = Settings(data=DataSettings(lake_dir=tmp_path / "lake", symbol="BTCUSDT"))
    bars = mlops.load_source_bars(settings, "lake", last_s=10)
    assert 0 < len(bars) <= 10
    assert bars["close"].gt(0).all()
    empty = Settings(data=DataSettings(lake_dir=tmp_path / "nothing", symbol="BTCUSDT"))
    with pytest.raises(ValueError, match="no bars"):
        mlops.load_source_bars(empty, "lake")
    with pytest.raises(ValueError, match="source"):
        mlops.load_source_bars(settings, "s3")  # type: ignore[arg-type]


def test_run_report(tmp_path: Path) -> None:
    files = mlops.write_run_report(tmp_path / "r", {"version": "3", "promoted": False}, "# x\n")
    assert json.loads(files[0].read_text()) == {"version": "3", "promoted": False}
    assert files[1].read_text() == "# x\n"


def test_journal_prediction_errors(tmp_path: Path) -> None:
    from cryptoarena.config import MongoSettings
    from cryptoarena.trading.journal import Journal

    settings = Settings(mongo=MongoSettings(embedded_dir=tmp_path / "journal"))
    with Journal.open(settings, run_id="live") as journal:
        for i in range(40):
            pid = journal.record(
                "predictions",
                {"ts_ns": 1_000 + i, "base_price": 100.0, "predicted_price": 100.0 + i % 3},
            )
            if i < 35:  # the last five are not due yet
                journal.set_prediction_outcome(pid, 100.0, 2_000 + i)
        assert journal.sync(30)
        # The worker still holds the journal: the drift reader opens beside it, read-only.
        errors = mlops.journal_prediction_errors(settings, since_ns=1_005)
    assert errors is not None and len(errors) == 30
    assert set(errors["abs_error_bp"].round(6)) == {
        0.0,
        round(1e4 * np.log(1.01), 6),
        round(1e4 * np.log(1.02), 6),
    }
    assert mlops.journal_prediction_errors(settings, since_ns=1_030) is None  # too few
