"""Every module under src/ imports only what pyproject declares for run time.

The images install the runtime list only (docker/Dockerfile), so a module that imports a dev
extra (a test oracle) or a package that merely arrives with another dependency works in the
development venv and fails in the image. Imports under ``if TYPE_CHECKING:`` never run.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
MODULES = sorted(
    p for p in SRC.rglob("*.py") if "static" not in p.parts and "__pycache__" not in p.parts
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _runtime_distributions() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_canonical(re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0]) for d in deps}


@functools.cache
def _owners() -> dict[str, list[str]]:
    return dict(md.packages_distributions())


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def third_party_imports(tree: ast.AST) -> set[str]:
    """Top-level names of the absolute imports that can run (not under TYPE_CHECKING)."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        stack.extend(ast.iter_child_nodes(node))
    return {n for n in found if n not in sys.stdlib_module_names and n != "cryptoarena"}


def test_the_walk_sees_lazy_imports_and_skips_type_checking_ones() -> None:
    tree = ast.parse(
        "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import talib\n"
        "def f():\n    import numpy.linalg\n    from scipy import stats\n"
        "from cryptoarena.data import bars\nfrom . import sibling\n"
    )
    assert third_party_imports(tree) == {"numpy", "scipy"}


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_a_module_imports_only_declared_runtime_dependencies(path: Path) -> None:
    owners = _owners()
    declared = _runtime_distributions()
    undeclared = {}
    for name in sorted(third_party_imports(ast.parse(path.read_text()))):
        dists = {_canonical(d) for d in owners.get(name, [])}
        if not dists & declared:
            undeclared[name] = sorted(dists) or "no installed distribution"
    assert not undeclared, (
        f"{path.relative_to(ROOT)} imports what pyproject's runtime dependencies do not "
        f"declare (a dev extra or a transitive package): {undeclared}"
    )
