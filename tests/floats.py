"""Float comparisons sized to the precision actually computed, so tests hold on any x86-64 CPU.

The networks run in float32. Batched and single calls, eager and exported graphs, or another CPU
(AVX2 vs AVX-512 kernels) add in another order, so results differ by a few float32 ulps of the
*largest* value in play, not of each element: an output that is nearly zero carries the absolute
error of its neighbours. Hence a tolerance relative to the scale of the whole array, never 1e-12.
A wrong window or a shifted feature moves forecasts by their own size (1e-5..1e-4), far above it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

F32_RTOL = 1e-5  # ~80 float32 ulps: room for reordered sums through a few layers


def assert_float32_close(actual: ArrayLike, desired: ArrayLike, err_msg: str = "") -> None:
    """``actual`` ≈ ``desired`` where both came out of a float32 computation."""
    want = np.asarray(desired, dtype=np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        want,
        rtol=F32_RTOL,
        atol=F32_RTOL * max(scale, np.finfo(np.float32).tiny),
        err_msg=err_msg,
    )


def assert_prices_close(prices: ArrayLike, base: float, log_returns: ArrayLike) -> None:
    """Prices served as ``base * exp(r)`` for float32-computed log returns ``r``."""
    assert_float32_close(np.log(np.asarray(prices, dtype=np.float64) / base), log_returns)
