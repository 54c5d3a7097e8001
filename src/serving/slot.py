"""The champion slot: which model serves now, and how it is swapped without failing a request.

A request takes a reference to the current :class:`LoadedModel` once, at its start, and uses
only that object; a swap loads the new version completely (off the event loop) and then
replaces the reference in one assignment. In-flight requests finish on the old model, new ones
get the new model, and nobody ever sees a half-loaded one. Loads and swaps are serialised by a
lock, so a poll and an admin reload cannot race.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

CHAMPION = "champion"


class ModelInfoLike(Protocol):
    """What the server reads from ``cryptoarena.model.forecaster.ForecastModelInfo``."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def horizon(self) -> int: ...
    @property
    def window(self) -> int: ...
    @property
    def min_bars(self) -> int: ...
    @property
    def quantiles(self) -> tuple[float, ...]: ...
    @property
    def metrics(self) -> dict[str, float]: ...


class ForecasterLike(Protocol):
    """The part of ``cryptoarena.model.forecaster.Forecaster`` the server uses."""

    @property
    def info(self) -> Any: ...

    def predict(self, windows: Sequence[pd.DataFrame]) -> np.ndarray: ...


class ModelSource(Protocol):
    """Where champions come from: the MLflow registry in production and in tests."""

    @property
    def description(self) -> str: ...

    def champion_version(self) -> str | None:
        """The version the @champion alias points at now (None: no champion yet)."""
        ...

    def load(self, version: str) -> ForecasterLike:
        """Load one exact version (features, scaler and weights of that version)."""
        ...


class RegistrySource:
    """The MLflow model registry, through ``cryptoarena.model.registry``."""

    def __init__(self, name: str, tracking_uri: str) -> None:
        self.name = name
        self.tracking_uri = tracking_uri

    @property
    def description(self) -> str:
        return f"models:/{self.name}@{CHAMPION} in {self.tracking_uri}"

    def champion_version(self) -> str | None:
        from cryptoarena.model.registry import get_alias_version

        return get_alias_version(self.name, CHAMPION, tracking_uri=self.tracking_uri)

    def load(self, version: str) -> ForecasterLike:
        from cryptoarena.model.registry import load_forecaster

        # By exact version, not by alias: the alias may move between the poll and the load.
        return load_forecaster(f"models:/{self.name}/{version}", tracking_uri=self.tracking_uri)


@dataclass(frozen=True)
class LoadedModel:
    forecaster: ForecasterLike
    version: str
    uri: str
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def info(self) -> Any:
        return self.forecaster.info


class ModelUnavailable(RuntimeError):
    """No model can serve this request; the message says why (answered as 503)."""


@dataclass(frozen=True)
class SwapResult:
    previous_version: str | None
    version: str
    swapped: bool


class ModelSlot:
    """Holds the serving model and swaps it atomically."""

    def __init__(
        self, source: ModelSource, on_swap: Callable[[LoadedModel], None] | None = None
    ) -> None:
        self.source = source
        self._current: LoadedModel | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._on_swap = on_swap
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def get(self) -> LoadedModel:
        """The model for one request; raise ModelUnavailable (503) when there is none."""
        model = self._current
        if model is None:
            raise ModelUnavailable(self.reason())
        return model

    def reason(self) -> str:
        if self._current is not None:
            return "ready"
        why = self.last_error or "not loaded yet"
        return f"no model loaded from {self.source.description}: {why}"

    def _loop_lock(self) -> asyncio.Lock:
        # One lock per event loop: a TestClient may run the app's lifespan in a fresh loop.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _still(self, previous: str | None) -> str:
        assert self.last_error is not None
        if previous is None:
            return self.last_error
        return f"{self.last_error}; still serving version {previous}"

    async def refresh(self) -> SwapResult:
        """Swap in the champion if the alias moved; raise ModelUnavailable when it cannot."""
        async with self._loop_lock():
            previous = self._current.version if self._current else None
            try:
                version = await asyncio.to_thread(self.source.champion_version)
            except Exception as exc:  # registry down: keep serving what we have
                self.last_error = f"registry unreachable ({type(exc).__name__}: {exc})"
                raise ModelUnavailable(self._still(previous)) from exc
            if version is None:
                self.last_error = f"no @{CHAMPION} alias yet"
                raise ModelUnavailable(self._still(previous))
            if version == previous:
                return SwapResult(previous, version, swapped=False)
            try:
                forecaster = await asyncio.to_thread(self.source.load, version)
            except Exception as exc:
                self.last_error = f"loading version {version} failed ({type(exc).__name__}: {exc})"
                logger.exception("could not load champion version %s", version)
                raise ModelUnavailable(self._still(previous)) from exc
            loaded = LoadedModel(forecaster, version, self.source.description)
            # The one assignment that makes the swap: requests already holding the old object
            # finish on it; the old model is freed when the last of them lets go.
            self._current = loaded
            self.last_error = None
            logger.info("serving model version %s (was %s)", version, previous)
            if self._on_swap is not None:
                self._on_swap(loaded)
            return SwapResult(previous, version, swapped=True)


async def poll_champion(slot: ModelSlot, interval_s: float) -> None:
    """Run forever: check the alias every ``interval_s`` and swap when it moved."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await slot.refresh()
        except ModelUnavailable as exc:
            # Keep the current model (if any) and try again next time.
            logger.warning("champion poll: %s", exc)
        except Exception:
            logger.exception("champion poll failed")
