"""The season page's events (issue #19 items 3 and 5) in a real browser (Debian's chromium via
Playwright): model version changes crowned in a real MLflow registry during the season are
labelled vertical lines on the cumulative-P&L chart, each day's halts ‖ marks, with a legend and
a list of the events below the chart. Screenshots at 1440 and 390 px go to $ARENA_SCREENSHOTS
or a pytest temporary folder (tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptoarena.config import Settings
from cryptoarena.model.registry import crown
from cryptoarena.model.tracking import tracking_context

from tests.e2e.test_dashboard_e2e import CHROMIUM, STATIC, Watched, _free_port, running_dashboard
from tests.e2e.test_dashboard_e2e import browser as browser  # the same chromium fixture
from tests.e2e.test_dashboard_layout import OVERFLOWS, TOFU
from tests.integration.season_kit import journal_season, season_days
from tests.integration.trading_kit import arena_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

SEASON = "live3"
MODEL = "btcusdt-15s"  # the served model (settings.serving.model_name's default)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _crown_two(store: str, tmp: Path) -> list[str]:
    """v1 made bootstrap champion, then v2 promoted by the gate: both now, inside the season."""
    versions = []
    with tracking_context(store) as client:
        client.create_registered_model(MODEL)
        for how, message in (
            ("bootstrap", "made bootstrap @champion because the registry had none"),
            ("gate", "promoted: significantly better than champion v1 (DM p 0.002 < 0.05)"),
        ):
            version = str(client.create_model_version(MODEL, source=str(tmp)).version)
            crown(client, MODEL, version, how, message)
            versions.append(version)
    return versions


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    if not STATIC.is_file():
        pytest.fail("the web UI is not built: `cd web && npm run build` first")
    if not CHROMIUM.is_file():
        pytest.fail("no /usr/bin/chromium: apt-get install -y chromium")
    tmp = tmp_path_factory.mktemp("season-e2e")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    settings = Settings(
        mongo={"embedded_dir": tmp / "journal"},  # type: ignore[arg-type]
        mlflow={"tracking_uri": store},  # type: ignore[arg-type]
        home=tmp,
    )
    journal_season(settings, SEASON)
    versions = _crown_two(store, tmp)
    env = arena_env(tmp, ARENA_HOME=str(tmp), ARENA_MLFLOW__TRACKING_URI=store)
    with running_dashboard(tmp, _free_port(), env) as base:
        yield base, versions


@pytest.mark.parametrize("width", [1440, 390], ids=["desktop", "phone"])
def test_model_versions_and_halts_are_on_the_season_timeline(
    dashboard: tuple[str, list[str]], browser: Any, screenshots: Path, width: int
) -> None:
    base, versions = dashboard
    days = season_days(3)
    w = Watched(browser, screenshots, viewport={"width": width, "height": 900}, bypass_csp=True)
    w.page.goto(f"{base}/#/season/{SEASON}")
    # The list renders once the dashboard's registry view has read the champions.
    items = w.page.locator(".event-list li.ev-champion")
    items.nth(1).wait_for(timeout=60_000)
    texts = items.all_inner_texts()
    assert len(texts) == 2
    assert f"{MODEL} v{versions[0]} became @champion (bootstrap)" in texts[0]
    assert f"{MODEL} v{versions[1]} became @champion (gate)" in texts[1]
    assert "DM p 0.002" in texts[1]
    halts = w.page.locator(".event-list li.ev-halt").all_inner_texts()
    assert [h.split(" — ")[0] for h in halts] == days
    assert all("trend at 06:30:00" in h for h in halts)
    legend = w.page.inner_text(".marker-legend")
    assert "model version change" in legend and "‖ halt" in legend

    # The chart draws them: its canvas says so, and the ‖ marks are painted on it.
    label = w.page.get_attribute(".chart canvas", "aria-label") or ""
    assert "2 model version change(s) as vertical lines and 3 halt(s) as ‖ marks" in label
    w.settle()
    assert _marker_pixels(w) > 0
    w.shot(f"season-events-{width}")
    # Nothing wider than its card (the table may scroll at 390 px), no glyph drawn as tofu (‖).
    assert w.page.evaluate(OVERFLOWS, width >= 600) == [], f"overflow at {width} px"
    assert w.page.evaluate(TOFU, None) == [], f"tofu at {width} px"
    assert not w.axe(), "serious accessibility violations on the season page"
    assert not w.errors, w.errors
    w.context.close()


def _marker_pixels(w: Watched) -> int:
    """Pixels of the halt colour (#b42318) on the chart's canvas: only the ‖ marks use it."""
    return int(
        w.page.evaluate(
            """() => {
              const c = document.querySelector('.chart canvas')
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
              let n = 0
              for (let i = 0; i < d.length; i += 4)
                if (Math.abs(d[i] - 0xb4) < 12 && Math.abs(d[i + 1] - 0x23) < 12 && Math.abs(d[i + 2] - 0x18) < 12) n++
              return n
            }"""
        )
    )
