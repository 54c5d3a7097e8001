"""Retrain flow: bars (shipped sample or lake) → train → evaluate vs baselines and champion →
register @challenger → promote to @champion through the evidence gate (DM tests vs persistence
and the paired test vs the champion on the newest untouched block; with the lake's collected
days the split and the CV folds are by UTC day and the block is the newest day). Logic lives in
cryptoarena.model.mlops; only the network-bound registry task retries.

    python -m flows.retrain --tiny            # one local run (ephemeral Prefect API)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from cryptoarena.config import get_settings
from cryptoarena.model import mlops
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.args import bars_flow_parser


@task(cache_policy=NO_CACHE)  # inputs are frames: nothing worth caching
def load_bars(source: mlops.Source, max_bars: int | None) -> pd.DataFrame:
    return mlops.load_source_bars(get_settings(), source, max_bars=max_bars)


@task(cache_policy=NO_CACHE)  # inputs are frames: nothing worth caching
def train_candidate(
    bars: pd.DataFrame, tracking_uri: str, name: str, tiny: bool, source: str, gate_alpha: float
) -> mlops.Candidate:
    label = f"{source}:{len(bars)}"
    return mlops.train_candidate(
        bars, tracking_uri=tracking_uri, name=name, tiny=tiny, label=label, gate_alpha=gate_alpha
    )


@task(retries=3, retry_delay_seconds=5, cache_policy=NO_CACHE)
def promote(candidate: mlops.Candidate, tracking_uri: str, force: bool) -> bool:
    return mlops.promote(candidate, tracking_uri=tracking_uri, force=force)


@flow(name="retrain")
def retrain_flow(
    source: mlops.Source = "sample",
    max_bars: int | None = None,
    tiny: bool = False,
    force: bool = False,
    model_name: str | None = None,
    tracking_uri: str | None = None,
    report_dir: str = "reports/retrain",
    gate_alpha: float = 0.05,
) -> dict[str, Any]:
    tracking_uri, name = mlops.registry_target(get_settings(), model_name, tracking_uri)
    bars = load_bars(source, max_bars)
    candidate = train_candidate(bars, tracking_uri, name, tiny, source, gate_alpha)
    promoted = promote(candidate, tracking_uri, force)
    summary = {
        "model": name,
        "version": candidate.version,
        "run_id": candidate.run_id,
        "promoted": promoted,
        "gate": candidate.reason,
        "gate_block": candidate.report.get("gate_block", {}),
        "cv_pooled": candidate.report.get("cv", {}).get("pooled", {}),
        "metrics": candidate.metrics,
    }
    mlops.write_run_report(Path(report_dir), summary, mlops.retrain_markdown(candidate, promoted))
    get_run_logger().info("%s v%s: %s", name, candidate.version, candidate.reason)
    return summary


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = bars_flow_parser(__doc__, source="sample", report_dir="reports/retrain", prog=prog)
    parser.add_argument("--tiny", action="store_true", help="seconds-fast tiny LSTM")
    parser.add_argument("--force", action="store_true", help="promote even if the gate refuses")
    parser.add_argument(
        "--gate-alpha", type=float, default=0.05, help="significance level of the gate's DM tests"
    )
    args = parser.parse_args(argv)
    print(
        retrain_flow(
            source=args.source,
            max_bars=args.max_bars,
            tiny=args.tiny,
            force=args.force,
            report_dir=args.report_dir,
            gate_alpha=args.gate_alpha,
        )
    )


if __name__ == "__main__":
    main()
