"""Parameter sweeps: a grid of one strategy's parameters (and replay spans) backtested in
parallel as a Prefect flow on Dask, each point an MLflow run nested under the sweep's, and a
table that names the best point with its deflated Sharpe ratio (see docs/sweeps.md)."""

from cryptoarena.trading.sweeps.grid import GridPoint, Span, SweepError, SweepSpec

__all__ = ["GridPoint", "Span", "SweepError", "SweepSpec"]
