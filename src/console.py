"""What the user sees on the terminal, and where the rest goes.

- A command's console shows what it prints (tables, summaries), warnings, one short line
  each (``warning: …``), and the progress lines of long work (``extra=PROGRESS``); every log record goes to the log file, ``settings.log_file`` (default
  ``var/log/arena.log``). ``-v`` shows them all on the console too, libraries included.
- Servers (``arena serve``, ``arena flows serve``) also show the project's own INFO records
  (``cryptoarena.*``, ``flows.*``, the run lines of our Prefect flows) with timestamps;
  library chatter (httpx request lines, MLflow's table migrations, …) stays in the file.
- Tables keep their columns when the output is piped (rich would assume 80 columns).
- Secrets never reach the console or the file, at any level, whoever logs them: every record's
  formatted text (traceback included) has the configured secrets, and the token-bearing parts
  of secret URLs (user, password, path segments, query values: apprise logs those one by one
  at DEBUG), replaced by ``***``.
- Third-party telemetry is off for this project's runs (Prefect's reported "database is locked"
  tracebacks on the temporary API and phones home; neither helps a user).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from rich.console import Console

logger = logging.getLogger(__name__)

# Loggers whose INFO records the console shows: ours, and Prefect's run lines of our flows
# (get_run_logger() records are "prefect.flow_runs"). Others show from WARNING up.
CONSOLE_LOGGERS = ("cryptoarena", "flows", "__main__", "prefect.flow_runs", "prefect.task_runs")
MASK = "***"
# Parts of a secret URL shorter than this are not masked on their own (ports, "json", "hook"):
# masking them would blank common words in every line; tokens are longer.
MIN_SECRET_PART = 6
_HOSTNAME = re.compile(r"^(localhost|[\w-]+(\.[\w-]+)+)$")  # a.b.c or an IP: not secret
PIPED_WIDTH = 160  # wide enough for the leaderboard and the model tables, one line per row
LOG_FILE_BYTES = 10 * 1024 * 1024
# Environment defaults for the libraries we drive (a value the user set wins).
QUIET_ENV = {
    "DO_NOT_TRACK": "1",  # Prefect SDK telemetry (and other tools honouring the convention)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the temporary Prefect API's heartbeat
    # MLflow installs its own stderr handler at import; without it its records reach ours.
    "MLFLOW_CONFIGURE_LOGGING": "false",
    # The temporary Prefect API of a flow run without PREFECT_API_URL: on a busy 2-core machine
    # it takes longer than Prefect's 20 s to answer, and the run died with a traceback.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def quiet_libraries() -> None:
    """Telemetry off and library logging routed through ours; call before importing them."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)


def make_console(**kwargs: Any) -> Console:
    """A rich console; when piped (no terminal, no COLUMNS) it is wide instead of 80."""
    console = Console(**kwargs)
    if console.is_terminal or "COLUMNS" in os.environ or "width" in kwargs:
        return console
    return Console(width=PIPED_WIDTH, **kwargs)


def secret_parts(secret: str) -> set[str]:
    """``secret`` and, for a URL, the parts of it a library may log separately."""
    parts = {secret}
    if "://" not in secret:
        return parts
    url = urlsplit(secret)
    pieces = re.split(r"[@:]", url.netloc) + url.path.split("/")
    pieces += [value for _, value in parse_qsl(url.query, keep_blank_values=True)]
    for piece in pieces:
        for text in (piece, unquote(piece)):
            if len(text) >= MIN_SECRET_PART and not _HOSTNAME.match(text):
                parts.add(text)
    return parts


class SecretMask:
    """Replaces every configured secret (and its URL parts) in a text by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        parts = set().union(*(secret_parts(s) for s in secrets if s))
        # Longest first, so a whole URL is masked before its parts.
        alternatives = sorted(parts, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if parts else None

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)


class _Masked(logging.Formatter):
    """A formatter whose whole output (message, arguments, traceback) is masked."""

    def __init__(self, fmt: str, mask: SecretMask) -> None:
        super().__init__(fmt)
        self.mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


PROGRESS = {"progress": True}
"""``logger.info(..., extra=PROGRESS)``: a progress line of long work, which a command's quiet
console shows too (plain, no timestamp); other INFO records go only to the log file."""


class _WarningOrProgress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.__dict__.get("progress") is True


class _ProjectOrWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return record.levelno >= logging.WARNING or any(
            name == p or name.startswith(p + ".") for p in CONSOLE_LOGGERS
        )


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (test runners swap it per command)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # set by StreamHandler.__init__; ignored
        pass


class _Short(_Masked):
    """``warning: message`` (an ``error:`` line for errors) on one line, as the commands' own
    lines read; a progress line as it is."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING:
            return super().format(record)
        # One line: a traceback (attached, or inside a library's message) is in the log file.
        lines = record.getMessage().splitlines() or [""]
        return f"{record.levelname.lower()}: {self.mask(lines[0])}"


def setup_logging(
    level: str,
    log_file: Path | None,
    *,
    verbose: bool = False,
    command: bool = False,
    secrets: Iterable[str] = (),
) -> Path | None:
    """Console and file handlers on the root logger (replacing ones set up here before).

    ``command``: a command's console, warnings only (its output is its own lines and tables);
    otherwise a server's, with the project's INFO records. ``verbose`` shows everything at
    DEBUG on the console, libraries included. ``secrets`` (``config.secret_values(settings)``)
    are masked in both. Returns the log file, or None when it cannot be written (the console
    still works)."""
    quiet_libraries()
    mask = SecretMask(secrets)
    # MLflow imported before MLFLOW_CONFIGURE_LOGGING was set has its own stderr handler (and
    # does not propagate): route its records through ours instead.
    mlflow_logger = logging.getLogger("mlflow")
    for handler in list(mlflow_logger.handlers):
        mlflow_logger.removeHandler(handler)
    mlflow_logger.propagate = True
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "arena", False)]:
        root.removeHandler(handler)
        handler.close()
    console_level = logging.DEBUG if verbose else logging.getLevelName(level)
    console = _Stderr()
    if command and not verbose:
        console_level = max(console_level, logging.INFO)
        console.setFormatter(_Short("%(message)s", mask))
        console.addFilter(_WarningOrProgress())
    else:
        console.setFormatter(_Masked("%(asctime)s %(levelname)s %(name)s: %(message)s", mask))
    console.setLevel(console_level)
    if not verbose:
        console.addFilter(_ProjectOrWarning())
    console.arena = True  # type: ignore[attr-defined]
    root.addHandler(console)
    levels = [console_level]
    written: Path | None = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=LOG_FILE_BYTES, backupCount=3, encoding="utf-8"
            )
        except OSError as exc:
            logger.warning("no log file (%s): logging to the console only", exc)
        else:
            file.setLevel(min(logging.INFO, console_level))
            file.setFormatter(
                _Masked("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s", mask)
            )
            file.arena = True  # type: ignore[attr-defined]
            root.addHandler(file)
            levels.append(file.level)
            written = log_file
    root.setLevel(min(levels))
    return written
