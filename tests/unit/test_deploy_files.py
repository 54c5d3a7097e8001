"""The compose file, the Dockerfile and the GitHub workflows cannot silently rot: they validate
against their published schemas (vendored by check-jsonschema), and every build path, copied file,
command and ARENA_* variable they name must exist. `make images-test` (bench/images.py) builds
and runs the images with podman; this file is what `make test` can check without a container
engine."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptoarena.config import Settings
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
WORKFLOWS = ROOT / ".github" / "workflows"
TARGETS = {"serving", "worker", "dashboard", "flows"}


def _schema(name: str) -> dict[str, Any]:
    files = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((files / f"{name}.json").read_text())
    return schema


def _validate(instance: Any, schema: dict[str, Any]) -> list[str]:
    cls = jsonschema.validators.validator_for(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in cls(schema).iter_errors(instance)
    ]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and data.get("services")
    return data


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with the defaults (the environment here is not the user's)."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", value)


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): _interpolate(str(v)) for k, v in env.items()}


def settings_field(name: str) -> bool:
    """Whether ARENA_A__B names the field a.b of Settings (nested with __)."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("ARENA_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _cli_commands() -> set[str]:
    from cryptoarena.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    return names


def _check_command(argv: list[str]) -> None:
    if argv[:2] == ["python", "-m"]:
        module = ROOT / (argv[2].replace(".", "/") + ".py")
        assert module.exists(), f"python -m {argv[2]}: no {module}"
    elif argv[:1] == ["python"]:
        assert argv[1] == "/usr/local/bin/arena-healthcheck", argv
    elif argv[0] == "arena":
        assert argv[1] in _cli_commands(), f"arena has no command {argv[1]!r}"
    else:
        assert argv[0] in {"mlflow", "prefect"}, f"unexpected command {argv}"


# --- compose ---------------------------------------------------------------------------------


def test_compose_validates_against_the_compose_specification() -> None:
    assert _validate(_compose(), _schema("compose-spec")) == []


def test_compose_schema_check_can_fail() -> None:
    data = _compose()
    data["services"]["serving"]["restart"] = ["always"]
    data["services"]["serving"]["healthcheck"]["interval"] = 10
    assert len(_validate(data, _schema("compose-spec"))) >= 2


def _one_shots(data: dict[str, Any]) -> set[str]:
    """Services something waits on to *complete* (jobs, not servers)."""
    return {
        dep
        for service in data["services"].values()
        for dep, how in (service.get("depends_on") or {}).items()
        if isinstance(how, dict) and how.get("condition") == "service_completed_successfully"
    }


def test_every_service_has_a_healthcheck_and_a_restart_policy() -> None:
    data = _compose()
    jobs = _one_shots(data)
    for name, service in data["services"].items():
        restart = service.get("restart")
        check = service.get("healthcheck") or {}
        if name in jobs:
            assert restart and restart.startswith("on-failure"), (
                f"{name}: a job restarts on failure"
            )
            assert check.get("disable") is True, f"{name}: say that the job has no healthcheck"
            continue
        assert restart == "unless-stopped", f"{name}: restart policy"
        test = check.get("test")
        assert isinstance(test, list) and test[0] == "CMD" and len(test) > 1, f"{name}: healthcheck"
        if test[1] == "python":
            _check_command(test[1:])
    assert jobs == {"model-bootstrap"}


def test_the_worker_waits_for_a_healthy_model_server() -> None:
    data = _compose()
    for name in ("worker", "worker-embedded"):
        assert data["services"][name]["depends_on"]["serving"] == {"condition": "service_healthy"}
    serving = data["services"]["serving"]
    assert serving["healthcheck"]["test"][-1].endswith("/ready")
    assert serving["depends_on"]["model-bootstrap"]["condition"] == "service_completed_successfully"


def test_the_embedded_profile_starts_without_mongodb() -> None:
    data = _compose()
    services = data["services"]
    active = {
        n for n, s in services.items() if not s.get("profiles") or "embedded" in s["profiles"]
    }
    assert "mongodb" not in active
    assert {
        "serving",
        "mlflow",
        "prefect-server",
        "worker-embedded",
        "dashboard-embedded",
    } <= active
    for name in active:
        service = services[name]
        assert set(service.get("depends_on") or {}) <= active, f"{name} needs a service not started"
        assert "ARENA_MONGO__URI" not in _env(service), f"{name} would look for MongoDB"
    for name in ("worker-embedded", "dashboard-embedded"):
        assert "journal:/data/journal" in services[name]["volumes"]
    mongo = {n for n, s in services.items() if "mongo" in (s.get("profiles") or [])}
    assert {"mongodb", "worker", "dashboard", "prefect-worker"} <= mongo
    for name in mongo - {"mongodb"}:
        assert _env(services[name])["ARENA_MONGO__URI"].startswith("mongodb://mongodb")


def test_compose_services_build_from_the_dockerfile() -> None:
    data = _compose()
    stages = _stages()
    built = set()
    for name, service in data["services"].items():
        image = service["image"]
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.${}:-]+", image), f"{name}: pin the image tag"
        command = service.get("command")
        if command:
            _check_command(command if isinstance(command, list) else shlex.split(command))
        if "build" not in service:
            continue
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context is the repository root"
        assert (context / build["dockerfile"]) == DOCKERFILE
        target = build["target"]
        assert target in stages, f"{name}: no stage {target}"
        # the image a target builds has one name, so every service of a target shares it
        assert image.split(":")[0] == f"cryptoarena/{target}", f"{name}: image {image}"
        built.add(target)
    assert built == TARGETS


def test_compose_environment_matches_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _compose()
    for name, service in data["services"].items():
        env = _env(service)
        arena = {k: v for k, v in env.items() if k.startswith("ARENA_")}
        for key in arena:
            assert settings_field(key), f"{name}: {key} is not a Settings field"
        # The values must also validate (a typo in a number or an enum fails here, not at 3am).
        for key, value in arena.items():
            monkeypatch.setenv(key, value)
        Settings()
        for key in arena:
            monkeypatch.delenv(key)
        for dep in service.get("depends_on") or {}:
            assert dep in data["services"], f"{name} depends on unknown {dep}"
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in (data.get("volumes") or {}), f"{name}: undeclared volume {source}"


def test_secrets_are_not_in_the_compose_file() -> None:
    text = COMPOSE.read_text()
    for secret in ("API_KEY", "API_SECRET", "ADMIN_TOKEN", "KILL_TOKEN"):
        assert f"ARENA_BYBIT__{secret}:" not in text and f"__{secret}: " not in text


# --- Dockerfile and .dockerignore --------------------------------------------------------------


def _stages() -> dict[str, str]:
    """Stage name → its instructions (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^FROM (\S+) AS (\S+)$", line)
        if match:
            current = match.group(2)
            stages[current] = line + "\n"
        elif current:
            stages[current] += line + "\n"
    return stages


def _ignored(path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a pattern also covers what
    is under the path it matches."""
    result = False
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        alts = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        hit = any(
            fnmatch.fnmatchcase(p, a) or (a != pattern and fnmatch.fnmatchcase(p.split("/")[-1], a))
            for p in prefixes
            for a in alts
        )
        if hit:
            result = not negate
    return result


def test_dockerignore_keeps_heavy_and_private_state_out() -> None:
    for path in (".venv", ".git", "var/journal/x", "mlruns/mlflow.db", "web/node_modules/vue",
                 "artifacts/shot.png", ".env", "tests/unit", "src/data/__pycache__/x.pyc"):  # fmt: skip
        assert _ignored(path), f".dockerignore lets {path} into the build context"
    for path in (
        "src/cli.py",
        "docs/site/about.md",
        "web/package-lock.json",
        "data/sample/README.md",
    ):
        assert not _ignored(path), f".dockerignore drops {path}"


def test_dockerfile_builds_both_ways_from_existing_paths() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages()
    assert re.search(r"^ARG BASE=python:3\.11-slim$", text, re.M)
    assert "FROM ${BASE} AS python" in text
    assert set(stages) >= TARGETS | {"python", "builder", "web", "runtime"}
    # the offline path: only the wheelhouse, never an index; torch the CPU build
    assert "--no-index --find-links /wheels" in stages["builder"]
    assert "-c requirements.lock" in stages["builder"]
    assert "torch.version.cuda" in stages["builder"]
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.M):
        *sources, _dest = shlex.split(line)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src} missing"
            assert not _ignored(src.rstrip("/")), f"COPY {src} is excluded by .dockerignore"
    for key in re.findall(r"\b(ARENA_[A-Z0-9_]+)=", text):
        assert settings_field(key), f"{key} is not a Settings field"


def test_runtime_images_are_non_root_without_build_tools() -> None:
    stages = _stages()
    runtime = stages["runtime"]
    assert re.search(r"^USER arena$", runtime, re.M)
    assert "org.opencontainers.image.version" in runtime
    assert "FROM python AS runtime" in runtime  # not from the builder: no compilers, no pip cache
    assert "apt-get install" not in runtime
    for target in TARGETS:
        body = stages[target]
        assert body.startswith(f"FROM runtime AS {target}"), target
        assert "USER" not in body, f"{target} must stay the unprivileged user"
        assert "HEALTHCHECK" in body, f"{target}: no HEALTHCHECK"
        for check in re.findall(r"HEALTHCHECK .* CMD (\[.*\])", body):
            _check_command(yaml.safe_load(check))
        cmd = re.search(r"^CMD (\[.*\])$", body, re.M)
        assert cmd, f"{target}: no exec-form CMD"
        argv = yaml.safe_load(cmd.group(1))
        if argv:
            _check_command(argv)
    assert "pip uninstall -y pip" in stages["builder"]


# --- the scripts the images run -----------------------------------------------------------------


def _worker_args(tmp_path: Path, **env: str) -> list[str]:
    """What docker/worker-start.sh runs, with a stand-in `arena` that prints its arguments."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "arena").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "arena").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_BYBIT", "WORKER_"))}
    clean["PATH"] = f"{fake}:{clean['PATH']}"
    out = subprocess.run(
        ["/bin/sh", str(ROOT / "docker" / "worker-start.sh"), "--minutes", "1"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_worker_trades_replay_on_paper_without_keys(tmp_path: Path) -> None:
    args = _worker_args(tmp_path, ARENA_BYBIT__ENV="demo", ARENA_BYBIT__API_KEY="k")
    assert args == ["trade", "--source", "replay", "--exchange", "paper", "--minutes", "1"]


def test_worker_trades_the_bybit_demo_with_keys(tmp_path: Path) -> None:
    keys = {"ARENA_BYBIT__API_KEY": "k", "ARENA_BYBIT__API_SECRET": "s"}
    assert _worker_args(tmp_path, **keys)[:5] == [
        "trade", "--source", "bybit", "--exchange", "bybit-demo"]  # fmt: skip
    testnet = _worker_args(tmp_path, ARENA_BYBIT__ENV="testnet", **keys)
    assert testnet[3:5] == ["--exchange", "bybit-testnet"]
    paper = _worker_args(tmp_path, WORKER_EXCHANGE="paper", **keys)
    assert paper[1:5] == ["--source", "bybit", "--exchange", "paper"]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _healthcheck(*args: str) -> int:
    script = ROOT / "docker" / "healthcheck.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True).returncode


def test_healthcheck_script(http_url: str) -> None:
    assert _healthcheck(f"{http_url}/ok") == 0
    assert _healthcheck(f"{http_url}/ready") == 1  # 503: no model yet
    assert _healthcheck("http://127.0.0.1:9/health") == 1  # nothing listens
    assert _healthcheck() == 2


# --- workflows ---------------------------------------------------------------------------------


def test_settings_field_lookup() -> None:
    assert settings_field("ARENA_MONGO__URI")
    assert settings_field("ARENA_LOG_LEVEL")
    assert not settings_field("ARENA_MONGO__URL")
    assert not settings_field("ARENA_LOG_LEVEL__X")
    # Removed: nothing read it (artifacts go beside the tracking database, or where a tracking
    # server puts them), while the Dockerfile set it and the demo printed it.
    assert not settings_field("ARENA_MLFLOW__ARTIFACT_ROOT")


WORKFLOW_FILES = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_workflows_validate_against_the_schema(name: str) -> None:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads `on` as True; the schema wants the key GitHub sees.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    assert _validate(workflow, _schema("github-workflows")) == []


def test_the_mongodb_job_runs_every_test_with_a_mongodb_variant() -> None:
    """A test module whose MongoDB variant runs only when ARENA_MONGO__URI is set is skipped
    everywhere but CI's mongodb job (the one with a MongoDB service): that job must run it."""
    variants = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if p != Path(__file__).resolve() and 'os.environ.get("ARENA_MONGO__URI")' in p.read_text()
    )
    assert "tests/unit/test_journal_compaction.py" in variants  # the pattern still finds them
    job = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())["jobs"]["mongodb"]
    assert job["env"]["ARENA_MONGO__URI"].startswith("mongodb://")
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert [v for v in variants if v not in runs] == []


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_workflows_run_what_exists(name: str) -> None:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert triggers
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    for script in re.findall(r"bash (\S+)", runs):
        assert (ROOT / script).exists()
    for module in re.findall(r"python -m ((?:flows|bench)\.\w+)", runs):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists()
    for target in re.findall(r"make (\S+)", runs):
        assert re.search(rf"^{re.escape(target)}:", (ROOT / "Makefile").read_text(), re.M)
    if name == "retrain.yml":
        assert {"workflow_dispatch", "schedule", "repository_dispatch"} <= set(triggers)
        assert triggers["repository_dispatch"]["types"] == ["retrain"]
        assert any("upload-artifact" in s.get("uses", "") for s in steps)
    if name == "images.yml":
        assert "make images-test" in runs
        assert "ENGINE: docker" in (WORKFLOWS / name).read_text()
