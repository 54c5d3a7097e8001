"""One switch-on for the fake Bybit's private side: REST + private WS + matching, shared state.

account = FakeAccount(keys={"key": "secret"})
with FakeBybit(plugins=account.plugins) as fake:
    account.trade(real_trades)          # the tape: public pushes, matching, private pushes
    account.rest.requests               # everything the REST API received
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from cryptoarena.clock import Clock
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.venue import VenueConfig

from tests.fakes.bybit_matching import FakeMatching
from tests.fakes.bybit_private_ws import FakePrivateWs
from tests.fakes.bybit_rest import FakeRest
from tests.fakes.bybit_server import FakeBybit, Plugin

TEST_KEY, TEST_SECRET = "fake-api-key-7Qx", "fake-api-secret-Zr9"


class FakeAccount:
    def __init__(
        self,
        keys: dict[str, str] | None = None,
        config: VenueConfig | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        keys = keys or {TEST_KEY: TEST_SECRET}
        self.matching = FakeMatching(config, clock=clock)
        self.rest = FakeRest(keys, self.matching)
        self.private_ws = FakePrivateWs(keys)

    @property
    def plugins(self) -> list[Plugin]:
        return [self.matching.plugin, self.rest.plugin, self.private_ws.plugin]

    def trade(self, trades: Sequence[Trade]) -> None:
        self.matching.trade(trades)

    def orders_created(self) -> int:
        return len(self.matching.venue.orders)


class FakeAccounts:
    """Several accounts on one fake server, as Bybit sub-accounts are: each has its own API key,
    wallet, positions and orders. A REST request goes to the account whose key signed it (an
    unknown key gets 10003 from the first); private pushes go only to the sockets that
    authenticated with that account's key.

    accounts = FakeAccounts({"a": ("key-a", "secret-a"), "b": ("key-b", "secret-b")})
    with FakeBybit(plugins=accounts.plugins) as fake:
        accounts.trade(real_trades)
        accounts["a"].rest.received("/v5/order/create")
    """

    def __init__(self, keys: dict[str, tuple[str, str]], config: VenueConfig | None = None) -> None:
        self.accounts = {
            name: FakeAccount({key: secret}, config) for name, (key, secret) in keys.items()
        }
        for name, account in self.accounts.items():
            account.matching.keys = {keys[name][0]}
        # One private socket endpoint for all: pybit authenticates after connecting.
        self.private_ws = FakePrivateWs({k: s for k, s in keys.values()})
        self.fake: FakeBybit | None = None

    def __getitem__(self, name: str) -> FakeAccount:
        return self.accounts[name]

    @property
    def plugins(self) -> list[Plugin]:
        return [self._plugin, self.private_ws.plugin]

    def _plugin(self, app: web.Application, fake: FakeBybit) -> None:
        self.fake = fake
        handlers = {name: self._routes(acc, fake) for name, acc in self.accounts.items()}
        fake.state["rest"] = next(iter(self.accounts.values())).rest
        for account in self.accounts.values():
            account.matching.plugin(app, fake)
        for route in handlers[next(iter(handlers))]:
            app.router.add_route(route[0], route[1], self._dispatch(route, handlers))

    @staticmethod
    def _routes(account: FakeAccount, fake: FakeBybit) -> dict[tuple[str, str], Any]:
        """The account's REST handlers, as its plugin would install them (on a scratch app)."""
        scratch = web.Application()
        account.rest.plugin(scratch, fake)
        return {
            (route.method, route.resource.canonical): route.handler
            for route in scratch.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }

    def _dispatch(
        self, route: tuple[str, str], handlers: dict[str, dict[tuple[str, str], Any]]
    ) -> Any:
        async def run(request: web.Request) -> web.StreamResponse:
            key = request.headers.get("X-BAPI-API-KEY", "")
            name = next((n for n, a in self.accounts.items() if key in a.rest.keys), None)
            response: web.StreamResponse = await handlers[name or next(iter(handlers))][route](
                request
            )
            return response

        return run

    def trade(self, trades: Sequence[Trade]) -> None:
        """The market trades once (public pushes); every account matches its own orders."""
        assert self.fake is not None, "install the plugins first"
        by_symbol: dict[str, list[Trade]] = {}
        for t in trades:
            by_symbol.setdefault(t.symbol, []).append(t)
        for symbol, batch in by_symbol.items():
            self.fake.push_trades(symbol, batch)
        for account in self.accounts.values():
            self.fake.call(lambda m=account.matching: m._match(trades))  # type: ignore[misc]
