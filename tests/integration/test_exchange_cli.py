"""``arena exchange check`` against the fake Bybit, configured only through the environment."""

from __future__ import annotations

import pytest
import typer
from cryptoarena.config import get_settings
from cryptoarena.trading.exchange.cli import register
from typer.testing import CliRunner

from tests.fakes.bybit_account import TEST_KEY, TEST_SECRET, FakeAccount
from tests.fakes.bybit_server import FakeBybit
from tests.fakes.tape import real_tape

pytestmark = pytest.mark.timeout(60)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    register(app)
    return app


@pytest.mark.parametrize("secret", [TEST_SECRET, "not-the-secret"])
def test_check_shows_account_state_or_one_clear_error(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = FakeAccount()
    with FakeBybit(plugins=account.plugins) as fake:
        account.trade(real_tape(10))
        for name, value in {
            "ARENA_BYBIT__ENV": "testnet",
            "ARENA_BYBIT__API_KEY": TEST_KEY,
            "ARENA_BYBIT__API_SECRET": secret,
            "ARENA_BYBIT__REST_URL": fake.http_url,
            "ARENA_BYBIT__WS_PRIVATE_URL": fake.http_url,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        result = CliRunner().invoke(_app(), ["exchange", "check"])
    if secret == TEST_SECRET:
        assert result.exit_code == 0, result.output
        assert "bybit-testnet: connected" in result.output
        assert "balance: 10000 USDT" in result.output
        assert "BTCUSDT: tick 0.1, step 0.001, min notional 5; position 0" in result.output
    else:
        assert result.exit_code == 1
        assert "10004" in result.output and TEST_KEY not in result.output
        assert "Traceback" not in result.output
