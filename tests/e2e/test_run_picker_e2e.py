"""The run picker (issue #19 item 5) in a real browser (Debian's chromium via Playwright): after a
later run, the earlier (demo) run stays reachable from every page, and the URL says which run
(``?run=``) so a link or a reload shows the same run. Screenshots go to
$ARENA_SCREENSHOTS or a pytest temporary folder (tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.clock import SimClock
from cryptoarena.config import Settings
from cryptoarena.trading.journal import Journal

from tests.e2e.test_dashboard_e2e import (
    CHROMIUM,
    STATIC,
    Watched,
    _free_port,
    running_dashboard,
)
from tests.e2e.test_dashboard_e2e import browser as browser  # the same chromium fixture
from tests.integration.dashboard_kit import RUN_ID, backtest_journal
from tests.integration.trading_kit import ROOT, arena_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

LATER = "later-run"
T0 = 1_582_329_600_000_000_000


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _later_run(settings: Settings) -> None:
    """A second run started after the backtest (the newest: the dashboard's default)."""
    clock = SimClock(T0)
    with Journal.open(settings, run_id=LATER, clock=clock) as j:
        j.record("runs", {"event": "started", "arena": {"capital": 10_000.0},
                          "strategies": [{"name": "later_hold", "family": "reference"}]})  # fmt: skip
        for i in range(30):
            clock.advance_to(T0 + i * 5 * 10**9)
            j.record("equity", {"strategy": "later_hold", "equity": 10_000.0 + i, "qty": 0.0,
                                "mark": 9_700.0, "fills": 0})  # fmt: skip
        j.record("runs", {"event": "stopped", "stopped_by": "feed ended"})
        assert j.sync(30)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not STATIC.is_file():
        pytest.fail("the web UI is not built: `make web` (npm ci + vite build) first")
    if not CHROMIUM.is_file():
        pytest.fail("no /usr/bin/chromium: apt-get install -y chromium")
    tmp = tmp_path_factory.mktemp("picker-e2e")
    settings = backtest_journal(tmp, minutes=6.0)
    _later_run(settings)
    shutil.copytree(ROOT / "docs" / "site", tmp / "site")
    port = _free_port()
    env = arena_env(tmp, ARENA_DASHBOARD__SITE_DIR=str(tmp / "site"),
                    ARENA_MLFLOW__TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")  # fmt: skip
    with running_dashboard(tmp, port, env) as base:
        yield base


def _rows(w: Watched) -> list[str]:
    return list(
        w.page.eval_on_selector_all("tr[data-strategy]", "rs => rs.map(r => r.dataset.strategy)")
    )


@pytest.mark.parametrize("width", [1440, 390], ids=["desktop", "phone"])
def test_the_earlier_run_stays_reachable_and_the_url_says_which(
    dashboard: str, browser: Any, screenshots: Path, width: int
) -> None:
    base = dashboard
    runs = [r["run_id"] for r in _get(f"{base}/api/runs")["items"]]
    assert runs[0] == LATER and RUN_ID in runs  # precondition: the demo run is not the latest
    demo_rows = sorted(
        r["strategy"] for r in _get(f"{base}/api/leaderboard?run_id={RUN_ID}")["rows"]
    )

    w = Watched(browser, screenshots, viewport={"width": width, "height": 900})
    w.page.goto(f"{base}/#/")
    w.page.wait_for_selector("tr[data-strategy='later_hold']")
    assert _rows(w) == ["later_hold"]  # the latest run by default
    w.page.select_option(".run-pick select", RUN_ID)
    w.page.wait_for_selector("tr[data-strategy='buy_hold']")
    assert f"run={RUN_ID}" in w.page.url
    assert sorted(_rows(w)) == demo_rows
    w.shot(f"run-picker-{width}")

    # Another page keeps the run (the URL's ?run= sits before the #/page part).
    w.page.click("nav a[href='#/strategy']")
    w.page.wait_for_selector("#h-price")
    assert f"run={RUN_ID}" in w.page.url
    assert w.page.input_value(".run-pick select") == RUN_ID

    # A link or a reload shows the same run.
    w.page.goto(f"{base}/?run={RUN_ID}#/")
    w.page.wait_for_selector("tr[data-strategy='buy_hold']")
    assert sorted(_rows(w)) == demo_rows
    assert w.page.input_value(".run-pick select") == RUN_ID
    assert not w.errors, w.errors
    w.context.close()
