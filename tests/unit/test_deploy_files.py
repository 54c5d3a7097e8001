"""The compose file, Dockerfiles and GitHub workflows cannot silently rot: every build path,
copied file, command and ARENA_* variable they name must exist (Docker cannot run here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptoarena.config import Settings
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
WORKFLOWS = ROOT / ".github" / "workflows"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and data.get("services")
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


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
    elif argv[0] == "arena":
        assert argv[1] in _cli_commands(), f"arena has no command {argv[1]!r}"
    else:
        assert argv[0] in {"mlflow", "prefect"}, f"unexpected command {argv}"


def test_compose_services_build_from_existing_files() -> None:
    data = _compose()
    built = 0
    for name, service in data["services"].items():
        if "image" in service:
            assert ":" in service["image"], f"{name}: pin the image tag"
            continue
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        dockerfile = context / build["dockerfile"]
        assert dockerfile.exists(), f"{name}: {dockerfile} missing"
        built += 1
        command = service.get("command")
        if command:
            _check_command(command if isinstance(command, list) else shlex.split(command))
    assert built >= 4


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


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "docker").glob("Dockerfile.*")))
def test_dockerfiles_copy_existing_paths_and_pin_installs(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "pip install -c requirements.lock" in text
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = shlex.split(line)
        for src in sources:
            assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src} missing"
    for key in re.findall(r"\b(ARENA_[A-Z0-9_]+)=", text):
        assert settings_field(key), f"{dockerfile.name}: {key} is not a Settings field"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd, f"{dockerfile.name}: no exec-form CMD"
    _check_command(yaml.safe_load(cmd.group(1)))


def test_settings_field_lookup() -> None:
    assert settings_field("ARENA_MONGO__URI")
    assert settings_field("ARENA_LOG_LEVEL")
    assert not settings_field("ARENA_MONGO__URL")
    assert not settings_field("ARENA_LOG_LEVEL__X")


@pytest.mark.parametrize("name", ["ci.yml", "retrain.yml"])
def test_workflows_parse_and_run_what_exists(name: str) -> None:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert triggers
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    runs = "\n".join(s.get("run", "") for s in steps)
    for script in re.findall(r"bash (\S+)", runs):
        assert (ROOT / script).exists()
    for module in re.findall(r"python -m (flows\.\w+)", runs):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists()
    if name == "retrain.yml":
        assert {"workflow_dispatch", "schedule", "repository_dispatch"} <= set(triggers)
        assert triggers["repository_dispatch"]["types"] == ["retrain"]
        assert any("upload-artifact" in s.get("uses", "") for s in steps)
