"""The embedded store's pymongo subset agrees with MongoDB's query semantics (the expected _ids
written out per filter) whether a filter runs as SQL on the indexed columns or in Python."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.trading.journal import docstore
from cryptoarena.trading.journal.matching import matches
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, OperationFailure

DOCS: list[dict[str, Any]] = [
    {"_id": "a", "run_id": "r1", "strategy": "sma", "ts_ns": 5, "seq": 1, "x": 1},
    {"_id": "b", "run_id": "r1", "strategy": "rsi", "ts_ns": 7.5, "seq": 2, "x": [1, 2]},
    {"_id": "c", "run_id": "r2", "strategy": "sma", "ts_ns": "7", "seq": 3, "x": None},
    {"_id": "d", "run_id": "r2", "ts_ns": None, "seq": 4, "nested": {"k": 3}},
    {"_id": "e", "strategy": "5", "ts_ns": 10, "seq": 5, "event": "started"},
    {"_id": "f", "run_id": "r1", "strategy": "sma", "ts_ns": 10, "seq": 6, "x": 2},
]

# (filter, the _ids MongoDB returns, in insertion order). Beyond the journal's own filters, each
# operator of cryptoarena.trading.journal.matching on nulls, missing fields, arrays and mixed
# types; ``{"x": True}`` matches nothing here, as in MongoDB (a bool is not the number 1).
CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "abcdef"),
    ({"run_id": "r1"}, "abf"),
    ({"run_id": None}, "e"),
    ({"run_id": {"$in": ["r1", "r2"]}}, "abcdf"),
    ({"strategy": 5}, ""),
    ({"strategy": "5"}, "e"),
    ({"ts_ns": {"$gte": 5, "$lt": 10}}, "ab"),
    ({"ts_ns": {"$gt": "6"}}, "c"),
    ({"ts_ns": {"$lte": 10}}, "abef"),
    ({"ts_ns": 7.5}, "b"),
    ({"ts_ns": None}, "d"),
    ({"ts_ns": {"$exists": False}}, ""),
    ({"run_id": "r1", "x": 2}, "bf"),
    ({"run_id": "r1", "x": 1}, "ab"),
    ({"x": None}, "cde"),
    ({"nested.k": 3}, "d"),
    ({"$or": [{"run_id": "r2"}, {"strategy": "rsi"}]}, "bcd"),
    ({"_id": "c"}, "c"),
    ({"_id": {"$in": ["a", "f", "zz"]}}, "af"),
    ({"strategy": {"$ne": "sma"}}, "bde"),
    ({"event": "started", "ts_ns": {"$gte": 0}}, "e"),
    ({"x": {"$ne": None}}, "abf"),
    ({"x": {"$nin": [1, None]}}, "f"),
    ({"x": 2}, "bf"),
    ({"x": [1, 2]}, "b"),
    ({"x": {"$gt": 1}}, "bf"),
    ({"nested.k": {"$exists": True}}, "d"),
    ({"nested.k": None}, "abcef"),
    ({"$and": [{"run_id": "r1"}, {"seq": {"$gt": 1}}]}, "bf"),
    ({"$nor": [{"run_id": "r1"}]}, "cde"),
    ({"ts_ns": {"$gte": None}}, "d"),
    ({"ts_ns": {"$gt": None}}, ""),
    ({"seq": {"$in": [1.0, 3]}}, "ac"),
    ({"x": True}, ""),
    ({"seq": {"$eq": 2}}, "b"),
    ({"strategy": {"$in": [None]}}, "d"),
    ({"event": {"$exists": True}}, "e"),
]


@pytest.fixture()
def coll(tmp_path: Path) -> docstore.Collection:
    db = docstore.Client(tmp_path)["test"]
    c = db["events"]
    c.create_index([("run_id", 1), ("ts_ns", 1)])
    c.insert_many(DOCS)
    return c


@pytest.mark.parametrize(("filt", "ids"), CASES, ids=[str(f) for f, _ in CASES])
def test_find_and_count_match_mongodb_semantics(
    coll: docstore.Collection, filt: dict, ids: str
) -> None:
    expected = list(ids)
    assert [d["_id"] for d in DOCS if matches(filt, d)] == expected  # the matcher alone
    assert [d["_id"] for d in coll.find(filt)] == expected  # SQL on the columns + the matcher
    assert coll.count_documents(filt) == len(expected)


@pytest.mark.parametrize(
    "filt", [{"x": {"$regex": "a"}}, {"$where": "1"}, {"x": {"$in": 1}}, {"x": {"$gt": [1]}}]
)
def test_an_operator_the_matcher_does_not_know_is_refused(
    coll: docstore.Collection, filt: dict
) -> None:
    with pytest.raises(OperationFailure):
        coll.count_documents(filt)


def test_sort_follows_mongodb_type_order_and_limits(coll: docstore.Collection) -> None:
    # null/missing < numbers < strings, ties in insertion order.
    got = [d["_id"] for d in coll.find({}).sort([("ts_ns", 1)])]
    assert got == ["d", "a", "b", "e", "f", "c"]
    assert [d["_id"] for d in coll.find({}).sort("ts_ns", -1).limit(2)] == ["c", "f"]
    assert [d["_id"] for d in coll.find({}).sort([("x", 1)]).skip(1).limit(2)] == ["d", "e"]
    assert coll.find_one({"run_id": "r2"}, {"seq": 1}) == {"_id": "c", "seq": 3}
    assert coll.find_one({"_id": "d"}, {"nested": 0, "_id": 0}) == {
        "run_id": "r2",
        "ts_ns": None,
        "seq": 4,
    }


def test_writes_follow_pymongo(coll: docstore.Collection) -> None:
    coll.bulk_write(
        [
            UpdateOne({"_id": "a"}, {"$setOnInsert": {"x": 99}}, upsert=True),  # exists: no-op
            UpdateOne({"_id": "g"}, {"$setOnInsert": {"x": 7, "ts_ns": 1}}, upsert=True),
            UpdateOne({"_id": "g"}, {"$set": {"y": 1, "nested.k": 2}}),
            ReplaceOne({"_id": "b"}, {"run_id": "r9"}, upsert=True),
        ]
    )
    assert coll.find_one({"_id": "a"})["x"] == 1  # type: ignore[index]
    assert coll.find_one({"_id": "g"}) == {
        "_id": "g",
        "x": 7,
        "ts_ns": 1,
        "y": 1,
        "nested": {"k": 2},
    }
    assert coll.find_one({"_id": "b"}) == {"_id": "b", "run_id": "r9"}
    assert coll.count_documents({"run_id": "r9"}) == 1  # the column follows the document
    with pytest.raises(BulkWriteError) as err:
        coll.bulk_write([InsertOne({"_id": "h"}), InsertOne({"_id": "a"}), InsertOne({"_id": "i"})])
    error = err.value.details["writeErrors"][0]
    assert error["index"] == 1 and error["code"] == 11000 and error["keyPattern"] == {"_id": 1}
    assert coll.find_one({"_id": "h"}) is not None and coll.find_one({"_id": "i"}) is None
    with pytest.raises(BulkWriteError) as err:  # indexed fields hold scalars only
        coll.insert_many([{"_id": "j", "run_id": ["r1"]}])
    assert err.value.details["writeErrors"][0]["code"] == 2
    with pytest.raises(OperationFailure):
        coll.create_index([("x", 1)])


def test_unique_partial_index_and_read_only_client(tmp_path: Path) -> None:
    db = docstore.Client(tmp_path)["test"]
    orders = db["orders"]
    orders.create_index(
        [("client_id", 1)], unique=True, partialFilterExpression={"client_id": {"$exists": True}}
    )
    orders.insert_many([{"_id": 1, "client_id": "c1"}, {"_id": 2}, {"_id": 3}])
    with pytest.raises(BulkWriteError) as err:
        orders.bulk_write(
            [UpdateOne({"_id": 4}, {"$setOnInsert": {"client_id": "c1"}}, upsert=True)]
        )
    assert err.value.details["writeErrors"][0]["keyPattern"] == {"client_id": 1}
    assert orders.index_information()["client_id_1"]["unique"] is True

    reader = docstore.Client(tmp_path, readonly=True)["test"]
    assert reader["orders"].count_documents({}) == 3
    assert reader["nothing"].find_one({}) is None
    with pytest.raises(OperationFailure, match="read-only"):
        reader["orders"].insert_one({"_id": 9})
    assert docstore.Client(tmp_path / "absent", readonly=True)["test"]["x"].count_documents({}) == 0
    assert not (tmp_path / "absent").exists()


def test_a_projected_query_never_holds_every_document_decoded(tmp_path: Path) -> None:
    """A month of per-minute equity read for three fields (the report's curves): documents are
    decoded a chunk at a time and projected, so the query's peak is far below decoding all
    of them at once (before: ~6.3 kB per document here, and 287 MB for a 30-day soak's ten curves)."""
    import tracemalloc

    coll = docstore.Client(tmp_path)["test"]["equity_minute"]
    n = 20_000
    pad = {f"field_{k}": k * 1.5 for k in range(40)}  # a full snapshot has many fields
    coll.insert_many(
        [
            {"run_id": "r", "strategy": "s", "ts_ns": i, "equity": 1.0 + i, "qty": 0.0, **pad}
            for i in range(n)
        ]
    )
    query = {"run_id": "r", "strategy": "s"}
    projection = {"_id": 0, "ts_ns": 1, "equity": 1, "qty": 1}
    tracemalloc.start()
    try:
        docs = list(coll.find(query, projection).sort("ts_ns", 1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [d["ts_ns"] for d in docs] == list(range(n))
    assert docs[5] == {"ts_ns": 5, "equity": 6.0, "qty": 0.0}
    whole = list(coll.find(query))  # the precondition: a whole document is much larger
    assert len(whole[0]) > 40
    assert peak < 3_500 * n, f"peak {peak / n:.0f} bytes per document"
    # Paging and filters Python evaluates still apply, in order.
    assert [d["ts_ns"] for d in coll.find({**query, "field_3": 4.5}).skip(3).limit(2)] == [3, 4]


def test_readers_read_side_by_side_each_on_its_own_connection(tmp_path: Path) -> None:
    """A read-only store reads on a connection per read under way: while one read holds its
    connection (a month's curves for the leaderboard), another thread's small read (the status
    route's) runs at once instead of waiting for it; idle connections are kept up to
    READERS_KEPT and closed with the store."""
    import threading

    writer = docstore.Client(tmp_path)["test"]["equity"]
    n = 5_000
    writer.insert_many([{"run_id": "r", "ts_ns": i, "seq": i} for i in range(n)])
    client = docstore.Client(tmp_path, readonly=True)
    reader = client["test"]["equity"]
    held, release = threading.Event(), threading.Event()

    def long_read() -> None:
        with reader.database.reading() as conn:
            assert conn is not None
            held.set()
            release.wait(10)

    first = threading.Thread(target=long_read)
    first.start()
    assert held.wait(10)
    answers: list[object] = []

    def small_read() -> None:
        answers.append(reader.count_documents({"ts_ns": {"$lt": 5}}))
        answers.append([d["ts_ns"] for d in reader.find({"run_id": "r"}).sort("ts_ns", -1)])

    second = threading.Thread(target=small_read)
    second.start()
    second.join(10)
    finished = not second.is_alive()
    release.set()
    first.join(10)
    second.join(10)
    assert finished, "a small read waited for another thread's read"
    assert answers == [5, list(range(n - 1, -1, -1))]
    # Many reads at once: each its own connection; only READERS_KEPT stay open afterwards.
    many = docstore.READERS_KEPT + 3
    barrier = threading.Barrier(many)
    conns: list[object] = []

    def at_once() -> None:
        with reader.database.reading() as conn:
            conns.append(conn)
            barrier.wait(10)

    threads = [threading.Thread(target=at_once) for _ in range(many)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({id(c) for c in conns}) == many
    idle = list(reader.database._idle)
    assert len(idle) == docstore.READERS_KEPT
    client.close()
    with pytest.raises(sqlite3.ProgrammingError):
        idle[0].execute("SELECT 1")
