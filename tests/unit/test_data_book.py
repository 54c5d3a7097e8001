"""The live order book (cryptoarena.data.book): Bybit snapshot + delta rules, sequence checks and
resync, per-second sampling, the lake table and the live bar join."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptoarena.data.book import (
    BOOK_COLUMNS,
    BookMessageError,
    BookSnapshot,
    BybitBookTracker,
    LiveBookBars,
    LocalBook,
    book_frame,
    book_states,
    replay_book_messages,
)
from cryptoarena.data.lake import Lake
from cryptoarena.data.records import Bar
from cryptoarena.model import book as model_book
from cryptoarena.model import features
from cryptoarena.serving.schemas import BOOK_FIELDS

from tests.fakes.bybit_book import ExchangeBook, random_book_changes

T0 = 1_767_571_200_000  # 2026-01-05 00:00:00 UTC, ms


def msg(kind: str, u: int, bids: list[list[str]], asks: list[list[str]], ms: int) -> dict[str, Any]:
    return {
        "topic": "orderbook.50.BTCUSDT",
        "type": kind,
        "ts": ms + 1,
        "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 10 * u},
        "cts": ms,
    }


SNAP = msg("snapshot", 100, [["100.0", "1"], ["99.5", "2"]], [["100.5", "3"], ["101", "4"]], T0)


def test_column_names_agree_with_the_model_and_the_server() -> None:
    assert BOOK_COLUMNS == features.BOOK_COLUMNS == model_book.BOOK_COLUMNS == BOOK_FIELDS


def test_snapshot_then_deltas_insert_replace_delete() -> None:
    book = LocalBook("BTCUSDT")
    assert book.apply(SNAP)
    # replace 100.0, delete 99.5, insert 99.0; delete the best ask
    assert book.apply(
        msg(
            "delta", 101, [["100.0", "1.5"], ["99.5", "0"], ["99.0", "7"]], [["100.5", "0"]], T0 + 5
        )
    )
    snap = book.snapshot(10)
    assert snap.bids == ((100.0, 1.5), (99.0, 7.0))
    assert snap.asks == ((101.0, 4.0),)
    assert (snap.u, snap.seq, snap.ts) == (101, 1010, (T0 + 5) * 1_000_000)
    assert snap.columns() == (100.0, 101.0, 1.5, 4.0, 8.5, 4.0)


def test_a_gap_drops_the_book_until_the_next_snapshot() -> None:
    book = LocalBook("BTCUSDT")
    book.apply(SNAP)
    assert not book.apply(msg("delta", 102, [["100.0", "9"]], [], T0 + 5))  # 101 was lost
    assert not book.valid and book.stats["book_gaps"] == 1
    assert not book.apply(msg("delta", 103, [["100.0", "9"]], [], T0 + 6))  # still waiting
    assert book.stats["book_deltas_waiting"] == 1
    assert book.apply(msg("snapshot", 500, [["98", "1"]], [["99", "1"]], T0 + 7))
    assert book.snapshot(5).bids == ((98.0, 1.0),)  # the old levels are gone


def test_u_equal_one_is_a_service_restart_and_resets_the_book() -> None:
    book = LocalBook("BTCUSDT")
    book.apply(SNAP)
    assert book.apply(msg("delta", 1, [["50", "1"]], [["51", "1"]], T0 + 9))
    snap = book.snapshot(5)
    assert snap.bids == ((50.0, 1.0),) and snap.asks == ((51.0, 1.0),) and snap.u == 1
    assert book.apply(msg("delta", 2, [["50", "2"]], [], T0 + 10))


def test_an_unchanged_level1_resend_with_the_same_u_is_no_gap() -> None:
    book = LocalBook("BTCUSDT")
    book.apply(SNAP)
    assert book.apply(msg("delta", 100, [], [], T0 + 3000))
    assert book.stats["book_gaps"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "delta", "data": None},
        {"type": "other", "data": {"u": 1}},
        msg("delta", 101, [["abc", "1"]], [], T0),
        msg("delta", 101, [["100", "-1"]], [], T0),
        msg("delta", 101, [["100"]], [], T0),
        {"type": "delta", "data": {"u": "x", "b": [], "a": []}, "cts": T0},
    ],
)
def test_bad_messages_raise_one_clear_error_and_leave_the_book_unchanged(
    bad: dict[str, Any],
) -> None:
    book = LocalBook("BTCUSDT")
    book.apply(SNAP)
    before = book.snapshot(50)
    with pytest.raises(BookMessageError):
        book.apply(bad)
    assert book.snapshot(50) == before


def test_sampler_publishes_the_last_state_of_each_second() -> None:
    out: list[BookSnapshot] = []
    tracker = BybitBookTracker("BTCUSDT", 5, out.append)
    tracker.on_message(SNAP)  # second 0
    tracker.on_message(msg("delta", 101, [["100.0", "2"]], [], T0 + 400))  # second 0
    assert out == []  # the second is not over yet
    tracker.on_message(msg("delta", 102, [["100.0", "3"]], [], T0 + 2100))  # second 2
    assert [s.u for s in out] == [101]  # second 1 had no update: nothing new to publish
    tracker.on_message(msg("delta", 104, [["100.0", "4"]], [], T0 + 2500))  # gap in second 2
    assert [s.u for s in out] == [101, 102]  # the state before the gap was real
    tracker.on_message(msg("snapshot", 7, [["90", "1"]], [["91", "1"]], T0 + 3000))
    tracker.sampler.flush()
    assert [s.u for s in out] == [101, 102, 7]


def test_book_table_round_trips_through_the_lake(tmp_path: Path) -> None:
    book = ExchangeBook()
    messages = []
    for ts, bids, asks in random_book_changes(3, 120, T0):
        messages.append(book.change(50, bids, asks, ts))
    messages[0] = book_snapshot_of(messages[0])
    snaps = replay_book_messages(messages, "BTCUSDT", 10)
    assert 90 <= len(snaps) <= 121
    lake = Lake(tmp_path)
    lake.append_book("BTCUSDT", book_frame(snaps[:50], 10))
    lake.append_book("BTCUSDT", book_frame(snaps[50:], 10))
    back = lake.read_book("BTCUSDT")
    assert back["ts"].tolist() == [s.ts for s in snaps]
    ts_ms, rows = book_states(back)
    assert ts_ms.tolist() == [s.ts // 1_000_000 for s in snaps]
    assert np.array_equal(rows, np.array([s.columns() for s in snaps]), equal_nan=True)
    window = lake.read_book("BTCUSDT", snaps[10].ts, snaps[20].ts)
    assert window["ts"].tolist() == [s.ts for s in snaps[10:20]]
    assert lake.info() == []  # the book dataset does not invent trade partitions


def book_snapshot_of(first_delta: dict[str, Any]) -> dict[str, Any]:
    return first_delta | {"type": "snapshot"}


def test_live_bar_join_forward_fills_and_uses_the_mid() -> None:
    join = LiveBookBars()
    s0 = T0 * 1_000_000
    bar = Bar(s0, 100.0, 100.0, 100.0, 100.0, 1.0, 100.0, 1, 1.0, 0.0)
    assert math.isnan(join.bar(bar)["bid"]) and join.bar(bar)["close"] == 100.0
    join.add(BookSnapshot(s0 + 1_500_000_000, 1, 1, ((101.0, 1.0),), ((102.0, 3.0),)))
    nxt = Bar(s0 + 1_000_000_000, 100.0, 100.0, 100.0, 100.0, 0.0, 100.0, 0, 0.0, 0.0)
    row = join.bar(nxt)
    assert (row["bid"], row["ask"], row["close"], row["high"], row["low"]) == (
        101.0,
        102.0,
        101.5,
        101.5,
        100.0,
    )
    later = Bar(s0 + 2_000_000_000, 100.0, 100.0, 100.0, 100.0, 0.0, 100.0, 0, 0.0, 0.0)
    assert join.bar(later)["ask_sz5"] == 3.0  # forward-filled


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--book-depth", "7"], "book_depth must be 0 (off) or a Bybit depth"),
        (["--book-depth", "50", "--book-levels", "60"], "book_levels must be between"),
    ],
)
def test_collect_flow_refuses_a_bad_book_config_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.collect import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
