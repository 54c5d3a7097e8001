"""``arena train`` and ``arena evaluate``: the forecaster from the command line.

Heavy imports (torch, Lightning, MLflow) happen inside the commands so ``arena --help`` stays fast.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from cryptoarena.config import get_settings
from cryptoarena.console import make_console
from rich.console import Console
from rich.table import Table

logger = logging.getLogger(__name__)


class Promote(StrEnum):
    """When a newly trained version becomes @champion."""

    GATE = "gate"  # only when it beats the champion and persistence on the same window
    FORCE = "force"
    NEVER = "never"


def comparison_table(title: str, results: dict[str, dict[str, Any]]) -> Table:
    from cryptoarena.model.report import HEADER, comparison_rows

    table = Table(title=title)
    for col in HEADER:
        if col == "model":
            table.add_column(col, no_wrap=True, min_width=11)  # names must stay readable
        else:
            table.add_column(col, justify="right")
    for row in comparison_rows(results):
        table.add_row(*row)
    return table


def print_report(console: Console, report: dict[str, Any]) -> None:
    from cryptoarena.model.report import SECTIONS

    for key, title in SECTIONS:
        if key in report:
            console.print(comparison_table(f"15 s forecasts, {title}", report[key]))


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        epochs: int = typer.Option(
            12, min=1, help="Maximum epochs (early stopping may end sooner)."
        ),
        window: int = typer.Option(60, min=2, help="Input window in 1-second bars."),
        hidden: int = typer.Option(32, min=1, help="LSTM hidden size."),
        layers: int = typer.Option(1, min=1, help="LSTM layers."),
        dropout: float = typer.Option(0.0, min=0.0, max=0.9, help="Dropout between LSTM layers."),
        data: Path | None = typer.Option(None, help="Trade file (default: the shipped real day)."),
        max_bars: int | None = typer.Option(None, min=1000, help="Use only the first N bars."),
        name: str | None = typer.Option(
            None, help="Registered model name (default from settings)."
        ),
        threads: int = typer.Option(
            1, min=1, help="torch threads (1 is fastest on a shared 2-core machine)."
        ),
        second_venue: bool = typer.Option(True, help="Also judge on the Bitstamp 2015 day."),
        promote: Promote = typer.Option(Promote.GATE, help="Champion alias policy."),
        seed: int = typer.Option(7, help="Random seed."),
        patience: int = typer.Option(3, min=1, help="Early-stopping patience (epochs)."),
    ) -> None:
        """Train the LSTM on real 1 s bars, judge it against the baselines, register it."""
        from cryptoarena.model.datasets import load_bars, second_venue_bars
        from cryptoarena.model.lstm import LSTMConfig
        from cryptoarena.model.train import train as run_train
        from pytorch_lightning.callbacks import RichProgressBar

        settings = get_settings()
        console = make_console()
        cfg = LSTMConfig(window=window, hidden=hidden, layers=layers, dropout=dropout,
                         max_epochs=epochs, num_threads=threads, seed=seed,
                         patience=patience)  # fmt: skip
        try:
            bars = load_bars(data, max_bars=max_bars, sample_dir=settings.data.sample_dir)
        except (FileNotFoundError, ValueError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)  # one line, never wrapped
            raise typer.Exit(2) from None
        venue2 = second_venue_bars(settings.data.sample_dir) if second_venue else None
        console.print(f"training on {len(bars):,} bars from {data or 'the shipped real day'}")
        result = run_train(
            bars,
            tracking_uri=settings.mlflow.tracking_uri,
            name=name or settings.serving.model_name,
            cfg=cfg,
            promote=promote.value,
            second_venue=venue2,
            data_label=str(data or "binance_usdm_BTCUSDT_2020-02-22"),
            progress_bar=True,
            callbacks=[RichProgressBar()],
        )
        print_report(console, result.report)
        info = result.info
        console.print(
            f"registered {info.name} version {info.version} (run {info.run_id}) @challenger; "
            f"{result.decision.reason}" + ("; now @champion" if result.promoted else "")
        )

    @app.command()
    def evaluate(
        version: str = typer.Argument(..., help="Model version number, or an alias like champion."),
        name: str | None = typer.Option(
            None, help="Registered model name (default from settings)."
        ),
        data: Path | None = typer.Option(None, help="Trade file (default: the shipped real day)."),
        max_bars: int | None = typer.Option(None, min=1000, help="Use only the first N bars."),
        second_venue: bool = typer.Option(True, help="Also judge on the Bitstamp 2015 day."),
        threads: int = typer.Option(1, min=1, help="torch threads."),
    ) -> None:
        """Judge a registered version against the baselines on the held-out test split."""
        import torch
        from cryptoarena.model.datasets import load_bars, second_venue_bars
        from cryptoarena.model.judge import evaluate_version
        from cryptoarena.model.registry import ModelNotFound

        torch.set_num_threads(threads)
        settings = get_settings()
        console = make_console()
        model = name or settings.serving.model_name
        uri = f"models:/{model}/{version}" if version.isdigit() else f"models:/{model}@{version}"
        try:
            bars = load_bars(data, max_bars=max_bars, sample_dir=settings.data.sample_dir)
        except (FileNotFoundError, ValueError) as exc:  # missing, truncated, not trades
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)  # one line, never wrapped
            raise typer.Exit(2) from None
        venue2 = second_venue_bars(settings.data.sample_dir) if second_venue else None
        try:
            report = evaluate_version(
                uri, tracking_uri=settings.mlflow.tracking_uri, bars=bars, second_venue=venue2
            )
        except (ModelNotFound, ValueError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)  # one line, never wrapped
            raise typer.Exit(1) from None
        console.print(
            f"{uri}: test split {report['data']['test_first']} → {report['data']['test_last']}"
        )
        print_report(console, report)
