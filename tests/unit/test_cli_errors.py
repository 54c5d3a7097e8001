"""Every mistake a user can make on the command line ends in one clear line, never a traceback.

Each case is one that a new user hit: a truncated download, the wrong kind of file, a directory,
a typo in a choice or an environment name, a Bybit run with no Bybit account.
"""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path

import pytest
from cryptoarena.cli import app
from cryptoarena.data.loaders import load_bybit_trade_dump, load_trades
from cryptoarena.data.samples import sample_path
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "arena.example.toml")
KLINES = "BTCUSDT-1m-2024-03-11.csv.gz"
TRADES = "binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARENA_DATA__LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("ARENA_MONGO__EMBEDDED_DIR", str(tmp_path / "journal"))
    monkeypatch.setenv("ARENA_TRADING__KILL_FILE", str(tmp_path / "kill"))
    monkeypatch.setenv("ARENA_MLFLOW__TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def truncated(tmp_path: Path) -> Path:
    """The shipped trades day, cut off mid-stream like an interrupted download."""
    whole = sample_path(TRADES).read_bytes()
    path = tmp_path / TRADES
    path.write_bytes(whole[: len(whole) // 3])
    return path


def one_error_line(result: object, *, code: int) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == code, output  # type: ignore[attr-defined]
    assert "Traceback" not in output and "Aborted" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    return errors[0]


def test_a_truncated_gz_is_named_on_import_backtest_and_train(truncated: Path) -> None:
    line = one_error_line(runner.invoke(app, ["data", "import", str(truncated)]), code=1)
    assert str(truncated) in line and "damaged or truncated" in line
    args = ["backtest", "--config", CONFIG, "--replay-file", str(truncated), "--minutes", "1"]
    line = one_error_line(runner.invoke(app, args), code=2)
    assert "damaged or truncated" in line
    line = one_error_line(runner.invoke(app, ["train", "--data", str(truncated)]), code=2)
    assert "damaged or truncated" in line


def test_a_kline_file_or_a_directory_as_replay_file_is_one_line(tmp_path: Path) -> None:
    for replay, says in ((sample_path(KLINES), "klines"), (tmp_path, "is a directory: give")):
        args = ["backtest", "--config", CONFIG, "--replay-file", str(replay), "--minutes", "1"]
        line = one_error_line(runner.invoke(app, args), code=2)
        assert says in line.lower(), line


def test_data_import_of_a_directory_says_so(tmp_path: Path) -> None:
    line = one_error_line(runner.invoke(app, ["data", "import", str(tmp_path)]), code=2)
    assert "is a directory" in line and "no such file" not in line


def test_a_mongo_uri_that_is_not_one_is_refused_at_start_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARENA_MONGO__URI", "notauri-s3cret")
    line = one_error_line(runner.invoke(app, ["report"]), code=2)
    assert "ARENA_MONGO__URI" in line and "mongodb://" in line
    assert "s3cret" not in line


def test_unknown_exchange_lists_the_choices_in_the_error_and_in_help() -> None:
    from cryptoarena.trading.cli import ExchangeChoice, SourceChoice
    from cryptoarena.trading.engine.session import ExchangeKind, Source

    assert [c.value for c in ExchangeChoice] == [k.value for k in ExchangeKind]
    assert [c.value for c in SourceChoice] == [s.value for s in Source]
    result = runner.invoke(app, ["backtest", "--exchange", "papr"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    for choice in ("paper", "bybit-demo", "bybit-testnet", "bybit-mainnet"):
        assert f"'{choice}'" in result.output
    for command in ("backtest", "trade"):
        help_text = runner.invoke(app, [command, "--help"]).output
        assert "paper|bybit-demo|bybit-testnet|bybit-mainnet" in help_text
    assert "replay|bybit" in runner.invoke(app, ["trade", "--help"]).output
    assert "gate|force|never" in runner.invoke(app, ["train", "--help"]).output


def test_bybit_without_a_bound_account_refuses_to_start(tmp_path: Path) -> None:
    args = ["backtest", "--config", CONFIG, "--exchange", "bybit-demo", "--minutes", "1"]
    line = one_error_line(runner.invoke(app, args), code=2)
    assert "no strategy is bound to a Bybit account" in line
    assert not (tmp_path / "journal").exists()  # nothing ran, nothing was journaled


def test_an_unknown_arena_variable_is_warned_about_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptoarena.config import unknown_env_names

    env = {
        "ARENA_MONGO__URL": "x",
        "ARENA_SERVING__PORT": "1",
        "ARENA_ACCOUNTS__SMA__API_KEY": "k",
        "ARENA_ACCOUNTS__SMA__API_KEYS": "k",
        "ARENA_DATA": "{}",
        "ARENA_WHATEVER": "1",
        "PATH": "/bin",
    }
    assert unknown_env_names(env) == [
        "ARENA_ACCOUNTS__SMA__API_KEYS is not a setting and is ignored",
        "ARENA_MONGO__URL is not a setting and is ignored (did you mean ARENA_MONGO__URI?)",
        "ARENA_WHATEVER is not a setting and is ignored",
    ]
    monkeypatch.setenv("ARENA_SERVING__PROT", "9000")
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 0
    assert (
        "warning: ARENA_SERVING__PROT is not a setting and is ignored "
        "(did you mean ARENA_SERVING__PORT?)" in result.output
    )


def test_malformed_rows_are_named_by_their_1_based_line(tmp_path: Path) -> None:
    dump = tmp_path / "BTCUSDT2020-03-26.csv"
    dump.write_text(
        "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n"
        "1585180800.2,BTCUSDT,Buy,0.5,6700.5,PlusTick,a1,3.35e+11,0.5,3350.25\n"
        "1585180801.8,BTCUSDT,Sell,1,6700.0,MinusTick,a3,6.7e+10,0.1,670.0,9,9\n"
        "1585180801.7,BTCUSDT,Sell,oops,6700.0,MinusTick,a2,6.7e+10,0.1,670.0\n"
        "1585180802.7,BTCUSDT,Sell,1,6700.0,MinusTick,a4,6.7e+10,0.1,670.0\n"
    )
    frame, report = load_bybit_trade_dump(dump)
    assert len(frame) == 2 and report.malformed == 2
    assert report.examples == [
        "wrong number of fields (first at line 3)",
        "bad time, price or size (first at line 4)",
    ]

    log = tmp_path / "bitstamp.log.bz2"
    lines = [
        '1430438401500 trade {"price": 230.1, "amount": 2.0, "id": 1}',
        '1430438401600 order_book {"bids": [], "asks": []}',
        '1430438401700 trade {"price": -1, "amount": 2.0, "id": 2}',
    ]
    log.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    _, report = load_trades(log)
    assert report.examples == ["bad time, price or size (first at line 3)"]


def test_a_corrupt_archive_is_a_damaged_file_not_an_io_error(tmp_path: Path) -> None:
    from cryptoarena.data.loaders import DamagedFileError

    bad = tmp_path / "x.csv.gz"
    bad.write_bytes(gzip.compress(b"exchange,symbol,timestamp\n")[:12] + b"garbage" * 10)
    with pytest.raises(DamagedFileError, match="damaged or truncated"):
        load_trades(bad)
    with pytest.raises(FileNotFoundError):
        load_trades(tmp_path / "missing.csv.gz")


def test_a_forced_promotion_says_it_was_forced() -> None:
    """`arena train --promote force` printed "refused …; now @champion" as if the gate agreed."""
    from cryptoarena.model.champions import GateDecision, promotion_message

    refused = GateDecision(False, "refused: not significantly better than persistence")
    assert promotion_message(refused, "forced").startswith("FORCED to @champion (the gate refused")
    assert promotion_message(refused, None).endswith("stays @challenger")
    assert "FORCED" not in promotion_message(GateDecision(True, "promoted"), "gate")


def test_a_book_queue_model_on_a_replay_without_a_book_is_one_line(tmp_path: Path) -> None:
    """queue_model l2/l3 is accepted in the file, refused at start when the replay (here the
    shipped Binance day: trades only) has no recorded book, before anything is journaled."""
    config = tmp_path / "l3.toml"
    config.write_text(
        '[arena]\nqueue_model = "l3"\n[[strategy]]\nname = "h"\nkind = "buy_and_hold"\n'
    )
    args = ["backtest", "--config", str(config), "--replay-file", str(sample_path(TRADES))]
    line = one_error_line(runner.invoke(app, [*args, "--minutes", "1"]), code=2)
    assert "queue_model 'l3' needs recorded order events (L3), and this run has none" in line
    assert not (tmp_path / "journal").exists()


def test_a_lake_day_the_lake_does_not_hold_is_one_line(tmp_path: Path) -> None:
    args = ["backtest", "--config", CONFIG, "--lake-day", "2020-02-22", "--minutes", "1"]
    line = one_error_line(runner.invoke(app, args), code=2)
    assert "no trades in the lake's BTCUSDT 2020-02-22" in line, line
    both = [*args, "--replay-file", str(sample_path(TRADES))]
    assert "a file or a lake day, not both" in one_error_line(runner.invoke(app, both), code=2)
