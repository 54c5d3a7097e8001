"""Serve the three flows on their schedules from one long-running process (a Prefect server
must be reachable: PREFECT_API_URL). Runs appear in the Prefect UI; each can also be started
by hand there, or with ``prefect deployment run '<flow>/<deployment>'``.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deployments

Schedules: collect every 15 minutes (backfill, 14 minutes of the live trades and Bybit
orderbook.50 into the lake's UTC-day partitions, compaction, quality checks), drift hourly (with
the live predictions' errors from the journal; triggers a retrain when it finds drift), retrain
nightly at 03:00 UTC on every collected day (split by day, gated on the newest untouched day;
a champion change is recorded in the registry: ``registry.champion_history``).
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import serve

from flows.collect import collect_flow
from flows.drift import drift_flow
from flows.retrain import retrain_flow
from flows.schedules import BOOK_DEPTH, COLLECT_INTERVAL_S, DRIFT_CRON, RETRAIN_CRON

logger = logging.getLogger(__name__)


def deployments() -> list[Any]:
    """The runner deployments (built without a server; ``serve`` registers them)."""
    items = [
        retrain_flow.to_deployment(
            name="nightly",
            cron=RETRAIN_CRON,
            parameters={"source": "lake"},
            tags=["mlops"],
            description="Train on the lake, evaluate, register @challenger, gate @champion.",
        ),
        drift_flow.to_deployment(
            name="hourly",
            cron=DRIFT_CRON,
            parameters={
                "source": "lake",
                "last_s": 3600,
                "trigger_retrain": True,
                "use_journal": True,
            },
            tags=["mlops"],
            description="Drift of features and forecast errors; may start a retrain.",
        ),
    ]
    items.append(
        collect_flow.to_deployment(
            name="every-15-min",
            interval=COLLECT_INTERVAL_S,
            # Record the live trades and orderbook.50 (per-second top-20 snapshots) for most of
            # each interval into the lake's day partitions, then compact and check: the nightly
            # retrain trains on every collected day and gates on the newest.
            parameters={"record_s": COLLECT_INTERVAL_S - 60.0, "book_depth": BOOK_DEPTH},
            tags=["data"],
        )
    )
    return items


def main() -> None:
    from cryptoarena.config import get_settings
    from cryptoarena.console import setup_logging

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_file)
    serve(*deployments())


if __name__ == "__main__":
    main()
