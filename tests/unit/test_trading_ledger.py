"""The book's accounting identity, as a property over generated fill sequences."""

from __future__ import annotations

from decimal import Decimal

import pytest
from cryptoarena.trading.exchange.models import Side
from cryptoarena.trading.portfolio.ledger import Ledger
from hypothesis import given, settings
from hypothesis import strategies as st

TOL = Decimal("1e-12")

prices = st.decimals(min_value="1000", max_value="100000", places=1)
qtys = st.decimals(min_value="0.001", max_value="2", places=3)
fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]), qtys, prices, st.decimals("0", "5", places=4)
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(fills=fills, mark=prices)
def test_equity_is_cash_plus_position_value_minus_fees(fills, mark) -> None:
    book = Ledger("x", capital=Decimal(10_000))
    for side, qty, price, fee in fills:
        book.apply_fill(side, qty, price, fee)
    # Two independent computations of equity agree: cash accounting and average-price P&L.
    by_cash = book.cash + book.qty * mark - book.fees
    by_pnl = book.capital + book.realised + book.unrealised(mark) - book.fees
    assert book.equity(mark) == by_cash
    assert abs(by_cash - by_pnl) < TOL
    # The position is the signed sum of fills; fees add up; a flat book has no average price.
    signed = sum((q if s == Side.BUY else -q) for s, q, _, _ in fills)
    assert book.qty == signed
    assert book.fees == sum(f for *_, f in fills)
    if book.qty == 0:
        assert book.avg_price == 0
        assert abs(book.equity(mark) - (book.capital + book.realised - book.fees)) < TOL
    # State round-trips exactly (restart restores the same book).
    again = Ledger.from_state("x", book.to_state())
    assert again.equity(mark) == book.equity(mark)
    assert again.to_state() == book.to_state()


def test_round_trip_and_flip_accounting() -> None:
    book = Ledger("x", capital=Decimal(1000))
    book.apply_fill(Side.BUY, Decimal("1"), Decimal("100"), Decimal("0.1"))
    book.apply_fill(Side.BUY, Decimal("1"), Decimal("110"), Decimal("0.1"))
    assert book.avg_price == Decimal("105")
    realised = book.apply_fill(Side.SELL, Decimal("3"), Decimal("120"), Decimal("0.3"))
    assert realised == Decimal("30")  # 2 × (120 − 105)
    assert book.qty == Decimal("-1") and book.avg_price == Decimal("120")
    assert book.round_trips == 1 and book.wins == 1
    assert book.equity(Decimal("120")) == Decimal("1000") + Decimal("30") - Decimal("0.5")


def test_bad_fill_is_refused_and_leaves_the_book_unchanged() -> None:
    book = Ledger("x", capital=Decimal(1000))
    with pytest.raises(ValueError):
        book.apply_fill(Side.BUY, Decimal("0"), Decimal("100"), Decimal("0"))
    assert book.to_state() == Ledger("x", capital=Decimal(1000)).to_state()
