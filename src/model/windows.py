"""Windows over bar features without copying each window, and leak-free time-ordered splits.

An *anchor* is the index of a window's last bar: its inputs are feature rows
``anchor - window + 1 .. anchor`` (which read bars back to ``anchor - window + 1 - lookback``) and
its label is the log return from ``anchor`` to ``anchor + 1 .. anchor + horizon``. Splits are
contiguous anchor ranges in time order, separated by a gap so that no bar a split's labels read is
read by the next split's inputs (and vice versa).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """Anchor indices of each split (sorted) and the gap used between them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    gap: int

    def spans(self) -> dict[str, tuple[int, int]]:
        return {
            name: (int(a[0]), int(a[-1])) if len(a) else (-1, -1)
            for name, a in (("train", self.train), ("val", self.val), ("test", self.test))
        }


def valid_anchors(n: int, *, window: int, lookback: int, horizon: int) -> np.ndarray:
    """Anchors with complete inputs and labels in a frame of ``n`` bars."""
    first = lookback + window - 1
    last = n - 1 - horizon
    return np.arange(first, last + 1, dtype=np.int64) if last >= first else np.empty(0, np.int64)


def split_gap(*, window: int, lookback: int, horizon: int) -> int:
    """Anchor distance that keeps a split's label bars out of the next split's input bars."""
    return window + lookback + horizon


def time_split(
    n: int,
    *,
    window: int,
    lookback: int,
    horizon: int,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> Split:
    """Contiguous train/val/test anchors in time order with a leak-proof gap between them."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    anchors = valid_anchors(n, window=window, lookback=lookback, horizon=horizon)
    gap = split_gap(window=window, lookback=lookback, horizon=horizon)
    usable = len(anchors) - 2 * gap
    if usable < 30:
        raise ValueError(
            f"{n} bars are too few for window {window}, lookback {lookback}, horizon {horizon}"
        )
    n_train = int(usable * fractions[0])
    n_val = int(usable * fractions[1])
    train = anchors[:n_train]
    val = anchors[n_train + gap : n_train + gap + n_val]
    test = anchors[n_train + 2 * gap + n_val :]
    return Split(train=train, val=val, test=test, gap=gap)


NS_PER_DAY = 86_400 * 10**9


def utc_day(ts_ns: np.ndarray) -> np.ndarray:
    """The UTC day number (days since 1970-01-01) of each timestamp."""
    return np.asarray(ts_ns, np.int64) // NS_PER_DAY


def day_split(
    ts: np.ndarray, anchors: np.ndarray, *, gap: int, val_fraction: float = 0.15
) -> Split:
    """Split usable ``anchors`` of several UTC days: the newest day is the test block (what the
    gate judges on), the last ``val_fraction`` of the anchors before it (after the gap) is the
    validation split for early stopping, the rest trains."""
    anchors = np.asarray(anchors, np.int64)
    days = utc_day(ts[anchors]) if len(anchors) else np.empty(0, np.int64)
    if len(np.unique(days)) < 2:
        raise ValueError("a split by day needs bars of at least two UTC days")
    test = anchors[days == days[-1]]
    before = anchors[anchors <= test[0] - gap]
    n_val = int(len(before) * val_fraction)
    val = before[len(before) - n_val :] if n_val else before[:0]
    train = before[before <= val[0] - gap] if n_val else before
    if len(train) < 30 or len(val) < 30 or len(test) < 30:
        raise ValueError(
            f"too few windows for a split by day (train {len(train)}, val {len(val)}, "
            f"test {len(test)})"
        )
    return Split(train=train, val=val, test=test, gap=gap)


def window_view(features: np.ndarray, window: int) -> np.ndarray:
    """A read-only view of shape (n - window + 1, window, F): row i holds feature rows i..i+window-1."""
    return sliding_window_view(features, window, axis=0).transpose(0, 2, 1)


def gather(features: np.ndarray, anchors: np.ndarray, window: int) -> np.ndarray:
    """Windows ending at ``anchors`` (a copy of just those windows): (len(anchors), window, F)."""
    return window_view(features, window)[np.asarray(anchors) - window + 1]


class WindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Index-based windows: item i is (features[a-W+1 .. a], targets[a]) for anchor a = anchors[i].

    ``__getitems__`` gathers a whole batch with one fancy-index (DataLoader uses it), so nothing is
    copied per window; use ``collate_fn=identity_collate``.
    """

    def __init__(
        self, features: np.ndarray, targets: np.ndarray, anchors: np.ndarray, window: int
    ) -> None:
        if len(features) != len(targets):
            raise ValueError("features and targets must have the same number of rows")
        self._view = window_view(np.ascontiguousarray(features, dtype=np.float32), window)
        self._targets = np.ascontiguousarray(targets, dtype=np.float32)
        self.anchors = np.asarray(anchors, dtype=np.int64)
        self.window = window
        if len(self.anchors) and (
            self.anchors.min() < window - 1 or self.anchors.max() >= len(features)
        ):
            raise ValueError("anchors out of range for this window")

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.anchors[np.asarray(indices, dtype=np.int64)]
        x = torch.from_numpy(np.ascontiguousarray(self._view[a - self.window + 1]))
        y = torch.from_numpy(self._targets[a])
        return x, y


def identity_collate(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch
