"""The LSTM forecaster: a plain ``nn.Module`` (what MLflow exports) inside a LightningModule.

The network carries the fitted scaler as buffers and returns log returns directly, so the exported
model maps raw features (batch, window, F) to forecasts (batch, horizon) with nothing else to apply.
Training works in basis points (targets × 1e4) to keep the loss well scaled.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from cryptoarena.model.features import BP
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

logger = logging.getLogger(__name__)


class LSTMConfig(BaseModel):
    """Everything that shapes and trains the LSTM; logged as run params."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=60, ge=2, le=3600)
    hidden: int = Field(default=32, ge=1, le=1024)
    layers: int = Field(default=1, ge=1, le=8)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    horizon: int = Field(default=15, ge=1, le=300)
    quantiles: tuple[float, ...] = ()
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=256, ge=1)
    max_epochs: int = Field(default=6, ge=1)
    patience: int = Field(default=2, ge=1)
    seed: int = 7
    num_threads: int = Field(default=1, ge=1, le=64)
    limit_train_batches: int | float = 1.0
    # Seed ensemble: members trained with seeds seed, seed + 1, …; the forecast is their mean.
    members: int = Field(default=1, ge=1, le=32)
    # Scale the point forecast per horizon by the least-squares factor fitted on validation
    # (clipped to [0, 1]): corrects over-confident forecasts.
    shrink: bool = False

    @model_validator(mode="after")
    def _check_quantiles(self) -> LSTMConfig:
        if any(not 0 < q < 1 for q in self.quantiles) or list(self.quantiles) != sorted(
            set(self.quantiles)
        ):
            raise ValueError("quantiles must be increasing, distinct and strictly between 0 and 1")
        return self


class ForecastNet(nn.Module):
    """(batch, window, F) raw features → (batch, 1 + Q, horizon) log returns (point, quantiles)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        n_features: int,
        *,
        hidden: int,
        layers: int,
        dropout: float,
        horizon: int,
        n_quantiles: int,
        mean: np.ndarray,
        std: np.ndarray,
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.n_out = 1 + n_quantiles
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32))
        self.lstm = nn.LSTM(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, horizon * self.n_out)

    def forward_bp(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        out, _ = self.lstm(z)
        return self.head(out[:, -1, :]).reshape(-1, self.n_out, self.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_bp(x) / BP


class EnsembleNet(nn.Module):
    """The mean of member networks' outputs, the point path scaled by ``shrink`` (per horizon).

    Same interface as :class:`ForecastNet` (raw features in, log returns out), so it exports and
    serves the same way: one registered model.
    """

    shrink: torch.Tensor

    def __init__(self, members: list[ForecastNet], shrink: np.ndarray | None = None) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        horizon = members[0].horizon
        factor = np.ones(horizon) if shrink is None else np.asarray(shrink, dtype=np.float64)
        self.register_buffer("shrink", torch.as_tensor(factor, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.stack([m(x) for m in self.members]).mean(dim=0)
        return torch.cat([out[:, :1, :] * self.shrink, out[:, 1:, :]], dim=1)


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss; pred (B, Q, H), target (B, H), quantiles (Q,)."""
    diff = target.unsqueeze(1) - pred
    q = quantiles.view(1, -1, 1)
    return torch.maximum(q * diff, (q - 1) * diff).mean()


class LSTMModule(pl.LightningModule):
    _q: torch.Tensor

    def __init__(
        self, config: LSTMConfig, n_features: int, mean: np.ndarray, std: np.ndarray
    ) -> None:
        super().__init__()
        self.config = config
        self.net = ForecastNet(
            n_features,
            hidden=config.hidden,
            layers=config.layers,
            dropout=config.dropout,
            horizon=config.horizon,
            n_quantiles=len(config.quantiles),
            mean=mean,
            std=std,
        )
        self.register_buffer("_q", torch.tensor(config.quantiles, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        """The one step for train/val/test: MSE on the point path (+ pinball on quantiles), in bp."""
        x, y = batch
        out = self.net.forward_bp(x)
        target = y * BP
        mse = torch.mean((out[:, 0, :] - target) ** 2)
        loss = mse
        if len(self.config.quantiles):
            loss = loss + pinball(out[:, 1:, :], target, self._q)
        head = torch.mean((out[:, 0, -1] - target[:, -1]) ** 2)
        on_step = stage == "train"
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}_mse_h{self.config.horizon}_bp2", head, on_step=False, on_epoch=True)
        if on_step:
            self.log("train_loss_step", loss, on_step=True, on_epoch=False, logger=False)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.model_step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay
        )
