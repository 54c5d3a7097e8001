from __future__ import annotations

import pytest
from cryptoarena.config import BybitEnv, ConfigError, get_settings, load_settings


def test_defaults_need_nothing() -> None:
    s = load_settings()
    assert s.mongo.uri is None
    assert s.mlflow.tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert s.bybit.env is BybitEnv.DEMO


def test_nested_env_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_MONGO__URI", "mongodb://user:hunter2@db:27017")
    monkeypatch.setenv("ARENA_BYBIT__API_SECRET", "s3cr3t-value")
    monkeypatch.setenv("ARENA_BYBIT__ENV", "testnet")
    s = get_settings()
    assert s.mongo.uri is not None and "hunter2" in s.mongo.uri.get_secret_value()
    assert "hunter2" not in repr(s) and "s3cr3t-value" not in repr(s)
    assert s.bybit.env is BybitEnv.TESTNET


def test_wrong_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_SERVING__PORT", "not-a-port")
    with pytest.raises(ConfigError, match="ARENA_SERVING__PORT"):
        load_settings()


def test_settings_are_read_once_and_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_LOG_LEVEL", "DEBUG")
    first = get_settings()
    monkeypatch.setenv("ARENA_LOG_LEVEL", "ERROR")
    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().log_level == "ERROR"
