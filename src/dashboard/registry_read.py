"""The dashboard's read of the MLflow registry, run in a short-lived child process so that MLflow
(with pandas, scipy and SQLAlchemy, ~150 MB resident) never enters the dashboard's own process.

    python -m cryptoarena.dashboard.registry_read < {"uri": ..., "experiment": ..., "name": ...,
                                                      "ui": ...}

reads the request (JSON, on stdin: a tracking URI may carry credentials, which argv would show
to every user of ``ps``) and writes one JSON object to stdout: ``versions`` (ModelVersion),
``drift`` (DriftStatus or null) and ``changes`` (ChampionChange), or ``error`` with why the
registry could not be read. :class:`cryptoarena.dashboard.registry_view.RegistryView` runs it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from cryptoarena.dashboard import child_json
from cryptoarena.dashboard import schemas as s
from cryptoarena.model.champions import (
    PROMOTED_BY,
    PROMOTION_MESSAGE_TAG,
    PROMOTION_TAG,
    GateDecision,
    champion_changes,
    promotion_message,
)

logger = logging.getLogger(__name__)


def read(uri: str, experiment: str, name: str, ui: str) -> dict[str, Any]:
    """The registry's versions of model ``name`` (newest first), its champion changes and the
    latest drift check of ``experiment``, as JSON-ready dicts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # search_model_versions leaves the aliases out: take them from the registered model.
    try:
        alias_map: dict[str, str] = dict(client.get_registered_model(name).aliases or {})
    except Exception:  # no such model yet
        alias_map = {}
    aliases: dict[str, list[str]] = {}
    for alias, ver in sorted(alias_map.items()):
        aliases.setdefault(str(ver), []).append(alias)
    found = client.search_model_versions(f"name='{name}'")
    versions: list[s.ModelVersion] = []
    for mv in found:
        metrics: dict[str, float] = {}
        run_tags: dict[str, str] = {}
        if mv.run_id:
            try:
                data = client.get_run(mv.run_id).data
                metrics, run_tags = dict(data.metrics), dict(data.tags)
            except Exception:  # the run was deleted: the version still shows
                metrics = {}
        tags: dict[str, Any] = dict(mv.tags or {})
        versions.append(
            s.ModelVersion(
                version=str(mv.version),
                aliases=aliases.get(str(mv.version), []),
                created_ms=int(mv.creation_timestamp) if mv.creation_timestamp else None,
                gate=tags.get("gate"),
                promotion=tags.get(PROMOTION_TAG),
                promotion_message=crowning_message(tags),
                metrics={k: float(v) for k, v in metrics.items()},
                run_id=mv.run_id,
                train_first=run_tags.get("data.train_first"),
                train_last=run_tags.get("data.train_last"),
            )
        )
    versions.sort(key=lambda v: int(v.version) if v.version.isdigit() else 0, reverse=True)
    drift = _drift(client, experiment, ui)
    return {
        "versions": [v.model_dump() for v in versions],
        "drift": None if drift is None else drift.model_dump(),
        "changes": [dataclasses.asdict(c) for c in champion_changes(name, found)],
    }


def _drift(client: Any, experiment: str, ui: str) -> s.DriftStatus | None:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string="tags.kind = 'drift'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    tags = run.data.tags
    retrain = tags.get("drift.should_retrain")
    return s.DriftStatus(
        checked_ms=run.info.start_time,
        model_version=tags.get("model.version"),
        should_retrain=None if retrain is None else retrain == "True",
        reasons=tags.get("drift.reasons"),
        run_id=run.info.run_id,
        # The MLflow UI's page for this run (ARENA_DASHBOARD__MLFLOW_UI_URL), if one is set.
        run_url=(f"{ui}/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}" if ui else None),
    )


def crowning_message(tags: dict[str, Any]) -> str | None:
    """How a version became @champion, from its registry tags: the message recorded when it was
    crowned, else (versions crowned before that tag existed) the same sentence rebuilt from how
    and the gate's verdict; None for a version never crowned."""
    how = tags.get(PROMOTION_TAG)
    if how not in PROMOTED_BY:
        return None
    if tags.get(PROMOTION_MESSAGE_TAG):
        return str(tags[PROMOTION_MESSAGE_TAG])
    decision = GateDecision(tags.get("gate.verdict") == "promote", str(tags.get("gate") or "—"))
    return promotion_message(decision, how)


def main() -> None:
    child_json.answer(lambda r: read(r["uri"], r["experiment"], r["name"], r["ui"]))


if __name__ == "__main__":
    main()
