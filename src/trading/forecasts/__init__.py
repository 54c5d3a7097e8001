"""Forecasts for the AI strategies: the background pump (live, lock-step in backtests) and the
in-process source (a loaded champion when no model server runs)."""
