"""Settings for every part of cryptoarena, read from the environment (prefix ``ARENA_``).

Nested groups use ``__``: ``ARENA_MONGO__URI``, ``ARENA_BYBIT__API_KEY``; a named Bybit
(sub-)account's keys are ``ARENA_ACCOUNTS__<NAME>__API_KEY`` / ``__API_SECRET``. Settings are read once,
through :func:`get_settings`, never at import time, so tests and commands can set the
environment first. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

ENV_PREFIX = "ARENA_"


class ConfigError(RuntimeError):
    """A setting has a wrong value; the message names the environment variable."""


class BybitEnv(StrEnum):
    DEMO = "demo"
    TESTNET = "testnet"
    MAINNET = "mainnet"


class DataSettings(BaseModel):
    lake_dir: Path = Path("var/lake")
    sample_dir: Path = Path("data/sample")
    symbol: str = Field(default="BTCUSDT", pattern=r"^[A-Z0-9]{2,20}$")


class MlflowSettings(BaseModel):
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    experiment: str = "cryptoarena-forecaster"


def sqlite_db_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for servers and other stores)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///") :])


class MongoSettings(BaseModel):
    # Empty means the embedded store (one SQLite file, <embedded_dir>/<database>.sqlite3).
    uri: SecretStr | None = None
    database: str = "cryptoarena"
    embedded_dir: Path = Path("var/journal")
    # Where the journal spills while the database is unreachable (default: <embedded_dir>/spill).
    spill_dir: Path | None = None


class BybitSettings(BaseModel):
    env: BybitEnv = BybitEnv.DEMO
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    recv_window: int = Field(default=5000, gt=0, le=60_000)
    # Only for tests and self-hosted fakes: overrides the REST and WS base URLs.
    rest_url: str | None = None
    ws_public_url: str | None = None
    ws_private_url: str | None = None


class AccountSettings(BaseModel):
    """One named Bybit (sub-)account a strategy can be bound to (``account = "<name>"`` in the
    arena TOML); its keys come only from ``ARENA_ACCOUNTS__<NAME>__API_KEY`` / ``__API_SECRET``.
    Both are optional here so a half-set account fails only the session that uses it."""

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    model_name: str = "btcusdt-15s"
    poll_interval_s: float = Field(default=30.0, gt=0)
    admin_token: SecretStr | None = None
    url: str = "http://127.0.0.1:8000"
    # How the server runs the model: micro-batched on the event loop (default) or in one
    # inference thread, one thread call per request, or inline per request on the event loop
    # (see cryptoarena.serving.inference; bench/serving.py measures them).
    inference: Literal["batch", "batch_inline", "thread", "inline"] = "batch_inline"
    # Request bodies above this are refused with 413 before they are read (a 64-window batch
    # of 80 bars is ~1 MB; one window of the 4096-bar maximum ~0.8 MB).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # A request (headers and body) must arrive within this, or its connection is closed.
    request_timeout_s: float = Field(default=10.0, gt=0)
    # The GIL's switch interval in the dashboard's process. Its background threads (the live
    # poller, a long run's report) are CPU-bound; at Python's 5 ms default, every read a request
    # makes (each SQLite call releases the GIL) waits up to 5 ms to get it back (/api/status p99
    # 142 ms beside a month-long run's report at load ~3, 40 ms at 0.5 ms).
    switch_interval_ms: float = Field(default=0.5, gt=0, le=100)


class TradingSettings(BaseModel):
    # The strategy set and limits (TOML); see configs/arena.example.toml.
    config: Path = Path("configs/arena.example.toml")
    # Kill switch: a file every worker polls, so `arena kill` works across processes.
    kill_file: Path = Path("var/arena.kill")
    # Token that engaging/releasing the kill switch must present (CLI and dashboard).
    kill_token: SecretStr | None = None


class AlertSettings(BaseModel):
    """Operator alerts through apprise (see docs/operations.md): halts, the kill switch, feed
    gaps, journal outages, drift triggers, new champions."""

    # One apprise URL per target (json://, tgram://, discord://, slack://, mailto://…): a JSON
    # list, or URLs separated by spaces or commas. They hold tokens: secrets, never printed.
    urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    dedupe_s: float = Field(default=300.0, ge=0)  # the same alert again within this: dropped
    max_per_minute: int = Field(default=20, ge=1)

    @field_validator("urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            import json
            import re

            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("expected a JSON list of URLs") from None
            return [u for u in re.split(r"[\s,]+", text) if u]
        return value


class DashboardSettings(BaseModel):
    """``arena dashboard``: the read-only web view over the journal (see docs/dashboard.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Markdown pages (About / Rules / Updates), read at request time: a new file needs no build.
    site_dir: Path = Path("docs/site")
    # How often the live stream looks for new journal events (seconds).
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    # The MLflow UI people can open (e.g. http://127.0.0.1:5000), for links to drift runs.
    mlflow_ui_url: str | None = None
    # Wrong kill-switch tokens: this many within the window lock the switch (429) for a while.
    kill_max_failures: int = Field(default=5, ge=1)
    kill_failure_window_s: float = Field(default=60.0, gt=0)
    kill_lockout_s: float = Field(default=60.0, gt=0)
    # A request (headers and body) must arrive within this, or its connection is closed.
    request_timeout_s: float = Field(default=10.0, gt=0)
    # The GIL's switch interval in the dashboard's process. Its background threads (the live
    # poller, a long run's report) are CPU-bound; at Python's 5 ms default, every read a request
    # makes (each SQLite call releases the GIL) waits up to 5 ms to get it back (/api/status p99
    # 142 ms beside a month-long run's report at load ~3, 40 ms at 0.5 ms).
    switch_interval_ms: float = Field(default=0.5, gt=0, le=100)


class Settings(BaseSettings):
    """Everything configurable, with defaults that run on a bare machine."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )

    home: Path = Path(".")
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    # Everything logged, library chatter included (the console shows only the project's own
    # records and warnings); rotated at 10 MB, 3 kept.
    log_file: Path = Path("var/log/arena.log")
    data: DataSettings = DataSettings()
    mlflow: MlflowSettings = MlflowSettings()
    mongo: MongoSettings = MongoSettings()
    bybit: BybitSettings = BybitSettings()
    # Named Bybit (sub-)accounts, keyed by lower-case name (the environment is case-insensitive).
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    serving: ServingSettings = ServingSettings()
    trading: TradingSettings = TradingSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()


def _check_mongo_uri(settings: Settings) -> None:
    # pymongo reads "notauri" as a host name and fails 2 s later, deep in the journal. The value
    # may carry a password: the message never echoes it.
    uri = settings.mongo.uri.get_secret_value() if settings.mongo.uri else ""
    if uri and not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(
            f"invalid settings: {ENV_PREFIX}MONGO__URI must start with mongodb:// or "
            "mongodb+srv:// (e.g. mongodb://localhost:27017); unset it for the embedded journal"
        )


def _setting_known(model: type[BaseModel], path: list[str]) -> bool:
    """Whether ``path`` (lower-case parts of an ARENA_ name split at ``__``) names a setting."""
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    rest, kind = path[1:], field.annotation
    if not rest:
        return True  # a leaf, or a whole group given as JSON
    if get_origin(kind) is dict:  # named entries: ACCOUNTS__<NAME>__API_KEY
        kind, rest = get_args(kind)[1], rest[1:]
        if not rest:
            return True
    return isinstance(kind, type) and issubclass(kind, BaseModel) and _setting_known(kind, rest)


def _setting_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names += _setting_names(kind, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def secret_values(model: BaseModel) -> list[str]:
    """Every ``SecretStr`` value set in ``model`` (keys, tokens, alert URLs, the MongoDB URI),
    nested groups, lists and named accounts included: what the logs must never show."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            if text := value.get_secret_value():
                found.append(text)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(model)
    return found


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per ``ARENA_*`` variable that names no setting (with the closest name):
    pydantic-settings ignores them silently, so a typo (``ARENA_MONGO__URL``) would quietly
    run on the default."""
    env = os.environ if environ is None else environ
    known = _setting_names(Settings)
    problems = []
    for key in sorted(env):
        if not key.upper().startswith(ENV_PREFIX):
            continue
        if _setting_known(Settings, key[len(ENV_PREFIX) :].lower().split("__")):
            continue
        close = difflib.get_close_matches(key.upper(), known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{key} is not a setting and is ignored{hint}")
    return problems


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def load_settings() -> Settings:
    """Read the settings now; a wrong value raises ConfigError naming the variable(s)."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    _check_mongo_uri(settings)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
