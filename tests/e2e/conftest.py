"""Where the e2e tests' screenshots (and the dashboard timings) go: the folder named by
ARENA_SCREENSHOTS when it is set (e.g. ``ARENA_SCREENSHOTS=artifacts``, git-ignored, to look
at them), else a pytest temporary folder; never into the checkout on their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SCREENSHOTS_ENV = "ARENA_SCREENSHOTS"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
