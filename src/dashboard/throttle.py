"""A failure budget for the kill switch's token: wrong tokens lock the switch for a while.

After ``max_failures`` wrong tokens within ``window_s`` the dashboard answers every kill-switch
request with 429 (and ``Retry-After``) for ``lockout_s``, without checking the token, so guessing
costs at least ``lockout_s / max_failures`` per try. The budget is one for the whole server, not
per client: behind a proxy every client has one address, and ``arena kill`` on the machine is
never throttled. Logged in aggregate: the first wrong token of a window, the lockout (with the
count), and at its end how many requests it refused, instead of one line per attempt.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class TokenThrottle:
    def __init__(
        self,
        max_failures: int,
        window_s: float,
        lockout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self._clock = clock
        self._lock = threading.Lock()  # sync routes run in a thread pool
        self._failures = 0
        self._window_start = 0.0
        self._locked_until = 0.0
        self._refused = 0  # requests answered 429 during the current lockout

    def retry_after(self) -> int:
        """Seconds until the lockout ends (the request is refused, and counted), or 0."""
        with self._lock:
            now = self._clock()
            if now < self._locked_until:
                self._refused += 1
                return max(1, math.ceil(self._locked_until - now))
            self._end_lockout()
            return 0

    def failed(self, reason: str) -> None:
        with self._lock:
            now = self._clock()
            if self._failures == 0 or now - self._window_start > self.window_s:
                self._failures, self._window_start = 0, now
                logger.warning(
                    "dashboard kill switch refused: %s (more within %.0f s are counted, "
                    "not logged one by one)",
                    reason,
                    self.window_s,
                )
            self._failures += 1
            if self._failures >= self.max_failures:
                logger.warning(
                    "dashboard kill switch: %d wrong tokens in %.1f s: locked for %.0f s "
                    "(answering 429)",
                    self._failures,
                    now - self._window_start,
                    self.lockout_s,
                )
                self._locked_until = now + self.lockout_s
                self._failures = 0

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0

    def _end_lockout(self) -> None:
        if self._refused:
            logger.warning(
                "dashboard kill switch: lockout over, %d requests refused with 429 during it",
                self._refused,
            )
            self._refused = 0
