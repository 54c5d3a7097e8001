"""A journal made by a short real backtest (every strategy, real tape, a naive in-process
forecaster), for the dashboard's API and browser tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptoarena.config import Settings
from cryptoarena.trading.config import all_strategies_config
from cryptoarena.trading.journal import Journal

from tests.integration.trading_kit import TrailingMoveSource, run_worker, tape_slice

RUN_ID = "dash1"


def backtest_journal(tmp: Path, *, minutes: float = 12.0, **settings: object) -> Settings:
    """Run the worker over ``minutes`` of the shipped day into a journal under ``tmp``."""
    env = Settings(
        mongo={"embedded_dir": tmp / "journal"},  # type: ignore[arg-type]
        trading={"kill_file": tmp / "arena.kill"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"},  # type: ignore[arg-type]
        dashboard={"site_dir": tmp / "site", "poll_interval_s": 0.2},  # type: ignore[arg-type]
        home=tmp,
        **settings,  # type: ignore[arg-type]
    )
    config = all_strategies_config(bar_size="5s", fee_rate=0.0001, equity_every_s=5.0)
    with Journal.open(env, run_id=RUN_ID) as journal:
        asyncio.run(
            run_worker(
                config,
                tape_slice(3600, minutes),
                journal,
                run_id=RUN_ID,
                source=TrailingMoveSource(),
            )
        )
        journal.sync(30)
    return env
