"""The evidence gate against a real MLflow registry: challengers that differ from the champion only
by their seed are never promoted (issue #20: seeds 9 and 13 were, because a champion that was not
significant waived the paired test), and every p-value and the gate block are in the tags."""

from __future__ import annotations

import pandas as pd
from cryptoarena.model.registry import (
    CHALLENGER,
    CHAMPION,
    champion_history,
    get_alias_version,
)
from cryptoarena.model.tracking import tracking_context
from cryptoarena.model.train import TINY_CONFIG, WINDOWS_FILE, train

NAME = "btcusdt-15s"
SEEDS = (9, 13, 21)


def test_seed_only_challengers_are_never_promoted(
    mlflow_store: str, day_bars: pd.DataFrame
) -> None:
    champion = train(
        day_bars, tracking_uri=mlflow_store, name=NAME, cfg=TINY_CONFIG, promote="force"
    )
    assert champion.promoted and champion.message.startswith("FORCED to @champion")
    first = get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store)
    assert first == champion.info.version
    for seed in SEEDS:
        cfg = TINY_CONFIG.model_copy(update={"seed": seed})
        result = train(day_bars, tracking_uri=mlflow_store, name=NAME, cfg=cfg, promote="gate")
        version = result.info.version
        assert not result.promoted, f"seed {seed}: {result.decision.reason}"
        assert result.message.endswith("stays @challenger")
        assert get_alias_version(NAME, CHALLENGER, tracking_uri=mlflow_store) == version
        with tracking_context(mlflow_store) as client:
            tags = client.get_model_version(NAME, version).tags
            run_tags = client.get_run(result.info.run_id).data.tags
            artifacts = [f.path for f in client.list_artifacts(result.info.run_id, "report")]
        # The paired test against the champion applied, whatever the champion's own p-value.
        assert f"champion v{first}" in tags["gate"] or "persistence" in tags["gate"]
        for key in ("gate.candidate_dm_p", "gate.champion_dm_p", "gate.vs_champion_dm_p"):
            assert 0 <= float(tags[key]) <= 1, key
            assert run_tags[key] == tags[key]
        # Judged on the newest untouched span: the test split after the candidate's own spans.
        block = result.report["gate_block"]["block"]
        assert tags["gate.block_first"] == block["first"] and int(tags["gate.block_n"]) > 100
        assert block["first"] >= result.prepared.span["test_first"][:19]
        assert tags["gate.verdict"] == "refuse" and tags.get("promotion") is None
        assert f"report/{WINDOWS_FILE}" in artifacts  # every window's errors, auditable
    assert get_alias_version(NAME, CHAMPION, tracking_uri=mlflow_store) == first
    history = champion_history(NAME, tracking_uri=mlflow_store)
    assert [(c.version, c.how) for c in history] == [(first, "forced")]
    assert history[0].message.startswith("FORCED")
