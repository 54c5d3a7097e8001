"""The Alerter: operator notifications through apprise, off the hot path.

:meth:`Alerter.notify` only decides (de-duplication, rate limit) and enqueues; one daemon thread
sends through apprise (one URL per target: json://, tgram://, discord://, mailto://…). Nothing
here blocks or raises into the caller: a target that is down costs a log line, a full queue
drops the alert and counts it. The same thread polls registered health checks (the journal's
database) so that an outage is noticed without touching the trading loop.

URLs carry tokens: they are never logged (only their scheme).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

LEVELS = ("info", "success", "warning", "failure")


class AlertConfigError(ValueError):
    """An alert URL apprise cannot use; the message names the variable, never the token."""


@dataclass(frozen=True)
class AlertConfig:
    dedupe_s: float = 300.0  # the same alert (kind + key) again within this: dropped
    max_per_minute: int = 20  # over this in any 60 s: dropped, counted, reported with the next
    queue_size: int = 256
    poll_s: float = 5.0  # health checks
    title_prefix: str = "cryptoarena"


@dataclass(frozen=True)
class Alert:
    kind: str  # halt, kill, feed_gap, journal, drift, champion, model
    title: str
    body: str
    level: str = "warning"


@dataclass
class _Watch:
    check: Callable[[], bool]
    down: tuple[str, str]  # (title, body) when it turns unhealthy
    up: tuple[str, str]
    grace: int  # consecutive failed polls before an alert
    failures: int = 0
    alerted: bool = False


class Alerter:
    """``Alerter(urls)``; with no URL it is a no-op (no thread, nothing queued)."""

    def __init__(
        self,
        urls: Sequence[str] = (),
        config: AlertConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        variable: str = "ARENA_ALERTS__URLS",
    ) -> None:
        self.config = config or AlertConfig()
        self._clock = clock
        self.stats: collections.Counter[str] = collections.Counter()
        self._apprise: Any = None
        if urls:
            import apprise  # imported only when alerts are configured

            self._apprise = apprise.Apprise()
            for i, url in enumerate(urls):
                if not self._apprise.add(url):
                    scheme = url.split("://", 1)[0] if "://" in url else "?"
                    raise AlertConfigError(
                        f"{variable}: URL {i + 1} ({scheme}://…) is not one apprise can use"
                    )
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._recent: collections.deque[float] = collections.deque()
        self._suppressed = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(self.config.queue_size)
        self._watches: dict[str, _Watch] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def enabled(self) -> bool:
        return self._apprise is not None

    # -- the caller's side: decide and enqueue, never block, never raise -----------------------
    def notify(
        self, kind: str, title: str, body: str = "", *, level: str = "warning", key: str = ""
    ) -> bool:
        """Queue an alert; False when it was dropped (disabled, duplicate, over the rate limit,
        queue full). ``key`` de-duplicates (default: ``kind`` and ``title``)."""
        if not self.enabled or self._stopping.is_set():
            return False
        try:
            now = self._clock()
            with self._lock:
                dedupe = f"{kind}:{key or title}"
                last = self._last.get(dedupe)
                if last is not None and now - last < self.config.dedupe_s:
                    self.stats["duplicates"] += 1
                    return False
                while self._recent and now - self._recent[0] >= 60.0:
                    self._recent.popleft()
                if len(self._recent) >= self.config.max_per_minute:
                    self.stats["rate_limited"] += 1
                    self._suppressed += 1
                    return False
                self._recent.append(now)
                self._last[dedupe] = now
                if len(self._last) > 1000:  # forget keys whose window has passed
                    horizon = now - self.config.dedupe_s
                    self._last = {k: t for k, t in self._last.items() if t >= horizon}
                suppressed, self._suppressed = self._suppressed, 0
            if suppressed:
                body += f"\n({suppressed} other alert(s) dropped by the rate limit)"
            self._queue.put_nowait(
                Alert(kind, title, body, level if level in LEVELS else "warning")
            )
            self.stats["queued"] += 1
            self._ensure_thread()
            return True
        except queue.Full:
            self.stats["dropped"] += 1
            return False
        except Exception:  # an alert must never take trading down
            logger.exception("alerts: could not queue %s", kind)
            return False

    def watch(
        self,
        name: str,
        check: Callable[[], bool],
        *,
        down: tuple[str, str],
        up: tuple[str, str],
        grace: int = 2,
    ) -> None:
        """Poll ``check`` (True = healthy) on the alert thread; alert when it has been False for
        ``grace`` polls in a row, and again when it recovers."""
        if not self.enabled:
            return
        with self._lock:
            self._watches[name] = _Watch(check, down, up, max(1, grace))
        self._ensure_thread()

    def unwatch(self, name: str) -> None:
        with self._lock:
            self._watches.pop(name, None)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (up to ``timeout_s``), then stop the thread."""
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        thread.join(timeout_s)

    # -- the alert thread ---------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        next_poll = self._clock() + self.config.poll_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.01, next_poll - self._clock()))
            except queue.Empty:
                item = None
                if self._stopping.is_set():
                    return
            else:
                if item is None:
                    return
                self._send(item)
            if self._clock() >= next_poll:
                self._poll()
                next_poll = self._clock() + self.config.poll_s

    def _send(self, alert: Alert) -> None:
        try:
            ok = self._apprise.notify(
                body=alert.body or alert.title,
                title=f"{self.config.title_prefix}: {alert.title}",
                notify_type=alert.level,
            )
        except Exception as exc:
            ok = False
            logger.warning("alerts: sending %s failed: %s", alert.kind, type(exc).__name__)
        self.stats["sent" if ok else "failed"] += 1
        if not ok:
            logger.warning("alerts: %s could not be delivered to every target", alert.kind)

    def _poll(self) -> None:
        with self._lock:
            watches = list(self._watches.items())
        for name, w in watches:
            try:
                healthy = bool(w.check())
            except Exception:  # a check that fails says "unhealthy"
                healthy = False
            if healthy:
                w.failures = 0
                if w.alerted:
                    w.alerted = False
                    self.notify(name, *w.up, level="success", key="up")
                continue
            w.failures += 1
            if w.failures >= w.grace and not w.alerted:
                w.alerted = True
                self.notify(name, *w.down, level="failure", key="down")
