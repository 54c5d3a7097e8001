"""Container healthcheck (stdlib only, so it works in every image):

arena-healthcheck URL             exit 0 when GET URL answers 2xx within 3 s
arena-healthcheck --process NAME  exit 0 when PID 1 runs NAME and is neither stopped nor a zombie
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path


def check_url(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return None if 200 <= response.status < 300 else f"{url}: HTTP {response.status}"
    except Exception as exc:  # any failure is "unhealthy"; say which
        return f"{url}: {exc}"


def check_process(name: str) -> str | None:
    cmdline = Path("/proc/1/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if name not in cmdline:
        return f"PID 1 is not {name}: {cmdline.strip()}"
    state = Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[0]
    return None if state not in {"Z", "T", "X"} else f"PID 1 state {state}"


def main(argv: list[str]) -> int:
    if len(argv) == 2 and not argv[1].startswith("-"):
        problem = check_url(argv[1])
    elif len(argv) == 3 and argv[1] == "--process":
        problem = check_process(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
