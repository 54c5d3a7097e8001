"""Layout in a real browser (issue #23): at 1366, 1440 and 1920 px no table or chart is wider
than its card, at 390 px (a phone) no chart is (a phone's wide tables scroll inside their own
region, by design), and no character on any page renders as tofu with the fonts Debian ships.
Screenshots go to $ARENA_SCREENSHOTS or a pytest temporary folder (tests/e2e/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_dashboard_e2e import PAGES, Watched, browser, dashboard

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]
__all__ = ["browser", "dashboard"]  # the module's fixtures, shared

# Elements wider than the card that holds them (tables: wider than their scroll region).
OVERFLOWS = """(tables) => {
  const out = []
  const sel = tables ? '.card .table-wrap, .card svg, .card canvas' : '.card svg, .card canvas'
  for (const el of document.querySelectorAll(sel)) {
    const card = el.closest('.card')
    const inner = el.classList.contains('table-wrap') ? el.scrollWidth - el.clientWidth
      : el.getBoundingClientRect().right - card.getBoundingClientRect().right
    if (inner > 1) out.push(`${card.querySelector('h2,h1')?.textContent ?? '?'}: ${el.tagName} +${Math.round(inner)}px`)
  }
  // A chart's label cut at its own edge (the phone's verdict plot cut its names on the left).
  for (const svg of document.querySelectorAll('.card svg')) {
    const box = svg.getBoundingClientRect()
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect()
      if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) out.push(`label cut: ${t.textContent}`)
    }
  }
  return out
}"""

# Characters drawn exactly as a code point no font has (.notdef, the empty box) are tofu.
TOFU = """(probe) => {
  const family = getComputedStyle(document.body).fontFamily
  const canvas = document.createElement('canvas')
  canvas.width = canvas.height = 48
  const g = canvas.getContext('2d')
  const draw = (ch) => {
    g.clearRect(0, 0, 48, 48); g.font = `32px ${family}`; g.fillText(ch, 4, 38)
    return g.getImageData(0, 0, 48, 48).data.join(',')
  }
  const box = draw('\\u{10FFFD}')
  const text = probe ?? document.body.innerText
  const chars = [...new Set([...text].filter((c) => c.codePointAt(0) > 127 && c.trim()))]
  return chars.filter((c) => draw(c) === box)
}"""


def _visit(w: Watched, base: str, path: str, ready: str) -> None:
    w.page.goto(f"{base}/{path}")
    w.page.wait_for_selector(ready, timeout=30_000)
    w.page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("width", [1366, 1440, 1920, 390])
def test_nothing_overflows_its_card_and_no_glyph_is_tofu(
    dashboard: Any, browser: Any, screenshots: Path, width: int
) -> None:
    base, _ = dashboard
    phone = width < 600
    context: dict[str, Any] = {"viewport": {"width": width, "height": 900}}
    if phone:
        context.update(device_scale_factor=2, is_mobile=True)
    w = Watched(browser, screenshots, **context)
    for name, path, ready in PAGES:
        _visit(w, base, path, ready)
        assert w.page.evaluate(OVERFLOWS, not phone) == [], f"{name} at {width} px"
        if name == "overview":  # the detector sees tofu: ⏸ was the halt mark; ‖ replaces it
            assert w.page.evaluate(TOFU, "⏸ ‖ ● ■ ○") == ["⏸"]
        assert w.page.evaluate(TOFU, None) == [], f"{name} at {width} px: tofu"
        w.shot(f"{name}-{width}")
    assert not w.errors, w.errors
    w.context.close()
