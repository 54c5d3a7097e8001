"""``arena sweep``: a grid of one strategy's parameters backtested in parallel (Prefect + Dask)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NoReturn

import typer
from cryptoarena.config import get_settings

logger = logging.getLogger(__name__)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def spec_data(
    grid_file: Path | None,
    *,
    kind: str | None,
    param: list[str],
    fixed: list[str],
    span: list[str],
    **overrides: Any,
) -> dict[str, Any]:
    """The sweep file's content with the command-line options on top (an option replaces the
    file's value of the same key; ``--span`` replaces all the file's spans)."""
    from cryptoarena.trading.sweeps.grid import (
        SweepError,
        load_spec,
        parse_assignment,
        parse_span,
    )

    data: dict[str, Any] = load_spec(grid_file) if grid_file is not None else {}
    if kind is not None:
        data["kind"] = kind
    if "kind" not in data:
        raise SweepError("no strategy kind: give a sweep file with kind = ..., or --kind")
    for text in param:
        key, values = parse_assignment(text, many=True)
        data["grid"] = {**data.get("grid", {}), key: values}
    for text in fixed:
        key, value = parse_assignment(text, many=False)
        data["params"] = {**data.get("params", {}), key: value}
    if span:
        data["span"] = [parse_span(s) for s in span]
    data.update({k: v for k, v in overrides.items() if v not in (None, False)})
    return data


def sweep(
    grid_file: Path | None = typer.Argument(
        None, help="Sweep TOML (see configs/sweep.example.toml); options below override it."
    ),
    kind: str | None = typer.Option(None, help="Strategy kind (sma_cross, macd, rsi_reversion…)."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A swept parameter: key=v1,v2,… (repeatable)."
    ),
    fixed: list[str] = typer.Option(
        [], "--fixed", help="A parameter every point shares: key=value (repeatable)."
    ),
    span: list[str] = typer.Option(
        [], "--span", help="Replay span START:MINUTES in minutes (START: to the end; repeatable)."
    ),
    arena: Path | None = typer.Option(
        None, "--arena", help="Arena TOML for capital, fees and risk limits (default: built-in)."
    ),
    replay_file: Path | None = typer.Option(
        None, help="Trade file (default: the shipped real day)."
    ),
    name: str | None = typer.Option(None, help="Sweep name (MLflow parent run, output folder)."),
    skip_invalid: bool = typer.Option(
        False, help="Leave out points the strategy refuses (e.g. fast >= slow) instead of failing."
    ),
    out: Path | None = typer.Option(
        None, help="Output folder (default: <settings.home>/var/sweeps); one sub-folder per sweep."
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Local Dask worker processes (default: CPU cores, at most one per point)."
    ),
    dask_address: str | None = typer.Option(
        None, help="Run on this Dask scheduler (tcp://host:8786) instead of a local cluster."
    ),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow tracking URI (default: settings.mlflow.tracking_uri)."
    ),
    experiment: str | None = typer.Option(
        None, help="MLflow experiment (default: cryptoarena-sweeps)."
    ),
) -> None:
    """Backtest a grid of strategy parameters (and spans) in parallel; each point is an MLflow
    run nested under the sweep's; prints the table and the best point's deflated Sharpe ratio."""
    from cryptoarena.trading.config import ArenaConfigError
    from cryptoarena.trading.sweeps.grid import SweepError
    from cryptoarena.trading.sweeps.plan import Cluster, check_address

    settings = get_settings()
    try:
        data = spec_data(
            grid_file,
            kind=kind,
            param=param,
            fixed=fixed,
            span=span,
            arena=arena,
            replay_file=replay_file,
            name=name,
            experiment=experiment,
            skip_invalid=skip_invalid,
        )
        from cryptoarena.trading.sweeps.flow import plan_sweep

        if dask_address:
            check_address(dask_address)
        plan = plan_sweep(settings, data, out or settings.home / "var" / "sweeps")
    except (SweepError, ArenaConfigError) as exc:
        _fail(str(exc))
    cluster = Cluster(address=dask_address, workers=workers)
    typer.echo(f"sweep {plan.sweep_id}: {len(plan.jobs)} points on the {cluster.describe()}")
    from cryptoarena.trading.sweeps.flow import run_sweep

    try:
        summary = run_sweep(plan, cluster, tracking_uri)
    except (OSError, TimeoutError) as exc:
        _fail(f"the sweep could not run on the {cluster.describe()}: {exc}")
    from cryptoarena.trading.sweeps.table import render_markdown

    typer.echo(render_markdown(summary))
    typer.echo(f"table written to {plan.directory / 'sweep.md'}")
    if summary.failed:
        typer.secho(f"{summary.failed} points failed (see the table)", fg=typer.colors.YELLOW)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
