"""From bars to a fitted LSTM: features, labels, leak-free split, scaler, Lightning training.

Seeded and deterministic on CPU: same bars + same config → same weights.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from cryptoarena.model.features import FeatureSpec, Scaler, compute_features, compute_targets
from cryptoarena.model.lstm import EnsembleNet, LSTMConfig, LSTMModule
from cryptoarena.model.windows import (
    Split,
    WindowDataset,
    day_split,
    gather,
    identity_collate,
    split_gap,
    time_split,
)
from pytorch_lightning.callbacks import EarlyStopping
from torch.utils.data import DataLoader

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything derived from one bar frame that training and evaluation share."""

    bars: pd.DataFrame
    features: np.ndarray  # (n, F) float32, NaN in the warm-up rows
    targets: np.ndarray  # (n, H) float32 log returns, NaN at the end
    split: Split
    scaler: Scaler
    spec: FeatureSpec
    window: int
    data_hash: str
    span: dict[str, Any] = field(default_factory=dict)

    def train_rows(self) -> np.ndarray:
        """Feature rows the training windows read (the only rows the scaler may see)."""
        a = self.split.train
        return self.features[int(a[0]) - self.window + 1 : int(a[-1]) + 1]

    def train_span_bars(self) -> pd.DataFrame:
        """The bars of the training span (with the features' warm-up before it): what the drift
        check's in-span null is calibrated on."""
        a = self.split.train
        first = max(0, int(a[0]) - self.window + 1 - self.spec.lookback)
        return self.bars.iloc[first : int(a[-1]) + 1]

    def reference_sample(self, max_rows: int = 5000) -> pd.DataFrame:
        """Training-split features (evenly thinned) as the drift reference."""
        rows = self.train_rows()
        step = max(1, len(rows) // max_rows)
        return pd.DataFrame(rows[::step].astype(np.float64), columns=list(self.spec.names))


def data_fingerprint(bars: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("ts", "close", "volume"):
        h.update(np.ascontiguousarray(bars[col].to_numpy()).tobytes())
    return h.hexdigest()[:16]


def prepare(
    bars: pd.DataFrame,
    spec: FeatureSpec,
    window: int,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    *,
    by_day: bool = False,
) -> Prepared:
    """Features, labels, the split and the training scaler of ``bars``. ``by_day``: the newest
    UTC day is the test split (the gate block) and windows never straddle a hole in the bars
    (:func:`~cryptoarena.model.windows.day_split`); otherwise ``fractions`` of the anchors."""
    bars = bars.reset_index(drop=True)
    feats = compute_features(bars, spec).astype(np.float32)
    targets = compute_targets(bars, spec.horizon).astype(np.float32)
    ts = bars["ts"].to_numpy(np.int64)
    if by_day:
        from cryptoarena.model.cv import contiguous_anchors

        anchors = contiguous_anchors(
            ts, window=window, lookback=spec.lookback, horizon=spec.horizon
        )
        ok = np.isfinite(feats).all(axis=1)  # book columns may start late in a day
        bad = np.concatenate([[0], np.cumsum(~ok)])
        anchors = anchors[bad[anchors + 1] == bad[anchors + 1 - window]]
        gap = split_gap(window=window, lookback=spec.lookback, horizon=spec.horizon)
        split = day_split(ts, anchors, gap=gap)
    else:
        split = time_split(
            len(bars), window=window, lookback=spec.lookback, horizon=spec.horizon,
            fractions=fractions,
        )  # fmt: skip

    def when(i: int) -> str:
        return str(np.datetime64(int(ts[i]), "ns").astype("datetime64[s]"))

    span = {
        "bars": len(bars),
        "first": when(0),
        "last": when(len(bars) - 1),
        **{f"{k}_first": when(a) for k, (a, _) in split.spans().items()},
        **{f"{k}_last": when(b) for k, (_, b) in split.spans().items()},
        **{f"{k}_n": len(getattr(split, k)) for k in ("train", "val", "test")},
        "gap_bars": split.gap,
    }
    prepared = Prepared(
        bars=bars,
        features=feats,
        targets=targets,
        split=split,
        scaler=Scaler(mean=(0.0,), std=(1.0,)),
        spec=spec,
        window=window,
        data_hash=data_fingerprint(bars),
        span=span,
    )
    prepared.scaler = Scaler.fit(prepared.train_rows().astype(np.float64))
    return prepared


class BestWeights(pl.Callback):
    """Keeps the weights of the epoch with the lowest validation loss (restored after fit)."""

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best = float("inf")
        self.state: dict[str, torch.Tensor] | None = None
        self.best_epoch = -1

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best = float(value)
            self.best_epoch = trainer.current_epoch
            self.state = copy.deepcopy(pl_module.state_dict())


def loader(
    prepared: Prepared, anchors: np.ndarray, cfg: LSTMConfig, *, shuffle: bool
) -> DataLoader:
    ds = WindowDataset(prepared.features, prepared.targets, anchors, cfg.window)
    gen = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=shuffle,
        generator=gen if shuffle else None,
        collate_fn=identity_collate,  # type: ignore[arg-type]
        num_workers=0,
    )


def fit_lstm(
    prepared: Prepared,
    cfg: LSTMConfig,
    *,
    callbacks: list[pl.Callback] | None = None,
    progress_bar: bool = False,
    fast_dev_run: bool = False,
) -> tuple[LSTMModule, dict[str, Any]]:
    """Train with early stopping on validation loss; returns the module at its best epoch."""
    if cfg.window != prepared.window or cfg.horizon != prepared.spec.horizon:
        raise ValueError("config window/horizon differ from the prepared data")
    torch.set_num_threads(cfg.num_threads)
    # Lightning's hardware banner and tips are noise in CLI output and logs.
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = LSTMModule(
        cfg,
        prepared.spec.n_features,
        np.asarray(prepared.scaler.mean),
        np.asarray(prepared.scaler.std),
    )
    best = BestWeights()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=cfg.max_epochs,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        num_sanity_val_steps=0,
        limit_train_batches=cfg.limit_train_batches,
        fast_dev_run=fast_dev_run,
        callbacks=[EarlyStopping("val_loss", patience=cfg.patience), best, *(callbacks or [])],
    )
    train_dl = loader(prepared, prepared.split.train, cfg, shuffle=True)
    val_dl = loader(prepared, prepared.split.val, cfg, shuffle=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        trainer.fit(module, train_dl, val_dl)
    if best.state is not None:
        module.load_state_dict(best.state)
    module.eval()
    return module, {
        "best_epoch": best.best_epoch,
        "best_val_loss": best.best,
        "epochs_run": trainer.current_epoch,
    }


def fit_shrink(net: torch.nn.Module, prepared: Prepared, window: int) -> np.ndarray:
    """Per-horizon factor k minimising Σ(k·forecast − actual)² on the validation split, in [0, 1]."""
    x = gather(prepared.features, prepared.split.val, window).astype(np.float32)
    with torch.inference_mode():
        pred = net(torch.from_numpy(np.ascontiguousarray(x))).numpy()[:, 0, :].astype(np.float64)
    y = prepared.targets[prepared.split.val].astype(np.float64)
    denom = np.sum(pred * pred, axis=0)
    k = np.where(denom > 0, np.sum(pred * y, axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
    return np.clip(k, 0.0, 1.0)


def fit_model(
    prepared: Prepared,
    cfg: LSTMConfig,
    *,
    callbacks: list[pl.Callback] | None = None,
    progress_bar: bool = False,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network to register: one LSTM, or a seed ensemble of ``cfg.members``, optionally with
    a validation-fitted shrink (``cfg.shrink``). Returns (net, fit info)."""
    if cfg.members == 1 and not cfg.shrink:
        single, single_info = fit_lstm(
            prepared, cfg, callbacks=callbacks, progress_bar=progress_bar
        )
        return single.net, single_info
    nets = []
    info: dict[str, Any] = {}
    for i in range(cfg.members):
        member_cfg = cfg.model_copy(update={"seed": cfg.seed + i})
        # Epoch metrics (MLflow) from the first member only: one history per run.
        module, member = fit_lstm(
            prepared, member_cfg, callbacks=callbacks if i == 0 else None, progress_bar=progress_bar
        )
        nets.append(module.net)
        info |= {f"member{i}.{k}": v for k, v in member.items()}
    net = EnsembleNet(nets)
    if cfg.shrink:
        factor = fit_shrink(net, prepared, cfg.window)
        net.shrink.copy_(torch.as_tensor(factor, dtype=torch.float32))
        info["shrink_h_last"] = float(factor[-1])
        info["shrink_mean"] = float(factor.mean())
    net.eval()
    return net, info


def lstm_fitter(cfg: LSTMConfig, spec: FeatureSpec) -> Any:
    """A cross-validation fitter (:data:`cryptoarena.model.cv.Fitter`) that trains the network
    of ``cfg`` on each fold's training anchors: the last 15 % of them (after a gap) serve for
    early stopping, the scaler sees only the rest."""
    from cryptoarena.model.forecaster import TorchPredictor

    gap = split_gap(window=cfg.window, lookback=spec.lookback, horizon=spec.horizon)

    def fit(features: np.ndarray, targets: np.ndarray, train: np.ndarray) -> TorchPredictor:
        n_val = max(int(0.15 * len(train)), 1)
        val, fit_on = train[-n_val:], train[: max(len(train) - n_val - gap, 0)]
        if len(fit_on) < cfg.batch_size:
            raise ValueError(f"{len(fit_on)} training windows are too few for the LSTM")
        split = Split(train=fit_on, val=val, test=np.empty(0, np.int64), gap=gap)
        rows = features[fit_on].astype(np.float64)
        prepared = Prepared(
            bars=pd.DataFrame(), features=features.astype(np.float32),
            targets=targets.astype(np.float32), split=split, scaler=Scaler.fit(rows), spec=spec,
            window=cfg.window, data_hash="",
        )  # fmt: skip
        net, _ = fit_model(prepared, cfg)
        return TorchPredictor(net)

    return fit
