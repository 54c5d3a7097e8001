"""What the retrain and drift flows call (flows/ stay thin): bar sources, candidate training,
the gated promotion, and the run reports a CI job uploads."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from cryptoarena.config import Settings
from cryptoarena.data.records import NS_PER_S

logger = logging.getLogger(__name__)

Source = Literal["sample", "lake"]


@dataclass(frozen=True)
class Candidate:
    name: str
    version: str
    run_id: str
    promote: bool  # the gate's verdict
    reason: str
    metrics: dict[str, float]
    report: dict[str, Any]


def registry_target(
    settings: Settings, model_name: str | None = None, tracking_uri: str | None = None
) -> tuple[str, str]:
    """(tracking URI, registered model name) a flow works on: the ones given, else the settings'
    (the same model the server serves)."""
    return tracking_uri or settings.mlflow.tracking_uri, model_name or settings.serving.model_name


def load_source_bars(
    settings: Settings,
    source: Source = "sample",
    *,
    max_bars: int | None = None,
    last_s: int | None = None,
) -> pd.DataFrame:
    """1-second bars from the shipped sample day or the lake (the newest ``last_s`` seconds).

    ``max_bars`` cuts the source first (from its start), ``last_s`` then keeps its end.
    """
    if source == "sample":
        from cryptoarena.model.datasets import load_bars

        sample_dir = settings.data.sample_dir if settings.data.sample_dir.is_dir() else None
        bars = load_bars(max_bars=max_bars, sample_dir=sample_dir)
    elif source == "lake":
        from cryptoarena.data.lake import Lake

        lake = Lake(settings.data.lake_dir)
        bars = lake.read_bars(settings.data.symbol).reset_index(drop=True)
        if max_bars is not None:
            bars = bars.iloc[:max_bars]
    else:
        raise ValueError(f"source must be 'sample' or 'lake', got {source!r}")
    if last_s is not None and len(bars):
        bars = bars[bars["ts"] >= bars["ts"].iloc[-1] - (last_s - 1) * NS_PER_S]
    if bars.empty:
        raise ValueError(f"no bars in the {source} for {settings.data.symbol}")
    return bars.reset_index(drop=True)


def journal_prediction_errors(
    settings: Settings, *, since_ns: int, min_rows: int = 30
) -> pd.DataFrame | None:
    """Forecast errors of the predictions journaled since ``since_ns`` whose realised price is
    known (read-only: the trading worker keeps writing); None when there are too few."""
    from cryptoarena.model.drift import journal_errors
    from cryptoarena.trading.journal import Journal

    with Journal.open(settings, run_id="drift-reader", readonly=True) as journal:
        docs = journal.find(
            "predictions",
            {"ts_ns": {"$gte": since_ns}, "realised_price": {"$ne": None}},
            projection={"predicted_price": 1, "realised_price": 1},
        )
    errors = journal_errors(docs)
    if len(errors) < min_rows:
        logger.info(
            "only %d realised predictions since %d; using model errors", len(errors), since_ns
        )
        return None
    return errors


def train_candidate(
    bars: pd.DataFrame,
    *,
    tracking_uri: str,
    name: str,
    tiny: bool = False,
    label: str = "",
    gate_alpha: float = 0.05,
) -> Candidate:
    """Train, evaluate against the baselines and the champion, register as ``@challenger``.

    The champion alias is not touched here: :func:`promote` applies the gate's verdict. Bars of
    several UTC days (the lake's collected days) are split by day: the newest day is the gate
    block no model saw, the rest trains, and the report's CV folds are whole days.
    """
    from cryptoarena.model.train import TINY_CONFIG, train
    from cryptoarena.model.windows import utc_day

    days = len(np.unique(utc_day(bars["ts"].to_numpy(np.int64)))) if len(bars) else 0
    if days >= 2:
        logger.info("%d UTC days of bars: split by day, gated on the newest", days)

    result = train(
        bars,
        tracking_uri=tracking_uri,
        name=name,
        cfg=TINY_CONFIG if tiny else None,
        promote="never",
        data_label=label,
        gate_alpha=gate_alpha,
        by_day=days >= 2,
    )
    return Candidate(
        name=name,
        version=result.info.version,
        run_id=result.info.run_id,
        promote=result.decision.promote,
        reason=result.decision.reason,
        metrics=dict(result.info.metrics),
        report=result.report,
    )


def promote(candidate: Candidate, *, tracking_uri: str, force: bool = False) -> bool:
    """Move ``@champion`` to the candidate when the gate said so (or when forced; the message
    says "FORCED" then)."""
    from cryptoarena.model.champions import GateDecision, promotion_message
    from cryptoarena.model.registry import crown
    from cryptoarena.model.tracking import tracking_context

    decision = GateDecision(candidate.promote, candidate.reason)
    if not (candidate.promote or force):
        logger.info(
            "%s v%s: %s", candidate.name, candidate.version, promotion_message(decision, None)
        )
        return False
    how = "gate" if candidate.promote else "forced"
    with tracking_context(tracking_uri) as client:
        crown(client, candidate.name, candidate.version, how, promotion_message(decision, how))
    return True


def write_run_report(out_dir: Path, payload: dict[str, Any], markdown: str) -> list[Path]:
    """``summary.json`` and ``summary.md`` in ``out_dir`` (what CI uploads as an artifact)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "summary.json", out_dir / "summary.md"]
    files[0].write_text(json.dumps(payload, indent=2, default=str))
    files[1].write_text(markdown)
    return files


def retrain_markdown(candidate: Candidate, promoted: bool) -> str:
    from cryptoarena.model.report import markdown

    verdict = "promoted to @champion" if promoted else "kept as @challenger"
    head = f"# Retrain: {candidate.name} v{candidate.version} {verdict}\n\n{candidate.reason}\n\n"
    return head + markdown(candidate.report)
