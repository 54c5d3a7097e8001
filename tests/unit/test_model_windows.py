"""Code tests of windows and splits: no copies per window, no label leaks across splits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cryptoarena.model.windows import (
    WindowDataset,
    gather,
    time_split,
    valid_anchors,
    window_view,
)
from torch.utils.data import DataLoader


def test_valid_anchors_have_inputs_and_labels() -> None:
    a = valid_anchors(1000, window=30, lookback=60, horizon=15)
    assert a[0] == 89 and a[-1] == 984
    assert len(valid_anchors(50, window=30, lookback=60, horizon=15)) == 0


@pytest.mark.parametrize(("window", "lookback", "horizon"), [(60, 60, 15), (20, 5, 15), (2, 1, 1)])
def test_splits_are_ordered_and_do_not_leak(window: int, lookback: int, horizon: int) -> None:
    s = time_split(20_000, window=window, lookback=lookback, horizon=horizon)
    parts = [s.train, s.val, s.test]
    for part in parts:
        assert len(part) > 0 and np.all(np.diff(part) == 1)
    for earlier, later in itertools.pairwise(parts):
        last_label_bar = earlier[-1] + horizon  # the furthest bar an earlier label reads
        first_input_bar = later[0] - window + 1 - lookback  # the earliest bar a later input reads
        assert last_label_bar < first_input_bar
    assert s.train[-1] < s.val[0] < s.test[0]
    total = len(valid_anchors(20_000, window=window, lookback=lookback, horizon=horizon))
    assert sum(map(len, parts)) + 2 * s.gap == total  # nothing lost besides the two gaps


def test_bad_split_requests() -> None:
    with pytest.raises(ValueError, match="too few"):
        time_split(200, window=60, lookback=60, horizon=15)
    with pytest.raises(ValueError, match="fractions"):
        time_split(20_000, window=60, lookback=60, horizon=15, fractions=(0.5, 0.5, 0.5))


def test_window_view_is_a_view_and_gather_matches_slices() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(500, 4)).astype(np.float32)
    view = window_view(feats, 30)
    assert view.shape == (471, 30, 4) and np.shares_memory(view, feats)
    anchors = np.array([29, 100, 499])
    got = gather(feats, anchors, 30)
    for i, a in enumerate(anchors):
        np.testing.assert_array_equal(got[i], feats[a - 29 : a + 1])


def test_dataset_items_and_batches() -> None:
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 3)).astype(np.float32)
    targets = rng.normal(size=(300, 5)).astype(np.float32)
    anchors = np.arange(50, 250)
    ds = WindowDataset(feats, targets, anchors, 10)
    x, y = ds[7]
    np.testing.assert_array_equal(x.numpy(), feats[57 - 9 : 58])
    np.testing.assert_array_equal(y.numpy(), targets[57])
    from cryptoarena.model.windows import identity_collate

    xb, yb = next(iter(DataLoader(ds, batch_size=32, collate_fn=identity_collate)))
    assert xb.shape == (32, 10, 3) and yb.shape == (32, 5)
    np.testing.assert_array_equal(xb[7].numpy(), x.numpy())
    with pytest.raises(ValueError):
        WindowDataset(feats, targets, np.array([5]), 10)


def test_day_split_gates_on_the_newest_day() -> None:
    """Bars of three collected UTC days (with a hole between the last two): the newest day is
    the test block, validation and training lie before it with the gap, nothing overlaps."""
    from cryptoarena.model.windows import NS_PER_DAY, day_split, utc_day

    day = 86_400
    secs = np.concatenate([np.arange(0, 2 * day, 10), np.arange(2 * day + 3600, 3 * day, 10)])
    ts = secs.astype(np.int64) * 1_000_000_000 + 19_000 * NS_PER_DAY
    anchors = np.arange(len(ts))
    split = day_split(ts, anchors, gap=50)
    days = utc_day(ts)
    assert set(days[split.test]) == {days[-1]} and len(split.test) == (day - 3600) // 10
    assert split.val[-1] <= split.test[0] - 50 and split.train[-1] <= split.val[0] - 50
    assert set(days[split.train]) == {days[0], days[0] + 1}
    with pytest.raises(ValueError, match="two UTC days"):
        day_split(ts[:100], anchors[:100], gap=5)
