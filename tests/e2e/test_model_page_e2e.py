"""The Model page in a real browser over a registry that changes while the dashboard runs (issue
#23): the dashboard reads the empty registry, then the demo's model step trains and crowns v1
(a bootstrap champion when the gate refuses it). The first request after that shows v1; the page
says how v1 became champion (the registry's promotion message, not the gate's "refused …"); the
versions table shows the test-split skills and fits its card at desktop widths with no header
clipped; the forecast fan has a readable share of its chart and round, evenly spaced time ticks.
At 1440, 1920 and 390 px; screenshots to $ARENA_SCREENSHOTS or a pytest temporary folder."""

from __future__ import annotations

import io
import itertools
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.config import Settings
from rich.console import Console

from tests.e2e.test_dashboard_e2e import Watched, _free_port, browser, running_dashboard
from tests.e2e.test_dashboard_layout import OVERFLOWS
from tests.integration.dashboard_kit import backtest_journal
from tests.integration.trading_kit import ROOT, arena_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
__all__ = ["browser"]  # the shared Playwright browser fixture

# Every header's text inside its cell, the versions table within its scroll region (desktop),
# and where the "Registered" header ends against the card.
TABLE = """(phone) => {
  const wrap = document.querySelector('#h-versions').closest('.card').querySelector('.table-wrap')
  const clipped = [...wrap.querySelectorAll('th')].filter((th) => th.scrollWidth > th.clientWidth + 1)
    .map((th) => th.textContent)
  const registered = [...wrap.querySelectorAll('th')].find((th) => th.textContent === 'Registered')
  return { clipped, headers: [...wrap.querySelectorAll('th')].map((th) => th.textContent),
           hidden: wrap.scrollWidth - wrap.clientWidth,
           past: registered.getBoundingClientRect().right - wrap.getBoundingClientRect().right }
}"""

# The fan's width against the plot's, and the time-axis labels (below the plot, not the titles).
FAN = """() => {
  const svg = document.querySelector('figure.fan svg')
  const band = svg.querySelector('.fan-band').getBoundingClientRect()
  const grid = [...svg.querySelectorAll('line')].find((l) => l.getAttribute('stroke') === '#e4e7eb')
  const plot = grid.getBoundingClientRect()
  const texts = [...svg.querySelectorAll('text')].map((t) => t.textContent)
  return { share: band.width / plot.width, texts }
}"""


def _models(base: str) -> dict[str, Any]:
    """/api/models; the server may wait for a registry read (up to PAGE_WAIT_S) before it answers."""
    with urllib.request.urlopen(f"{base}/api/models", timeout=60) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def _wait_until(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
def model_dashboard(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Settings, dict[str, Any]]]:
    """The dashboard's URL, the settings, and its first /api/models answer after v1 was made."""
    from cryptoarena.model.demo import demo_step

    tmp = tmp_path_factory.mktemp("model-e2e")
    settings = backtest_journal(tmp, data={"sample_dir": ROOT / "data" / "sample"})
    env = arena_env(
        tmp,
        ARENA_DASHBOARD__POLL_INTERVAL_S="0.25",
        ARENA_MLFLOW__TRACKING_URI=settings.mlflow.tracking_uri,
    )
    with running_dashboard(tmp, _free_port(), env) as base:

        def read() -> dict[str, Any] | None:
            answer = _models(base)
            return None if answer["pending"] else answer

        empty = _wait_until(read, "the first registry read", 180)
        assert empty["available"] and empty["versions"] == []  # read and cached, empty
        demo_step(settings, Console(file=io.StringIO()), quick=True)
        yield base, settings, _models(base)


def _crowned(settings: Settings) -> tuple[dict[str, str], dict[str, float]]:
    """Version 1's registry tags and its training run's metrics, as MLflow has them."""
    from mlflow.tracking import MlflowClient

    uri = settings.mlflow.tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mv = client.get_model_version(settings.serving.model_name, "1")
    return dict(mv.tags), dict(client.get_run(mv.run_id).data.metrics)


def test_the_first_request_after_a_new_version_shows_it(model_dashboard: Any) -> None:
    _, _, first = model_dashboard
    assert not first["pending"] and [v["version"] for v in first["versions"]] == ["1"]
    assert "champion" in first["versions"][0]["aliases"]


@pytest.mark.parametrize("width", [1440, 1920, 390])
def test_model_page_says_how_v1_became_champion_and_fits(
    model_dashboard: Any, browser: Any, screenshots: Path, width: int
) -> None:
    base, settings, _ = model_dashboard
    tags, metrics = _crowned(settings)
    assert tags["promotion"] in ("bootstrap", "gate")  # the demo crowns it one way or the other
    phone = width < 600
    context: dict[str, Any] = {"viewport": {"width": width, "height": 900}}
    if phone:
        context.update(device_scale_factor=2, is_mobile=True)
    w = Watched(browser, screenshots, **context)
    w.page.goto(f"{base}/#/model")
    w.page.wait_for_selector('[data-version="1"]', timeout=30_000)
    w.page.wait_for_selector("figure.fan svg .fan-band", timeout=30_000)
    w.settle()

    crowned = w.page.inner_text("[data-field=crowned]")
    assert crowned == tags["promotion.message"]
    assert not crowned.startswith("refused")  # the gate's verdict is not how it was crowned
    row = '[data-version="1"]'
    for field in ("skill", "mae_skill"):
        shown = w.page.inner_text(f"{row} [data-field={field}]")
        assert shown.endswith(" %"), shown
        value = float(shown.removesuffix(" %").replace("\u2212", "-"))
        assert value == pytest.approx(metrics[f"test.lstm.{field}"] * 100, abs=0.051)

    table = w.page.evaluate(TABLE, phone)
    assert "MSE skill vs no-change" in table["headers"]
    assert "MAE skill vs no-change" in table["headers"]
    assert table["clipped"] == [], f"headers cut at {width} px"
    if not phone:  # a phone scrolls wide tables inside their region, by design
        assert table["hidden"] <= 1 and table["past"] <= 1, table
    assert w.page.evaluate(OVERFLOWS, not phone) == [], f"model page at {width} px"

    fan = w.page.evaluate(FAN)
    assert fan["share"] >= 0.1, f"the 15 s fan is {fan['share']:.1%} of the plot"
    assert "time (UTC)" in fan["texts"] and "price (USDT)" in fan["texts"]
    ticks = [t for t in fan["texts"] if t.count(":") == 2]
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in (t.split(":") for t in ticks)]
    assert len(seconds) >= 2 and len({b - a for a, b in itertools.pairwise(seconds)}) == 1, ticks
    assert all(s % (seconds[1] - seconds[0]) == 0 for s in seconds), ticks  # round times
    w.shot(f"model-v1-{width}")
    assert not w.errors, w.errors
    w.context.close()
