"""The ``arena`` command. Each area adds its own commands through ``register(app)`` in its
``cli`` module, and heavy imports (torch, mlflow) happen inside commands, so ``--help`` is fast.
"""

from __future__ import annotations

import importlib
import logging

import typer
from cryptoarena.config import ConfigError, get_settings

logger = logging.getLogger(__name__)

# Areas that contribute commands; each module exposes ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = (
    "cryptoarena.data.cli",
    "cryptoarena.model.cli",
    "cryptoarena.serving.cli",
    "cryptoarena.trading.cli",
    "cryptoarena.trading.sweeps.cli",
    "cryptoarena.trading.exchange.cli",
    "cryptoarena.dashboard.cli",
)

app = typer.Typer(
    help="cryptoarena: an LSTM forecaster against classical strategies on BTCUSDT, after fees.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=logging.DEBUG if verbose else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


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
    app()
