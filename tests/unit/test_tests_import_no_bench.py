"""Tests never import from bench/: a benchmark is a script that may change its numbers or its
helpers at will, so code both need lives in the package or in tests' own helpers (issue #22)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def bench_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"{path.relative_to(TESTS)}:{node.lineno} {n}" for n in names
                  if n == "bench" or n.startswith("bench.")]  # fmt: skip
    return found


def test_no_test_imports_from_bench() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 50  # the suite itself, not an empty folder
    assert [hit for f in files for hit in bench_imports(f)] == []
