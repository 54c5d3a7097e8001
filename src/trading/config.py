"""The arena file (TOML): symbol, capital, the strategy set and the risk limits.

See configs/arena.example.toml. Everything is validated at load time; a bad file gets one
clear error naming the offending key, and nothing starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cryptoarena.trading.exchange.queues import QueueModel
from cryptoarena.trading.risk.limits import RiskConfig
from cryptoarena.trading.strategies import STRATEGY_TYPES, Strategy, build_strategy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ACCOUNT_PATTERN = r"^[a-z0-9]+(_[a-z0-9]+)*$"  # ARENA_ACCOUNTS__<NAME>__…: no "__" inside


class ArenaConfigError(ValueError):
    """The arena file is missing or wrong; the message says where."""


class StrategySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    # The Bybit (sub-)account this strategy trades on with a Bybit exchange (keys from
    # ARENA_ACCOUNTS__<NAME>__API_KEY/_SECRET); none: paper on the same tape. Paper mode ignores it.
    account: str | None = Field(default=None, max_length=32, pattern=ACCOUNT_PATTERN)

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in STRATEGY_TYPES:
            raise ValueError(
                f"unknown strategy kind {kind!r} (known: {', '.join(sorted(STRATEGY_TYPES))})"
            )
        return kind

    @model_validator(mode="after")
    def _params_valid(self) -> StrategySpec:
        try:
            STRATEGY_TYPES[self.kind].config_type.model_validate(self.params)
        except ValidationError as exc:  # named by the key under params, one line per problem
            raise ValueError(
                "; ".join(
                    ".".join(["params", *(str(p) for p in err["loc"])])
                    + ": "
                    + str(err["msg"]).removeprefix("Value error, ")
                    for err in exc.errors(include_url=False)
                )
            ) from None
        return self

    def build(self) -> Strategy[Any]:
        return build_strategy(self.name, self.kind, self.params)


class ArenaSettings(BaseModel):
    # Enum values as plain strings: the run record stores this model as a document.
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=True)

    symbol: str = Field(default="BTCUSDT", pattern=r"^[A-Z0-9]{2,20}$")
    # Every book starts with the same capital (USDT).
    capital: float = Field(default=10_000.0, gt=0.0)
    # Fee the strategies assume per side (the exchange charges its own; 0.055 % is Bybit taker).
    fee_rate: float = Field(default=0.00055, ge=0.0, lt=0.01)
    # The maker fee per side maker strategies assume (Bybit linear: 0.02 %).
    maker_fee_rate: float = Field(default=0.0002, ge=-0.01, lt=0.01)
    # Queue position of resting orders on the paper venue (docs/exchange.md, "Queue position"):
    # the conservative tape estimate unless asked otherwise; recorded with the run, in its report.
    # "l2"/"l3" need a recorded book in the replay (the session refuses them without one).
    queue_model: QueueModel = QueueModel.TAPE
    # Ignore target changes smaller than this fraction of equity (no churn on rounding).
    min_trade_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    equity_every_s: float = Field(default=5.0, gt=0.0)
    # A backtest journals about 1,440 equity snapshots per strategy over its span, never
    # coarser than this (a day: one a minute instead of 17,280) nor finer than equity_every_s;
    # limits are still checked every equity_every_s.
    backtest_equity_every_s: float = Field(default=60.0, gt=0.0)
    # The per-strategy summary read models (what live views read) are refreshed this often.
    summary_every_s: float = Field(default=30.0, gt=0.0)
    order_timeout_s: float = Field(default=10.0, gt=0.0)
    # Real venues: an order waits this long for its journal record to become durable (database
    # or fsync'd spill) before it leaves the process; after that it is vetoed, never sent.
    durable_wait_s: float = Field(default=10.0, gt=0.0)
    flatten_on_stop: bool = False
    flatten_on_kill: bool = True
    # AI forecasts: request timeout and the age beyond which the client refuses them.
    forecast_timeout_s: float = Field(default=0.5, gt=0.0)
    forecast_max_age_s: float = Field(default=2.5, gt=0.0)
    forecast_window: int = Field(default=256, ge=16, le=4096)
    # With a Bybit exchange: the account of strategies that name none (else they trade paper).
    default_account: str | None = Field(default=None, max_length=32, pattern=ACCOUNT_PATTERN)


class ArenaConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    arena: ArenaSettings = ArenaSettings()
    risk: RiskConfig = RiskConfig()
    strategies: tuple[StrategySpec, ...] = Field(alias="strategy", min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> ArenaConfig:
        names = [s.name for s in self.strategies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique; repeated: {dupes}")
        unknown = set(self.risk.overrides) - set(names)
        if unknown:
            raise ValueError(f"risk overrides for unknown strategies: {sorted(unknown)}")
        if "paper" in {s.account for s in self.strategies} | {self.arena.default_account}:
            raise ValueError('account name "paper" is reserved (leave account out to trade paper)')
        by_account: dict[str, list[str]] = {}
        for name, account in self.accounts().items():
            if account is not None:
                by_account.setdefault(account, []).append(name)
        shared = {a: n for a, n in by_account.items() if len(n) > 1}
        if shared:
            listed = "; ".join(f"account {a!r}: {', '.join(n)}" for a, n in sorted(shared.items()))
            raise ValueError(
                f"strategies bound to the same account would net their positions ({listed}); "
                "give each its own account, or none to trade paper"
            )
        return self

    def accounts(self) -> dict[str, str | None]:
        """Strategy name → the Bybit account it trades on (None: paper), in config order."""
        default = self.arena.default_account
        return {s.name: s.account or default for s in self.strategies}

    def build_strategies(self) -> list[Strategy[Any]]:
        return [spec.build() for spec in self.strategies]


def _where(loc: tuple[int | str, ...]) -> str:
    """``strategy.2.name`` for the second [[strategy]] table: counted from 1, as a user does."""
    if len(loc) > 1 and loc[0] == "strategy" and isinstance(loc[1], int):
        loc = (loc[0], loc[1] + 1, *loc[2:])
    return ".".join(str(p) for p in loc) or "(top)"


def parse_arena_config(data: dict[str, Any], source: str = "<config>") -> ArenaConfig:
    try:
        return ArenaConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # A bad strategy also leaves the tuple "too short" (pydantic drops it): say it once.
        bad_strategy = any(len(e["loc"]) > 1 and e["loc"][0] == "strategy" for e in errors)
        problems = "; ".join(
            f"{_where(err['loc'])}: " + str(err["msg"]).removeprefix("Value error, ")
            for err in errors
            if not (bad_strategy and err["loc"] == ("strategy",) and err["type"] == "too_short")
        )
        raise ArenaConfigError(f"{source}: {problems}") from None


def load_arena_config(path: Path) -> ArenaConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ArenaConfigError(f"arena config not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ArenaConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_arena_config(data, str(path))


# The AI arms' own hurdles (bps of forecast move over 15 s), as in configs/arena.example.toml: the
# demo's champion forecasts moves of a fraction of a basis point (median 0.18, 95th percentile
# 0.46 bps on the shipped day's last hours), so the fee hurdle (12 bps taker, 5 bps maker round
# trip) would keep both arms flat all day.
AI_THRESHOLDS_BPS = {"taker": 0.4, "maker": 0.25}


def all_strategies_config(
    bar_size: str = "1m",
    *,
    ai_thresholds_bps: dict[str, float] | None = None,
    **arena: Any,
) -> ArenaConfig:
    """Every strategy family with its defaults (tests, demo, benchmark), and the AI arm twice:
    ``ai_taker`` (market orders) and ``ai_maker`` (PostOnly quotes at the touch), each with its
    ``threshold_bps``; classical strategies on ``bar_size`` bars (short bars make a few
    minutes of replay enough to see them trade)."""
    b = bar_size
    thresholds = AI_THRESHOLDS_BPS | (ai_thresholds_bps or {})
    specs = [
        {
            "name": "sma_cross",
            "kind": "sma_cross",
            "params": {"fast": 5, "slow": 20, "bar_size": b},
        },
        {"name": "macd", "kind": "macd", "params": {"bar_size": b}},
        {"name": "rsi", "kind": "rsi_reversion", "params": {"bar_size": b}},
        {"name": "bollinger", "kind": "bollinger", "params": {"bar_size": b}},
        {"name": "donchian", "kind": "donchian", "params": {"bar_size": b}},
        {"name": "vwap", "kind": "vwap_reversion", "params": {"bar_size": b, "period": 30}},
        {"name": "buy_hold", "kind": "buy_and_hold"},
        {"name": "naive", "kind": "naive_forecaster"},
        *(
            {
                "name": f"ai_{style}",
                "kind": "ai_forecast",
                "params": {"execution": style, "threshold_bps": thresholds[style]},
            }
            for style in ("taker", "maker")
        ),
    ]
    return parse_arena_config({"arena": arena, "strategy": specs}, "<all strategies>")
