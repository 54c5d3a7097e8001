"""`make images-test`: build every image of docker/compose.yaml and run the stack's containers.

    python -m bench.images                 # podman, offline path (this machine)
    ENGINE=docker python -m bench.images   # Docker, default path (python:3.11-slim, PyPI); CI

What it does, in order, and fails at the first step that does not work:
1. offline path only: a Debian base image from Debian's own packages (debootstrap, once) and a
   wheelhouse in docker/wheelhouse/ from requirements.lock (pip wheel on the host, then checked
   complete by the image's own Python in the Dockerfile's `venv` stage: bookworm's 3.11.2 needs
   wheels the host's newer 3.11 does not, e.g. async-timeout); the web UI must be built (`make
   web`: the Makefile target depends on it);
2. builds each target of docker/Dockerfile that compose.yaml uses, tagged with compose's image
   names (so these are the images `docker compose` runs), and records build time and size;
3. starts, on host networking and free ports, the MLflow and Prefect servers (compose's commands
   and healthchecks, the ports shifted), runs the model-bootstrap job (a real Prefect flow run that
   registers a tiny bootstrap champion into the MLflow container's mounted store), then the model
   server, checks every healthcheck (run inside each container, as the engine would) and one
   forecast from the host;
4. runs a short replay through the worker container (embedded journal in a mounted folder, the
   worker-embedded service's settings), then the dashboard over that journal and checks it lists
   the run, its forecasts and its leaderboard;
5. removes every container it started (also on failure); the images stay.

Sizes and times are printed as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
WHEELHOUSE = ROOT / "docker" / "wheelhouse"
BASE_IMAGE = "localhost/debian:bookworm-min"
VENV_IMAGE = "localhost/cryptoarena-venv:build"  # the Dockerfile's `venv` stage
DEBIAN_PYTHON = "3.11.2"  # bookworm's python3.11: the offline images' interpreter
# podman's default runtime (crun) refuses this machine's hybrid cgroups, and its default limits
# exceed the machine's hard limits (docs/operations.md "podman").
PODMAN_GLOBAL = ["--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"]
# Build order: flows first (every stage the others share), the web stage last.
TARGETS = ("flows", "serving", "worker", "dashboard")
PORTS = (5000, 4200, 8000, 8080, 8090)  # the ports compose.yaml uses
PREFIX = "arena-images-test"


class ImagesTestError(RuntimeError):
    """A step failed; the message says which and why."""


@dataclass
class Report:
    builds: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)

    def markdown(self, engine: str, offline: bool) -> str:
        path = "offline (Debian base + wheelhouse)" if offline else "default (python:3.11-slim)"
        lines = [
            f"engine: {engine}, path: {path}",
            "",
            "| image | build (s) | size (MB) |",
            "| --- | ---: | ---: |",
        ]
        for target, seconds in self.builds.items():
            size = self.sizes.get(target, 0) / 1e6
            lines.append(f"| {target} | {seconds:.0f} | {size:.0f} |")
        lines += ["", "| step | seconds |", "| --- | ---: |"]
        lines += [f"| {name} | {seconds:.1f} |" for name, seconds in self.steps.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Engine:
    name: str  # podman | docker

    def cmd(self, *args: str) -> list[str]:
        if self.name == "podman":
            return ["podman", *PODMAN_GLOBAL, *args]
        return ["docker", *args]

    def run_args(self) -> list[str]:
        return ["--network", "host", *(ULIMITS if self.name == "podman" else [])]


def sh(argv: list[str], *, timeout: float = 600, check: bool = True, quiet: bool = False) -> str:
    """Run a command; on failure raise with its last output lines."""
    if not quiet:
        logger.info("$ %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ImagesTestError(f"timed out after {timeout:.0f} s: {' '.join(argv[:6])}") from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ImagesTestError(f"exit {proc.returncode}: {' '.join(argv[:8])}\n{tail}")
    return proc.stdout


# --- the offline path: base image and wheelhouse ------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror of this machine's apt sources (deb822 or one-line format)."""
    for path in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        match = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", path.read_text(), re.M)
        if match:
            return match.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        match = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", sources.read_text(), re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image(engine: Engine) -> None:
    exists = subprocess.run(engine.cmd("image", "exists", BASE_IMAGE), capture_output=True)
    if exists.returncode == 0:
        return
    if shutil.which("debootstrap") is None:
        raise ImagesTestError("debootstrap not found: apt-get install podman runc debootstrap")
    with tempfile.TemporaryDirectory(prefix="arena-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        mirror = debian_mirror()
        sh(["nice", "-n", "19", "debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
           timeout=1200)  # fmt: skip
        # debootstrap keeps the .debs it installed and the package lists (~80 MB): not in an image
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(engine.cmd("import", "-", BASE_IMAGE), stdin=tar.stdout)
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImagesTestError(f"could not import the Debian root filesystem as {BASE_IMAGE}")


def runtime_requirements() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps: list[str] = pyproject["project"]["dependencies"]
    return deps


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins() -> dict[str, str]:
    """requirements.lock as name -> version, markers ignored: a pin the host's Python skips
    (``async-timeout==5.0.1 ; python_full_version < "3.11.3"``) is still the image's pin."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[_canonical(match[1])] = match[2]
    return pins


def image_only_pins() -> list[str]:
    """The lock's pins whose marker holds for the image's Python but not for the host's (the
    host's ``pip wheel`` skips them, e.g. async-timeout below 3.11.3, which redis needs there)."""
    from packaging.requirements import Requirement

    image = {"python_full_version": DEBIAN_PYTHON, "python_version": DEBIAN_PYTHON[:4]}
    pins: list[str] = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if ";" not in text:
            continue
        req = Requirement(text)
        if req.marker is not None and req.marker.evaluate(image) and not req.marker.evaluate():
            pins.append(f"{req.name}{req.specifier}")
    return pins


def build_venv_image(engine: Engine) -> None:
    """The Dockerfile's `venv` stage (the image's interpreter and an empty virtualenv)."""
    argv = engine.cmd("build", "-f", "docker/Dockerfile", "--target", "venv", "-t", VENV_IMAGE,
                      "--network", "host", *ULIMITS, "--build-arg", f"BASE={BASE_IMAGE}")  # fmt: skip
    os.chdir(ROOT)
    sh(["nice", "-n", "19", *argv, "."], timeout=1800)


def _wheelhouse_missing(engine: Engine, reqs: str) -> str | None:
    """The first requirement the wheelhouse cannot satisfy for the image's own Python (an
    offline dry run inside the `venv` stage, in seconds); None when complete. The host's Python
    may be newer than Debian's, and pip evaluates markers with the interpreter it runs on."""
    lock = ROOT / "requirements.lock"
    proc = subprocess.run(
        engine.cmd("run", "--rm", "--network", "none", *ULIMITS,
                   "-v", f"{WHEELHOUSE}:/wheels:ro", "-v", f"{lock}:/req/requirements.lock:ro",
                   "-v", f"{reqs}:/req/deps.txt:ro", VENV_IMAGE,
                   "pip", "install", "-q", "--dry-run", "--no-index", "--find-links", "/wheels",
                   "-c", "/req/requirements.lock", "-r", "/req/deps.txt", "setuptools>=77",
                   "wheel"),
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode == 0:
        return None
    match = re.search(r"No matching distribution found for ([A-Za-z0-9_.-]+)", proc.stderr)
    if not match:
        raise ImagesTestError(f"wheelhouse check failed:\n{proc.stderr[-2000:]}")
    return match.group(1)


def fill_wheelhouse(engine: Engine) -> None:
    """Wheels for the runtime dependencies (pinned by requirements.lock) and the build backend,
    made with the host's pip and package index, then checked by the image's interpreter; what
    only that interpreter needs is added at the lock's pin. The build installs with --no-index."""
    WHEELHOUSE.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as reqs:
        reqs.write("\n".join(runtime_requirements()) + "\n")
    os.chmod(reqs.name, 0o644)
    pip = [sys.executable, "-m", "pip"]
    try:
        build_venv_image(engine)
        with contextlib.suppress(ImagesTestError):  # incomplete in a way pip does not name
            if _wheelhouse_missing(engine, reqs.name) is None:
                logger.info("wheelhouse complete: %s", WHEELHOUSE)
                return
        sh([*pip, "wheel", "-q", "-c", str(ROOT / "requirements.lock"), "-r", reqs.name,
            "setuptools>=77", "wheel", "-w", str(WHEELHOUSE)], timeout=1800)  # fmt: skip
        if extra := image_only_pins():
            sh([*pip, "download", "-q", "--no-deps", *extra, "-d", str(WHEELHOUSE)], timeout=600)
        pins = lock_pins()
        for _ in range(20):
            need = _wheelhouse_missing(engine, reqs.name)
            if need is None:
                return
            pin = pins.get(_canonical(need))
            if pin is None:
                raise ImagesTestError(
                    f"requirements.lock has no pin for {need}, which the image's Python "
                    f"({DEBIAN_PYTHON}) needs: add it with its marker"
                )
            sh([*pip, "download", "-q", "--no-deps", f"{need}=={pin}", "-d", str(WHEELHOUSE)],
               timeout=600)  # fmt: skip
        raise ImagesTestError("the wheelhouse is still incomplete after 20 additions")
    finally:
        os.unlink(reqs.name)


# --- compose: the images, commands, environments and healthchecks -----------------------------


def interpolate(value: str) -> str:
    return re.sub(r"\$\{([A-Z0-9_]+):?-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), value)


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def images_by_target(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    images: dict[str, str] = {}
    for name, service in services.items():
        if "build" in service:
            image = interpolate(service["image"])
            previous = images.setdefault(service["build"]["target"], image)
            if previous != image:
                raise ImagesTestError(f"{name}: target built as both {previous} and {image}")
    return images


@dataclass(frozen=True)
class HostNet:
    """Compose's service names and ports mapped onto this machine's loopback and free ports."""

    ports: dict[int, int]
    names: tuple[str, ...]

    def rewrite(self, text: str) -> str:
        for name in self.names:
            text = text.replace(f"//{name}:", "//127.0.0.1:")
        text = text.replace("0.0.0.0", "127.0.0.1")
        for old, new in self.ports.items():
            text = re.sub(rf"(?<![\d.]){old}(?!\d)", str(new), text)
        return text

    def argv(self, argv: list[str]) -> list[str]:
        return [self.rewrite(a) for a in argv]

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        env = service.get("environment") or {}
        return {k: self.rewrite(interpolate(str(v))) for k, v in env.items()}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Stack:
    engine: Engine
    services: dict[str, dict[str, Any]]
    net: HostNet
    workdir: Path
    started: list[str] = field(default_factory=list)

    def mount(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(exist_ok=True)
        path.chmod(0o777)  # the images run as uid 10001
        return path

    def run(
        self,
        service: str,
        *,
        mounts: dict[str, str],
        args: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
        detach: bool = True,
        timeout: float = 600,
    ) -> str:
        spec = self.services[service]
        name = f"{PREFIX}-{service}"
        argv = self.engine.cmd("run", "--name", name, *self.engine.run_args())
        argv += ["-d"] if detach else []
        for key, value in {**self.net.env(spec), **(extra_env or {})}.items():
            argv += ["-e", f"{key}={value}"]
        for source, target in mounts.items():
            argv += ["-v", f"{self.mount(source)}:{target}"]
        argv.append(interpolate(spec["image"]))
        argv += self.net.argv(spec.get("command") or []) + (args or [])
        self.started.append(name)
        return sh(argv, timeout=timeout)

    def healthcheck(self, service: str) -> list[str]:
        test = self.services[service]["healthcheck"]["test"]
        assert test[0] == "CMD"
        return self.net.argv(test[1:])

    def wait_healthy(self, service: str, timeout: float) -> float:
        """Run the service's compose healthcheck inside its container until it passes."""
        name = f"{PREFIX}-{service}"
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            state = sh(self.engine.cmd("inspect", "-f", "{{.State.Running}}", name), quiet=True)
            if state.strip() != "true":
                logs = sh(self.engine.cmd("logs", "--tail", "30", name), check=False, quiet=True)
                raise ImagesTestError(f"{service} exited before it was healthy:\n{logs}")
            proc = subprocess.run(
                self.engine.cmd("exec", name, *self.healthcheck(service)),
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                return time.monotonic() - started
            last = (proc.stdout + proc.stderr).strip()
            time.sleep(3)
        raise ImagesTestError(f"{service} not healthy after {timeout:.0f} s: {last}")

    def remove_all(self) -> None:
        for name in reversed(self.started):
            subprocess.run(self.engine.cmd("rm", "-f", name), capture_output=True)
        self.started.clear()


def get_json(url: str, timeout: float = 10) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise ImagesTestError(f"GET {url}: HTTP {exc.code} {exc.read()[:300]!r}") from None


def post_json(url: str, body: dict[str, Any], timeout: float = 30) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise ImagesTestError(f"POST {url}: HTTP {exc.code} {exc.read()[:300]!r}") from None


def one_forecast(url: str) -> dict[str, Any]:
    from cryptoarena.model.datasets import load_bars
    from cryptoarena.serving.client import bars_payload

    bars = load_bars(max_bars=600, sample_dir=ROOT / "data" / "sample")
    answer: dict[str, Any] = post_json(
        f"{url}/v1/forecast", {"symbol": "BTCUSDT", "bars": bars_payload(bars)}
    )
    if len(answer.get("prices") or []) != len(answer.get("horizons_s") or [None]):
        raise ImagesTestError(f"odd forecast: {answer}")
    return answer


@contextmanager
def timed(report: Report, step: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    report.steps[step] = time.monotonic() - started
    logger.info("%s: %.1f s", step, report.steps[step])


def build(engine: Engine, images: dict[str, str], offline: bool, report: Report) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for target in TARGETS:
        argv = engine.cmd("build", "-f", "docker/Dockerfile", "--target", target, "-t")
        argv += [images[target], "--build-arg", f"VERSION={version}"]
        if engine.name == "podman":
            # OCI, podman's default format, has no HEALTHCHECK: the Docker format keeps it
            argv += ["--format", "docker"]
        if offline:
            argv += ["--network", "host", *ULIMITS]
            for arg in (f"BASE={BASE_IMAGE}", "OFFLINE=1", f"NODE_BASE={BASE_IMAGE}",
                        "WEB_PREBUILT=1"):  # fmt: skip
                argv += ["--build-arg", arg]
        started = time.monotonic()
        os.chdir(ROOT)
        sh(["nice", "-n", "19", *argv, "."], timeout=3600)
        report.builds[target] = time.monotonic() - started
        fmt = "{{.Size}}|{{.Config.User}}|{{json .Config.Healthcheck}}|{{json .Config.Labels}}"
        info = sh(engine.cmd("image", "inspect", "-f", fmt, images[target]), quiet=True)
        size, user, health, labels = info.strip().split("|", 3)
        report.sizes[target] = int(size)
        label = json.loads(labels or "{}").get("org.opencontainers.image.version")
        if user != "arena" or health in ("", "null") or label != version:
            raise ImagesTestError(
                f"{images[target]}: user {user!r}, healthcheck {health}, version label {label!r}"
            )
        logger.info("built %s in %.0f s (%d MB)", images[target], report.builds[target],
                    report.sizes[target] // 10**6)  # fmt: skip


def run_stack(stack: Stack, report: Report, replay_minutes: float, speed: float) -> None:
    p = stack.net.ports
    mlflow_url, serving_url, dash_url = (f"http://127.0.0.1:{p[k]}" for k in (5000, 8000, 8080))

    with timed(report, "mlflow + prefect servers healthy"):
        stack.run("mlflow", mounts={"mlruns": "/mlflow"})
        stack.run("prefect-server", mounts={"prefect": "/prefect"})
        stack.wait_healthy("mlflow", 180)
        stack.wait_healthy("prefect-server", 240)
        with urllib.request.urlopen(f"{mlflow_url}/health", timeout=10) as response:
            assert response.status == 200  # also reachable from the host
    with timed(report, "model-bootstrap (Prefect flow, tiny champion)"):
        out = stack.run("model-bootstrap", mounts={}, args=["--max-bars", "3600"],
                        detach=False, timeout=1200)  # fmt: skip
        logger.info("model-bootstrap: %s", out.strip().splitlines()[-1] if out.strip() else "")
        mlruns = stack.workdir / "mlruns"
        if not (mlruns / "mlflow.db").exists() or not any((mlruns / "artifacts").rglob("*")):
            raise ImagesTestError("the bootstrap champion is not in the mounted MLflow store")
    with timed(report, "serving healthy (champion loaded)"):
        stack.run("serving", mounts={})
        stack.wait_healthy("serving", 300)
    with timed(report, "one forecast"):
        forecast = one_forecast(serving_url)
        logger.info("forecast v%s: %s", forecast["model_version"], forecast["prices"][-1])

    with timed(report, f"worker replay ({replay_minutes:g} min at {speed:g}x)"):
        mounts = {"journal": "/data/journal", "state": "/data/state", "lake": "/data/lake"}
        stack.run("worker-embedded", mounts=mounts,
                  args=["--minutes", str(replay_minutes), "--speed", str(speed)])  # fmt: skip
        stack.wait_healthy("worker-embedded", 120)
        name = f"{PREFIX}-worker-embedded"
        code = sh(stack.engine.cmd("wait", name), timeout=900).strip()
        logs = sh(stack.engine.cmd("logs", name), check=False, quiet=True)
        if code != "0":
            raise ImagesTestError(f"worker exited {code}:\n{logs[-3000:]}")
        match = re.search(r"^run (\S+): ", logs, re.M)
        if not match:
            raise ImagesTestError(f"worker printed no run summary:\n{logs[-3000:]}")
        run_id = match.group(1)
        logger.info("worker: %s", match.group(0) + logs[match.end() :].splitlines()[0])

    with timed(report, "dashboard healthy, run visible"):
        stack.run("dashboard-embedded", mounts={"journal": "/data/journal", "state": "/data/state"})
        stack.wait_healthy("dashboard-embedded", 180)
        runs = get_json(f"{dash_url}/api/runs")
        if run_id not in [r["run_id"] for r in runs["items"]]:
            raise ImagesTestError(f"the dashboard does not list run {run_id}: {runs}")
        board = get_json(f"{dash_url}/api/leaderboard?run_id={run_id}")
        forecasts = get_json(f"{dash_url}/api/forecasts?run_id={run_id}")
        html = urllib.request.urlopen(f"{dash_url}/", timeout=10).read().decode()
        if "<div id=" not in html and "<script" not in html:
            raise ImagesTestError("the dashboard serves no web UI at /")
        logger.info("dashboard: run %s, leaderboard %s, forecasts %s", run_id,
                    list(board)[:4], list(forecasts)[:4])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default=os.environ.get("ENGINE", "podman"))
    parser.add_argument("--offline", action=argparse.BooleanOptionalAction, default=None,
                        help="offline path (default: with podman)")  # fmt: skip
    parser.add_argument("--skip-build", action="store_true", help="use the images already built")
    parser.add_argument("--replay-minutes", type=float, default=5.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    engine = Engine(args.engine)
    offline = engine.name == "podman" if args.offline is None else args.offline
    if shutil.which(engine.name) is None and engine.name == "podman" and os.geteuid() == 0:
        # Debian's podman (4.3) + runc, and debootstrap for the base image (docs/operations.md).
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "podman", "runc", "debootstrap"],
                       env=env, check=False)  # fmt: skip
    if shutil.which(engine.name) is None:
        print(f"error: {engine.name} not found (podman: apt-get install podman runc debootstrap)",
              file=sys.stderr)  # fmt: skip
        return 2
    services = compose_services()
    images = images_by_target(services)
    report = Report()
    ports = dict(zip(PORTS, free_ports(len(PORTS)), strict=True))
    net = HostNet(ports=ports, names=tuple(services))
    try:
        if not args.skip_build:
            if offline:
                with timed(report, "base image"):
                    ensure_base_image(engine)
                with timed(report, "wheelhouse"):
                    fill_wheelhouse(engine)
                if not (ROOT / "src" / "dashboard" / "static" / "index.html").exists():
                    raise ImagesTestError("the web UI is not built: run 'make web' first")
            build(engine, images, offline, report)
        workdir = Path(tempfile.mkdtemp(prefix="arena-images-"))
        workdir.chmod(0o755)  # the containers' user (uid 10001) walks into the mounts below it
        stack = Stack(engine, services, net, workdir)
        try:
            stack.started = [f"{PREFIX}-{s}" for s in services]
            stack.remove_all()  # leftovers of an interrupted run
            run_stack(stack, report, args.replay_minutes, args.speed)
        finally:
            if args.keep:
                logger.info("left running: %s (ports %s, files %s)", stack.started, ports, workdir)
            else:
                stack.remove_all()
                shutil.rmtree(workdir, ignore_errors=True)
    except ImagesTestError as exc:
        print(f"images-test FAILED: {exc}", file=sys.stderr)
        return 1
    print(report.markdown(engine.name, offline))
    print("images-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
