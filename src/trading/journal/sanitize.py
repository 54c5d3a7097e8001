"""Make a caller's document safe to journal: a private copy, BSON/JSON types, no secrets.

Secrets never reach the journal: keys that look like credentials and ``SecretStr`` values are
stripped (with a warning naming the key, never the value), and a ``Settings`` object anywhere in
a document is refused outright.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic_settings import BaseSettings

logger = logging.getLogger(__name__)

SECRET_KEY = re.compile(
    r"secret|passw(or)?d|api[_-]?key|apikey|token|passphrase|private[_-]?key|signature|"
    r"authori[sz]ation|credential|cookie|(?:^|[-_.])sign(?:$|[-_.])",
    re.IGNORECASE,
)
_MAX_DEPTH = 32
_INT64 = 2**63
_warned: set[str] = set()
_PLAIN = frozenset({str, float, bool, bytes, type(None)})
# Field names already checked (True: kept, False: a secret, stripped); bounded.
_NAMES: dict[str, bool] = {}
_NAMES_MAX = 4096


def _check_name(name: str, path: str) -> bool:
    if name.startswith("$") or "\x00" in name:
        raise JournalDocumentError(f"field names may not start with '$' or hold NUL: {path!r}")
    verdict = SECRET_KEY.search(name) is None
    if len(_NAMES) < _NAMES_MAX:
        _NAMES[name] = verdict
    return verdict


class JournalDocumentError(ValueError):
    """The document cannot be journaled (settings inside, bad key, unsupported value)."""


def clean_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``doc`` with only storable values and no secrets."""
    if type(doc) is not dict and not isinstance(doc, Mapping):  # an ABC check is slow
        raise JournalDocumentError(f"a journal document must be a mapping, not {type(doc)!r}")
    out = _clean(doc, 0, "")
    assert isinstance(out, dict)
    return out


def _strip(path: str) -> None:
    if path not in _warned:
        _warned.add(path)
        logger.warning("journal: dropped secret-looking field %r", path)


def _clean(value: Any, depth: int, path: str) -> Any:
    if depth > _MAX_DEPTH:
        raise JournalDocumentError(f"document nested deeper than {_MAX_DEPTH} at {path!r}")
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:  # before the type checks below, none of which a list passes
        if _PLAIN.issuperset(map(type, value)):
            return list(value)
        return [_clean(item, depth + 1, f"{path}[]") for item in value]
    if kind is not dict:  # plain dicts (most documents) go straight to the mapping branch
        if value is None or isinstance(value, bool | str | float | bytes):
            return value
        if isinstance(value, int):
            if not -_INT64 <= value < _INT64:
                raise JournalDocumentError(f"integer out of 64-bit range at {path!r}")
            return value
        if isinstance(value, BaseSettings):
            raise JournalDocumentError(
                f"settings are never journaled (found at {path or 'root'!r})"
            )
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = key if type(key) is str else str(key)
            verdict = _NAMES.get(name)
            if verdict is None:
                verdict = _check_name(name, f"{path}.{name}" if path else name)
            if not verdict:
                _strip(f"{path}.{name}" if path else name)
                continue
            kind = type(item)
            # Plain values (most fields of most events) are kept as they are.
            if kind in _PLAIN or (kind is int and -_INT64 <= item < _INT64):
                out[name] = item
            elif kind is Decimal:  # prices, sizes, fees: before the slower checks below
                out[name] = str(item)
            elif isinstance(item, SecretStr | SecretBytes):
                _strip(f"{path}.{name}" if path else name)
            else:
                out[name] = _clean(item, depth + 1, f"{path}.{name}" if path else name)
        return out
    if isinstance(value, SecretStr | SecretBytes):
        _strip(path)
        return None
    if isinstance(value, Decimal):
        return str(value)  # exact; read back with Decimal(text)
    if isinstance(value, Enum):
        return _clean(value.value, depth + 1, path)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, BaseModel):
        return _clean(value.model_dump(), depth + 1, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return _clean(fields, depth + 1, path)
    if isinstance(value, list | tuple | set | frozenset):
        plain = _PLAIN
        if all(type(item) in plain for item in value):  # a forecast path: floats only
            return list(value)
        inner = f"{path}[]"
        return [_clean(item, depth + 1, inner) for item in value]
    # numpy scalars and arrays, without importing numpy here.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _clean(tolist(), depth + 1, path)
    raise JournalDocumentError(f"cannot journal a {type(value).__name__} at {path!r}")
