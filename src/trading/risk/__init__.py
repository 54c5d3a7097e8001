"""Risk limits between every strategy and its exchange, and the kill switch."""
