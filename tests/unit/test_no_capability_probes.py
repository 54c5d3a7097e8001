"""Say it, don't guess it (issue #21): no part of src/trading probes another with getattr/hasattr.

A feed, a venue, a forecast source and a journal each declare what they are (their
``capabilities``, typed protocols); the engine reads the declaration. The only getattr calls
left read a value by a name the code itself holds (a dataclass field, a bar column, its own
counter, a thread-local slot, an HTTP method), each listed below with its reason. The engine
(src/trading/engine) has none at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRADING = ROOT / "src" / "trading"
ENGINE = "engine/"

# (path under src/trading, the call as ast.unparse writes it) → why it is not a capability probe.
ALLOWED: dict[tuple[str, str], str] = {
    ("journal/sanitize.py", "getattr(value, f.name)"): "a dataclass's fields, by their names",
    ("journal/sanitize.py", "getattr(value, 'tolist', None)"): (
        "a caller's document value: numpy scalars and arrays convert themselves (the module "
        "does not import numpy)"
    ),
    ("journal/writer.py", "getattr(self, attr)"): "its own counter, named by the caller",
    ("exchange/bybit_http.py", "getattr(self._local, 'http', None)"): (
        "this thread's slot of a threading.local (absent until the thread's first call)"
    ),
    ("exchange/bybit_http.py", "getattr(self.session(), method)"): (
        "pybit's HTTP method named by the request (dispatch, not a probe)"
    ),
    ("sweeps/table.py", "getattr(self, k)"): "a dataclass's fields, by their names",
    ("forecasts/pump.py", "getattr(bar, name)"): "a bar's columns, by BAR_COLUMNS",
    ("forecasts/local.py", "getattr(b, name)"): "a bar's columns, by BAR_COLUMNS",
}


def probes(source: str) -> list[str]:
    """Every getattr/hasattr call in ``source``, as ast.unparse writes it."""
    return [
        ast.unparse(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr")
    ]


def _found() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for path in sorted(TRADING.rglob("*.py")):
        rel = path.relative_to(TRADING).as_posix()
        for call in probes(path.read_text()):
            found[(rel, call)] = found.get((rel, call), 0) + 1
    return found


def test_the_walk_finds_getattr_and_hasattr_calls() -> None:
    source = (
        "x = getattr(feed, 'speed', 1.0)\nif hasattr(ex, 'bindings'):\n    pass\n"
        "def f(o):\n    return getattr(o, 'a')\nobj.getattr(1)\n"
    )
    assert probes(source) == [
        "getattr(feed, 'speed', 1.0)",
        "hasattr(ex, 'bindings')",
        "getattr(o, 'a')",
    ]


def test_src_trading_declares_instead_of_probing() -> None:
    assert (TRADING / "engine" / "worker.py").is_file()  # the walk looks where the code is
    found = _found()
    unexplained = sorted(set(found) - set(ALLOWED))
    assert not unexplained, (
        "getattr/hasattr in src/trading: declare the capability (a capabilities field, a typed "
        f"protocol) instead, or list a non-probe use in ALLOWED with its reason: {unexplained}"
    )
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"ALLOWED lists calls that are gone: {stale}"


def test_the_engine_has_no_getattr_or_hasattr_at_all() -> None:
    assert not [key for key in ALLOWED if key[0].startswith(ENGINE)]
    assert not [key for key in _found() if key[0].startswith(ENGINE)]
