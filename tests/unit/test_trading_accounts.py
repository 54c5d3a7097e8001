"""Binding strategies to Bybit (sub-)accounts: config validation, credentials from the
environment only, and which exchange each strategy gets."""

from __future__ import annotations

from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.trading.config import ArenaConfigError, parse_arena_config
from cryptoarena.trading.engine.session import ExchangeKind, SessionError, make_exchange
from cryptoarena.trading.exchange.accounts import AccountsExchange
from cryptoarena.trading.exchange.bybit import BybitExchange
from cryptoarena.trading.exchange.paper import PaperExchange


def _config(*accounts: str | None, default: str | None = None) -> Any:
    specs = [
        {"name": f"s{i}", "kind": "buy_and_hold"} | ({"account": a} if a is not None else {})
        for i, a in enumerate(accounts)
    ]
    arena = {"default_account": default} if default else {}
    return parse_arena_config({"arena": arena, "strategy": specs}, "arena.toml")


def _settings(**accounts: dict[str, str]) -> Settings:
    return Settings(accounts=accounts)  # type: ignore[arg-type]


def test_bindings_follow_the_config_and_the_default_account() -> None:
    assert _config("a", None, "b").accounts() == {"s0": "a", "s1": None, "s2": "b"}
    assert _config("a", None, default="main").accounts() == {"s0": "a", "s1": "main"}


@pytest.mark.parametrize(
    ("accounts", "default", "needle"),
    [
        (("sma", "sma"), None, "account 'sma': s0, s1"),
        (("main", None), "main", "account 'main': s0, s1"),  # the default counts as a binding
        ((None, None), "main", "account 'main': s0, s1"),
    ],
)
def test_two_strategies_on_one_account_are_refused(
    accounts: tuple[str | None, ...], default: str | None, needle: str
) -> None:
    with pytest.raises(ArenaConfigError, match="would net their positions") as err:
        _config(*accounts, default=default)
    assert needle in str(err.value) and "arena.toml" in str(err.value)


@pytest.mark.parametrize("name", ["Main", "a__b", "has-dash", "", "x" * 33])
def test_account_names_fit_the_environment_variable_scheme(name: str) -> None:
    with pytest.raises(ArenaConfigError, match=r"strategy\.1\.account"):
        _config(name)


def test_paper_is_a_reserved_account_name() -> None:
    with pytest.raises(ArenaConfigError, match="reserved"):
        _config("paper")


def test_account_keys_come_from_the_environment_as_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARENA_ACCOUNTS__SMA_1__API_KEY", "k-123")
    monkeypatch.setenv("ARENA_ACCOUNTS__SMA_1__API_SECRET", "s-456")
    creds = Settings().accounts["sma_1"]
    assert creds.api_key is not None and creds.api_key.get_secret_value() == "k-123"
    assert "s-456" not in repr(Settings()) and "k-123" not in repr(Settings())


def test_missing_credentials_name_the_variable() -> None:
    settings = _settings(alpha={"api_key": "k", "api_secret": "s"}, beta={"api_key": "k2"})
    with pytest.raises(SessionError, match="ARENA_ACCOUNTS__BETA__API_SECRET is not set"):
        make_exchange(
            settings, _config("alpha", "beta"), ExchangeKind.BYBIT_DEMO, SimClock(0), False
        )
    with pytest.raises(SessionError, match="ARENA_ACCOUNTS__GAMMA__API_KEY is not set"):
        make_exchange(settings, _config("gamma"), ExchangeKind.BYBIT_DEMO, SimClock(0), False)


def test_one_exchange_per_account_and_paper_for_the_unbound() -> None:
    settings = _settings(alpha={"api_key": "ka", "api_secret": "sa"}, beta={"api_key": "kb", "api_secret": "sb"})  # fmt: skip
    config = _config("alpha", None, "beta", None)
    exchange = make_exchange(settings, config, ExchangeKind.BYBIT_TESTNET, SimClock(0), False)
    assert isinstance(exchange, AccountsExchange)
    assert exchange.bindings == {"s0": "alpha", "s1": "paper", "s2": "beta", "s3": "paper"}
    alpha, beta, paper = (exchange.members[n] for n in ("alpha", "beta", "paper"))
    assert isinstance(alpha, BybitExchange) and isinstance(beta, BybitExchange)
    assert alpha.settings.api_key is not None and alpha.settings.api_key.get_secret_value() == "ka"
    assert beta.settings.api_key is not None and beta.settings.api_key.get_secret_value() == "kb"
    assert alpha.name == "bybit-testnet"
    # The paper venue gives each unbound book its own account with the arena's capital.
    assert isinstance(paper, PaperExchange) and paper.config.initial_balance == 10_000
    # Orders route by the strategy index in the client id.
    assert exchange._for_client("abcd1234-02-inc-1") is beta
    assert exchange._for_client("abcd1234-03-inc-1") is paper
    assert exchange._for_client("not-ours") is None


def test_paper_mode_ignores_accounts_and_needs_no_keys() -> None:
    exchange = make_exchange(_settings(), _config("alpha", "beta"), ExchangeKind.PAPER, SimClock(0), False)  # fmt: skip
    assert isinstance(exchange, PaperExchange)


def test_no_keys_needed_when_every_strategy_trades_paper() -> None:
    exchange = make_exchange(_settings(), _config(None, None), ExchangeKind.BYBIT_DEMO, SimClock(0), False)  # fmt: skip
    assert isinstance(exchange, AccountsExchange) and set(exchange.members) == {"paper"}
