"""What the user sees on the terminal, and where the rest goes.

- The console shows the project's own log records (``cryptoarena.*``, ``flows.*``, the flow
  and task run lines of our Prefect flows) and every warning; library chatter (httpx request lines, MLflow's table migrations, …) goes only to the
  log file, ``settings.log_file`` (default ``var/log/arena.log``), with everything else.
- Tables keep their columns when the output is piped (rich would assume 80 columns).
- Third-party telemetry is off for this project's runs (Prefect's reported "database is locked"
  tracebacks on the temporary API and phones home; neither helps a user).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

logger = logging.getLogger(__name__)

# Loggers whose INFO records the console shows: ours, and Prefect's run lines of our flows
# (get_run_logger() records are "prefect.flow_runs"). Others show from WARNING up.
CONSOLE_LOGGERS = ("cryptoarena", "flows", "__main__", "prefect.flow_runs", "prefect.task_runs")
PIPED_WIDTH = 160  # wide enough for the leaderboard and the model tables, one line per row
LOG_FILE_BYTES = 10 * 1024 * 1024
# Environment defaults for the libraries we drive (a value the user set wins).
QUIET_ENV = {
    "DO_NOT_TRACK": "1",  # Prefect SDK telemetry (and other tools honouring the convention)
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # the temporary Prefect API's heartbeat
    # MLflow installs its own stderr handler at import; without it its records reach ours.
    "MLFLOW_CONFIGURE_LOGGING": "false",
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


def setup_logging(level: str, log_file: Path | None, *, verbose: bool = False) -> Path | None:
    """Console and file handlers on the root logger (replacing ones set up here before).

    ``verbose`` shows everything at DEBUG on the console, libraries included. Returns the log
    file, or None when it cannot be written (the console still works)."""
    quiet_libraries()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "arena", False)]:
        root.removeHandler(handler)
        handler.close()
    console_level = logging.DEBUG if verbose else logging.getLevelName(level)
    console = _Stderr()
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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
                logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
            )
            file.arena = True  # type: ignore[attr-defined]
            root.addHandler(file)
            levels.append(file.level)
            written = log_file
    root.setLevel(min(levels))
    return written
