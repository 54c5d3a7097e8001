"""Demo step for the model: train on the shipped real day, register, compare with baselines.

Quick: a tiny LSTM on the first two hours (seconds). Full: a short but honest run on the whole
day (a few minutes on 2 cores) judged on the held-out hours and on the Bitstamp day.
The evidence gate decides (docs/model.md "Gate"); only when the registry has no champion at all
does the demo make this version a *bootstrap* champion, tagged ``promotion=bootstrap``, so serving
has something to load — and the closing line says so.
"""

from __future__ import annotations

import logging

from cryptoarena.config import Settings
from rich.console import Console

logger = logging.getLogger(__name__)


def demo_step(settings: Settings, console: Console, quick: bool) -> str:
    from cryptoarena.model.champions import promotion_message
    from cryptoarena.model.cli import print_report
    from cryptoarena.model.datasets import load_bars, second_venue_bars
    from cryptoarena.model.lstm import LSTMConfig
    from cryptoarena.model.registry import CHAMPION, crown, get_alias_version
    from cryptoarena.model.tracking import tracking_context
    from cryptoarena.model.train import TINY_CONFIG, train

    uri = settings.mlflow.tracking_uri
    name = settings.serving.model_name
    if quick:
        cfg = TINY_CONFIG
        bars = load_bars(max_bars=7200, sample_dir=settings.data.sample_dir)
        venue2 = None
    else:
        # One thread: on a busy 2-core machine two torch threads spin against each other.
        cfg = LSTMConfig(max_epochs=8, num_threads=1)
        bars = load_bars(sample_dir=settings.data.sample_dir)
        venue2 = second_venue_bars(settings.data.sample_dir)
    console.print(
        f"training an LSTM (window {cfg.window}, hidden {cfg.hidden}, ≤{cfg.max_epochs} epochs) "
        f"on {len(bars):,} real 1 s bars; MLflow at {uri}"
    )
    result = train(
        bars,
        tracking_uri=uri,
        name=name,
        cfg=cfg,
        promote="gate",
        second_venue=venue2,
        data_label="demo-quick" if quick else "demo-full",
    )
    print_report(console, result.report)
    version = result.info.version
    note = result.decision.reason
    status = "@champion by the gate" if result.promoted else "@challenger only"
    if not result.promoted and get_alias_version(name, CHAMPION, tracking_uri=uri) is None:
        with tracking_context(uri) as client:
            crown(
                client, name, version, "bootstrap", promotion_message(result.decision, "bootstrap")
            )
        note += "; made bootstrap @champion (the registry had none) so serving can start"
        status = "bootstrap @champion: served although the gate refused it"
    console.print(f"{name} v{version}: {note}")
    lstm = result.report.get("cv", {}).get("pooled", {}).get("lstm", {})
    skill, p = lstm.get("skill", float("nan")), lstm.get("dm_p", float("nan"))
    return (
        f"model: LSTM {name} v{version} registered in MLflow, {status}; pooled out-of-sample "
        f"15 s skill vs persistence {skill:+.4f} (DM p {p:.3g}; the gate needs p < "
        f"{result.decision.numbers.get('alpha', 0.05):g} vs persistence and a paired win over "
        "the champion)"
    )
