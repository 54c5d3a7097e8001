"""Dashboard API latency on a journal holding a full day of 9 strategies.

    .venv/bin/python -m bench.dashboard [--requests 400] [--concurrency 1,4] [--keep DIR]

Builds (once, in a temp dir, or reused from ``--keep``) an embedded journal (the SQLite
document store) shaped like a
worker's after 24 h: 9 strategies with an equity snapshot every 15 s (51,840), one forecast per
second with its 15-step path (86,400), ~4,600 fills, decisions every minute, risk events; the
marks follow the shipped real BTCUSDT day. Then starts ``arena dashboard`` in its own process
and drives each GET route with the closed-loop generator (bench/loadgen.py) after a warm-up.
Prints a Markdown table (p50/p99/max ms, requests/s) and each route's cold first answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.loadgen import run_load

RUN = "bench-day"
STRATEGIES = [
    ("sma_cross", "classical"), ("macd", "classical"), ("rsi", "classical"),
    ("bollinger", "classical"), ("donchian", "classical"), ("vwap", "classical"),
    ("buy_hold", "reference"), ("naive", "reference"), ("ai", "ai"),
]  # fmt: skip
T0 = 1_582_329_600_000_000_000  # 2020-02-22 00:00 UTC (the shipped day)
DAY_S = 86_400
ROUTES = [
    "/api/status",
    "/api/leaderboard",
    "/api/equity?points=600",
    "/api/fills?limit=50",
    "/api/fills?limit=50&strategy=ai",
    "/api/positions",
    "/api/strategies/ai?points=400",
    "/api/forecasts?last=300",
    "/api/risk",
    "/api/risk/events?limit=50",
    "/api/runs",
    "/api/models",
    "/api/pages/about",
]


def _prices() -> np.ndarray:
    """One price per second over the day, from the shipped real trades (last trade per second)."""
    from cryptoarena.data.loaders import load_trades
    from cryptoarena.data.samples import TARDIS_DAY, sample_path

    frame, _ = load_trades(sample_path(TARDIS_DAY))
    sec = ((frame["ts"].to_numpy() - frame["ts"].iloc[0]) // 1_000_000_000).astype(np.int64)
    prices = np.full(DAY_S, np.nan)
    prices[np.clip(sec, 0, DAY_S - 1)] = frame["price"].to_numpy()
    for i in range(1, DAY_S):  # carry the last price through seconds without trades
        if math.isnan(prices[i]):
            prices[i] = prices[i - 1]
    prices[np.isnan(prices)] = prices[~np.isnan(prices)][0]
    return prices


def build_journal(root: Path) -> None:
    from cryptoarena.trading.journal import docstore, schema, store

    client = docstore.Client(root)
    db = client["cryptoarena"]
    store.ensure_indexes(db)
    rng = np.random.default_rng(11)
    px = _prices()
    seq = 0

    def doc(**fields: object) -> dict[str, object]:
        nonlocal seq
        seq += 1
        return {"_id": schema.event_id(RUN, 1, seq), "run_id": RUN, "seq": seq, **fields}

    strategies = [
        {"name": n, "kind": n, "family": f, "config": {"bar_size": "1m"}} for n, f in STRATEGIES
    ]
    risk = {"strategy": {"max_position_notional": 20000.0, "max_drawdown": 0.1},
            "global": {"max_gross_notional": 250000.0, "max_data_age_s": 30.0}}  # fmt: skip
    db["runs"].insert_one(doc(event="started", source="replay", exchange="paper", symbol="BTCUSDT",
                           strategies=strategies, arena={"capital": 10000.0}, risk=risk,
                           ts_ns=T0))  # fmt: skip
    equity, fills, latest, minutes = [], [], [], {}
    for name, _family in STRATEGIES:
        eq, qty, n_fills, fees = 10_000.0, 0.0, 0, 0.0
        for t in range(0, DAY_S, 15):
            if rng.random() < 0.09:  # ~1,330 fills per strategy over the day
                side = "Buy" if qty <= 0 else "Sell"
                q = round(float(rng.uniform(0.01, 1.0)), 3)
                qty += q if side == "Buy" else -q
                fee = q * px[t] * 0.00055
                fees += fee
                n_fills += 1
                fills.append(doc(strategy=name, side=side, price=str(px[t]), qty=str(q),
                                 fee=f"{fee:.8f}", realised="0", symbol="BTCUSDT",
                                 ts_ns=T0 + t * 10**9 + 500_000_000))  # fmt: skip
            eq += qty * (px[t] - px[max(0, t - 15)])
            snap = doc(strategy=name, ts_ns=T0 + t * 10**9, mark=float(px[t]), equity=eq - fees,
                       cash=10_000.0, qty=qty, fees=fees, fills=n_fills, round_trips=n_fills // 2,
                       wins=n_fills // 5, exact={"gross_profit": "10", "gross_loss": "8"})  # fmt: skip
            equity.append(snap)
            # The journal's per-minute read model: the last snapshot of each minute.
            minute = (T0 + t * 10**9) // schema.MINUTE_NS * schema.MINUTE_NS
            key = schema.equity_minute_id(RUN, name, minute)
            minutes[key] = {**snap, "_id": key, "event_id": snap["_id"], "minute_ns": minute}
        latest.append({**snap, "_id": f"{RUN}/{name}", "event_id": snap["_id"]})
        db["summaries"].insert_one({"_id": name, "strategy": name, "run_id": RUN, "halted": None,
                                 "vetoes": 3, "equity": eq})  # fmt: skip
    preds = []
    for t in range(60, DAY_S):
        rets = np.cumsum(rng.normal(0, 2e-5, 15))
        preds.append(doc(symbol="BTCUSDT", ts_ns=T0 + t * 10**9, base_price=float(px[t]),
                         horizon_s=15, log_returns=rets.tolist(),
                         predicted_price=float(px[t] * math.exp(rets[-1])),
                         target_ts_ns=T0 + (t + 15) * 10**9,
                         realised_price=float(px[min(t + 15, DAY_S - 1)]),
                         model_name="btcusdt-15s", model_version="3"))  # fmt: skip
    risks = [doc(type="veto", strategy=STRATEGIES[i % 9][0], reason="order rate", ts_ns=T0 + i * 10**11)
             for i in range(800)]  # fmt: skip
    decisions = [doc(strategy=n, ts_ns=T0 + t * 10**9, target=0.0, reason="hold", warming_up=False)
                 for t in range(0, DAY_S, 60) for n, _ in STRATEGIES]  # fmt: skip
    for coll, docs in (("equity", equity), ("fills", fills), ("predictions", preds),
                       ("risk_events", risks), ("decisions", decisions),
                       ("equity_latest", latest),
                       ("equity_minute", list(minutes.values()))):  # fmt: skip
        for i in range(0, len(docs), 5000):
            db[coll].insert_many(docs[i : i + 5000])
        print(f"  {coll}: {len(docs):,}", flush=True)
    db["runs"].insert_one(doc(event="stopped", stopped_by="feed ended", ts_ns=T0 + DAY_S * 10**9))
    client.close()


def _get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
    return (time.perf_counter() - started) * 1000, len(body)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--port", type=int, default=18_089)
    ap.add_argument("--keep", type=Path, default=None, help="reuse/keep the journal here")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    journal = root / "journal"
    if not journal.exists():
        print(f"building a full-day journal in {journal} ...", flush=True)
        started = time.perf_counter()
        build_journal(journal)
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env |= {
        "ARENA_MONGO__EMBEDDED_DIR": str(journal),
        "ARENA_TRADING__KILL_FILE": str(root / "arena.kill"),
        "ARENA_MLFLOW__TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "ARENA_DASHBOARD__SITE_DIR": str(Path("docs/site").absolute()),
    }
    arena = str(Path(sys.executable).with_name("arena"))
    proc = subprocess.Popen([arena, "dashboard", "--port", str(args.port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{args.port}"
    rows: list[dict[str, object]] = []
    try:
        for _ in range(300):
            try:
                _get(f"{base}/api/health")
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(8)  # let the background MLflow registry read finish (it shares the CPU)
        cold = {route: _get(base + route) for route in ROUTES}
        for conc in (int(c) for c in args.concurrency.split(",")):
            for route in ROUTES:
                res = asyncio.run(run_load(base + route, b"", concurrency=conc,
                                           requests=args.requests, warmup=20, method="GET"))  # fmt: skip
                rows.append({"route": route, "concurrency": conc, "p50_ms": res.p50_ms,
                             "p99_ms": res.p99_ms, "max_ms": res.max_ms, "rps": res.rps,
                             "errors": res.errors, "cold_ms": cold[route][0],
                             "bytes": cold[route][1]})  # fmt: skip
                print(
                    f"  {route} c={conc}: p50 {res.p50_ms:.1f} ms p99 {res.p99_ms:.1f} ms",
                    flush=True,
                )
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{args.requests} requests per route and concurrency, after 20 warm-up requests\n")  # fmt: skip
    print("| route | conc. | p50 ms | p99 ms | max ms | req/s | first (cold) ms | bytes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| `{r['route']}` | {r['concurrency']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['max_ms']:.1f} | {r['rps']:.0f} | {r['cold_ms']:.0f} | {r['bytes']:,} |")  # fmt: skip
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
