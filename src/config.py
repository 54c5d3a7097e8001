"""Settings for every part of cryptoarena, read from the environment (prefix ``ARENA_``).

Nested groups use ``__``: ``ARENA_MONGO__URI``, ``ARENA_BYBIT__API_KEY``; a named Bybit
(sub-)account's keys are ``ARENA_ACCOUNTS__<NAME>__API_KEY`` / ``__API_SECRET``. Settings are read once,
through :func:`get_settings`, never at import time, so tests and commands can set the
environment first. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    artifact_root: Path = Path("mlruns/artifacts")
    experiment: str = "cryptoarena-forecaster"


class MongoSettings(BaseModel):
    # Empty means the embedded store (litemongo on SQLite) under ``embedded_dir``.
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


class TradingSettings(BaseModel):
    # The strategy set and limits (TOML); see configs/arena.example.toml.
    config: Path = Path("configs/arena.example.toml")
    # Kill switch: a file every worker polls, so `arena kill` works across processes.
    kill_file: Path = Path("var/arena.kill")
    # Token that engaging/releasing the kill switch must present (CLI and dashboard).
    kill_token: SecretStr | None = None


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
    data: DataSettings = DataSettings()
    mlflow: MlflowSettings = MlflowSettings()
    mongo: MongoSettings = MongoSettings()
    bybit: BybitSettings = BybitSettings()
    # Named Bybit (sub-)accounts, keyed by lower-case name (the environment is case-insensitive).
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    serving: ServingSettings = ServingSettings()
    trading: TradingSettings = TradingSettings()
    dashboard: DashboardSettings = DashboardSettings()


def _env_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def load_settings() -> Settings:
    """Read the settings now; a wrong value raises ConfigError naming the variable(s)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)
        )
        raise ConfigError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
