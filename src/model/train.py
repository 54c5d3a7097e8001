"""Train, judge, track and register: one run from bars to a registered model version.

``train`` fits the LSTM, evaluates it next to the baselines (and the current champion) on the
same held-out test anchors, logs everything to one MLflow run, registers the model, points
``@challenger`` at it and ``@champion`` only when :func:`~cryptoarena.model.registry.evidence_gate`
says so, on the newest untouched block (the test split: no model was trained, early-stopped or
tuned on it), where candidate, champion and persistence are scored on the same windows and the
paired test against the champion always applies. ``train_tiny`` is the seconds-fast variant
other teams' tests and the quick demo use.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mlflow
import numpy as np
import pandas as pd
import pytorch_lightning as pl
from cryptoarena.config import get_settings
from cryptoarena.model.book import has_book
from cryptoarena.model.champions import GateDecision, promotion_message
from cryptoarena.model.cv import CVConfig, cross_validate, window_frame
from cryptoarena.model.evaluation import headline_metrics
from cryptoarena.model.features import FeatureSpec, min_bars
from cryptoarena.model.fit import Prepared, fit_model, prepare
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, TorchPredictor
from cryptoarena.model.judge import (
    CANDIDATE,
    LSTM,
    WINDOWS_FILE,
    baselines,
    evaluate_forecasters,
    gate_block,
    load_champion,
    training_span,
    wrap,
)
from cryptoarena.model.lstm import LSTMConfig
from cryptoarena.model.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_ARTIFACT,
    REFERENCE_FILE,
    SCALER_FILE,
    crown,
    evidence_gate,
    model_metadata,
)
from cryptoarena.model.report import write_report
from cryptoarena.model.tracking import ensure_experiment, tracking_context
from cryptoarena.model.windows import gather, valid_anchors

logger = logging.getLogger(__name__)

Promote = Literal["gate", "force", "never"]
TINY_CONFIG = LSTMConfig(
    window=20, hidden=8, max_epochs=1, batch_size=128, limit_train_batches=20, patience=1
)


class MlflowEpochMetrics(pl.Callback):
    """Logs Lightning's epoch metrics (train/val loss…) to the active MLflow run, step = epoch."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(("train_", "val_")) and not k.endswith("_step")
        }
        metrics["epoch"] = float(trainer.current_epoch)
        self.history.append(metrics)
        if mlflow.active_run() is not None:
            mlflow.log_metrics(
                {k: v for k, v in metrics.items() if k != "epoch"}, step=trainer.current_epoch
            )


@dataclass
class TrainResult:
    info: ForecastModelInfo
    forecaster: Forecaster
    report: dict[str, Any]
    decision: GateDecision
    promoted: bool
    prepared: Prepared
    promotion: str | None = None  # how @champion was set: "gate", "forced" or None (it was not)

    @property
    def message(self) -> str:
        """What happened, in one line (the gate's verdict; "FORCED" when forced)."""
        return promotion_message(self.decision, self.promotion)


def _info(
    name: str,
    version: str,
    run_id: str,
    cfg: LSTMConfig,
    spec: FeatureSpec,
    metrics: dict[str, float],
) -> ForecastModelInfo:
    return ForecastModelInfo(
        name=name,
        version=version,
        run_id=run_id,
        horizon=cfg.horizon,
        window=cfg.window,
        min_bars=min_bars(spec, cfg.window),
        quantiles=cfg.quantiles,
        metrics=metrics,
        feature_names=spec.names,
    )


def train(
    bars: pd.DataFrame,
    *,
    tracking_uri: str,
    name: str,
    cfg: LSTMConfig | None = None,
    spec: FeatureSpec | None = None,
    promote: Promote = "gate",
    second_venue: pd.DataFrame | None = None,
    experiment: str | None = None,
    data_label: str = "",
    progress_bar: bool = False,
    callbacks: list[pl.Callback] | None = None,
    gate_alpha: float = 0.05,
    by_day: bool = False,
) -> TrainResult:
    """``by_day``: split by UTC day (bars of several days, e.g. the lake): the newest day is the
    gate block, the rest trains and early-stops; the report's CV folds are days too."""
    cfg = cfg or LSTMConfig()
    # Book features whenever the bars carry a book (cryptoarena.model.book): a model uses them
    # when its inputs have them.
    spec = spec or FeatureSpec(horizon=cfg.horizon, book=has_book(bars))
    experiment = experiment or get_settings().mlflow.experiment
    if second_venue is not None and spec.book and not has_book(second_venue):
        logger.warning("the second venue has no order book: a book model is not judged there")
        second_venue = None
    prepared = prepare(bars, spec, cfg.window, by_day=by_day)
    test = prepared.split.test
    with tracking_context(tracking_uri) as client:
        exp_id = ensure_experiment(client, experiment, tracking_uri)
        with mlflow.start_run(experiment_id=exp_id) as run:
            run_id = run.info.run_id
            mlflow.log_params({f"lstm.{k}": v for k, v in cfg.model_dump().items()})
            mlflow.log_params({f"features.{k}": v for k, v in spec.model_dump().items()})
            mlflow.set_tags(
                {
                    "data.hash": prepared.data_hash,
                    "data.label": data_label,
                    **{f"data.{k}": str(v) for k, v in prepared.span.items()},
                }
            )
            epochs = MlflowEpochMetrics()
            net, fit_info = fit_model(
                prepared, cfg, callbacks=[epochs, *(callbacks or [])], progress_bar=progress_bar
            )
            mlflow.log_metrics({k: float(v) for k, v in fit_info.items()})
            draft = _info(name, "", run_id, cfg, spec, {})
            lstm = Forecaster(draft, spec, TorchPredictor(net))
            everyone = {LSTM: lstm} | {
                k: wrap(p, draft, spec, k) for k, p in baselines(prepared).items()
            }
            results, actual, preds = evaluate_forecasters(prepared.bars, test, everyone)
            ts = prepared.bars["ts"].to_numpy(np.int64)
            windows = [
                window_frame(m, -1, test, ts, actual[:, -1], p[:, -1]).assign(section="test")
                for m, p in preds.items()
            ]
            champ_version, champ, champ_error = load_champion(name, tracking_uri)
            report: dict[str, Any] = {
                "run_id": run_id,
                "data": {"label": data_label, "hash": prepared.data_hash, **prepared.span},
                "config": cfg.model_dump(),
                "fit": fit_info,
                "epochs": epochs.history,
                "test": results,
            }
            venue_plots: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {
                "test": (actual, preds)
            }
            if second_venue is not None:
                anchors = valid_anchors(
                    len(second_venue),
                    window=cfg.window,
                    lookback=spec.lookback,
                    horizon=spec.horizon,
                )
                res2, act2, pred2 = evaluate_forecasters(second_venue, anchors, everyone)
                report["second_venue"] = res2
                venue_plots["second_venue"] = (act2, pred2)
            decision = _gate(
                prepared, lstm, champ, champ_version, report, windows,
                gate_alpha=gate_alpha, tracking_uri=tracking_uri, by_day=by_day,
            )  # fmt: skip
            report["champion"] = {"version": champ_version, "error": champ_error} | report.get(
                "gate_block", {}
            ).get(CHAMPION, {})
            report["gate"] = {
                "promote": decision.promote,
                "reason": decision.reason,
                "block": decision.block,
                **decision.numbers,
            }
            metrics = headline_metrics(results, LSTM)
            for prefix, section in (("test", results), ("venue2", report.get("second_venue", {}))):
                for model_name in section:
                    flat = headline_metrics(section, model_name)
                    mlflow.log_metrics({f"{prefix}.{model_name}.{k}": v for k, v in flat.items()})
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp)
                write_report(report, venue_plots, out / "report")
                # Every window's forecast and error: the DM tests can be audited from these.
                pd.concat(windows, ignore_index=True).to_parquet(out / "report" / WINDOWS_FILE)
                mlflow.log_artifacts(str(out / "report"), artifact_path="report")
                extra = _extra_files(prepared, out)
                mlflow.log_artifact(str(extra[0]), artifact_path="reference")
                version = _log_model(net, prepared, cfg, spec, name, run_id, metrics, extra)
            how = "forced" if promote == "force" else "gate"
            promoted = promote == "force" or (promote == "gate" and decision.promote)
            client.set_registered_model_alias(name, CHALLENGER, version)
            for key, value in decision.tags().items():
                client.set_model_version_tag(name, version, key, value)
            mlflow.set_tags(decision.tags())  # the run says it too (MLflow UI, search)
            if promoted:
                crown(client, name, version, how, promotion_message(decision, how))
            mlflow.set_tags({"registry.version": version, "registry.promoted": str(promoted)})
    info = _info(name, version, run_id, cfg, spec, metrics)
    forecaster = Forecaster(info, spec, TorchPredictor(net))
    result = TrainResult(
        info, forecaster, report, decision, promoted, prepared, how if promoted else None
    )
    logger.info("%s v%s: %s", name, version, result.message)
    return result


def _gate(
    prepared: Prepared,
    candidate: Forecaster,
    champion: Forecaster | None,
    champion_version: str | None,
    report: dict[str, Any],
    windows: list[pd.DataFrame],
    *,
    gate_alpha: float,
    tracking_uri: str,
    by_day: bool = False,
) -> GateDecision:
    """The evidence gate on the newest untouched block (``report["gate_block"]``), and, for the
    report only, purged walk-forward CV of the candidate and the baselines over the bars
    (``report["cv"]``; folds are UTC days with ``by_day``)."""
    # A book champion cannot be scored on bars without a book: never compared, so never beaten.
    unscorable = champion is not None and champion.spec.book and not has_book(prepared.bars)
    if unscorable:
        logger.warning(
            "champion v%s forecasts from order-book features these bars lack: not comparable",
            champion_version,
        )
        champion = None
    span = training_span(champion.info.run_id, tracking_uri) if champion is not None else []
    block, block_windows = gate_block(prepared, candidate, champion, span)
    report["gate_block"] = block
    windows.append(block_windows)
    ts = prepared.bars["ts"].to_numpy(np.int64)
    try:
        report["cv"] = cross_validate(
            prepared.bars, spec=prepared.spec, window=prepared.window, fixed={LSTM: candidate},
            exclude={LSTM: [(int(ts[0]), int(ts[prepared.split.val[-1]]))]},
            cfg=CVConfig(alpha=gate_alpha, by_day=by_day), windows=windows,
        )  # fmt: skip
    except ValueError as exc:  # too few bars for folds: the gate does not need them
        logger.info("no cross-validation for the report: %s", exc)
    if champion_version is not None and champion is None and not unscorable:
        logger.warning("champion v%s cannot be loaded: judged as if absent", champion_version)
    decision = evidence_gate(
        block[CANDIDATE],
        block.get(CHAMPION),
        block.get("versus_champion"),
        alpha=gate_alpha,
        champion_version=champion_version if champion is not None else None,
        block={k: str(v) for k, v in block["block"].items()},
    )
    if unscorable:
        reason = (
            f"refused: champion v{champion_version} forecasts from order-book features that "
            "these bars lack, so the two cannot be compared on one block (--promote force crowns "
            "the candidate anyway)"
        )
        return GateDecision(False, reason, decision.numbers, decision.block)
    return decision


def _extra_files(prepared: Prepared, out: Path) -> list[Path]:
    """What travels with the model: the drift reference and its in-span calibration, the
    feature spec and the scaler."""
    from cryptoarena.model.drift import CALIBRATION_FILE, calibrate

    ref = out / REFERENCE_FILE
    reference = prepared.reference_sample()
    reference.to_parquet(ref)
    files = []
    try:
        calibration = calibrate(
            prepared.train_span_bars(), reference, prepared.spec, scaler=prepared.scaler
        )
        files.append(out / CALIBRATION_FILE)
        files[-1].write_text(calibration.model_dump_json())
    except ValueError as exc:  # a training span shorter than two drift windows
        logger.warning("no drift calibration saved: %s", exc)
    spec_file = out / "feature_spec.json"
    spec_file.write_text(prepared.spec.model_dump_json(indent=2))
    scaler_file = out / SCALER_FILE
    scaler_file.write_text(prepared.scaler.model_dump_json(indent=2))
    return [ref, spec_file, scaler_file, *files]


def _log_model(
    net: Any,
    prepared: Prepared,
    cfg: LSTMConfig,
    spec: FeatureSpec,
    name: str,
    run_id: str,
    metrics: dict[str, float],
    extra: list[Path],
) -> str:
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    example = gather(prepared.features, prepared.split.test[:2], cfg.window).astype(np.float32)
    with torch.inference_mode():
        output = net(torch.from_numpy(np.ascontiguousarray(example))).numpy()
    draft = _info(name, "", run_id, cfg, spec, metrics)
    metadata = model_metadata(
        draft,
        spec,
        prepared.scaler.model_dump(),
        {"data_hash": prepared.data_hash, "config": cfg.model_dump(mode="json")},
    )
    torch_version = torch.__version__.split("+")[0]
    with warnings.catch_warnings(), _mlflow_prints_muted():
        # torch.export notes that nn.LSTM re-assigns its flat weights; harmless for inference.
        warnings.filterwarnings("ignore", message=".*_flat_weights.*")
        logged = mlflow.pytorch.log_model(
            net,
            name=MODEL_ARTIFACT,
            signature=infer_signature(example, output),
            input_example=example,  # batch 2: torch.export keeps the batch dimension dynamic
            registered_model_name=name,
            extra_files=[str(p) for p in extra],
            metadata=metadata,
            pip_requirements=[f"torch=={torch_version}", f"mlflow=={mlflow.__version__}", "numpy"],
            serialization_format="pt2",
        )
    version = logged.registered_model_version
    if version is None:
        raise RuntimeError("model logged but not registered")
    logger.info("registered model %s version %s (run %s)", name, version, run_id)
    return str(version)


@contextlib.contextmanager
def _mlflow_prints_muted() -> Iterator[None]:
    """MLflow prints "Successfully registered model …" / "Created version …" to whatever
    ``sys.stderr`` is at the time (not through logging), which tore through the quiet console:
    what it prints during registration goes to our log instead."""
    caught = io.StringIO()
    try:
        with contextlib.redirect_stderr(caught):
            yield
    finally:
        for line in caught.getvalue().splitlines():
            if line.strip():
                logger.debug("mlflow: %s", line.strip())


def train_tiny(
    tracking_uri: str, name: str, bars: pd.DataFrame | None = None, promote: bool = True
) -> ForecastModelInfo:
    """A tiny LSTM trained in seconds on real shipped bars, registered (and @champion if promote).

    For tests and the quick demo: ``promote=True`` makes it champion regardless of the gate (the
    gate's verdict is still recorded on the version). Default bars: the first 2 hours of the
    shipped Binance BTCUSDT day.
    """
    from cryptoarena.model.datasets import load_bars

    bars = load_bars(max_bars=7200) if bars is None else bars
    result = train(
        bars,
        tracking_uri=tracking_uri,
        name=name,
        cfg=TINY_CONFIG,
        promote="force" if promote else "never",
        data_label="tiny",
    )
    return result.info
