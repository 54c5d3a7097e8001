"""The trading journal (MongoDB or the embedded SQLite store): see docs/journal.md."""

from cryptoarena.trading.journal.journal import (
    Journal,
    JournalClosedError,
    JournalConfig,
    JournalUnavailableError,
)
from cryptoarena.trading.journal.sanitize import JournalDocumentError
from cryptoarena.trading.journal.schema import COLLECTIONS, KINDS
from cryptoarena.trading.journal.spill import JournalLockedError
from cryptoarena.trading.journal.store import StoreConfig
from cryptoarena.trading.journal.writer import WriterConfig

__all__ = [
    "COLLECTIONS",
    "KINDS",
    "Journal",
    "JournalClosedError",
    "JournalConfig",
    "JournalDocumentError",
    "JournalLockedError",
    "JournalUnavailableError",
    "StoreConfig",
    "WriterConfig",
]
