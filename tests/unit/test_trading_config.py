"""The arena file: the shipped example loads, bad files get one clear error; client ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptoarena.trading.config import ArenaConfigError, load_arena_config, parse_arena_config
from cryptoarena.trading.execution.orders import incarnation_tag, run_tag

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_loads_every_family() -> None:
    config = load_arena_config(ROOT / "configs" / "arena.example.toml")
    kinds = {s.kind for s in config.strategies}
    assert kinds == {"sma_cross", "macd", "rsi_reversion", "bollinger", "donchian",
                     "vwap_reversion", "buy_and_hold", "naive_forecaster", "ai_forecast"}  # fmt: skip
    assert len(config.build_strategies()) == 10
    # The AI arm twice: a taker and a maker, each with its own threshold.
    ai = {s.name: s.build().config for s in config.strategies if s.kind == "ai_forecast"}
    assert {n: c.execution for n, c in ai.items()} == {"ai_taker": "taker", "ai_maker": "maker"}
    assert all(c.threshold_bps is not None for c in ai.values())
    assert config.risk.global_.price_band_bps == 50.0


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"strategy": []}, "strategy: Tuple should have at least 1 item"),
        ({"strategy": [{"name": "a", "kind": "nope"}]}, "unknown strategy kind 'nope'"),
        ({"strategy": [{"name": "a", "kind": "sma_cross", "params": {"fast": 9, "slow": 3}}]},
         "must be shorter"),
        ({"strategy": [{"name": "a", "kind": "buy_and_hold"}] * 2}, "repeated: ['a']"),
        ({"strategy": [{"name": "A B", "kind": "buy_and_hold"}]}, "strategy.1.name"),
        ({"strategy": [{"name": "a", "kind": "buy_and_hold"}, {"name": "A B", "kind": "buy_and_hold"}]},
         "strategy.2.name"),
        ({"arena": {"capital": -1}, "strategy": [{"name": "a", "kind": "buy_and_hold"}]},
         "arena.capital"),
        ({"risk": {"overrides": {"ghost": {}}}, "strategy": [{"name": "a", "kind": "buy_and_hold"}]},
         "unknown strategies: ['ghost']"),
        ({"strategy": [{"name": "a", "kind": "ai_forecast", "params": {"execution": "limit"}}]},
         "strategy.1: params.execution: Input should be 'taker' or 'maker'"),
        ({"strategy": [{"name": "a", "kind": "sma_cross", "params": {"execution": "maker",
                                                                    "maker_ttl_s": 0}}]},
         "strategy.1: params.maker_ttl_s: Input should be greater than 0"),
        ({"strategy": [{"name": "a", "kind": "ai_forecast", "params": {"threshold_bps": -1}}]},
         "params.threshold_bps"),
    ],
)  # fmt: skip
def test_bad_config_gets_one_clear_error(data: dict, words: str) -> None:
    with pytest.raises(ArenaConfigError) as err:
        parse_arena_config(data, "arena.toml")
    assert words in str(err.value) and str(err.value).startswith("arena.toml: ")
    assert "Value error" not in str(err.value) and "\n" not in str(err.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ArenaConfigError, match="not found"):
        load_arena_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[arena\n")
    with pytest.raises(ArenaConfigError, match="not valid TOML"):
        load_arena_config(bad)


def test_client_ids_fit_bybit_order_link_ids() -> None:
    # <run tag 8>-<strategy 2>-<incarnation ≤ 9>-<seq hex>: ≤ 36 chars, [A-Za-z0-9-_] only.
    cid = f"{run_tag('replay-paper-20261125T164401Z')}-07-{incarnation_tag(2**62)}-{10**9:x}"
    assert len(cid) <= 36 and cid.replace("-", "").isalnum()
    assert run_tag("a") != run_tag("b") and incarnation_tag(1_000_000) != incarnation_tag(2_000_000)
