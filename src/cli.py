"""The ``arena`` command. Each area adds its own commands through ``register(app)`` in its
``cli`` module, and heavy imports (torch, mlflow) happen inside commands, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import typer
import typer.core
import typer.rich_utils
from cryptoarena.config import ConfigError, get_settings, secret_values, unknown_env_names
from cryptoarena.console import PIPED_WIDTH, setup_logging

logger = logging.getLogger(__name__)

# Areas that contribute commands; each module exposes ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = (
    "cryptoarena.data.cli",
    "cryptoarena.model.cli",
    "cryptoarena.serving.cli",
    "cryptoarena.trading.cli",
    "cryptoarena.trading.sweeps.cli",
    "cryptoarena.trading.seasons.cli",
    "cryptoarena.trading.exchange.cli",
    "cryptoarena.dashboard.cli",
    "cryptoarena.trading.journal.cli",
    "cryptoarena.flow_commands",
)


def _help_layout() -> None:
    """Help as wide as tables when piped (rich would wrap it at 80 columns), and flags without
    a ``<bool>`` type column (typer shows one for every option; a flag takes no value)."""
    if not sys.stdout.isatty() and not {"COLUMNS", "TERMINAL_WIDTH"} & set(os.environ):
        typer.rich_utils.MAX_WIDTH = PIPED_WIDTH
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_help_layout()

app = typer.Typer(
    help="cryptoarena: an LSTM forecaster against classical strategies on BTCUSDT, after fees.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False,
        "--verbose",
        "-v",
        help="Every log record on the console too (DEBUG, libraries "
        "included); without it they go only to the log file (settings.log_file).",
    ),
) -> None:
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    setup_logging(
        settings.log_level,
        settings.log_file,
        verbose=verbose,
        command=True,
        secrets=secret_values(settings),
    )
    for problem in unknown_env_names():
        typer.secho(f"warning: {problem}", fg=typer.colors.YELLOW, err=True)


@app.command()
def demo(
    quick: bool = typer.Option(False, help="Smallest possible run (used by the tests)."),
) -> None:
    """Run every part that exists on the embedded defaults and say what was done."""
    from cryptoarena.demo import run_demo

    run_demo(get_settings(), quick=quick)


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:
    app(prog_name="arena")  # not the launcher's argv[0] in usage lines
