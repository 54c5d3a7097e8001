"""What the collect flow does, as plain functions: backfill recorded files into the lake, record
the live public stream, compact, and run the quality checks (flows/collect.py only wires them)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptoarena.data.book import BookSnapshot, book_frame
from cryptoarena.data.bybit_feed import BybitFeed, BybitFeedConfig
from cryptoarena.data.feed import FeedGap
from cryptoarena.data.ingest import check_lake, import_file
from cryptoarena.data.lake import Lake
from cryptoarena.data.loaders import UnknownFormatError
from cryptoarena.data.quality import QualityReport
from cryptoarena.data.records import Trade, trades_from_records

logger = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    imported: dict[str, int] = field(default_factory=dict)  # file → new trades
    duplicates: int = 0
    malformed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # file → why (not a trade file)
    failed: dict[str, str] = field(default_factory=dict)  # file → error (refused by checks)

    def as_dict(self) -> dict[str, object]:
        return {
            "imported": self.imported,
            "new_trades": sum(self.imported.values()),
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "skipped": self.skipped,
            "failed": self.failed,
        }


def expand_sources(sources: list[Path]) -> list[Path]:
    """Files as given; folders contribute their files (sorted, README and hidden files left out)."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files.extend(
                p
                for p in sorted(source.iterdir())
                if p.is_file()
                and not p.name.startswith(".")
                and not p.name.lower().startswith("readme")
            )
        elif source.is_file():
            files.append(source)
        else:
            raise FileNotFoundError(f"no such file or folder: {source}")
    return files


def backfill(
    lake: Lake, sources: list[Path], *, symbol: str | None = None, default_symbol: str = "BTCUSDT"
) -> BackfillReport:
    """Import every recorded trade file under ``sources``; files in other formats are skipped."""
    report = BackfillReport()
    for path in expand_sources(sources):
        try:
            result = import_file(lake, path, symbol=symbol, default_symbol=default_symbol)
        except UnknownFormatError as exc:
            report.skipped[path.name] = str(exc).split(";")[0]
            continue
        except ValueError as exc:  # refused by the quality checks: the lake is unchanged
            report.failed[path.name] = str(exc)
            logger.error("backfill: %s", exc)
            continue
        report.imported[path.name] = result.added
        report.duplicates += result.duplicates
        report.malformed += result.load.malformed
    return report


@dataclass
class RecordResult:
    trades: int
    parts: int
    gaps: list[FeedGap]
    book_snapshots: int = 0  # per-second book snapshots recorded (config.book_depth > 0)
    book_parts: int = 0
    book_gaps: int = 0  # sequence gaps the book resynced after


async def record_live(
    lake: Lake,
    config: BybitFeedConfig,
    seconds: float,
    *,
    part_trades: int = 5000,
    part_books: int = 600,
) -> RecordResult:
    """Record the public trade stream into the lake for ``seconds`` (appended part files;
    :meth:`Lake.compact` merges them). Gaps the feed reports are returned. With
    ``config.book_depth`` the per-second book snapshots (top ``config.book_levels`` levels) go
    to the lake's ``book`` dataset too, ``part_books`` snapshots per file."""
    books: list[BookSnapshot] = []
    book_total = book_parts = 0

    def on_book(snapshot: BookSnapshot) -> None:
        nonlocal book_total
        books.append(snapshot)
        book_total += 1
        if len(books) >= part_books:
            spill_books()

    def spill_books() -> None:
        nonlocal book_parts
        if books:
            frame = book_frame(books, config.book_levels)
            book_parts += len(lake.append_book(config.symbol, frame))
            books.clear()

    feed = BybitFeed(config, on_book=on_book if config.book_depth else None)
    buffer: list[Trade] = []
    total = parts = 0

    def spill() -> None:
        nonlocal parts
        if buffer:
            parts += len(lake.append_trades(config.symbol, trades_from_records(buffer)))
            buffer.clear()

    async def run() -> None:
        nonlocal total
        async for batch in feed:
            buffer.extend(batch)
            total += len(batch)
            if len(buffer) >= part_trades:
                spill()

    task = asyncio.create_task(run())
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not task.done():
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if task.done():
            task.result()  # a feed error (e.g. a refused subscription) surfaces here
    finally:
        await feed.close()
        await asyncio.gather(task, return_exceptions=True)
        if feed.book is not None:  # the last, unfinished second is a real state too
            feed.book.sampler.flush()
        spill()
        spill_books()
    logger.info("recorded %d trades in %d parts, %d gaps", total, parts, len(feed.gaps))
    if config.book_depth:
        logger.info("recorded %d book snapshots in %d parts", book_total, book_parts)
    return RecordResult(
        total, parts, list(feed.gaps), book_total, book_parts, feed.stats["book_gaps"]
    )


def quality_summary(reports: list[QualityReport]) -> dict[str, object]:
    return {
        "checked": len(reports),
        "errors": [r.summary() for r in reports if not r.ok],
        "gaps": sum(len(r.gaps) for r in reports if r.kind == "trades"),
        "reports": [r.summary() for r in reports],
    }


def check_quality(lake: Lake, symbol: str | None = None) -> dict[str, object]:
    return quality_summary(check_lake(lake, symbol))
