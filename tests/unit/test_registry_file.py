"""The registry file answers "surely no such alias" only where it is sure; everything else is
left to MLflow (its agreement with a real MLflow store: tests/integration/test_registry_file.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from cryptoarena.model.registry_file import KNOWN_REVISIONS, alias_absent

NAME, ALIAS = "btcusdt-15s", "champion"


def _registry(path: Path, revision: str, aliases: list[tuple[str, str]]) -> str:
    with closing(sqlite3.connect(path)) as conn, conn:  # closed, after a commit
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        conn.execute(
            "CREATE TABLE registered_model_aliases (alias TEXT, version INTEGER, name TEXT, "
            "workspace TEXT DEFAULT 'default')"
        )
        conn.executemany(
            "INSERT INTO registered_model_aliases (alias, version, name) VALUES (?, 1, ?)",
            [(a, n) for n, a in aliases],
        )
    return f"sqlite:///{path}"


def test_a_missing_database_holds_no_model_and_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "reg" / "mlflow.db"
    assert alias_absent(f"sqlite:///{db}", NAME, ALIAS) == (
        f"no models:/{NAME}@{ALIAS} in the registry at sqlite:///{db} (no database yet)"
    )
    assert not db.parent.exists()


def test_a_known_schema_is_read(tmp_path: Path) -> None:
    (known,) = KNOWN_REVISIONS
    uri = _registry(tmp_path / "a.db", known, [(NAME, "challenger"), ("other", ALIAS)])
    assert alias_absent(uri, NAME, ALIAS) == f"no models:/{NAME}@{ALIAS} in the registry at {uri}"
    uri = _registry(tmp_path / "b.db", known, [(NAME, ALIAS)])
    assert alias_absent(uri, NAME, ALIAS) is None


def test_anything_it_is_not_sure_of_is_left_to_mlflow(tmp_path: Path) -> None:
    assert alias_absent(_registry(tmp_path / "new.db", "f00dfeed", []), NAME, ALIAS) is None
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"not a database" * 100)
    assert alias_absent(f"sqlite:///{damaged}", NAME, ALIAS) is None
    empty = tmp_path / "empty.db"  # MLflow creates its tables in it
    empty.touch()
    assert alias_absent(f"sqlite:///{empty}", NAME, ALIAS) is None
    assert alias_absent("http://127.0.0.1:5000", NAME, ALIAS) is None
    assert alias_absent(f"sqlite:///{tmp_path / 'x.db'}?timeout=5", NAME, ALIAS) is None
    assert alias_absent(f"file://{tmp_path}", NAME, ALIAS) is None
