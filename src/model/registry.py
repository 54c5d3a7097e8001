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
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
from cryptoarena.model.champions import (
    CHALLENGER,
    CHAMPION,
    PROMOTED_AT_TAG,
    PROMOTED_BY,
    PROMOTION_MESSAGE_TAG,
    PROMOTION_TAG,
    ChampionChange,
    GateDecision,
    champion_changes,
)
from cryptoarena.model.features import FeatureSpec, Scaler
from cryptoarena.model.tracking import tracking_context
from mlflow.exceptions import MlflowException
from mlflow.models import Model

if TYPE_CHECKING:  # torch: imported only where a model is loaded (a registry lookup needs none)
    from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo

logger = logging.getLogger(__name__)

__all__ = ["CHALLENGER", "CHAMPION"]  # the aliases, named in champions (no MLflow there)

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


def _significant(entry: Mapping[str, Any] | None, alpha: float) -> bool:
    """Lower loss than the reference with a DM (HLN) p-value below ``alpha``."""
    if not entry:
        return False
    stat, p = float(entry.get("dm_stat", math.nan)), float(entry.get("dm_p", 1.0))
    return math.isfinite(stat) and stat < 0 and p < alpha


def _versus(entry: Mapping[str, Any], alpha: float, what: str) -> str:
    """What a DM test says about "better than ``what``", in words with its p-value."""
    stat, p = float(entry.get("dm_stat", math.nan)), float(entry.get("dm_p", 1.0))
    if _significant(entry, alpha):
        return f"significantly better than {what} (DM p {p:.3g} < {alpha:g})"
    if math.isfinite(stat) and stat > 0 and p < alpha:
        return f"significantly WORSE than {what} (DM p {p:.3g})"
    if not math.isfinite(stat):
        return f"not comparable with {what} (identical or too few errors)"
    return f"not significantly better than {what} (DM p {p:.3g} ≥ {alpha:g})"


def evidence_gate(
    candidate: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    versus_champion: Mapping[str, Any] | None,
    *,
    alpha: float = 0.05,
    champion_version: str | None = None,
    block: Mapping[str, str] | None = None,
) -> GateDecision:
    """Champion only on evidence from one block of windows that neither model was trained,
    early-stopped or tuned on (the newest untouched span; ``block`` gives its span for the tags).

    ``candidate`` and ``champion`` are entries against persistence on that block (``dm_stat``,
    ``dm_p``, ``skill``, ``n``); ``versus_champion`` is the paired DM test of the candidate
    against the champion on the same windows (negative statistic = candidate better). Promote
    when the candidate beats persistence significantly at ``alpha`` AND, whenever there is a
    champion (``champion_version`` set), the paired test says the candidate is significantly
    better than it. A champion that is itself not significant does not waive the paired test: a
    copy of it with another seed would otherwise win half the time. Every number is computed and
    tagged whatever the verdict.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"gate alpha must be in (0, 1), got {alpha}")
    numbers: dict[str, float] = {"alpha": alpha}
    numbers |= {
        f"candidate_{k}": float(candidate[k])
        for k in ("n", "skill", "mae_skill", "dm_stat", "dm_p")
        if k in candidate
    }
    if champion:
        numbers |= {
            f"champion_{k}": float(champion[k])
            for k in ("n", "skill", "mae_skill", "dm_stat", "dm_p")
            if k in champion
        }
    if versus_champion:
        numbers |= {
            "vs_champion_n": float(versus_champion.get("n", math.nan)),
            "vs_champion_dm_stat": float(versus_champion.get("dm_stat", math.nan)),
            "vs_champion_dm_p": float(versus_champion.get("dm_p", 1.0)),
        }
    span = dict(block or {})
    where = f" on the gate block {span['first']} → {span['last']}" if "first" in span else ""

    def decide(promote: bool, reason: str) -> GateDecision:
        return GateDecision(promote, reason, numbers, span)

    if not candidate.get("n"):
        return decide(False, f"refused: no untouched windows to judge on{where}")
    skill = f"skill {float(candidate.get('skill', math.nan)):+.4f}"
    vs_persistence = _versus(candidate, alpha, "persistence")
    if not _significant(candidate, alpha):
        return decide(False, f"refused: {vs_persistence}{where} ({skill})")
    if champion_version is None:
        return decide(True, f"promoted: {vs_persistence}{where} ({skill}); no champion yet")
    if not versus_champion or not versus_champion.get("n"):
        return decide(
            False,
            f"refused: {vs_persistence}, but champion v{champion_version} has no untouched "
            f"windows on this block to compare with{where}",
        )
    vs_champ = _versus(versus_champion, alpha, f"champion v{champion_version}")
    champ_skill = f"{float((champion or {}).get('skill', math.nan)):+.4f}"
    if _significant(versus_champion, alpha):
        return decide(True, f"promoted: {vs_persistence} and {vs_champ}{where}")
    return decide(
        False,
        f"refused: {vs_persistence}, but {vs_champ}{where} ({skill} vs the champion's "
        f"{champ_skill})",
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


def crown(client: Any, name: str, version: str, how: str, message: str) -> ChampionChange:
    """Point ``@champion`` at ``version`` and record the change on the version (how, when, what
    the gate said) so :func:`champion_history` can list it; alerts. The only place that moves
    ``@champion``."""
    import time

    from cryptoarena import alerts

    if how not in PROMOTED_BY:
        raise ValueError(f"promotion must be one of {PROMOTED_BY}, got {how!r}")
    change = ChampionChange(name, str(version), time.time_ns() // 1_000_000, how, message)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, PROMOTION_TAG, how)
    client.set_model_version_tag(name, version, PROMOTED_AT_TAG, str(change.at_ms))
    client.set_model_version_tag(name, version, PROMOTION_MESSAGE_TAG, message[:4000])
    logger.info("%s v%s is @champion: %s", name, version, message)
    alerts.new_champion(name, str(version), message)
    return change


def champion_history(name: str, *, tracking_uri: str) -> list[ChampionChange]:
    """Every recorded move of ``@champion`` of ``name``, oldest first (what a season shows as its
    model events; the tags are read by ``champions.champion_changes``)."""
    with tracking_context(tracking_uri) as client:
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except MlflowException:
            return []
    return champion_changes(name, versions)


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


def _mlflow_pytorch() -> Any:
    """``mlflow.pytorch`` without PyTorch Lightning. The module imports Lightning only to offer
    its checkpoint callback and goes on without it when the import fails (it is optional for
    MLflow); loading a model never needs it, and importing it costs ~3 s. So Lightning is made
    unimportable for that one import, unless something in this process already loaded it (a
    training run). ``load_model`` and its pickle-safety checks are MLflow's own, unchanged."""
    if "mlflow.pytorch" in sys.modules:
        return sys.modules["mlflow.pytorch"]
    blocked = [n for n in ("pytorch_lightning", "lightning") if n not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # None: `import` raises ImportError
    try:
        import mlflow.pytorch
    finally:
        for name in blocked:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return mlflow.pytorch


def load_forecaster(model_uri: str, *, tracking_uri: str) -> Forecaster:
    """Load a registered forecaster (``models:/<name>@champion`` or ``models:/<name>/<version>``)."""
    from cryptoarena.model.forecaster import Forecaster, ForecastModelInfo, TorchPredictor

    mlflow_pytorch = _mlflow_pytorch()

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
        net = mlflow_pytorch.load_model(local)
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


def _extra_file(model_uri: str, filename: str, tracking_uri: str) -> str | None:
    """The text of ``extra_files/<filename>`` of a registered version (None when absent)."""
    name, version, _ = _resolve(model_uri, tracking_uri)
    with tracking_context(tracking_uri), tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}/extra_files/{filename}",
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
        except (MlflowException, OSError) as exc:
            logger.warning("%s has no %s (%s)", model_uri, filename, exc)
            return None
        return Path(local).read_text()


def download_calibration(model_uri: str, *, tracking_uri: str) -> Any:
    """The drift check's in-span calibration saved with a version (None for older versions)."""
    from cryptoarena.model.drift import CALIBRATION_FILE, DriftCalibration

    text = _extra_file(model_uri, CALIBRATION_FILE, tracking_uri)
    return None if text is None else DriftCalibration.model_validate_json(text)


def download_scaler(model_uri: str, *, tracking_uri: str) -> Scaler | None:
    """The training scaler saved with a registered version (None for versions without one)."""
    text = _extra_file(model_uri, SCALER_FILE, tracking_uri)
    return None if text is None else Scaler.model_validate_json(text)
