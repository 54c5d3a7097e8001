"""Parameter sweeps: a grid of one strategy's parameters (and replay spans) backtested in
parallel as a Prefect flow on Dask, each point an MLflow run nested under the sweep's, and a
table that names the best point with its deflated Sharpe ratio (see docs/sweeps.md).

Nothing is imported here: ``arena`` loads the sweep command's module for every command, and the
grid's imports (pandas, the strategies) would slow each of them down."""
