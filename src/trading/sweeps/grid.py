"""A sweep's grid: one strategy kind, parameter lists and replay spans, from TOML and/or options.

See configs/sweep.example.toml. The grid is the product of every parameter list and the spans;
each point is one backtest of one strategy. Everything is validated before anything runs: a bad
grid (unknown key, a value that is not a list, a point the strategy's config refuses, too many
points) raises :class:`SweepError` with one line that says where.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path
from typing import Any

from cryptoarena.trading.config import (
    ArenaConfig,
    ArenaConfigError,
    load_arena_config,
    parse_arena_config,
)
from cryptoarena.trading.strategies import STRATEGY_TYPES
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_POINTS = 10_000  # a typo like a 1..10000 list times another should not start a month of work


class SweepError(ValueError):
    """The grid is wrong or cannot run; the message says where."""


class Span(BaseModel):
    """A slice of the replay file: start this many minutes in, for this many (None: to the end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_minute: float = Field(default=0.0, ge=0.0)
    minutes: float | None = Field(default=None, gt=0.0)

    def label(self) -> str:
        end = "end" if self.minutes is None else f"{self.start_minute + self.minutes:g}"
        return f"{self.start_minute:g}-{end} min"


class SweepSpec(BaseModel):
    """What a sweep file holds (top-level keys of the TOML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: str
    # Capital, fees, snapshot interval and risk limits from this arena file (default: built-ins).
    arena: Path | None = None
    # The trade file to replay (default: the shipped real day).
    replay_file: Path | None = None
    experiment: str = "cryptoarena-sweeps"
    params: dict[str, Any] = Field(default_factory=dict)  # the same for every point
    grid: dict[str, list[Any]] = Field(default_factory=dict)  # one list per swept parameter
    span: list[Span] = Field(default_factory=lambda: [Span()])
    skip_invalid: bool = False  # drop points the strategy refuses (fast >= slow) instead of failing

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in STRATEGY_TYPES:
            raise ValueError(f"unknown strategy kind {kind!r} (known: {', '.join(STRATEGY_TYPES)})")
        if STRATEGY_TYPES[kind].uses_forecast:
            raise ValueError(f"{kind!r} needs a forecaster; sweeps run classical strategies only")
        return kind

    @field_validator("grid")
    @classmethod
    def _lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key} is an empty list")
            if len({repr(v) for v in values}) != len(values):
                raise ValueError(f"grid.{key} repeats a value: {values}")
        return grid

    @field_validator("span")
    @classmethod
    def _spans(cls, spans: list[Span]) -> list[Span]:
        if not spans:
            raise ValueError("give at least one span (or leave span out: the whole file)")
        if len(set(spans)) != len(spans):
            raise ValueError("the same span is listed twice")
        return spans


class GridPoint(BaseModel):
    """One backtest of the sweep: the strategy's full parameters on one span."""

    model_config = ConfigDict(frozen=True)

    point_id: str
    params: dict[str, Any]
    swept: dict[str, Any]  # only the swept values (for labels and MLflow params)
    span: Span

    def label(self) -> str:
        text = " ".join(f"{k}={v}" for k, v in self.swept.items())
        return f"{text} [{self.span.label()}]" if text else self.span.label()


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )


def parse_spec(data: dict[str, Any], source: str = "<sweep>") -> SweepSpec:
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SweepError(f"{source}: {_problems(exc)}") from None
    both = sorted(set(spec.params) & set(spec.grid))
    if both:
        raise SweepError(f"{source}: {both} are both fixed (params) and swept (grid)")
    return spec


def load_spec(path: Path) -> dict[str, Any]:
    """The raw TOML of a sweep file (validated by :func:`parse_spec` after CLI overrides)."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SweepError(f"sweep file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: not valid TOML: {exc}") from None


def parse_value(text: str) -> Any:
    """A command-line value as TOML would read it (5 → int, 2.5 → float, true → bool), else
    the text itself (1m → "1m")."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def parse_assignment(text: str, *, many: bool) -> tuple[str, Any]:
    """``key=v1,v2`` (many) or ``key=v`` from the command line."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        form = "key=v1,v2,..." if many else "key=value"
        raise SweepError(f"expected {form}, got {text!r}")
    if not many:
        return key, parse_value(rest)
    return key, [parse_value(v) for v in rest.split(",") if v.strip()]


def parse_span(text: str) -> dict[str, Any]:
    """``START:MINUTES`` or ``START:`` (to the end of the file), in minutes."""
    start, _, length = text.partition(":")
    try:
        return {
            "start_minute": float(start or 0),
            "minutes": float(length) if length.strip() else None,
        }
    except ValueError:
        raise SweepError(f"expected a span START:MINUTES (e.g. 0:60), got {text!r}") from None


def points(spec: SweepSpec, *, limit: int = MAX_POINTS) -> tuple[list[GridPoint], list[str]]:
    """The grid's points in a stable order (params first, spans last), and the labels of the
    points skipped as invalid (``skip_invalid``); a point the strategy's config refuses is an
    error otherwise."""
    keys = list(spec.grid)
    combos = list(itertools.product(*(spec.grid[k] for k in keys)))
    total = len(combos) * len(spec.span)
    if total > limit:
        raise SweepError(f"the grid has {total:,} points, more than the limit of {limit:,}")
    config_type = STRATEGY_TYPES[spec.kind].config_type
    out: list[GridPoint] = []
    skipped: list[str] = []
    for combo in combos:
        swept = dict(zip(keys, combo, strict=True))
        params = {**spec.params, **swept}
        try:
            config_type.model_validate(params)
        except ValidationError as exc:
            label = " ".join(f"{k}={v}" for k, v in swept.items()) or "(fixed params)"
            if not spec.skip_invalid:
                raise SweepError(
                    f"{spec.kind} refuses the point {label}: {_problems(exc)} "
                    "(set skip_invalid = true or --skip-invalid to leave such points out)"
                ) from None
            skipped.append(label)
            continue
        for span in spec.span:
            out.append(
                GridPoint(point_id=f"p{len(out):03d}", params=params, swept=swept, span=span)
            )
    if not out:
        raise SweepError(f"no valid point left in the grid ({len(skipped)} skipped)")
    return out, skipped


def base_arena(spec: SweepSpec) -> ArenaConfig:
    """The arena settings every point shares (its strategies are replaced by the point's)."""
    if spec.arena is None:
        return point_config(None, spec.kind, {}, "base")
    try:
        return load_arena_config(spec.arena)
    except ArenaConfigError as exc:
        raise SweepError(str(exc)) from None


def point_config(
    base: ArenaConfig | None, kind: str, params: dict[str, Any], name: str
) -> ArenaConfig:
    """A one-strategy arena config for one point, with the base file's arena and risk tables
    (risk overrides of the base file's strategy names do not apply to the point)."""
    data: dict[str, Any] = {"strategy": [{"name": name, "kind": kind, "params": params}]}
    if base is not None:
        data["arena"] = base.arena.model_dump()
        risk = base.risk.model_dump(by_alias=True)
        risk.pop("overrides", None)
        data["risk"] = risk
    try:
        return parse_arena_config(data, f"<sweep point {name}>")
    except ArenaConfigError as exc:
        raise SweepError(str(exc)) from None
