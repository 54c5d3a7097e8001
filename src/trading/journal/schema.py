"""What the journal stores: its kinds (collections), read models, indexes and event ids.

Every event document carries ``_id`` (the event id), ``run_id``, ``seq`` (its order within the
journal session) and ``ts_ns`` (event time from the injected clock, unless the caller set it).
"""

from __future__ import annotations

from typing import Any, Final

# Append-only event collections, one per kind.
KINDS: Final = (
    "runs",
    "predictions",
    "decisions",
    "orders",
    "order_updates",
    "fills",
    "equity",
    "risk_events",
    "model_events",
    # The risk manager's state after each change (halts, kill, loss-check marks): a restart
    # restores the newest one (risk/state.py).
    "risk_state",
    # The rest of a target the router still has to send, per strategy, after each change (a
    # flip's entry, the next slice of a large exit): a restart restores the newest one.
    "follow_ups",
    # Each fill's 1/5/15 s markout (execution/markouts.py), journaled once its last horizon
    # passed (or the run ended), filed at the fill's time.
    "markouts",
)

# Read models, kept up to date by the journal so live views never aggregate the whole journal.
SUMMARIES: Final = "summaries"  # one document per strategy (``_id`` = strategy), upserted
EQUITY_LATEST: Final = "equity_latest"  # the latest equity snapshot per (run, strategy)
# The last equity snapshot of each minute per (run, strategy): a day is 1,440 documents per
# strategy, so a report reads the curve without touching the raw snapshots.
EQUITY_MINUTE: Final = "equity_minute"
MINUTE_NS: Final = 60_000_000_000

COLLECTIONS: Final = (*KINDS, SUMMARIES, EQUITY_LATEST, EQUITY_MINUTE)

# Kinds that must name their strategy (read models are keyed by it).
REQUIRED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "orders": ("client_id", "strategy"),
    "order_updates": ("client_id",),
    "fills": ("strategy",),
    "equity": ("strategy",),
    "decisions": ("strategy",),
    "follow_ups": ("strategy",),
    "markouts": ("strategy",),
}

IndexSpec = tuple[list[tuple[str, int]], dict[str, Any]]

_RUN_TS: Final[IndexSpec] = ([("run_id", 1), ("ts_ns", 1)], {})
_STRATEGY_TS: Final[IndexSpec] = ([("strategy", 1), ("ts_ns", 1)], {})
# One strategy's window inside one run, in recording order (equity curves).
_RUN_STRATEGY_TS: Final[IndexSpec] = (
    [("run_id", 1), ("strategy", 1), ("ts_ns", 1), ("seq", 1)],
    {},
)

# The dashboard's and the restart readers' queries: a time window per run or per strategy first
# (filters beyond the indexed fields are checked in Python: start from an indexed window).
INDEXES: Final[dict[str, list[IndexSpec]]] = {
    "runs": [([("ts_ns", 1)], {}), _RUN_TS],
    "predictions": [_RUN_TS, ([("model_version", 1), ("ts_ns", 1)], {}), ([("ts_ns", 1)], {})],
    "decisions": [_RUN_TS, _STRATEGY_TS],
    "orders": [
        _RUN_TS,
        _STRATEGY_TS,
        # A client order id is sent at most once, ever.
        (
            [("client_id", 1)],
            {"unique": True, "partialFilterExpression": {"client_id": {"$exists": True}}},
        ),
    ],
    "order_updates": [_RUN_TS, ([("client_id", 1), ("ts_ns", 1)], {})],
    "fills": [_RUN_TS, _STRATEGY_TS],
    "equity": [_RUN_TS, _STRATEGY_TS, _RUN_STRATEGY_TS],
    "risk_events": [_RUN_TS, _STRATEGY_TS],
    "model_events": [_RUN_TS],
    "risk_state": [_RUN_TS],
    "follow_ups": [_RUN_TS],
    "markouts": [_RUN_TS, _STRATEGY_TS],
    EQUITY_LATEST: [([("run_id", 1)], {})],
    EQUITY_MINUTE: [([("run_id", 1), ("strategy", 1), ("ts_ns", 1)], {})],
}


def event_id(run_id: str, session: int, seq: int) -> str:
    """A unique id that sorts in recording order within a run (session = open time in ns)."""
    return f"{run_id}:{session:016x}:{seq:010d}"


def equity_latest_id(run_id: str, strategy: str) -> str:
    return f"{run_id}/{strategy}"


def equity_minute_id(run_id: str, strategy: str, minute_ns: int) -> str:
    return f"{run_id}/{strategy}/{minute_ns:020d}"
