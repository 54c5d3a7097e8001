"""Champion changes as the registry records them, read without MLflow or torch (the dashboard
holds neither in memory): ``registry.crown`` writes these tags on the version it crowns,
:func:`champion_changes` reads them back from model versions however they were fetched; the
gate's decision and the one-line promotion message live here for the same reason."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

# The registry's aliases (named here so a lookup that needs no MLflow can name them).
CHAMPION = "champion"
CHALLENGER = "challenger"

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


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    block: dict[str, str] = field(default_factory=dict)  # the gate block's span (UTC, ISO)

    def tags(self) -> dict[str, str]:
        """What is tagged on the model version: the verdict, every p-value and number behind it,
        and the block it was judged on."""
        out = {"gate": self.reason, "gate.verdict": "promote" if self.promote else "refuse"}
        out |= {f"gate.block_{k}": v for k, v in self.block.items()}
        return out | {f"gate.{k}": f"{v:.6g}" for k, v in self.numbers.items()}


def promotion_message(decision: GateDecision, how: str | None) -> str:
    """One line saying what happened to a new version: ``how`` is how ``@champion`` was set
    (``gate``, ``forced``, ``bootstrap``) or None when it was not."""
    if how == "forced":
        verdict = "would also have promoted it" if decision.promote else "refused it"
        return f"FORCED to @champion (the gate {verdict}: {decision.reason})"
    if how == "bootstrap":
        gate = "the gate agreed" if decision.promote else "although the gate refused it"
        return f"made bootstrap @champion because the registry had none, {gate} ({decision.reason})"
    if how == "gate":
        return f"{decision.reason}; now @champion"
    return f"{decision.reason}; stays @challenger"
