"""Champion changes as the registry records them, read without MLflow or torch (the dashboard
holds neither in memory): ``registry.crown`` writes these tags on the version it crowns,
:func:`champion_changes` reads them back from model versions however they were fetched."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# How @champion was set, tagged on the version as ``promotion`` (shown by /v1/model).
PROMOTION_TAG = "promotion"
PROMOTED_BY = ("gate", "bootstrap", "forced")
PROMOTED_AT_TAG = "promotion.at_ms"  # when @champion moved to the version (epoch ms)
PROMOTION_MESSAGE_TAG = "promotion.message"


@dataclass(frozen=True)
class ChampionChange:
    """One move of ``@champion`` (a season event): read back by :func:`champion_changes`."""

    model: str
    version: str
    at_ms: int  # epoch milliseconds (UTC)
    how: str  # gate | forced | bootstrap
    message: str


def champion_changes(name: str, versions: Iterable[Any]) -> list[ChampionChange]:
    """The moves of ``@champion`` recorded on MLflow model versions (``version``, ``tags``,
    ``creation_timestamp``), oldest first. Versions crowned before the time was tagged are
    listed at their creation."""
    out = [
        ChampionChange(
            name,
            str(v.version),
            int(v.tags.get(PROMOTED_AT_TAG) or v.creation_timestamp or 0),
            v.tags[PROMOTION_TAG],
            v.tags.get(PROMOTION_MESSAGE_TAG, v.tags.get("gate", "")),
        )
        for v in versions
        if (v.tags or {}).get(PROMOTION_TAG) in PROMOTED_BY
    ]
    return sorted(out, key=lambda c: (c.at_ms, int(c.version)))
