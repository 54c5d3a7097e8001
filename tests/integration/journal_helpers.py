"""Helpers shared by the journal's contract and fault tests (and the crash child process)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptoarena.config import MongoSettings, Settings


def embedded_settings(root: Path) -> Settings:
    return Settings(mongo=MongoSettings(embedded_dir=root / "journal"))


@contextmanager
def sqlite_locked(settings: Settings, collection: str) -> Iterator[None]:
    """Hold an exclusive SQLite lock on the embedded store's file: a real 'database is locked'
    failure for every writer (it gives up after SQLite's 5 s busy timeout). ``collection`` is
    kept for the callers' clarity: the embedded store is one file."""
    path = settings.mongo.embedded_dir.absolute() / f"{settings.mongo.database}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.rollback()
        conn.close()
