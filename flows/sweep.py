"""Sweep flow: a grid of one strategy's parameters (and replay spans), one backtest task per
point on prefect-dask's task runner, each point an MLflow run nested under the sweep's, and a
table with the best point's deflated Sharpe ratio. The flow itself lives in the package
(cryptoarena.trading.sweeps.flow) so ``arena sweep`` and a cluster's Dask workers import it.

    python -m flows.sweep configs/sweep.example.toml                 # local Dask cluster
    python -m flows.sweep configs/sweep.example.toml --dask-address tcp://scheduler:8786
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryptoarena.config import get_settings
from cryptoarena.trading.sweeps.flow import plan_sweep, run_sweep, sweep_flow
from cryptoarena.trading.sweeps.grid import SweepError, load_spec
from cryptoarena.trading.sweeps.plan import Cluster

__all__ = ["main", "sweep_flow"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("grid", type=Path, help="sweep TOML (configs/sweep.example.toml)")
    parser.add_argument("--out", type=Path, default=None, help="default: <settings.home>/sweeps")
    parser.add_argument("--workers", type=int, default=None, help="local Dask worker processes")
    parser.add_argument("--dask-address", default=None, help="a Dask scheduler to run on")
    parser.add_argument("--tracking-uri", default=None, help="default: settings.mlflow")
    args = parser.parse_args()
    settings = get_settings()
    try:
        plan = plan_sweep(settings, load_spec(args.grid), args.out or settings.home / "sweeps")
    except SweepError as exc:
        parser.error(str(exc))  # one line, exit 2
    summary = run_sweep(plan, Cluster(args.dask_address, args.workers), args.tracking_uri)
    print(summary.sentence)
    print(f"table: {plan.directory / 'sweep.md'}")


if __name__ == "__main__":
    main()
