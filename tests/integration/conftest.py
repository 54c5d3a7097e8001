"""Integration fixtures shared across areas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """ONE temporary Prefect API (SQLite) for the whole session: starting it takes ~15 s, so
    every test that runs a real flow shares it (request this fixture, do not start another)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
