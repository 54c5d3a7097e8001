"""One switch-on for the fake Bybit's private side: REST + private WS + matching, shared state.

account = FakeAccount(keys={"key": "secret"})
with FakeBybit(plugins=account.plugins) as fake:
    account.trade(real_trades)          # the tape: public pushes, matching, private pushes
    account.rest.requests               # everything the REST API received
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptoarena.clock import Clock
from cryptoarena.data.records import Trade
from cryptoarena.trading.exchange.venue import VenueConfig

from tests.fakes.bybit_matching import FakeMatching
from tests.fakes.bybit_private_ws import FakePrivateWs
from tests.fakes.bybit_rest import FakeRest
from tests.fakes.bybit_server import Plugin

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
