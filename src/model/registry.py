"""The MLflow model registry: log a forecaster, move aliases, load a forecaster back.

Aliases only (``@champion``, ``@challenger``), never stages. A logged model is the exported
network (torch.export, raw features in, log returns out, scaler inside) plus, in the MLmodel
metadata and as files, the feature spec, the scaler and the model's identity; the training
reference sample (features of the training split) travels next to it for drift checks.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
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


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def promotion_gate(
    candidate_mse: float,
    persistence_mse: float,
    champion_mse: float | None,
    *,
    margin: float = 0.0,
) -> GateDecision:
    """Champion only if the candidate beats persistence AND the current champion (same data).

    All MSEs must come from the same held-out anchors. ``margin`` is a relative improvement the
    candidate must exceed (0 = any strict improvement).
    """
    values = [candidate_mse, persistence_mse] + ([] if champion_mse is None else [champion_mse])
    if not all(np.isfinite(v) and v >= 0 for v in values):
        return GateDecision(False, "refused: non-finite or negative MSE")
    if not candidate_mse < persistence_mse * (1.0 - margin):
        skill = 1.0 - candidate_mse / persistence_mse if persistence_mse > 0 else float("nan")
        return GateDecision(False, f"refused: does not beat persistence (skill {skill:+.4f})")
    if champion_mse is not None and not candidate_mse < champion_mse * (1.0 - margin):
        return GateDecision(
            False,
            f"refused: does not beat the champion (MSE {candidate_mse:.3e} vs {champion_mse:.3e})",
        )
    if champion_mse is None:
        return GateDecision(True, "promoted: beats persistence and there is no champion yet")
    return GateDecision(True, "promoted: beats persistence and the current champion")


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
    info = ForecastModelInfo(name=name, version=version, run_id=run_id, **_info_fields(meta))
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
