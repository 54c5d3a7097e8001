"""``arena demo``: run each part that exists on embedded defaults, then say what was done.

Every area that has something to show contributes a step: ``cryptoarena.<area>.demo.demo_step``
takes ``(settings, console, quick)`` and returns a line for the closing summary.
"""

from __future__ import annotations

import importlib
import logging
import time

from cryptoarena.config import Settings
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
    console = console or Console()
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
    return done
