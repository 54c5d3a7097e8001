"""The kill switch: a small file every worker polls, so it works across processes.

``arena kill`` (and the dashboard, through :class:`KillSwitch`) writes it atomically; workers
check it about once a second (one ``stat``). The file holds the last command: an engage record,
or a release record (``"engaged": false``). With a token, each record carries an HMAC-SHA256 of
its fields under that token.

The WORKER enforces (:class:`KillGuard`), against its OWN configured token, not the caller's:

- Engage: always obeyed (stopping is always safe; a garbled file also means stop); whether the
  signature verified is journaled with who engaged it.
- Release: with a token configured, only a release record signed with that token and newer than
  the engage record releases. Deleting the file, an unsigned or wrongly signed release, or an
  old release copied back are ignored and journaled once each (``kill_release_refused``).
- With no token configured anywhere, release from the CLI on the local machine works (it writes
  an unsigned release record; deleting the file also releases).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptoarena.config import Settings
from pydantic import SecretStr

logger = logging.getLogger(__name__)


class KillSwitchError(PermissionError):
    """Wrong or missing token."""


def _mac(token: str, doc: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True)
    return hmac.new(token.encode(), body.encode(), sha256).hexdigest()


class KillSwitch:
    def __init__(self, path: Path, token: SecretStr | None) -> None:
        self.path = Path(path)
        self._token = token
        self._cache: tuple[int, dict[str, Any] | None] | None = None

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def _check(self, token: str | None) -> None:
        """The caller's early check (a friendly error); the worker verifies again."""
        if self._token is None:
            return
        if token is None or not hmac.compare_digest(
            token.encode(), self._token.get_secret_value().encode()
        ):
            raise KillSwitchError("wrong kill token")

    def _write(self, doc: dict[str, Any], token: str | None) -> dict[str, Any]:
        if token:
            doc["mac"] = _mac(token, doc)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        return doc

    def engage(self, token: str | None, reason: str, *, by: str = "cli") -> dict[str, Any]:
        self._check(token)
        doc = {
            "engaged": True,
            "reason": reason or "kill switch",
            "by": by,
            "ts_ns": time.time_ns(),
            "nonce": secrets.token_hex(8),
        }
        self._write(doc, token)
        logger.warning("kill switch engaged by %s: %s", by, doc["reason"])
        return doc

    def release(self, token: str | None, *, by: str = "cli") -> dict[str, Any]:
        """Write a release record (signed with ``token`` when given): workers verify it."""
        self._check(token)
        doc = {"engaged": False, "by": by, "ts_ns": time.time_ns(), "nonce": secrets.token_hex(8)}
        self._write(doc, token)
        logger.warning("kill switch release requested by %s", by)
        return doc

    def read(self) -> dict[str, Any] | None:
        """The file's record (None: no file). Cheap: re-read only when the file changed."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._cache = None
            return None
        stamp = st.st_mtime_ns ^ (st.st_ino << 1) ^ (st.st_size << 3)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            doc: dict[str, Any] | None = json.loads(self.path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            # A garbled kill file still means "stop": fail safe.
            doc = {"engaged": True, "reason": "kill file present (unreadable)", "by": "?"}
        self._cache = (stamp, doc)
        return doc

    def status(self) -> dict[str, Any] | None:
        """The engage record if the file says "engaged", else None."""
        doc = self.read()
        return doc if doc is not None and doc.get("engaged", True) is not False else None

    def verified(self, doc: dict[str, Any]) -> bool:
        """True when ``doc`` is signed with THIS side's token."""
        if self._token is None or not isinstance(doc.get("mac"), str):
            return False
        expected = _mac(self._token.get_secret_value(), doc)
        return hmac.compare_digest(expected, doc["mac"])


@dataclass(frozen=True, slots=True)
class KillEvent:
    """What the guard decided: ``kill``, ``kill_released`` or ``kill_release_refused``."""

    type: str
    reason: str
    by: str
    verified: bool | None  # None: no token configured, nothing to verify against


class KillGuard:
    """The enforcing side of the kill switch (one per worker): the file against its own token."""

    def __init__(self, switch: KillSwitch) -> None:
        self.switch = switch
        self._engaged_ts: int = 0
        self._refused: object = None

    def poll(self, killed: bool) -> KillEvent | None:
        doc = self.switch.read()
        engaged = doc is not None and doc.get("engaged", True) is not False
        token = self.switch.has_token
        if not killed:
            if not engaged or doc is None:
                return None
            self._engaged_ts = int(doc.get("ts_ns") or 0)
            self._refused = None
            return KillEvent(
                "kill",
                str(doc.get("reason") or "kill switch"),
                str(doc.get("by") or "?"),
                self.switch.verified(doc) if token else None,
            )
        if engaged:
            if doc is not None:  # re-engaged: releases older than this one do not count
                self._engaged_ts = max(self._engaged_ts, int(doc.get("ts_ns") or 0))
            return None
        by = str(doc.get("by") or "?") if doc is not None else "?"
        if not token:
            why = "kill file removed" if doc is None else "release"
            return KillEvent("kill_released", why, by, None)
        if doc is None:
            problem = "kill file removed without a signed release"
        elif not self.switch.verified(doc):
            problem = "release not signed with this worker's kill token"
        elif int(doc.get("ts_ns") or 0) <= self._engaged_ts:
            problem = "release older than the engage (replayed?)"
        else:
            return KillEvent("kill_released", "release", by, True)
        key = (problem, None if doc is None else doc.get("nonce"))
        if key == self._refused:
            return None  # journaled once per distinct attempt
        self._refused = key
        return KillEvent("kill_release_refused", problem, by, False)


def kill_switch(settings: Settings) -> KillSwitch:
    """The machine's kill switch as configured (CLI, workers and the dashboard share it)."""
    return KillSwitch(settings.trading.kill_file, settings.trading.kill_token)
