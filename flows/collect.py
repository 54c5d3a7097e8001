"""Collect flow: backfill recorded trade files into the lake, optionally record the live Bybit
public stream, compact, and run the data-quality checks. Logic lives in cryptoarena.data.collect;
only the network task (live recording) retries.

    python -m flows.collect                       # backfill the shipped samples (ephemeral API)
    python -m flows.collect --source DIR --record-s 60
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from cryptoarena.config import get_settings
from cryptoarena.data import collect
from cryptoarena.data.bybit_feed import BybitFeedConfig
from cryptoarena.data.lake import Lake
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.args import flow_parser


@task(cache_policy=NO_CACHE)
def backfill_files(lake_dir: str, sources: list[str], symbol: str | None) -> dict[str, Any]:
    report = collect.backfill(
        Lake(lake_dir),
        [Path(s) for s in sources],
        symbol=symbol,
        default_symbol=get_settings().data.symbol,
    )
    return report.as_dict()


@task(retries=3, retry_delay_seconds=10, cache_policy=NO_CACHE)
def record_live(lake_dir: str, seconds: float) -> dict[str, Any]:
    config = BybitFeedConfig.from_settings(get_settings())
    result = asyncio.run(collect.record_live(Lake(lake_dir), config, seconds))
    gaps = [(g.start_ns, g.end_ns, g.reason, g.complete) for g in result.gaps]
    return {"trades": result.trades, "parts": result.parts, "gaps": gaps}


@task(cache_policy=NO_CACHE)
def compact(lake_dir: str) -> int:
    return len(Lake(lake_dir).compact())


@task(cache_policy=NO_CACHE)
def quality_checks(lake_dir: str) -> dict[str, Any]:
    return collect.check_quality(Lake(lake_dir))


@flow(name="collect")
def collect_flow(
    sources: list[str] | None = None,
    symbol: str | None = None,
    record_s: float = 0.0,
    lake_dir: str | None = None,
    fail_on_quality: bool = True,
) -> dict[str, Any]:
    """Backfill ``sources`` (files or folders; default: the shipped samples) into the lake,
    record ``record_s`` seconds of the live stream, compact, check. Fails when a check fails."""
    settings = get_settings()
    lake = str(lake_dir or settings.data.lake_dir)
    summary: dict[str, Any] = {"lake": lake}
    summary["backfill"] = backfill_files(lake, sources or [str(settings.data.sample_dir)], symbol)
    if record_s > 0:
        summary["record"] = record_live(lake, record_s)
    summary["compacted"] = compact(lake)
    summary["quality"] = quality = quality_checks(lake)
    log = get_run_logger()
    log.info("collect: %s", json.dumps({k: v for k, v in summary.items() if k != "quality"}))
    log.info("quality: %d checks, %d with errors", quality["checked"], len(quality["errors"]))
    if fail_on_quality and (quality["errors"] or summary["backfill"]["failed"]):
        raise ValueError(f"data quality: {quality['errors'] or summary['backfill']['failed']}")
    return summary


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = flow_parser(__doc__, prog)
    parser.add_argument("--source", action="append", help="file or folder (repeatable)")
    parser.add_argument("--symbol", default=None)
    parser.add_argument("--record-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    result = collect_flow(sources=args.source, symbol=args.symbol, record_s=args.record_s)
    print(json.dumps({k: v for k, v in result.items() if k != "quality"}, indent=2, default=str))


if __name__ == "__main__":
    main()
