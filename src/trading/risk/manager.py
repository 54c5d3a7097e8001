"""The RiskManager: every order intent passes here; vetoes and halts are emitted with reasons.

Halts (daily loss, drawdown, a strategy that raised, the kill switch) stop new risk. Orders
that only reduce a position (flatten, kill switch, halt exits, stops, the close half of a flip)
are exits: they pass every limit that guards NEW risk (notional, order rate, stale data, price
band), or a large position could never be closed. Vetoes are emitted once per distinct veto
state (the reason with its numbers masked), all are counted, so the journal is not flooded.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptoarena.data.records import NS_PER_S
from cryptoarena.trading.risk.limits import RiskConfig
from cryptoarena.trading.risk.state import (
    GLOBAL,
    Halt,
    Mark,
    RiskState,
    loss_breach,
    loss_measures,
)

logger = logging.getLogger(__name__)

MINUTE_NS = 60 * NS_PER_S
DAY_NS = 86_400 * NS_PER_S

Emit = Callable[[dict[str, Any]], None]

_NUMBERS = re.compile(r"[-+]?\d[\d.,]*")


def veto_state(reason: str) -> str:
    """What a veto says without its numbers: the same state on every bar has one key."""
    return _NUMBERS.sub("#", reason)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    strategy: str
    side: str  # "Buy" | "Sell"
    qty: float  # > 0
    price: float  # the reference price the order was sized at
    position_before: float  # signed qty
    position_after: float
    uses_forecast: bool = False
    forecast_age_s: float | None = None

    @property
    def notional(self) -> float:
        return self.qty * self.price

    @property
    def reduces(self) -> bool:
        before, after = self.position_before, self.position_after
        return abs(after) < abs(before) and (after == 0 or (after > 0) == (before > 0))


class RiskManager:
    def __init__(
        self,
        config: RiskConfig,
        capitals: dict[str, float],
        emit: Emit,
        *,
        journal_state: Emit | None = None,
    ) -> None:
        self.config = config
        self.capitals = dict(capitals)
        self._emit = emit
        # Where the ``risk_state`` documents go (the journal): after every change of a halt or
        # the kill at once, after the loss checks' marks at the end of each check.
        self._journal_state = journal_state
        # Halts, the kill, the loss checks' marks: what a restart restores (risk/state.py).
        self.risk_state = RiskState()
        self.vetoes: dict[str, int] = dict.fromkeys(capitals, 0)
        self._sent: dict[str, deque[int]] = {name: deque() for name in capitals}
        self._sent_all: deque[int] = deque()
        self._last_veto: dict[str, str] = {}

    # -- the state, read-only (written through halt/kill/the loss checks, or restored) --------
    @property
    def halted(self) -> dict[str, str]:
        """Halted strategies and why (a daily-loss halt ends with its UTC day)."""
        return {k: h.reason for k, h in self.risk_state.halts.items() if k != GLOBAL}

    @property
    def halted_at(self) -> dict[str, int]:
        """When each halt happened (ns, the clock's time)."""
        return {k: h.ts_ns for k, h in self.risk_state.halts.items() if k != GLOBAL}

    @property
    def global_halt(self) -> str | None:
        halt = self.risk_state.halts.get(GLOBAL)
        return None if halt is None else halt.reason

    @property
    def global_halt_at(self) -> int | None:
        halt = self.risk_state.halts.get(GLOBAL)
        return None if halt is None else halt.ts_ns

    @property
    def killed(self) -> str | None:
        return self.risk_state.killed

    @property
    def daily_halt_day(self) -> dict[str, int]:
        """Daily-loss halts (GLOBAL: the global one): the UTC day each happened on. The limit is
        per UTC day, so such a halt ends when the next day's first mark comes (a drawdown, a
        crash or the kill switch stays until a human acts)."""
        return {k: h.daily_day for k, h in self.risk_state.halts.items() if h.daily_day is not None}

    @property
    def marks(self) -> dict[str, Mark]:
        """Each key's loss-check state (its UTC day, the day's start equity, the peak)."""
        return dict(self.risk_state.marks)

    def restore(self, state: RiskState, orders: list[tuple[str, int]], now_ns: int) -> None:
        """A resumed run: the journaled state, and the order-rate windows rebuilt from the
        orders (strategy, time) sent in the minute before ``now_ns``, oldest first."""
        self.risk_state = state
        for strategy, ts_ns in orders:
            if now_ns - ts_ns < MINUTE_NS:
                self.order_sent(strategy, ts_ns)

    def journal_state(self, now_ns: int) -> None:
        """Journal the state (a ``risk_state`` document) if it changed since the last one."""
        if self.risk_state.dirty and self._journal_state is not None:
            self.risk_state.dirty = False
            self._journal_state(self.risk_state.doc(now_ns))

    # -- orders ---------------------------------------------------------------------------
    def check(
        self,
        intent: OrderIntent,
        *,
        now_ns: int,
        last_trade_price: float | None,
        last_trade_ns: int | None,
        gross_notional_after: float,
    ) -> str | None:
        """None when the order may go; otherwise the veto reason (emitted and counted)."""
        reason = self._reason(intent, now_ns, last_trade_price, last_trade_ns, gross_notional_after)
        if reason is not None:
            self._veto(intent, reason, now_ns)
        else:
            self._last_veto.pop(intent.strategy, None)  # the veto state ended
        return reason

    def _reason(
        self,
        intent: OrderIntent,
        now_ns: int,
        last_price: float | None,
        last_ns: int | None,
        gross_after: float,
    ) -> str | None:
        g = self.config.global_
        lim = self.config.for_strategy(intent.strategy)
        name = intent.strategy
        if intent.qty <= 0 or intent.price <= 0:
            return f"bad order: qty {intent.qty} price {intent.price}"
        if intent.reduces:
            # An exit: closing risk is never blocked (sizes above the venue's maximum are
            # split by the router; it is sent reduce-only, so it can never open a position).
            return None
        if self.killed is not None and not intent.reduces:
            return f"kill switch: {self.killed}"
        if self.global_halt is not None and not intent.reduces:
            return f"global halt: {self.global_halt}"
        if name in self.halted and not intent.reduces:
            return f"strategy halted: {self.halted[name]}"
        if last_price is None or last_ns is None:
            return "no market data yet"
        age_s = (now_ns - last_ns) / NS_PER_S
        if age_s > g.max_data_age_s:
            return f"stale market data: last trade {age_s:.1f} s ago > {g.max_data_age_s} s"
        band = abs(intent.price / last_price - 1.0) * 1e4
        if band > g.price_band_bps:
            return f"price {intent.price:.2f} is {band:.0f} bps from the reference {last_price:.2f} > {g.price_band_bps} bps"
        if intent.uses_forecast:
            if intent.forecast_age_s is None:
                return "no forecast"
            if intent.forecast_age_s > g.max_forecast_age_s:
                return f"stale forecast: {intent.forecast_age_s:.1f} s > {g.max_forecast_age_s} s"
        if intent.notional > lim.max_order_notional:
            return f"order notional {intent.notional:,.0f} > {lim.max_order_notional:,.0f}"
        pos_notional = abs(intent.position_after) * intent.price
        if pos_notional > lim.max_position_notional * (1 + 1e-9):
            return f"position notional {pos_notional:,.0f} > {lim.max_position_notional:,.0f}"
        if gross_after > g.max_gross_notional:
            return f"gross notional {gross_after:,.0f} > {g.max_gross_notional:,.0f}"
        sent = self._sent.setdefault(name, deque())
        _trim(sent, now_ns)
        if len(sent) >= lim.max_orders_per_minute:
            return (
                f"order rate: {len(sent)} orders in the last minute >= {lim.max_orders_per_minute}"
            )
        _trim(self._sent_all, now_ns)
        if len(self._sent_all) >= g.max_orders_per_minute:
            return f"global order rate: {len(self._sent_all)} in the last minute"
        return None

    def order_sent(self, strategy: str, now_ns: int) -> None:
        self._sent.setdefault(strategy, deque()).append(now_ns)
        self._sent_all.append(now_ns)

    def _veto(self, intent: OrderIntent, reason: str, now_ns: int) -> None:
        self.vetoes[intent.strategy] = self.vetoes.get(intent.strategy, 0) + 1
        # One event per distinct veto state: the same reason (numbers masked) on every bar is
        # the same state; it ends when an order of the strategy passes.
        key = veto_state(reason)
        if self._last_veto.get(intent.strategy) == key:
            return
        self._last_veto[intent.strategy] = key
        self._emit(
            {
                "type": "veto",
                "strategy": intent.strategy,
                "reason": reason,
                "ts_ns": now_ns,
                "side": intent.side,
                "qty": intent.qty,
                "price": intent.price,
                "vetoes_so_far": self.vetoes[intent.strategy],
            }
        )

    # -- halts ----------------------------------------------------------------------------
    def halt(
        self, strategy: str, reason: str, now_ns: int, *, daily_day: int | None = None
    ) -> None:
        if strategy in self.risk_state.halts:
            return
        self.risk_state.set_halt(strategy, Halt(reason, now_ns, daily_day))
        logger.warning("strategy %s halted: %s", strategy, reason)
        self._emit({"type": "halt", "strategy": strategy, "reason": reason, "ts_ns": now_ns})
        self.journal_state(now_ns)

    def halt_all(self, reason: str, now_ns: int, *, daily_day: int | None = None) -> None:
        if GLOBAL not in self.risk_state.halts:
            self.risk_state.set_halt(GLOBAL, Halt(reason, now_ns, daily_day))
            logger.warning("global halt: %s", reason)
            self._emit({"type": "global_halt", "strategy": None, "reason": reason, "ts_ns": now_ns})
            self.journal_state(now_ns)

    def kill(
        self, reason: str, now_ns: int, *, by: str = "?", verified: bool | None = None
    ) -> None:
        """Engage (journaled with who engaged it and whether its signature verified)."""
        if self.killed is None:
            self.risk_state.set_kill(reason, now_ns)
            self._emit(
                {
                    "type": "kill",
                    "strategy": None,
                    "reason": reason,
                    "ts_ns": now_ns,
                    "by": by,
                    "verified": verified,
                }
            )
            self.journal_state(now_ns)

    def unkill(
        self, now_ns: int, *, by: str = "?", verified: bool | None = None, reason: str = ""
    ) -> None:
        if self.killed is not None:
            self.risk_state.set_kill(None, None)
            self._emit(
                {
                    "type": "kill_released",
                    "strategy": None,
                    "reason": reason,
                    "ts_ns": now_ns,
                    "by": by,
                    "verified": verified,
                }
            )
            self.journal_state(now_ns)

    def release_refused(self, reason: str, now_ns: int, *, by: str = "?") -> None:
        """A release the worker could not verify: ignored (still killed), and journaled."""
        logger.warning("kill switch release refused (%s): %s", by, reason)
        self._emit(
            {
                "type": "kill_release_refused",
                "strategy": None,
                "reason": reason,
                "ts_ns": now_ns,
                "by": by,
                "verified": False,
            }
        )

    def on_equity(self, strategy: str, equity: float, now_ns: int) -> None:
        """Daily-loss and drawdown halts for one book (called on each equity snapshot)."""
        lim = self.config.for_strategy(strategy)
        capital = self.capitals.get(strategy, equity)
        self._loss_checks(strategy, equity, capital, lim.max_daily_loss, lim.max_drawdown, now_ns)

    def on_total_equity(self, equity: float, now_ns: int) -> None:
        g = self.config.global_
        capital = sum(self.capitals.values())
        self._loss_checks(GLOBAL, equity, capital, g.max_daily_loss, g.max_drawdown, now_ns)

    def _loss_checks(
        self,
        key: str,
        equity: float,
        capital: float,
        max_daily_loss: float,
        max_drawdown: float,
        now_ns: int,
    ) -> None:
        day = now_ns // DAY_NS
        before = self.risk_state.marks.get(key)
        if before is None or before.day != day:
            start = equity
            halt = self.risk_state.halts.get(key)
            if halt is not None and halt.daily_day is not None:
                self._release_daily(key, now_ns)
        else:
            start = before.start
        peak = max(before.peak if before is not None else self._first_peak(key, equity), equity)
        self.risk_state.advance(key, Mark(day, start, peak))
        daily, drawdown = loss_measures(start, peak, equity, capital)
        if not loss_breach(daily, drawdown, max_daily_loss, max_drawdown):
            return
        daily_breach = daily > max_daily_loss
        if daily_breach:
            reason = f"daily loss {daily:.3%} > {max_daily_loss:.2%}"
        else:
            reason = f"drawdown {drawdown:.3%} > {max_drawdown:.2%}"
        halt = self.risk_state.halts.get(key)
        if halt is None:
            # A daily-loss halt ends with its UTC day; a drawdown halt stays.
            on = day if daily_breach else None
            if key == GLOBAL:
                self.halt_all(reason, now_ns, daily_day=on)
            else:
                self.halt(key, reason, now_ns, daily_day=on)
        elif not daily_breach and halt.daily_day is not None:
            # Halted for the day, now in drawdown too: that does not end with the day.
            self.risk_state.set_halt(key, Halt(halt.reason, halt.ts_ns, None))

    def _first_peak(self, key: str, equity: float) -> float:
        """The peak before any mark: a book's capital, the total's first mark."""
        return self.capitals.get(key, equity) if key != GLOBAL else equity

    def _release_daily(self, key: str, now_ns: int) -> None:
        """A new UTC day ends a daily-loss halt (journaled as ``halt_released``)."""
        halt = self.risk_state.halts[key]
        self.risk_state.set_halt(key, None)
        reason = halt.reason
        logger.warning("%s: a new UTC day ends the halt (%s)", _who(key), reason)
        self._emit(
            {
                "type": "halt_released",
                "strategy": None if key == GLOBAL else key,
                "reason": f"new UTC day: the daily loss limit starts again (halted for {reason})",
                "ts_ns": now_ns,
            }
        )
        self.journal_state(now_ns)

    def next_daily_release_ns(self) -> int | None:
        """When the earliest daily-loss halt ends (the next UTC midnight after it), if any."""
        if not self.daily_halt_day:
            return None
        return (min(self.daily_halt_day.values()) + 1) * DAY_NS

    def equity_path(
        self, strategy: str | None, ts_ns: np.ndarray, equity: np.ndarray
    ) -> EquityPath:
        """The daily-loss and drawdown checks at many marks at once (a bar backtest marks every
        bar between its events): the marks :meth:`on_equity` (``None``: the total,
        :meth:`on_total_equity`) would leave at each mark in turn, judged by the same rule
        (:func:`loss_breach`), without changing any state until :meth:`EquityPath.commit`.
        ``breach`` is the first mark that would halt (the exact check there halts)."""
        if strategy is None:
            key, g = GLOBAL, self.config.global_
            capital = sum(self.capitals.values())
            daily_max, dd_max = g.max_daily_loss, g.max_drawdown
        else:
            key, lim = strategy, self.config.for_strategy(strategy)
            capital = self.capitals.get(strategy, float(equity[0]))
            daily_max, dd_max = lim.max_daily_loss, lim.max_drawdown
        n = len(equity)
        before = self.risk_state.marks.get(key)
        carried = before.start if before is not None else float(equity[0])
        first_day = int(ts_ns[0]) // DAY_NS
        day: np.ndarray | int
        start: np.ndarray | float
        if int(ts_ns[-1]) // DAY_NS == first_day:
            # The span lies in one UTC day (most spans: a block between fills): one day, one
            # start, no per-mark arrays for them (the same values as the general case).
            day = first_day
            start = carried if before is not None and before.day == first_day else float(equity[0])
        else:
            day = ts_ns // DAY_NS
            new = np.empty(n, dtype=bool)
            new[0] = before is None or before.day != first_day
            new[1:] = day[1:] != day[:-1]
            days = np.cumsum(new) - 1  # which of the span's new days each mark is in (-1: none)
            firsts = equity[new]
            start = (
                np.where(days >= 0, firsts[np.maximum(days, 0)], carried)
                if firsts.size
                else np.full(n, carried)
            )
        first_peak = before.peak if before is not None else self._first_peak(key, float(equity[0]))
        peak = np.maximum.accumulate(equity)
        np.maximum(peak, first_peak, out=peak)
        daily, drawdown = loss_measures(start, peak, equity, capital)
        bad = loss_breach(daily, drawdown, daily_max, dd_max)
        first = int(np.argmax(bad))
        breach = first if bad[first] else n
        return EquityPath(self.risk_state, key, day, start, peak, breach)

    def state(self) -> dict[str, Any]:
        return {
            "halted": self.halted,
            "halted_at": self.halted_at,
            "global_halt": self.global_halt,
            "global_halt_at": self.global_halt_at,
            "killed": self.killed,
            "vetoes": dict(self.vetoes),
        }


@dataclass
class EquityPath:
    """Loss-check marks along a run of marks (see :meth:`RiskManager.equity_path`)."""

    state: RiskState
    key: str
    day: np.ndarray | int  # an int: every mark of the path is in this UTC day
    start: np.ndarray | float  # a float: the day's start equity at every mark
    peak: np.ndarray
    breach: int

    def commit(self, k: int) -> None:
        """The marks :meth:`RiskManager.on_equity` would leave after marks ``0..k``."""
        day = self.day if isinstance(self.day, int) else int(self.day[k])
        start = self.start if isinstance(self.start, float) else float(self.start[k])
        self.state.advance(self.key, Mark(day, start, float(self.peak[k])))


def _who(key: str) -> str:
    return "global" if key == GLOBAL else f"strategy {key}"


def _trim(sent: deque[int], now_ns: int) -> None:
    while sent and now_ns - sent[0] >= MINUTE_NS:
        sent.popleft()
