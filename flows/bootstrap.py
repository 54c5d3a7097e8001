"""Bootstrap flow: on a fresh stack the registry has no ``@champion`` and the model server cannot
become ready. This trains a tiny LSTM on the shipped real day and makes it the *bootstrap*
champion (tagged ``promotion=bootstrap``, as ``arena demo`` does), so serving can start; the
nightly retrain replaces it through the evidence gate. It never touches an existing champion,
so it is safe to run on every ``docker compose up`` (the ``model-bootstrap`` service).

    python -m flows.bootstrap                 # one local run (ephemeral Prefect API)
"""

from __future__ import annotations

import argparse
from typing import Any

from cryptoarena.config import get_settings
from cryptoarena.model import mlops
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.retrain import load_bars, train_candidate

# MLflow error codes that mean "no such model or alias" (anything else is a real failure).
_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


@task(retries=3, retry_delay_seconds=5, cache_policy=NO_CACHE)
def champion_version(name: str, tracking_uri: str) -> str | None:
    """The current champion's version, None when there is none; an unreachable registry raises
    (never mistaken for an empty one, which would replace a real champion)."""
    from cryptoarena.model.registry import CHAMPION
    from cryptoarena.model.tracking import tracking_context
    from mlflow.exceptions import MlflowException

    with tracking_context(tracking_uri) as client:
        try:
            return str(client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return None
            raise


@task(retries=3, retry_delay_seconds=5, cache_policy=NO_CACHE)
def make_bootstrap_champion(
    name: str, version: str, tracking_uri: str, promote: bool, reason: str
) -> None:
    from cryptoarena.model.champions import GateDecision, promotion_message
    from cryptoarena.model.registry import crown
    from cryptoarena.model.tracking import tracking_context

    message = promotion_message(GateDecision(promote, reason), "bootstrap")
    with tracking_context(tracking_uri) as client:
        crown(client, name, version, "bootstrap", message)


@flow(name="bootstrap")
def bootstrap_flow(
    max_bars: int = 7200, model_name: str | None = None, tracking_uri: str | None = None
) -> dict[str, Any]:
    tracking_uri, name = mlops.registry_target(get_settings(), model_name, tracking_uri)
    logger = get_run_logger()
    existing = champion_version(name, tracking_uri)
    if existing is not None:
        logger.info("%s@champion is version %s: nothing to do", name, existing)
        return {"model": name, "champion": existing, "trained": False}
    bars = load_bars("sample", max_bars)
    candidate = train_candidate(bars, tracking_uri, name, True, "sample", 0.05)
    make_bootstrap_champion(
        name, candidate.version, tracking_uri, candidate.promote, candidate.reason
    )
    logger.info("%s v%s is the bootstrap @champion (%s)", name, candidate.version, candidate.reason)
    return {"model": name, "champion": candidate.version, "trained": True}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-bars", type=int, default=7200, help="bars of the shipped day")
    args = parser.parse_args()
    print(bootstrap_flow(max_bars=args.max_bars))


if __name__ == "__main__":
    main()
