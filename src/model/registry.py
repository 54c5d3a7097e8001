"""The MLflow model registry: log a forecaster, move aliases, load a forecaster back.

Aliases only (``@champion``, ``@challenger``), never stages. A logged model is the exported
network (torch.export, raw features in, log returns out, scaler inside) plus, in the MLmodel
metadata and as files, the feature spec, the scaler and the model's identity; the training
reference sample (features of the training split) travels next to it for drift checks.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from cryptoarena.model.features import FeatureSpec, Scaler
from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, TorchPredictor
from cryptoarena.model.tracking import tracking_context
from mlflow.exceptions import MlflowException
from mlflow.models import Model

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
METADATA_KEY = "cryptoarena"
REFERENCE_FILE = "reference_features.parquet"
SCALER_FILE = "scaler.json"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>\d+))$")


def registry_name(symbol: str, horizon_s: int) -> str:
    """Registered model name per symbol and horizon: ``BTCUSDT``, 15 → ``btcusdt-15s``."""
    if not symbol.isalnum() or horizon_s < 1:
        raise ValueError(f"bad symbol {symbol!r} or horizon {horizon_s}")
    return f"{symbol.lower()}-{horizon_s}s"


class ModelNotFound(LookupError):
    """No such registered model, version or alias."""


# How @champion was set, tagged on the version as ``promotion`` (shown by /v1/model).
PROMOTION_TAG = "promotion"
PROMOTED_BY = ("gate", "bootstrap", "forced")


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        """What is tagged on the model version: the verdict and the numbers behind it."""
        out = {"gate": self.reason, "gate.verdict": "promote" if self.promote else "refuse"}
        return out | {f"gate.{k}": f"{v:.6g}" for k, v in self.numbers.items()}


def _significant(entry: Mapping[str, Any] | None, alpha: float) -> bool:
    """Lower loss than the reference with a DM (HLN) p-value below ``alpha``."""
    if not entry:
        return False
    stat, p = float(entry.get("dm_stat", math.nan)), float(entry.get("dm_p", 1.0))
    return math.isfinite(stat) and stat < 0 and p < alpha


def evidence_gate(
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    versus_champion: Mapping[str, Any] | None,
    *,
    alpha: float = 0.05,
) -> GateDecision:
    """Champion only on evidence from the same cross-validation folds.

    ``candidate`` and ``champion`` are pooled CV entries (``dm_stat``/``dm_p`` against
    persistence, ``skill``, ``n``); ``versus_champion`` is the paired DM test of the candidate
    against the champion on the anchors both were scored on (negative statistic = candidate
    better). Promote when the candidate beats persistence significantly at ``alpha`` AND either
    there is no champion, the champion is no longer significant on these folds, or the paired
    test says the candidate is significantly better.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"gate alpha must be in (0, 1), got {alpha}")
    numbers = {"alpha": alpha}
    if not candidate.get("n"):
        return GateDecision(False, "refused: no out-of-sample windows to judge on", numbers)
    numbers |= {
        "candidate_n": float(candidate["n"]),
        "candidate_skill": float(candidate.get("skill", math.nan)),
        "candidate_dm_p": float(candidate.get("dm_p", 1.0)),
    }
    if not _significant(candidate, alpha):
        return GateDecision(
            False,
            f"refused: not significantly better than persistence (skill "
            f"{numbers['candidate_skill']:+.4f}, DM p {numbers['candidate_dm_p']:.3g} ≥ {alpha})",
            numbers,
        )
    if not champion or not champion.get("n"):
        return GateDecision(
            True,
            f"promoted: beats persistence (DM p {numbers['candidate_dm_p']:.3g} < {alpha}) and "
            "there is no champion to compare with",
            numbers,
        )
    numbers |= {
        "champion_skill": float(champion.get("skill", math.nan)),
        "champion_dm_p": float(champion.get("dm_p", 1.0)),
    }
    if not _significant(champion, alpha):
        return GateDecision(
            True,
            f"promoted: beats persistence (DM p {numbers['candidate_dm_p']:.3g}) and the champion "
            f"is no longer significant on the same folds (DM p {numbers['champion_dm_p']:.3g})",
            numbers,
        )
    if versus_champion:
        numbers |= {
            "vs_champion_dm_stat": float(versus_champion.get("dm_stat", math.nan)),
            "vs_champion_dm_p": float(versus_champion.get("dm_p", 1.0)),
        }
    if _significant(versus_champion, alpha):
        return GateDecision(
            True,
            f"promoted: beats persistence and the champion (paired DM p "
            f"{numbers['vs_champion_dm_p']:.3g} < {alpha})",
            numbers,
        )
    return GateDecision(
        False,
        "refused: not significantly better than the champion (paired DM p "
        f"{numbers.get('vs_champion_dm_p', 1.0):.3g}, skill {numbers['candidate_skill']:+.4f} vs "
        f"{numbers['champion_skill']:+.4f})",
        numbers,
    )


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
    m = _URI.match(model_uri)
    if not m:
        raise ValueError(
            f"model URI must be models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}"
        )
    return m["name"], m["alias"], m["version"]


def get_alias_version(name: str, alias: str, *, tracking_uri: str) -> str | None:
    """The version an alias points at, or None (no such model or alias)."""
    with tracking_context(tracking_uri) as client:
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None


def set_alias(name: str, alias: str, version: str, *, tracking_uri: str) -> None:
    with tracking_context(tracking_uri) as client:
        client.set_registered_model_alias(name, alias, version)
    logger.info("alias %s@%s → version %s", name, alias, version)


def _resolve(model_uri: str, tracking_uri: str) -> tuple[str, str, str]:
    name, alias, version = parse_model_uri(model_uri)
    with tracking_context(tracking_uri) as client:
        try:
            mv = (
                client.get_model_version_by_alias(name, alias)
                if alias
                else client.get_model_version(name, str(version))
            )
        except MlflowException as exc:
            raise ModelNotFound(f"{model_uri}: not in the registry at {tracking_uri}") from exc
        return name, str(mv.version), str(mv.run_id or "")


def load_forecaster(model_uri: str, *, tracking_uri: str) -> Forecaster:
    """Load a registered forecaster (``models:/<name>@champion`` or ``models:/<name>/<version>``)."""
    import mlflow.pytorch

    name, version, run_id = _resolve(model_uri, tracking_uri)
    with tracking_context(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        # A fixed version, not the alias: the alias may move while we download.
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=tmp,
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
        meta = (Model.load(local).metadata or {}).get(METADATA_KEY)
        if not meta:
            raise ModelNotFound(f"{model_uri}: version {version} is not a cryptoarena forecaster")
        net = mlflow.pytorch.load_model(local)
    with tracking_context(tracking_uri) as client:
        tags = dict(client.get_model_version(name, version).tags or {})
    info = ForecastModelInfo(
        name=name,
        version=version,
        run_id=run_id,
        promotion=tags.get(PROMOTION_TAG, ""),
        gate=tags.get("gate", ""),
        **_info_fields(meta),
    )
    spec = FeatureSpec.model_validate(meta["feature_spec"])
    logger.info("loaded %s (version %s, run %s)", model_uri, version, run_id)
    return Forecaster(info, spec, TorchPredictor(net))


def _info_fields(meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "horizon": int(meta["horizon"]),
        "window": int(meta["window"]),
        "min_bars": int(meta["min_bars"]),
        "quantiles": tuple(float(q) for q in meta.get("quantiles", ())),
        "metrics": {k: float(v) for k, v in meta.get("metrics", {}).items()},
        "feature_names": tuple(meta["feature_spec_names"]),
        "train_config": dict(meta.get("config") or {}),
    }


def model_metadata(
    info: ForecastModelInfo, spec: FeatureSpec, scaler: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    """What travels in MLmodel's metadata (YAML-safe: plain lists, floats and strings)."""
    return {
        METADATA_KEY: json.loads(
            json.dumps(
                {
                    "horizon": info.horizon,
                    "window": info.window,
                    "min_bars": info.min_bars,
                    "quantiles": list(info.quantiles),
                    "metrics": info.metrics,
                    "feature_spec": spec.model_dump(mode="json"),
                    "feature_spec_names": list(spec.names),
                    "scaler": scaler,
                    "reference_artifact": f"extra_files/{REFERENCE_FILE}",  # relative to the model URI
                    **extra,
                }
            )
        )
    }


def download_reference(model_uri: str, *, tracking_uri: str, dst: Path) -> Path:
    """The training reference features (Parquet) of a registered version, for drift checks."""
    name, version, _ = _resolve(model_uri, tracking_uri)
    with tracking_context(tracking_uri):
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}/extra_files/{REFERENCE_FILE}",
            dst_path=str(dst),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    return Path(local)


def download_scaler(model_uri: str, *, tracking_uri: str) -> Scaler | None:
    """The training scaler saved with a registered version (None for versions without one)."""
    name, version, _ = _resolve(model_uri, tracking_uri)
    with tracking_context(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}/extra_files/{SCALER_FILE}",
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
        except (MlflowException, OSError) as exc:
            logger.warning(
                "%s has no saved scaler (%s); drift uses the reference's", model_uri, exc
            )
            return None
        return Scaler.model_validate_json(Path(local).read_text())
