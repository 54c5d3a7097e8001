"""``arena exchange``: check the configured Bybit account from the command line.

Registered through ``register(app)`` like every area's cli module (add
``cryptoarena.trading.exchange.cli`` to ``COMMAND_MODULES`` in src/cli.py).
"""

from __future__ import annotations

import asyncio
import logging

import typer
from cryptoarena.config import get_settings
from cryptoarena.trading.exchange.errors import ExchangeError

logger = logging.getLogger(__name__)

exchange_app = typer.Typer(
    help="Exchange accounts: check Bybit keys and state.", no_args_is_help=True
)


async def _check(symbols: tuple[str, ...], private_stream: bool) -> list[str]:
    from cryptoarena.trading.exchange.bybit import BybitExchange, BybitExchangeConfig

    settings = get_settings()
    ex = BybitExchange(
        settings.bybit, BybitExchangeConfig(symbols=symbols, private_stream=private_stream)
    )
    lines = [f"{ex.name}: connected (clock skew {{skew:+.3f}} s)"]
    try:
        await ex.start()
        lines[0] = lines[0].format(skew=ex.clock_skew_s)
        bal = await ex.balance()
        lines.append(f"balance: {bal.wallet} {bal.coin} (available {bal.available})")
        for symbol in symbols:
            rules = await ex.instrument(symbol)
            pos = await ex.position(symbol)
            orders = await ex.open_orders(symbol)
            lines.append(
                f"{symbol}: tick {rules.tick_size}, step {rules.qty_step}, min notional "
                f"{rules.min_notional}; position {pos.qty} @ {pos.avg_price}; "
                f"{len(orders)} open order(s)"
            )
    finally:
        await ex.close()
    return lines


@exchange_app.command("check")
def check(
    symbol: list[str] = typer.Option(["BTCUSDT"], "--symbol", "-s", help="Symbols to show."),
    no_stream: bool = typer.Option(False, help="Skip the private WebSocket check."),
) -> None:
    """Sign in to Bybit (ARENA_BYBIT__ENV/API_KEY/API_SECRET) and show balance, positions, orders."""
    try:
        lines = asyncio.run(_check(tuple(symbol), not no_stream))
    except ExchangeError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.add_typer(exchange_app, name="exchange")
