"""schemathesis against the server's own OpenAPI schema, with a real champion loaded.

Generated requests (valid and invalid by the schema) must never get a 5xx, and every response
must match what the schema declares (status code, content type, body).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from cryptoarena.config import ServingSettings, Settings
from cryptoarena.serving.app import create_app
from cryptoarena.serving.slot import RegistrySource
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class DeferredRegistry:
    """The real registry source, pointed at the session registry once its fixture has run.

    The schema must exist at import time (for test collection); the app's lifespan, and so the
    first model load, starts only with the first generated request.
    """

    target: RegistrySource | None = None

    @property
    def description(self) -> str:
        return self.target.description if self.target else "registry not set up yet"

    def champion_version(self) -> str | None:
        return self.target.champion_version() if self.target else None

    def load(self, version: str) -> Any:
        assert self.target is not None
        return self.target.load(version)


TOKEN = "schema-token"
SOURCE = DeferredRegistry()
APP = create_app(
    Settings(serving=ServingSettings(admin_token=TOKEN, poll_interval_s=3600)),
    source=SOURCE,
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def champion_loaded(registry: Any) -> Iterator[None]:
    from schemathesis.python import asgi

    SOURCE.target = RegistrySource(registry.name, registry.tracking_uri)
    # schemathesis may have started the app's lifespan already: load the champion now.
    with asgi.get_client(APP) as client:
        r = client.post("/v1/model/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
    yield
    asgi.shutdown_lifespans()  # stop the app's poller and inference thread


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_every_response_matches_the_schema(
    case: Any, champion_loaded: None
) -> None:
    case.call_and_validate(checks=CHECKS)
