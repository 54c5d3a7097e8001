"""A tap on the journal: every event passes through unchanged; the ones an operator must hear
about (halts, the kill switch, a strategy that crashed, the model server's health, a new model in
use) also become alerts. It also has the alert thread watch the journal's own database, so an
outage is reported without a single extra call on the trading loop."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cryptoarena.alerts.alerter import Alert, Alerter

logger = logging.getLogger(__name__)


def event_alert(kind: str, doc: Mapping[str, Any], run_id: str = "?") -> Alert | None:
    """The alert a journal event deserves, or None (vetoes, decisions, fills... are not alerts)."""
    etype = str(doc.get("type", ""))
    run = doc.get("run_id") or run_id
    strategy = doc.get("strategy")
    reason = str(doc.get("reason") or "")
    if kind == "risk_events":
        if etype == "halt":
            return Alert("halt", f"{strategy} halted", f"run {run}: {reason}", "warning")
        if etype == "global_halt":
            return Alert("halt", "all trading halted", f"run {run}: {reason}", "failure")
        if etype == "strategy_error":
            return Alert("halt", f"{strategy} crashed", f"run {run}: {reason}", "failure")
        if etype == "kill":
            return Alert("kill", "kill switch engaged", f"run {run}: {reason}", "failure")
        if etype == "kill_released":
            return Alert("kill", "kill switch released", f"run {run}: trading resumes", "success")
        if etype.startswith("kill"):  # refused releases and other kill-switch records
            return Alert("kill", f"kill switch: {etype}", f"run {run}: {reason}", "warning")
        return None
    if kind == "model_events":
        if etype == "health" and doc.get("healthy") is False:
            body = f"run {run}: the AI strategy stands aside (model {doc.get('model_version')})"
            return Alert("model", "model server unhealthy", body, "warning")
        if etype == "model_in_use" and doc.get("previous_version") is not None:
            body = (
                f"run {run}: {doc.get('model_name')} v{doc.get('previous_version')} → "
                f"v{doc.get('model_version')}"
            )
            return Alert("model", "forecasts now from a new model", body, "info")
    return None


class JournalTap:
    """Wraps the journal (or anything with ``record(kind, doc)``); everything else passes
    through to it. ``journal = JournalTap(Journal.open(...), alerter)``."""

    def __init__(self, journal: Any, alerter: Alerter, *, grace: int = 2) -> None:
        self._journal = journal
        self._alerter = alerter
        self._model_down = False
        self._run_id = str(getattr(journal, "run_id", "?"))
        if hasattr(journal, "healthy"):
            where = getattr(journal, "spill_path", "the spill file")
            alerter.watch(
                "journal",
                lambda: bool(journal.healthy),
                down=(
                    "journal database unavailable",
                    f"events are kept in the fsync'd spill ({where}) until it returns",
                ),
                up=("journal database back", "the spill is replayed into the database"),
                grace=grace,
            )

    def record(self, kind: str, doc: Mapping[str, Any]) -> str:
        event_id: str = self._journal.record(kind, doc)
        try:
            self._observe(kind, doc)
        except Exception:  # an alert must never break journaling
            logger.exception("alerts: could not look at a %s event", kind)
        return event_id

    def _observe(self, kind: str, doc: Mapping[str, Any]) -> None:
        if kind == "model_events" and doc.get("type") == "health":
            healthy = doc.get("healthy") is not False
            if healthy and self._model_down:
                run = doc.get("run_id") or self._run_id
                self._alerter.notify(
                    "model", "model server healthy again", f"run {run}", level="success"
                )
            self._model_down = not healthy
        alert = event_alert(kind, doc, self._run_id)
        if alert is not None:
            self._alerter.notify(alert.kind, alert.title, alert.body, level=alert.level)

    def close(self, *args: Any, **kwargs: Any) -> Any:
        self._alerter.unwatch("journal")
        return self._journal.close(*args, **kwargs)

    def __enter__(self) -> JournalTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)
