"""When `arena flows serve` runs each flow (UTC). Its own module, free of Prefect, so
`arena flows list` can say it without importing Prefect (seconds)."""

from __future__ import annotations

COLLECT_INTERVAL_S = 15 * 60
DRIFT_CRON = "7 * * * *"
RETRAIN_CRON = "0 3 * * *"
BOOK_DEPTH = 50  # Bybit orderbook.50, recorded with the trades
