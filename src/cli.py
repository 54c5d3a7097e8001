"""The ``arena`` command. Each area adds its own commands through ``register(app)`` in its
``cli`` module, and heavy imports (torch, mlflow) happen inside commands, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import logging

import typer
from cryptoarena.config import ConfigError, get_settings, unknown_env_names
from cryptoarena.console import setup_logging

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

app = typer.Typer(
    help="cryptoarena: an LSTM forecaster against classical strategies on BTCUSDT, after fees.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Debug logging on the console, libraries included."
    ),
) -> None:
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    setup_logging(settings.log_level, settings.log_file, verbose=verbose)
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
