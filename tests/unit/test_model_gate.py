"""The promotion gate's decisions (a pure function): champion only when it beats both."""

from __future__ import annotations

import math

import pytest
from cryptoarena.model.registry import parse_model_uri, promotion_gate


def test_promotes_when_better_than_persistence_and_no_champion() -> None:
    d = promotion_gate(0.9, 1.0, None)
    assert d.promote and "no champion" in d.reason


def test_promotes_when_better_than_both() -> None:
    d = promotion_gate(0.8, 1.0, 0.85)
    assert d.promote and "champion" in d.reason


@pytest.mark.parametrize(
    ("cand", "pers", "champ", "why"),
    [
        (1.0, 1.0, None, "persistence"),  # a tie is not a win
        (1.1, 1.0, None, "persistence"),
        (1.1, 1.0, 0.5, "persistence"),
        (0.9, 1.0, 0.85, "champion"),
        (0.9, 1.0, 0.9, "champion"),
        (math.nan, 1.0, None, "non-finite"),
        (0.9, math.inf, None, "non-finite"),
        (0.9, 1.0, math.nan, "non-finite"),
        (-0.1, 1.0, None, "non-finite or negative"),
    ],
)
def test_refuses(cand: float, pers: float, champ: float | None, why: str) -> None:
    d = promotion_gate(cand, pers, champ)
    assert not d.promote and why in d.reason


def test_margin_requires_a_real_improvement() -> None:
    assert not promotion_gate(0.995, 1.0, None, margin=0.01).promote
    assert promotion_gate(0.98, 1.0, None, margin=0.01).promote


def test_model_uri_parsing() -> None:
    assert parse_model_uri("models:/btcusdt-15s@champion") == ("btcusdt-15s", "champion", None)
    assert parse_model_uri("models:/btcusdt-15s/3") == ("btcusdt-15s", None, "3")
    for bad in ("models:/x", "runs:/abc/model", "models:/x@", "models:/x/v1"):
        with pytest.raises(ValueError):
            parse_model_uri(bad)


def test_registry_name_per_symbol_and_horizon() -> None:
    from cryptoarena.config import Settings
    from cryptoarena.model.registry import registry_name

    assert registry_name("BTCUSDT", 15) == "btcusdt-15s" == Settings().serving.model_name
    with pytest.raises(ValueError):
        registry_name("BTC/USDT", 15)
