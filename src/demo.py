"""``arena demo``: run each part that exists on embedded defaults, then say what was done.

Every area that has something to show contributes a step: ``cryptoarena.<area>.demo.demo_step``
takes ``(settings, console, quick)`` and returns a line for the closing summary.
"""

from __future__ import annotations

import importlib
import logging
import time

from cryptoarena.config import Settings
from cryptoarena.console import make_console
from rich.console import Console

logger = logging.getLogger(__name__)

# In pipeline order: data first, then the model, serving, and trading on top.
DEMO_STEPS = (
    "cryptoarena.data.demo",
    "cryptoarena.model.demo",
    "cryptoarena.serving.demo",
    "cryptoarena.trading.demo",
)


def run_demo(
    settings: Settings, *, quick: bool = False, console: Console | None = None
) -> list[str]:
    console = console or make_console()
    done: list[str] = []
    started = time.perf_counter()
    for name in DEMO_STEPS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        console.rule(f"[bold]{name.split('.')[1]}")
        done.append(module.demo_step(settings, console, quick))
    console.rule("[bold]what the demo did")
    for line in done:
        console.print(f"• {line}")
    console.print(f"[green]demo finished in {time.perf_counter() - started:.1f} s")
    console.rule("[bold]what next")
    for line in next_steps(settings):
        console.print(line, soft_wrap=True, highlight=False)
    return done


def next_commands(settings: Settings) -> list[tuple[str, str]]:
    """The demo's "what next": (command, what it shows), in the order printed. The test of the
    suggested commands (tests/integration/test_suggested_commands.py) runs every ``arena`` one
    on the demo's state, so each is written to run as printed."""
    serving = settings.serving
    return [
        ("arena report", "the demo run's leaderboard again, from the journal"),
        ("arena serve", f"the forecast server: http://{serving.host}:{serving.port}/docs"),
        (
            "arena backtest --minutes 60",
            "every strategy on 60 min of the real day the model never saw",
        ),
        ("arena flows run retrain --tiny", "a Prefect flow run: train, judge, register"),
        (
            f"mlflow ui --backend-store-uri {settings.mlflow.tracking_uri} --port 5000",
            "the MLflow UI (runs, drift reports, the model registry) at http://127.0.0.1:5000",
        ),
        (
            "prefect server start",
            "the Prefect UI at http://127.0.0.1:4200 (then arena flows serve)",
        ),
    ]


def next_steps(settings: Settings) -> list[str]:
    """What to open or run after the demo, with this machine's paths."""
    tracking = settings.mlflow.tracking_uri
    journal = (
        "MongoDB at ARENA_MONGO__URI"
        if settings.mongo.uri
        else f"{settings.mongo.embedded_dir} (embedded store, one SQLite file)"
    )
    todo = next_commands(settings)
    width = max(len(cmd) for cmd, _ in todo[:4]) + 3
    lines = [
        f"  {cmd:<{width}}{what}" if len(cmd) < width else f"  {cmd}\n  {'':<{width}}{what}"
        for cmd, what in todo
    ]
    return [
        *lines,
        f"journal: {journal}; registry: {tracking} (artifacts in artifacts/ beside a SQLite"
        " registry's database, else where its server keeps them);",
        f"lake: {settings.data.lake_dir}; full log of this run: {settings.log_file}",
    ]
