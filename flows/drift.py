"""Drift flow: recent bars (lake or shipped sample) vs the champion's training reference, and its
forecast errors → drift report (JSON, PNG charts) + metrics in MLflow → whether to retrain (optionally
starting the retrain flow). Logic lives in cryptoarena.model.drift.

    python -m flows.drift --max-bars 9000 --last-s 1800
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena import alerts
from cryptoarena.config import get_settings
from cryptoarena.model import mlops
from cryptoarena.model.drift import DriftConfig, run_drift_check
from cryptoarena.model.features import FeatureError
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.args import bars_flow_parser


@task(cache_policy=NO_CACHE)  # inputs are frames: nothing worth caching
def load_recent_bars(source: mlops.Source, max_bars: int | None, last_s: int) -> pd.DataFrame:
    return mlops.load_source_bars(get_settings(), source, max_bars=max_bars, last_s=last_s)


# MongoDB in production: a network read.
@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def load_journal_errors(bars: pd.DataFrame) -> pd.DataFrame | None:
    return mlops.journal_prediction_errors(get_settings(), since_ns=int(bars["ts"].iloc[0]))


# Reads the champion and its reference from the MLflow registry: a network task.
@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def check(
    bars: pd.DataFrame,
    errors: pd.DataFrame | None,
    tracking_uri: str,
    name: str,
    out_dir: str,
    cfg: DriftConfig,
) -> dict[str, Any]:
    result, run_id = run_drift_check(
        bars,
        tracking_uri=tracking_uri,
        model_name=name,
        out_dir=Path(out_dir),
        current_errors=errors,
        cfg=cfg,
    )
    return {**result.summary(), "mlflow_run_id": run_id}


@flow(name="drift")
def drift_flow(
    source: mlops.Source = "lake",
    max_bars: int | None = None,
    last_s: int = 1800,
    drift_share: float = 0.5,
    threshold: float = 0.1,
    trigger_retrain: bool = False,
    use_journal: bool = False,
    model_name: str | None = None,
    tracking_uri: str | None = None,
    report_dir: str = "reports/drift",
) -> dict[str, Any]:
    tracking_uri, name = mlops.registry_target(get_settings(), model_name, tracking_uri)
    bars = load_recent_bars(source, max_bars, last_s)
    cfg = DriftConfig(threshold=threshold, drift_share=drift_share)
    # Errors of the live predictions the worker journaled, when asked and when there are
    # enough; otherwise the champion is run over the recent bars.
    errors = load_journal_errors(bars) if use_journal else None
    summary = check(bars, errors, tracking_uri, name, report_dir, cfg)
    summary["errors_from"] = "journal" if errors is not None else "model on recent bars"
    logger = get_run_logger()
    logger.info("drift: retrain=%s (%s)", summary["should_retrain"], summary["reasons"])
    if summary["should_retrain"]:
        alerts.drift_trigger(name, summary)
    if summary["should_retrain"] and trigger_retrain:
        from flows.retrain import retrain_flow

        summary["retrain"] = retrain_flow(source=source, model_name=name, tracking_uri=tracking_uri)
    return summary


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = bars_flow_parser(__doc__, source="lake", report_dir="reports/drift", prog=prog)
    parser.add_argument("--last-s", type=int, default=1800)
    parser.add_argument("--trigger-retrain", action="store_true")
    parser.add_argument("--use-journal", action="store_true", help="errors of live predictions")
    args = parser.parse_args(argv)
    try:
        summary = drift_flow(
            source=args.source,
            max_bars=args.max_bars,
            last_s=args.last_s,
            trigger_retrain=args.trigger_retrain,
            use_journal=args.use_journal,
            report_dir=args.report_dir,
        )
    except (ValueError, FeatureError) as exc:  # no or too few bars: the data, not a bug
        parser.exit(2, f"error: drift: {exc} (the traceback is in the log file)\n")
    print(summary)


if __name__ == "__main__":
    main()
