"""Exchanges behind one protocol: the paper exchange and Bybit (pybit)."""
