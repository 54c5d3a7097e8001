"""The package map: every folder under src/ with an __init__.py must be listed in pyproject."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_subpackage_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(["cryptoarena", *init.parent.relative_to(ROOT / "src").parts])
        for init in (ROOT / "src").rglob("__init__.py")
        if "static" not in init.parts and "__pycache__" not in init.parts
    }
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"listed but missing on disk: {sorted(listed - found)}"


def test_package_is_importable_under_its_name() -> None:
    import cryptoarena
    import cryptoarena.data.bars as bars

    assert cryptoarena.__version__
    assert Path(bars.__file__).resolve().is_relative_to(ROOT / "src")


def test_no_module_imports_src_directly() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("src", "flows", "tests", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if any(
            line.startswith(("from src.", "import src.", "from src import"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
