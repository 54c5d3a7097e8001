"""Hashes of every journal document of two bar runs over January-February 2024 (SMA 20/60 with
no limits and the peer's instrument; the six classical strategies with the example limits), one
hash per collection: equal before and after a change of the bar path means it journals the same
documents. Run ids and the process's incarnation tag (wall time, part of every client id) are
fixed; the journal session (wall time, in event ids) and the run documents' wall-clock fields
are masked.

    .venv/bin/python -m bench.bar_hashes [--dump PREFIX]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.backtest_bars import SIX, files
from tests.bar_peer import FEE, NO_LIMITS, satoshi_instrument

_SESSION = re.compile(r":[0-9a-f]{16}:")
_WALL = ("wall", "elapsed", "started_at", "stopped_at", "host", "pid", "python")


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if any(w in k for w in _WALL) else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return _SESSION.sub(":S:", value)
    return value


def run(run_id: str, paths: list[Path], specs: list[Any], arena: dict[str, Any],
        risk: dict[str, Any] | None, fill: Any, dump: str | None) -> dict[str, str]:  # fmt: skip
    from cryptoarena.config import get_settings
    from cryptoarena.trading.config import parse_arena_config
    from cryptoarena.trading.engine import bar_session, lifecycle
    from cryptoarena.trading.journal import Journal, schema

    home = tempfile.mkdtemp(prefix="bar-hashes-")
    os.environ["ARENA_MONGO__EMBEDDED_DIR"] = f"{home}/journal"
    os.environ["ARENA_TRADING__KILL_FILE"] = f"{home}/kill"
    get_settings.cache_clear()
    lifecycle.incarnation_tag = lambda _ns: "fixed000"  # type: ignore[assignment]
    strategies = [{"name": n, "kind": k, "params": {**p, "bar_size": "1m"}} for n, k, p in specs]
    config = parse_arena_config({"arena": arena, "risk": risk or {}, "strategy": strategies})
    options = bar_session.BarRunOptions(
        files=tuple(paths), run_id=run_id, slippage_bps=0.0, progress=False, fill=fill
    )
    bar_session.run_bar_backtest(get_settings(), config, options)
    out = {}
    try:
        with Journal.open(get_settings(), run_id=run_id, readonly=True) as journal:
            for coll in schema.COLLECTIONS:
                docs = [_mask(d) for d in journal.find(coll, {"run_id": run_id})]
                docs.sort(key=lambda d: (d.get("seq", 0), str(d.get("_id"))))
                text = json.dumps(docs, sort_keys=True, default=str)
                out[coll] = f"{len(docs)}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
                if dump:
                    Path(f"{dump}-{run_id}-{coll}.json").write_text(
                        json.dumps(docs, sort_keys=True, default=str, indent=0)
                    )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump", help="write each collection's masked documents to PREFIX-*")
    args = parser.parse_args()
    from cryptoarena.trading.exchange.paper import PaperExchangeConfig

    paths = files("BTCUSDT-1m-2024-0[12]-*.csv.gz")
    arena = {"capital": 1_000_000.0, "min_trade_fraction": 0.5, "fee_rate": FEE}
    fill = PaperExchangeConfig(instruments=(satoshi_instrument(),))
    sma = [("sma", "sma_cross", {"fast": 20, "slow": 60})]
    print("sma", json.dumps(run("hash-sma", paths, sma, arena, NO_LIMITS, fill, args.dump)))
    print("six", json.dumps(run("hash-six", paths, SIX, {}, None, None, args.dump)))


if __name__ == "__main__":
    main()
