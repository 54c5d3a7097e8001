"""Operator alerts (issue #9.13): halts, the kill switch, feed gaps, journal outages, drift
triggers and new champions, through apprise to one URL per target (``ARENA_ALERTS__URLS``).

Wiring is one line where a session opens its journal (see :mod:`cryptoarena.trading.engine.session`)::

    journal = alerts.tap(Journal.open(...), alerts.start(settings))  # journal events → alerts

and one-line notices where the other events happen (:func:`feed_gap`, :func:`drift_trigger`,
:func:`new_champion`). Without URLs every call is a no-op. See docs/operations.md.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cryptoarena.alerts.alerter import Alert, AlertConfig, AlertConfigError, Alerter
from cryptoarena.alerts.tap import JournalTap, event_alert

if TYPE_CHECKING:
    from cryptoarena.config import Settings
    from cryptoarena.data.feed import FeedGap

logger = logging.getLogger(__name__)

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertConfigError",
    "Alerter",
    "JournalTap",
    "default_alerter",
    "drift_trigger",
    "event_alert",
    "feed_gap",
    "from_settings",
    "install",
    "new_champion",
    "notify",
    "start",
    "tap",
]

_lock = threading.Lock()
_default: Alerter | None = None


def from_settings(settings: Settings) -> Alerter:
    """The alerter ``settings.alerts`` describes; raises AlertConfigError for a URL apprise
    cannot use (the message names the variable, never the token)."""
    cfg = settings.alerts
    return Alerter(
        [u.get_secret_value() for u in cfg.urls],
        AlertConfig(dedupe_s=cfg.dedupe_s, max_per_minute=cfg.max_per_minute),
    )


def start(settings: Settings) -> Alerter:
    """Build the alerter from ``settings`` and make it the process's. A URL apprise cannot use
    is one error line and alerts off: a broken alert target must not stop trading."""
    try:
        alerter = from_settings(settings)
    except AlertConfigError as exc:
        logger.error("alerts disabled: %s", exc)
        alerter = Alerter()
    install(alerter)
    return alerter


def install(alerter: Alerter | None) -> Alerter | None:
    """Make ``alerter`` the process's alerter (None: back to the settings' one); returns it."""
    global _default
    with _lock:
        previous, _default = _default, alerter
    if previous is not None and previous is not alerter:
        previous.close(1.0)
    return alerter


def default_alerter() -> Alerter:
    """The process's alerter, built from the settings on first use (disabled when they are
    wrong: a broken alert URL must not stop a flow; :func:`from_settings` reports it)."""
    global _default
    with _lock:
        if _default is None:
            try:
                from cryptoarena.config import get_settings

                _default = from_settings(get_settings())
            except Exception as exc:
                logger.error("alerts disabled: %s", exc)
                _default = Alerter()
        return _default


@atexit.register
def _drain() -> None:
    if _default is not None:
        _default.close(2.0)


def notify(kind: str, title: str, body: str = "", *, level: str = "warning", key: str = "") -> bool:
    """Queue an alert on the process's alerter (never blocks, never raises)."""
    try:
        return default_alerter().notify(kind, title, body, level=level, key=key)
    except Exception:
        logger.exception("alerts: notify failed")
        return False


def tap(journal: Any, alerter: Alerter | None = None, *, live: bool = True) -> Any:
    """``journal`` with its risk and model events turned into alerts; unchanged when alerts are
    off or the run is not ``live`` (a backtest's halts page nobody)."""
    alerter = alerter or default_alerter()
    return JournalTap(journal, alerter) if alerter.enabled and live else journal


# -- notices from where the events happen -----------------------------------------------------
def feed_gap(symbol: str, gap: FeedGap) -> bool:
    seconds = (gap.end_ns - gap.start_ns) / 1e9
    how = (
        "recovered in full"
        if gap.complete
        else f"{gap.missed} trades missed"
        if gap.missed
        else "may have missed trades"
    )
    return notify(
        "feed_gap",
        f"{symbol} feed gap",
        f"{gap.reason}: {seconds:.1f} s without the live stream; {gap.recovered} trades "
        f"backfilled, {how}",
        level="info" if gap.complete else "warning",
    )


def drift_trigger(model: str, summary: Mapping[str, Any]) -> bool:
    """A drift check asked for a retrain."""
    reasons = summary.get("reasons") or []
    text = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)
    return notify("drift", f"{model}: drift, retrain triggered", text or "drift detected")


def new_champion(model: str, version: str, reason: str = "") -> bool:
    return notify(
        "champion",
        f"{model}: new champion v{version}",
        reason or "the @champion alias moved",
        level="success",
        key=f"{model}:{version}",
    )
