"""The dashboard's short-lived child processes (the registry read, a long run's report): one JSON
request on stdin (it may carry credentials, which argv would show to every user of ``ps``), one
JSON answer on stdout, ``{"error": ...}`` when the work failed."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def start(module: str) -> subprocess.Popen[str]:
    """``python -m module`` with pipes for the request, the answer and its errors."""
    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def answer(work: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The child's side: read the request, write ``work(request)`` or why it failed."""
    request = json.loads(sys.stdin.read())
    answer_to = sys.stdout
    sys.stdout = sys.stderr  # anything printed on the way must not corrupt the answer
    try:
        out = work(request)
    except Exception as exc:  # said to the parent, which keeps or shows its previous view
        logger.debug("dashboard child failed", exc_info=True)
        out = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    answer_to.write(json.dumps(out))
    answer_to.flush()
