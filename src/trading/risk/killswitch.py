"""The kill switch: a small file every worker polls, so it works across processes.

``arena kill`` (and the dashboard, through :class:`KillSwitch`) writes it atomically; workers
check it about once a second (one ``stat``). Engaging and releasing need the token from
``ARENA_TRADING__KILL_TOKEN``; when no token is configured engaging is still allowed (stopping
trading is always safe) but releasing is refused.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from cryptoarena.config import Settings
from pydantic import SecretStr

logger = logging.getLogger(__name__)


class KillSwitchError(PermissionError):
    """Wrong or missing token."""


class KillSwitch:
    def __init__(self, path: Path, token: SecretStr | None) -> None:
        self.path = Path(path)
        self._token = token
        self._cache: tuple[float, dict[str, Any] | None] | None = None

    def _check(self, token: str | None, *, releasing: bool) -> None:
        if self._token is None:
            if releasing:
                raise KillSwitchError("no kill token configured (ARENA_TRADING__KILL_TOKEN)")
            return
        if token is None or not hmac.compare_digest(
            token.encode(), self._token.get_secret_value().encode()
        ):
            raise KillSwitchError("wrong kill token")

    def engage(self, token: str | None, reason: str, *, by: str = "cli") -> dict[str, Any]:
        self._check(token, releasing=False)
        doc = {
            "engaged": True,
            "reason": reason or "kill switch",
            "by": by,
            "ts_ns": time.time_ns(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        logger.warning("kill switch engaged by %s: %s", by, doc["reason"])
        return doc

    def release(self, token: str | None) -> None:
        self._check(token, releasing=True)
        self.path.unlink(missing_ok=True)
        logger.warning("kill switch released")

    def status(self) -> dict[str, Any] | None:
        """The engaged record, or None. Cheap: re-reads the file only when it changed."""
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._cache = None
            return None
        if self._cache is not None and self._cache[0] == mtime:
            return self._cache[1]
        try:
            doc: dict[str, Any] | None = json.loads(self.path.read_text())
        except (OSError, ValueError):
            # A garbled kill file still means "stop": fail safe.
            doc = {"engaged": True, "reason": "kill file present (unreadable)", "by": "?"}
        self._cache = (mtime, doc)
        return doc


def kill_switch(settings: Settings) -> KillSwitch:
    """The machine's kill switch as configured (CLI, workers and the dashboard share it)."""
    return KillSwitch(settings.trading.kill_file, settings.trading.kill_token)
