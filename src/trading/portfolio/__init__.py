"""Each strategy's own money: its ledger (capital, position, average price, P&L, fees)."""
