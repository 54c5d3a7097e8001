"""MongoDB query matching for the embedded store: what SQL does not decide is checked here.

Only the operators the journal, the dashboard and the model's readers use, with MongoDB's
semantics: equality (a ``null`` matches a missing field; an array matches when it equals the
value or holds it), ``$eq``, ``$ne``, ``$gt``/``$gte``/``$lt``/``$lte`` (within one type class:
numbers, strings, dates; never across), ``$in``, ``$nin``, ``$exists``, top-level ``$and``,
``$or`` and ``$nor``, and dotted paths into sub-documents. Anything else raises
``OperationFailure`` instead of matching wrongly.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from pymongo.errors import OperationFailure

_MISSING: Final = object()
_ORDER: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_LOGICAL: Final = ("$and", "$or", "$nor")


def matches(filt: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """True when ``doc`` satisfies the MongoDB filter ``filt``."""
    for key, cond in filt.items():
        if key.startswith("$"):
            if key not in _LOGICAL or not isinstance(cond, list) or not cond:
                raise OperationFailure(f"the embedded journal store cannot match {key!r}")
            hits = (matches(sub, doc) for sub in cond)
            ok = all(hits) if key == "$and" else any(hits)
            if ok == (key == "$nor"):
                return False
        elif not _field_matches(_values(doc, key), cond):
            return False
    return True


def _values(doc: Any, path: str) -> list[Any]:
    """The values at a dotted path (several when it crosses an array); [_MISSING] when absent."""
    current = [doc]
    for part in path.split("."):
        found: list[Any] = []
        for value in current:
            if isinstance(value, Mapping):
                if part in value:
                    found.append(value[part])
            elif isinstance(value, list):
                found.extend(v[part] for v in value if isinstance(v, Mapping) and part in v)
        current = found
    return current or [_MISSING]


def _candidates(values: list[Any]) -> Iterator[Any]:
    """Each value and, for arrays, each element (MongoDB matches either)."""
    for value in values:
        yield value
        if isinstance(value, list):
            yield from value


def _is_operators(cond: Any) -> bool:
    return isinstance(cond, Mapping) and bool(cond) and all(k.startswith("$") for k in cond)


def _field_matches(values: list[Any], cond: Any) -> bool:
    if not _is_operators(cond):
        return _equals(values, cond)
    for op, arg in cond.items():
        if op == "$eq":
            ok = _equals(values, arg)
        elif op == "$ne":
            ok = not _equals(values, arg)
        elif op in _ORDER:
            ok = _ordered(values, op, arg)
        elif op in ("$in", "$nin"):
            if not isinstance(arg, list | tuple):
                raise OperationFailure(f"{op} needs an array")
            ok = any(_equals(values, v) for v in arg) == (op == "$in")
        elif op == "$exists":
            ok = (values != [_MISSING]) == bool(arg)
        else:
            raise OperationFailure(f"the embedded journal store cannot match {op!r}")
        if not ok:
            return False
    return True


def _equals(values: list[Any], target: Any) -> bool:
    if target is None:
        return any(v is None or v is _MISSING for v in _candidates(values))
    return any(_same(v, target) for v in _candidates(values) if v is not _MISSING)


def _type_class(value: Any) -> int | None:
    """MongoDB compares values of one class only (bool is not a number there)."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, int | float):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, dt.datetime):
        return 6
    return None


def _same(value: Any, target: Any) -> bool:
    cls = _type_class(target)
    if cls is not None:
        return _type_class(value) == cls and bool(value == target)
    return type(value) is type(target) and bool(value == target)


def _ordered(values: list[Any], op: str, arg: Any) -> bool:
    if arg is None:  # only null equals null; nothing is greater or less than it
        return op in ("$gte", "$lte") and _equals(values, None)
    cls = _type_class(arg)
    if cls is None:
        raise OperationFailure(f"{op} compares numbers, strings or dates, not {arg!r}")
    compare = _ORDER[op]
    return any(
        _type_class(v) == cls and compare(v, arg) for v in _candidates(values) if v is not _MISSING
    )


__all__ = ["matches"]
