"""A strategy's decisions over a whole span of its bars at once: the vectorised twin of ``on_bar``.

``on_bar`` is incremental (O(1) per bar, what a live run needs). Over recorded bars a backtest
can compute the whole series first: a strategy class may define
``span_signals(bars) -> SpanSignals`` next to its ``on_bar``, stating the same rule over the
frame (tests/unit/test_strategy_twins.py holds every twin equal to ``on_bar`` stepped bar by
bar). The engine uses the twin when a strategy has one and steps ``on_bar`` otherwise.

A twin reports per bar what ``on_bar`` returned (its target, NaN for None) and a *code*: bars
with the same code have the same target and the same reason up to its numbers, so the engine
can tell where a decision changes without formatting a reason on every bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cryptoarena.trading.strategies.base import StrategyConfig

# The codes most rules need: no opinion, long, short (or flat when shorts are off), flat.
NONE, LONG, SHORT, FLAT = 0, 1, 2, 3


@dataclass(frozen=True)
class SpanSignals:
    """What ``on_bar`` returns on each bar of a span, from a fresh strategy."""

    target: np.ndarray  # float64 per bar; NaN where on_bar returns None
    code: np.ndarray  # int per bar: equal codes, equal targets and masked reasons
    reason: Callable[[int], str]  # the reason on_bar leaves at bar j ("" for none)


def coded(cfg: StrategyConfig, code: np.ndarray, reason: Callable[[int, int], str]) -> SpanSignals:
    """Signals of a rule given per bar as NONE/LONG/SHORT/FLAT (sized by ``cfg``), with
    ``reason(j, code)``."""
    short = -float(cfg.size) if cfg.allow_short else 0.0
    values = np.array([np.nan, float(cfg.size), short, 0.0])
    code = code.astype(np.int8)
    return SpanSignals(values[code], code, lambda j: reason(j, int(code[j])))


def sided(enter: np.ndarray, long_exit: np.ndarray, short_exit: np.ndarray) -> np.ndarray:
    """Codes of a rule that remembers its side: LONG/SHORT where ``enter`` is +1/−1 (the side is
    set), FLAT on the first later bar whose exit condition for that side holds (the side is
    cleared), NONE elsewhere. The exit conditions must be False where the rule is not
    evaluated."""
    code = np.where(enter > 0, LONG, np.where(enter < 0, SHORT, NONE))
    signs = np.where(enter != 0, enter, 0)
    idx = np.where(enter != 0, np.arange(len(enter)), -1)
    last = np.maximum.accumulate(idx) if len(idx) else idx
    side = np.where(last >= 0, signs[np.maximum(last, 0)], 0)
    cond = (enter == 0) & (((side > 0) & long_exit) | ((side < 0) & short_exit))
    hits = np.flatnonzero(cond)
    if hits.size:
        seg = last[hits]
        first = np.ones(hits.size, dtype=bool)
        first[1:] = seg[1:] != seg[:-1]
        code[hits[first]] = FLAT
    return code


def series(values: list[float | None]) -> np.ndarray:
    """An indicator's outputs as float64 (NaN for None: not ready)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
