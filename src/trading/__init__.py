"""Trading: exchanges, strategies, risk, books, journal, worker."""
