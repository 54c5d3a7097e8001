"""Whether a registry can hold an alias, read from its SQLite file without MLflow.

`arena backtest` with an AI arm asks the registry for ``@champion`` before it starts; without
one the arm stands aside. Importing MLflow and opening its store costs ~2 s of CPU (its
``__init__`` brings FastAPI, pandas and scipy; its SQLAlchemy store alembic), more than the rest
of the start. This module answers only the negative "there is surely no such alias" cheaply:

- a ``sqlite:///`` URI whose database file does not exist holds no model (MLflow would create
  an empty one; nothing is created here);
- a database at a schema revision this module was checked against (:data:`KNOWN_REVISIONS`,
  held equal to MLflow's own by tests/integration/test_registry_file.py) with no row for the
  alias in ``registered_model_aliases`` holds none either (read-only connection).

Anything else (another store, another revision, a locked or damaged file, a row found) is "ask
MLflow": every lookup that may find a model, and every load, goes through MLflow's client and
loader as before, with their checks.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

from cryptoarena.config import sqlite_db_path

logger = logging.getLogger(__name__)

# Alembic revisions of MLflow's SQL schema whose ``registered_model_aliases`` table (alias,
# version, name, workspace) holds every alias: MLflow 3.17's head. A new MLflow revision falls
# back to MLflow until the test confirms the table still means this and the list is extended.
KNOWN_REVISIONS = frozenset({"dc11669786a5"})


def alias_absent(tracking_uri: str, name: str, alias: str) -> str | None:
    """Why ``models:/<name>@<alias>`` cannot be in the registry at ``tracking_uri``, or None
    when it may be (the caller asks MLflow)."""
    db = sqlite_db_path(tracking_uri)
    if db is None or "?" in str(db):  # a server, a file store, or URI options: MLflow knows
        return None
    if not db.exists():
        return f"no models:/{name}@{alias} in the registry at {tracking_uri} (no database yet)"
    try:
        found = _alias_rows(db, name, alias)
    except sqlite3.Error as exc:  # locked, damaged, not MLflow's: MLflow reports it properly
        logger.debug("registry file %s not read (%s): asking MLflow", db, exc)
        return None
    if found is None or found > 0:
        return None
    return f"no models:/{name}@{alias} in the registry at {tracking_uri}"


def _alias_rows(db: Path, name: str, alias: str) -> int | None:
    """Rows for the alias, or None when the schema revision is not one of KNOWN_REVISIONS."""
    uri = f"{db.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as conn:
        revisions = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
        if len(revisions) != 1 or not revisions <= KNOWN_REVISIONS:
            logger.debug("registry %s at schema %s: asking MLflow", db, sorted(revisions))
            return None
        query = "SELECT COUNT(*) FROM registered_model_aliases WHERE name = ? AND alias = ?"
        return int(conn.execute(query, (name, alias)).fetchone()[0])
