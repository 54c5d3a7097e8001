"""Every `arena` command the project suggests runs as written on the demo's state (issue #23).

The suggestions are collected from the demo's "what next" (``cryptoarena.demo.next_commands``),
README.md and docs/*.md: lines of code blocks and inline code that start with ``arena `` (or
``.venv/bin/arena ``, after optional ``VAR=value`` assignments). The demo's state is made once
per module by the real ``arena demo --quick`` in a temporary folder laid out like a checkout
(data/, configs/, docs/, flows/ and .venv linked in, ../shared beside it when the shared data set
is there; var/ and mlruns/ its own), and each command runs there in bash as a user types it, with
the venv's ``arena`` first on PATH and no ``ARENA_*`` variable of the caller.

Usage lines are read as usage: ``a|b`` runs each alternative, ``[...]`` is optional (left out),
``…`` and ``FILE...`` mean "more of the same" (one given), and the upper-case placeholders get
values from the demo's state (``placeholder``). Servers and live replays are started, waited on
until they answer, then stopped with Ctrl-C (``CTRL_C_EXITS``). Whatever cannot run here is
skipped one by one, saying what is missing; commands that take minutes (``LONG``) run only with
``SUGGESTED_COMMANDS=all``. The commands run side by side where they can (``Runs``).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptoarena.config import Settings
from cryptoarena.demo import next_commands

from tests.integration.trading_kit import ARENA, ROOT

pytestmark = pytest.mark.slow

DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# What of a checkout a command may name (configs/…, data/sample/…, .venv/bin/arena).
CHECKOUT_LINKS = ("data", "configs", "docs", "flows", ".venv")
SHARED = ROOT.parent / "shared"  # the shared data set, which the docs name as ../shared/data
DEMO = "the demo's what next"
ALL = os.environ.get("SUGGESTED_COMMANDS") == "all"
RUN_TIMEOUT_S = 900.0 if ALL else 300.0  # one command (timed from its start)
READY_TIMEOUT_S = 300.0  # a server (Prefect's temporary API alone took 2 min under load here)
WAIT_S = 3600.0  # a command's test, queued behind the others
# A server stopped by Ctrl-C exits 0, or 130 (128 + SIGINT) when it ends by re-raising the
# signal after its graceful shutdown as uvicorn does, which is what a shell reports for Ctrl-C.
CTRL_C_EXITS = (0, 128 + signal.SIGINT)
# The command the demo's state is made with: it ran, as written, when the state was made.
MADE_WITH = "arena demo --quick"
TRACEBACK = "Traceback (most recent call last)"
COMMAND = re.compile(r"^(?:[A-Z][A-Z0-9_]*=\S+\s+)*(?:\.venv/bin/)?arena\s")
RUN = "RUN"  # a placeholder resolved once the demo ran: its trading run

# Prose that names a command which needs arguments; its suggestions with arguments are run.
# These are checked to name a command of `arena`, not run bare.
NAMES = {
    "arena sweep", "arena evaluate", "arena data import", "arena season start",
    "arena season report", "arena flows",
}  # fmt: skip


SHIPPED_DAY = "data/sample/binance_usdm_BTCUSDT_trades_2020-02-22.csv.gz"


def placeholder(name: str, line: str) -> str | None:
    """What a documented placeholder stands for in the demo's state (None: not one)."""
    if name == "FILE":
        if "--bars" in line or "season start" in line:
            return "data/sample/BTCUSDT-1m-2024-03-11.csv.gz"  # 1 m klines
        if "--book" in line:
            return "data/sample/bitstamp_BTCUSD_2015-05-01.log.bz2"  # trades and the book
        # The day the demo put in the lake: imported again it adds nothing, so the flows that
        # read the lake's last half hour still read that day (a 46-second file of a later day
        # would leave them 47 bars, too few for the drift check).
        return SHIPPED_DAY
    return {
        "PATH": SHIPPED_DAY,
        "VERSION": "1",
        "ALIAS": "champion",
        "NAME": "demo-season",
        "N": "7",
        "DIR": "var/report-out",
        "DATA": "../shared/data/binance_spot_BTCUSDT_1m",
    }.get(name)


@dataclass(frozen=True)
class Suggested:
    """One suggestion as its source writes it, and where (``file:line`` or the demo)."""

    text: str
    where: str


def _markdown_commands(path: Path) -> Iterator[Suggested]:
    """Command lines of fenced code blocks (a ``\\`` or an open ``[`` continues a line; `` # ``
    starts a comment) and inline code spans (which may wrap lines) that start with one."""
    lines = path.read_text().splitlines()
    prose: list[tuple[int, str]] = []
    fenced, i = False, 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced and COMMAND.match(text := line.strip().removeprefix("$ ")):
            start = i + 1
            while (text.endswith("\\") or text.count("[") > text.count("]")) and i + 1 < len(lines):
                i += 1
                text = text.removesuffix("\\").rstrip() + " " + lines[i].strip()
            yield Suggested(re.split(r"\s+#\s", text)[0].strip(), f"{path.name}:{start}")
        elif not fenced:
            prose.append((i + 1, line))
        i += 1
    text = "\n".join(line for _, line in prose)
    for match in re.finditer(r"`([^`]+)`", text):
        code = " ".join(match.group(1).split())
        if COMMAND.match(code):
            line_no = prose[text.count("\n", 0, match.start())][0]
            yield Suggested(code, f"{path.name}:{line_no}")


def suggested_commands() -> list[Suggested]:
    """Every distinct suggestion: the demo's first, then README.md and docs/*.md."""
    found = [Suggested(cmd, DEMO) for cmd, _ in next_commands(Settings()) if COMMAND.match(cmd)]
    for doc in DOCS:
        found += _markdown_commands(doc)
    seen: dict[str, Suggested] = {}
    for item in found:
        seen.setdefault(item.text, item)
    return list(seen.values())


def expand(text: str) -> list[str]:
    """The concrete commands a usage line stands for (see the module docstring)."""
    text = re.sub(r"\s*\[[^\]]*\]", "", text)  # optional parts: the shortest form
    text = re.sub(r"\s+(…|\.\.\.)(?=\s|$)", "", text).replace("...", "").replace("…", "")
    words = text.split()
    quoted = ("'", '"')
    choices = [w.split("|") if "|" in w and not w.startswith(quoted) else [w] for w in words]
    out = []
    for combo in itertools.product(*choices):
        line = " ".join(combo)
        line = re.sub(
            r"(?<![\w<-])([A-Z]+)(?![\w>-])",
            lambda m: placeholder(m.group(1), line) or m.group(1),  # noqa: B023 (used at once)
            line,
        )
        out.append(line)
    return out


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass(frozen=True)
class Serve:
    """A command that runs until stopped: ready when ``ready(output)`` says so; ``port`` is the
    one it listens on (busy: skipped, another program has it)."""

    ready: Callable[[str], bool]
    what: str
    port: int | None = None


def _serve_at(port: int, path: str, what: str) -> Serve:
    return Serve(lambda _out: _http_ok(f"http://127.0.0.1:{port}{path}"), what, port)


LIVE_BYBIT = (
    "needs a live Bybit connection (network and API keys: ARENA_BYBIT__API_KEY, or "
    "ARENA_ACCOUNTS__<NAME>__API_KEY for a bound account); tests/online/ runs it when set"
)
# Commands that cannot run to their end here, by pattern (the first that matches): a str is why
# it is skipped, a Serve is started and stopped. Every other command runs to its end.
HOW: list[tuple[str, str | Serve]] = [
    (r"--source bybit|--exchange bybit|exchange check", LIVE_BYBIT),
    (r"flows run collect$", "records the live Bybit trade stream: needs a network connection"),
    (r"--dask-address tcp://scheduler:8786", "needs a Dask scheduler at tcp://scheduler:8786"),
    (r"<sweep id>", "needs a sweep's journal (ARENA_MONGO__EMBEDDED_DIR set to its folder)"),
    (r"^PREFECT_API_URL=http://127\.0\.0\.1:4200/api ",
     "needs a Prefect server at 127.0.0.1:4200 (prefect server start)"),
    (r"^ARENA_MLFLOW__TRACKING_URI=sqlite:////tmp/mrun/|\barena evaluate [23]\b",
     "a docs/model.md results run: needs that section's own registry (/tmp/mrun, versions 2 "
     "and 3, a book model); the demo's registry has version 1 only"),
    (r"\barena evaluate \S+ .*--book",
     "needs a registered version trained with --book (the demo's model has no book features)"),
    (r"\barena serve\b", Serve(lambda _out: False, "the forecast server", 8000)),
    (r"\barena dashboard\b", Serve(lambda _out: False, "the dashboard", 8080)),
    (r"\barena trade\b",
     Serve(lambda out: "progress:" in out, "a replay at market speed, until Ctrl-C")),
    (r"\barena flows serve$",
     Serve(lambda out: "being served" in out, "the flows on their schedules, until Ctrl-C")),
]  # fmt: skip
# Where a server command listens: --port, else ARENA_<SERVER>__PORT given with it, else its
# default; it is ready when GET <path> answers 200 there.
READY_PATH = {8000: "/health", 8080: "/"}

# Commands that take minutes on this 2-core machine (measured under its usual load): skipped
# unless SUGGESTED_COMMANDS=all, with what they do.
LONG: list[tuple[str, str]] = [
    (r"\barena demo$", "the full demo (~3.5 min; `make demo` runs it)"),
    (r"\barena train\b(?!.*--max-bars)", "trains the default LSTM on a whole day (minutes)"),
    (r"\barena evaluate\b", "scores a version on the whole day with cross-validation (minutes)"),
    (r"\barena backtest( --config \S+)?( --allow-in-sample)?$",
     "replays the whole shipped day (minutes)"),
    (r"\barena backtest --config configs/arena\.example\.toml --minutes 120$",
     "replays 2 hours of the day with the AI arm in-process (~2 min)"),
    (r"--bars \.\./shared/", "backtests a year or more of 1 m klines (minutes)"),
    (r"--forecaster book-ridge", "fits the book ridge and replays 12 h of the Bitstamp day (~8 min)"),
    (r"\barena sweep ", "18 or more backtests on a temporary Prefect API and Dask (~1.5 min)"),
    (r"flows run retrain(?!.*--tiny)", "trains an LSTM on the day in a Prefect flow (minutes)"),
    (r"flows run drift .*--trigger-retrain",
     "retrains the LSTM on the lake's day when it finds drift, as on the demo's (over 5 min)"),
]  # fmt: skip


def how(command: str) -> str | Serve | None:
    for pattern, action in HOW:
        if not re.search(pattern, command):
            continue
        if isinstance(action, Serve) and re.search(r"(^| )--help\b", command):
            return None  # a server's help runs to its end
        if isinstance(action, Serve) and action.port is not None:
            server = "serving" if action.port == 8000 else "dashboard"
            given = re.search(rf"--port (\d+)|ARENA_{server.upper()}__PORT=(\d+)", command)
            port = int(next(g for g in given.groups() if g)) if given else action.port
            path = READY_PATH[action.port]
            return _serve_at(port, path, f"{action.what} on port {port}")
        return action
    return None


def long_reason(command: str) -> str | None:
    return next((why for pattern, why in LONG if re.search(pattern, command)), None)


def _port_busy(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _names_a_command(text: str) -> bool:
    import typer
    import typer.main
    from cryptoarena.cli import app
    from typer.core import TyperGroup

    command = typer.main.get_command(app)
    for word in text.split()[1:]:
        if not isinstance(command, TyperGroup):
            return False
        found = command.get_command(typer.Context(command), word)
        if found is None:
            return False
        command = found
    return True


@dataclass(frozen=True)
class DemoState:
    folder: Path
    env: dict[str, str]
    run_id: str


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> DemoState:
    """``arena demo --quick`` run once in a folder laid out like a checkout."""
    base = tmp_path_factory.mktemp("suggested")
    folder = base / "checkout"
    folder.mkdir()
    for name in CHECKOUT_LINKS:
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    if SHARED.is_dir():
        (base / "shared").symlink_to(SHARED, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
    env["PATH"] = f"{Path(ARENA).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"  # output as it is printed, as on a terminal
    done = subprocess.run(["bash", "-c", MADE_WITH], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (folder / "mlruns" / "mlflow.db").is_file()
    from cryptoarena.trading.journal import Journal

    settings = Settings(mongo={"embedded_dir": folder / "var" / "journal"})  # type: ignore[arg-type]
    with Journal.open(settings, run_id="probe", readonly=True) as journal:
        started = journal.find("runs", {"event": "started"})
    assert started, "the demo journaled no run"
    return DemoState(folder, env, str(started[-1]["run_id"]))


def _lane(command: str) -> str:
    """Commands of one lane run one after the other, lanes side by side: the journal, the lake
    and the registry have one writer each (and a season's status follows its start), a fixed
    port one server; the kill switch would stop every other run, so its lane runs last."""
    if re.search(r"\barena kill\b", command):
        return "kill"
    if re.search(r"\barena (backtest|trade|season|journal compact)\b", command):
        return "journal"
    if re.search(r"\barena data\b|--source lake", command):
        return "lake"
    if re.search(r"\barena (train|evaluate|flows run (retrain|drift))\b", command):
        return "registry"  # one writer of the SQLite registry at a time
    action = how(command)
    if isinstance(action, Serve) and action.port is not None:
        return f"port {action.port}"
    return command


def _order(command: str) -> int:
    # A season before its status; the kill switch before its release.
    return 0 if "season start" in command else 2 if "kill --release" in command else 1


def _cases() -> list[tuple[Suggested, str]]:
    unique: dict[str, tuple[Suggested, str]] = {}
    for suggested in suggested_commands():
        for command in expand(suggested.text):
            unique.setdefault(command, (suggested, command))
    return sorted(unique.values(), key=lambda case: _order(case[1]))


CASES = _cases()


def skip_reason(suggested: Suggested, command: str) -> str | None:
    """Why ``command`` cannot run here (None: it runs)."""
    action = how(command)
    if isinstance(action, str):
        return f"{suggested.where}: {action}"
    if "../shared/" in command and not SHARED.is_dir():
        return f"{suggested.where}: needs the shared data set at {SHARED}/data"
    if not ALL and (why := long_reason(command)):
        return f"{suggested.where}: {why}; SUGGESTED_COMMANDS=all runs it"
    if isinstance(action, Serve) and action.port is not None and _port_busy(action.port):
        return f"{suggested.where}: port {action.port} is in use by another program here"
    return None


class Runs:
    """Every runnable case started on the demo's state at once, ``PARALLEL`` processes at a
    time in their lanes; ``result(command)`` waits for one and re-raises its failure."""

    PARALLEL = 3

    def __init__(self, state: DemoState, folder: Path) -> None:
        self.state, self.folder, self.logs = state, folder, itertools.count()
        self.skipped: dict[str, str] = {}
        self.done: dict[str, threading.Event] = {}
        self.failed: dict[str, BaseException] = {}
        lanes: dict[str, list[str]] = {}
        for suggested, command in CASES:
            if command in NAMES or command == MADE_WITH:
                continue
            if why := skip_reason(suggested, command):
                self.skipped[command] = why
                continue
            self.done[command] = threading.Event()
            lanes.setdefault(_lane(command), []).append(command)
        self.slots = threading.Semaphore(self.PARALLEL)
        last = lanes.pop("kill", [])
        self.threads = [threading.Thread(target=self._lane, args=(c,), daemon=True)
                        for c in lanes.values()]  # fmt: skip
        for thread in self.threads:
            thread.start()
        threading.Thread(target=self._after_all, args=(last,), daemon=True).start()

    def _after_all(self, commands: list[str]) -> None:
        for thread in self.threads:
            thread.join()
        self._lane(commands)

    def _lane(self, commands: list[str]) -> None:
        for command in commands:
            with self.slots:
                try:
                    self._run(command)
                except BaseException as exc:  # re-raised in the command's own test
                    self.failed[command] = exc
                finally:
                    self.done[command].set()

    def _run(self, command: str) -> None:
        concrete = re.sub(rf"(?<![\w-]){RUN}(?![\w-])", self.state.run_id, command)
        log = self.folder / f"{next(self.logs):03d}.log"
        action = how(concrete)
        if isinstance(action, Serve):
            _run_until_ready(concrete, action, self.state, log)
        else:
            _run_to_end(concrete, self.state, log)

    def result(self, command: str) -> None:
        assert self.done[command].wait(WAIT_S), f"{command}: not run within {WAIT_S} s"
        if command in self.failed:
            raise self.failed[command]


@pytest.fixture(scope="module")
def runs(demo_state: DemoState, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(demo_state, tmp_path_factory.mktemp("logs"))


def test_the_collector_finds_the_suggestions() -> None:
    found = suggested_commands()
    texts = {s.text for s in found}
    commands = {command for _, command in CASES}
    assert len(texts) >= 60 and len(commands) >= 60, sorted(texts)
    assert {"arena report", "arena serve", "arena backtest --minutes 60"} <= {
        s.text for s in found if s.where == DEMO
    }
    for expected in (
        "arena data info",  # README prose
        "arena sweep --kind sma_cross -p fast=5,10 -p slow=20,40 --fixed bar_size=5s --span 0:30",
        "arena backtest --run-id my-run --start-minute 600 --minutes 60",  # a code block
        ".venv/bin/arena flows list",  # a code block of docs/operations.md
    ):
        assert expected in texts, expected
    assert {"arena flows run retrain", "arena journal compact --older-than-days 7"} <= commands
    assert "arena season report demo-season" in commands


def test_usage_lines_expand_to_commands() -> None:
    assert expand("arena report [--run-id RUN] [--format table|json|markdown] [--out DIR]") == [
        "arena report"
    ]
    assert expand("arena journal stats|compact") == ["arena journal stats", "arena journal compact"]
    assert expand("arena data import FILE...") == [f"arena data import {placeholder('FILE', '')}"]
    assert expand("arena backtest --bars FILE...") == [
        "arena backtest --bars data/sample/BTCUSDT-1m-2024-03-11.csv.gz"
    ]
    assert expand('arena kill --reason "why"') == ['arena kill --reason "why"']
    assert expand("arena report --run-id <sweep id>-p007") == [
        "arena report --run-id <sweep id>-p007"
    ]


def _output(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _run_to_end(command: str, state: DemoState, log: Path) -> None:
    with log.open("wb") as out:
        done = subprocess.run(["bash", "-c", command], cwd=state.folder, env=state.env,
                              stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S)  # fmt: skip
    text = _output(log)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{text[-3000:]}"
    assert TRACEBACK not in text, text[-3000:]


def _run_until_ready(command: str, serve: Serve, state: DemoState, log: Path) -> None:
    # Its own process group, as a shell's foreground job: Ctrl-C goes to the whole group.
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=state.folder, env=state.env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not serve.ready(_output(log)):
            assert proc.poll() is None, f"{command}: exit {proc.returncode}\n{_output(log)[-3000:]}"
            assert time.monotonic() < deadline, f"{serve.what}: not ready in {READY_TIMEOUT_S} s"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # the user's Ctrl-C
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = _output(log)
    assert code in CTRL_C_EXITS, f"{command}: exit {code} after Ctrl-C\n{text[-3000:]}"
    assert TRACEBACK not in text, text[-3000:]


@pytest.mark.timeout(WAIT_S + 60)
@pytest.mark.parametrize(("suggested", "command"), CASES, ids=[command for _, command in CASES])
def test_the_suggested_command_runs_as_written(
    suggested: Suggested, command: str, request: pytest.FixtureRequest
) -> None:
    if command in NAMES:
        assert _names_a_command(command), f"{suggested.where}: {command} names no command"
        return
    runs: Runs = request.getfixturevalue("runs")  # the demo's state made, every case started
    if command == MADE_WITH:
        return
    if command in runs.skipped:
        pytest.skip(runs.skipped[command])
    runs.result(command)
