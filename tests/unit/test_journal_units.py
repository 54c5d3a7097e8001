"""Journal building blocks: document cleaning (secrets, types) and the spill file's recovery."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
from cryptoarena.config import Settings
from cryptoarena.trading.journal.sanitize import JournalDocumentError, clean_document
from cryptoarena.trading.journal.spill import SpillLog, decode, encode
from pydantic import SecretStr


class Side(Enum):
    BUY = "Buy"


@dataclasses.dataclass(frozen=True)
class Fill:
    price: Decimal
    side: Side


def test_clean_document_converts_types_and_copies() -> None:
    nested = {"a": [1, 2]}
    doc = {
        "fill": Fill(Decimal("50000.10"), Side.BUY),
        "ts": dt.datetime(2024, 1, 1),
        "day": dt.date(2024, 1, 2),
        "path": Path("/x"),
        "arr": np.array([1.5, 2.5]),
        "n": np.int64(3),
        "tup": (1, "a"),
        "nested": nested,
    }
    out = clean_document(doc)
    assert out["fill"] == {"price": "50000.10", "side": "Buy"}
    assert out["ts"].tzinfo is dt.UTC
    assert out["day"] == "2024-01-02" and out["path"] == "/x"
    assert out["arr"] == [1.5, 2.5] and out["n"] == 3 and out["tup"] == [1, "a"]
    nested["a"].append(3)  # the journal keeps its own copy
    assert out["nested"] == {"a": [1, 2]}


def test_decimal_fields_keep_their_exact_text() -> None:
    # Prices, sizes and fees of every order and fill: the fast branch for a field's Decimal
    # gives the text the general one gives (a subclass, nested, in a list), secrets still go.
    class Price(Decimal):
        pass

    doc = {
        "fee": Decimal("550.00012936554482500000"),
        "qty": Decimal("1E-8"),
        "zero": Decimal("-0.000"),
        "sub": Price("42455.4700000"),
        "inner": {"price": Decimal("0.10")},
        "list": [Decimal("2.50")],
        "api_key": Decimal("1"),
    }
    assert clean_document(doc) == {
        "fee": "550.00012936554482500000",
        "qty": "1E-8",
        "zero": "-0.000",
        "sub": "42455.4700000",
        "inner": {"price": "0.10"},
        "list": ["2.50"],
    }


@pytest.mark.parametrize(
    "key",
    ["api_key", "apiKey", "API-KEY", "api_secret", "password", "token", "X-BAPI-SIGN", "sign"],
)
def test_secret_looking_keys_are_stripped(key: str) -> None:
    assert clean_document({key: "s3cr3t", "keep": 1}) == {"keep": 1}


def test_harmless_keys_that_contain_sign_are_kept() -> None:
    doc = {"signal": 1, "design": 2, "signed_qty": 3}
    assert clean_document(doc) == doc


def test_secret_values_stripped_and_settings_refused() -> None:
    assert clean_document({"x": SecretStr("s"), "y": [SecretStr("s")]}) == {"y": [None]}
    with pytest.raises(JournalDocumentError, match="settings"):
        clean_document({"cfg": Settings()})
    with pytest.raises(JournalDocumentError, match=r"\$"):
        clean_document({"$where": "1"})
    with pytest.raises(JournalDocumentError, match="64-bit"):
        clean_document({"big": 2**70})
    with pytest.raises(JournalDocumentError, match="cannot journal"):
        clean_document({"obj": object()})


def _op(n: int, session: int = 1) -> dict[str, object]:
    return {"s": session, "n": n, "c": "decisions", "op": "ins", "id": f"r:{n}", "d": {"i": n}}


def test_spill_round_trip_torn_tail_and_overflow_merge(tmp_path: Path) -> None:
    spill = SpillLog(tmp_path, "db")
    spill.append([_op(1), _op(2)])
    assert decode(encode(_op(1))) == _op(1)
    # A crash mid-append leaves a torn line: never acknowledged, trimmed at open.
    with spill.spill_path.open("ab") as fh:
        fh.write(encode(_op(3))[:-5])
    # The overflow holds later ops, one of them already copied (crash during a merge).
    spill.append_overflow(_op(2))
    spill.append_overflow(_op(4))
    spill.recover()
    assert not spill.overflow_path.exists()
    ops, offset = spill.read_next(100)
    assert [op["n"] for op in ops] == [1, 2, 4]
    spill.offset = offset
    assert not spill.pending()
    spill.clear()
    assert not spill.spill_path.exists()


def test_spill_lock_is_exclusive(tmp_path: Path) -> None:
    from cryptoarena.trading.journal import JournalLockedError

    first, second = SpillLog(tmp_path, "db"), SpillLog(tmp_path, "db")
    first.lock()
    try:
        with pytest.raises(JournalLockedError):
            second.lock()
    finally:
        first.unlock()
    second.lock()
    second.unlock()


def test_a_detached_overflow_and_a_newer_one_merge_in_order(tmp_path: Path) -> None:
    """The writer renames the overflow aside under its lock and merges it without the lock
    (callers never wait for the copy); a crash may leave both files: both merge, in order."""
    spill = SpillLog(tmp_path, "db")
    spill.append([_op(1)])
    spill.append_overflow(_op(2))
    spill.detach_overflow()  # then a crash before merge_detached
    assert spill.merging_path.exists() and not spill.overflow_path.exists()
    spill.append_overflow(_op(3))  # callers went on overflowing
    spill.recover()
    assert not spill.merging_path.exists() and not spill.overflow_path.exists()
    ops, _ = spill.read_next(100)
    assert [op["n"] for op in ops] == [1, 2, 3]


def test_checked_field_names_stay_checked() -> None:
    """The cache of checked names never lets a secret through, and secret values are stripped
    under any name."""
    for _ in range(2):
        assert clean_document({"api_key": "k", "note": "n"}) == {"note": "n"}
        assert clean_document({"note": SecretStr("s"), "deep": {"token": "t", "x": 1}}) == {
            "deep": {"x": 1}
        }
    with pytest.raises(JournalDocumentError, match="64-bit"):
        clean_document({"nested": {"big": -(2**63) - 1}})
