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


def _rich_table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    return table


def print_cv(console: Console, cv: dict[str, Any], title: str) -> None:
    from cryptoarena.model.report import (
        CV_HEADER,
        coverage_lines,
        cv_fold_rows,
        cv_head,
        cv_pair_rows,
        cv_pooled_rows,
    )

    head = f"{title}: {cv_head(cv)}"
    header, rows = cv_fold_rows(cv)
    console.print(_rich_table(f"{head}, per fold (skill)", header, rows))
    console.print(_rich_table(f"{head}, pooled", CV_HEADER, cv_pooled_rows(cv)))
    for line in coverage_lines(cv):
        console.print(f"quantile coverage: {line}")
    if cv.get("pairwise"):
        pair_header = ["pair", "n", "DM stat", "DM p (HLN)", "DM p (HAC)"]
        console.print(_rich_table(f"{head}, pairwise", pair_header, cv_pair_rows(cv)))


def print_report(console: Console, report: dict[str, Any]) -> None:
    from cryptoarena.model.report import CV_SECTIONS, SECTIONS

    for key, title in SECTIONS:
        if key in report:
            console.print(comparison_table(f"15 s forecasts, {title}", report[key]))
    for key, title in CV_SECTIONS:
        if key in report:
            print_cv(console, report[key], f"15 s forecasts, {title}")


def _bars(data: Path | None, max_bars: int | None, sample_dir: Path, book: bool) -> Any:
    """Bars of ``data`` (default: the shipped day); with ``book``, with its order book."""
    from cryptoarena.model.datasets import load_bars

    if not book:
        return load_bars(data, max_bars=max_bars, sample_dir=sample_dir)
    from cryptoarena.data.samples import BITSTAMP_DAY, sample_path
    from cryptoarena.model.book import load_book_bars

    bars = load_book_bars(data or sample_path(BITSTAMP_DAY, sample_dir))
    return bars.iloc[:max_bars].reset_index(drop=True) if max_bars else bars


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
        book: bool = typer.Option(
            False, help="Load the order book too (Bitstamp log or raw Binance feed in --data)."
        ),
        members: int = typer.Option(1, min=1, max=32, help="Seed ensemble size (one model)."),
        shrink: bool = typer.Option(False, help="Validation-fitted shrink of the point path."),
        quantiles: str = typer.Option(
            "", help="Quantile heads, e.g. 0.1,0.5,0.9 (pinball loss; bands served)."
        ),
        gate_alpha: float = typer.Option(
            0.05, min=1e-6, max=0.5, help="Significance level the promotion gate demands."
        ),
    ) -> None:
        """Train the LSTM on real 1 s bars, judge it against the baselines, register it."""
        from cryptoarena.model.datasets import second_venue_bars
        from cryptoarena.model.lstm import LSTMConfig
        from cryptoarena.model.train import train as run_train
        from pytorch_lightning.callbacks import RichProgressBar

        settings = get_settings()
        console = make_console()
        try:
            qs = tuple(float(q) for q in quantiles.split(",") if q.strip())
            cfg = LSTMConfig(window=window, hidden=hidden, layers=layers, dropout=dropout,
                             max_epochs=epochs, num_threads=threads, seed=seed,
                             patience=patience, members=members, shrink=shrink,
                             quantiles=qs)  # fmt: skip
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            console.print(f"[red]error: bad --quantiles {quantiles!r}: {exc}".splitlines()[0])
            raise typer.Exit(2) from None
        try:
            bars = _bars(data, max_bars, settings.data.sample_dir, book)
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
            gate_alpha=gate_alpha,
        )
        print_report(console, result.report)
        info = result.info
        console.print(
            f"registered {info.name} version {info.version} (run {info.run_id}): {result.message}"
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
        lake: bool = typer.Option(
            False, help="Judge on every bar the lake holds (settings.data.lake_dir) instead."
        ),
        folds: int = typer.Option(6, min=2, help="Cross-validation folds."),
        scheme: str = typer.Option(
            "walk_forward", help="walk_forward (train on the past only) | blocked."
        ),
        alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="Significance level shown."),
        out: Path | None = typer.Option(None, help="Also write report.json and report.md here."),
        refit_lstm: bool = typer.Option(
            False, help="Also retrain the model's configuration on every fold's past (slow)."
        ),
        book: bool = typer.Option(
            False, help="Load the order book too (Bitstamp log or raw Binance feed in --data)."
        ),
    ) -> None:
        """Judge a registered version against the baselines: the held-out test split, and purged
        walk-forward cross-validation (per fold and pooled, with CIs and DM tests)."""
        import pandas as pd
        import torch
        from cryptoarena.model import mlops
        from cryptoarena.model.cv import CVConfig
        from cryptoarena.model.datasets import second_venue_bars
        from cryptoarena.model.judge import WINDOWS_FILE, evaluate_version, log_evaluation
        from cryptoarena.model.registry import ModelNotFound

        torch.set_num_threads(threads)
        settings = get_settings()
        console = make_console()
        if scheme not in ("walk_forward", "blocked"):
            typer.secho(
                f"error: --scheme must be walk_forward or blocked, got {scheme!r}",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(2)
        model = name or settings.serving.model_name
        uri = f"models:/{model}/{version}" if version.isdigit() else f"models:/{model}@{version}"
        try:
            if lake:
                bars = mlops.load_source_bars(settings, "lake", max_bars=max_bars)
            else:
                bars = _bars(data, max_bars, settings.data.sample_dir, book)
            venue2 = second_venue_bars(settings.data.sample_dir) if second_venue else None
            cv = CVConfig(folds=folds, scheme=scheme, alpha=alpha)  # type: ignore[arg-type]
            windows: list[pd.DataFrame] = []
            report = evaluate_version(
                uri,
                tracking_uri=settings.mlflow.tracking_uri,
                bars=bars,
                second_venue=venue2,
                cv=cv,
                refit_lstm=refit_lstm,
                windows=windows,
            )
        except (ModelNotFound, ValueError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)  # one line, never wrapped
            raise typer.Exit(1) from None
        if out is not None:
            import json

            from cryptoarena.model.report import markdown

            out.mkdir(parents=True, exist_ok=True)
            (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
            (out / "report.md").write_text(markdown(report))
            windows[0].to_parquet(out / WINDOWS_FILE)
        eval_run = log_evaluation(
            report, windows[0], tracking_uri=settings.mlflow.tracking_uri,
            experiment=settings.mlflow.experiment,
        )  # fmt: skip
        console.print(
            f"{uri}: test split {report['data']['test_first']} → {report['data']['test_last']}"
        )
        print_report(console, report)
        console.print(
            f"every window's forecast and error: MLflow run {eval_run}, report/{WINDOWS_FILE}"
            + (f" (and {out / WINDOWS_FILE})" if out is not None else "")
        )
