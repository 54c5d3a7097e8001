"""The registered forecaster as an MLflow pyfunc that takes the same bars the server takes.

The model engineer logs the exported network (feature windows in), so ``mlflow models serve``
on it could not be given bars. For a like-for-like benchmark this "model from code" wraps the
same registered version: it loads it through ``cryptoarena.model.registry`` and computes the
features with the same code as the server. ``model_config`` names the version to wrap.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class BarsForecaster(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from cryptoarena.model.registry import load_forecaster

        config = context.model_config
        self.forecaster = load_forecaster(config["model_uri"], tracking_uri=config["tracking_uri"])

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        return np.asarray(self.forecaster.predict([model_input]))


mlflow.models.set_model(BarsForecaster())
