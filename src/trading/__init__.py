"""Trading: one folder per part.

- ``config.py``     the arena file (ArenaConfig: symbol, capital, strategies, limits)
- ``engine/``       the worker and its drives (sessions, restore, bar backtests)
- ``execution/``    targets into orders: router, order records, the order ledger, maker quotes
- ``exchange/``     the venues: paper (tape and bars), Bybit, accounts, instruments
- ``forecasts/``    forecasts for the AI arms (the pump; the in-process champion)
- ``portfolio/``    each strategy's own ledger (capital, position, P&L, fees)
- ``risk/``         limits, the risk manager, the kill switch
- ``strategies/``   classical, AI and reference strategies
- ``journal/``      every event to MongoDB or the embedded store
- ``results/``      statistics, verdicts and reports
- ``sweeps/``       parameter sweeps on Prefect + Dask
"""
