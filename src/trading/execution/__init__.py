"""Execution: targets into orders. The router (risk checks, sending, exits apart from entries),
the order records and sizing, the ledger of the run's orders and fills, and maker quotes."""
