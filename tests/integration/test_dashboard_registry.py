"""The Model page's registry view against a real MLflow registry (SQLite): versions with their
aliases, gate reason and metrics, and the latest drift check with its link; read by a child
process (MLflow never enters the dashboard's), which a registry that does not answer cannot
hang."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptoarena.config import Settings
from cryptoarena.dashboard.registry_view import RegistryView

# Every read imports MLflow in a fresh child: ~5 s of CPU, 20-35 s at load ~17.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


def test_versions_gate_reasons_and_the_latest_drift_check(tmp_path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = Settings(
        mlflow={"tracking_uri": uri, "experiment": "arena-test"},  # type: ignore[arg-type]
        serving={"model_name": "btcusdt-15s"},  # type: ignore[arg-type]
        dashboard={"mlflow_ui_url": "http://127.0.0.1:5000/"},  # type: ignore[arg-type]
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("arena-test", artifact_location=str(tmp_path / "art"))
    client.create_registered_model("btcusdt-15s")
    for i, (skill, gate) in enumerate(
        [(0.01, "beats persistence"), (-0.02, "worse than champion")]
    ):
        run = client.create_run(exp)
        client.log_metric(run.info.run_id, "skill", skill)
        client.set_tag(run.info.run_id, "data.train_first", "2020-02-22T00:00:00")
        client.set_tag(run.info.run_id, "data.train_last", "2020-02-22T01:30:00")
        client.set_terminated(run.info.run_id)
        mv = client.create_model_version("btcusdt-15s", f"{tmp_path}/m{i}", run.info.run_id)
        client.set_model_version_tag("btcusdt-15s", mv.version, "gate", gate)
    client.set_registered_model_alias("btcusdt-15s", "champion", "1")
    client.set_registered_model_alias("btcusdt-15s", "challenger", "2")
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=exp) as drift:
        mlflow.set_tags({"kind": "drift", "model.version": "1", "drift.should_retrain": "True",
                         "drift.reasons": "feature drift: vol_30"})  # fmt: skip

    view = RegistryView(settings)
    assert view.get() == ([], None, None) and not view.read_once
    view.refresh_now()
    versions, status, error = view.get()
    assert error is None and view.read_once
    assert [(v.version, v.aliases, v.gate) for v in versions] == [
        ("2", ["challenger"], "worse than champion"),
        ("1", ["champion"], "beats persistence"),
    ]
    assert versions[1].metrics["skill"] == pytest.approx(0.01)
    assert status is not None and status.should_retrain is True
    assert status.reasons == "feature drift: vol_30" and status.run_id == drift.info.run_id
    assert status.run_url == f"http://127.0.0.1:5000/#/experiments/{exp}/runs/{drift.info.run_id}"
    # In or out of sample: a run on hour 3 of the day is out of v1's training split; hour 1 is in.
    t0 = 1_582_329_600 * 10**9  # 2020-02-22 00:00 UTC
    hour = 3600 * 10**9
    assert view.sample("1", t0 + 3 * hour, t0 + 4 * hour).startswith("out of sample (v1 trained")
    assert view.sample("1", t0 + hour, t0 + 2 * hour).startswith("IN SAMPLE")
    assert view.sample("9", t0, t0) is None


def test_an_unreadable_registry_is_reported_not_raised(tmp_path) -> None:
    (tmp_path / "not-a-db").mkdir()
    settings = Settings(mlflow={"tracking_uri": f"sqlite:///{tmp_path / 'not-a-db'}"})  # type: ignore[arg-type]
    view = RegistryView(settings)
    view.refresh_now()
    versions, status, error = view.get()
    assert versions == [] and status is None and error


def test_a_new_version_shows_on_the_next_read_and_says_how_it_became_champion(tmp_path) -> None:
    """Issue #23: the first Model page load after a new version showed the old registry (a
    2-minute cache), and the bootstrap champion read "Promoted because: refused …"."""
    from cryptoarena.model.champions import GateDecision, promotion_message
    from cryptoarena.model.registry import crown
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = Settings(
        mlflow={"tracking_uri": uri, "experiment": "arena-test"},  # type: ignore[arg-type]
        serving={"model_name": "btcusdt-15s"},  # type: ignore[arg-type]
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("arena-test", artifact_location=str(tmp_path / "art"))
    client.create_registered_model("btcusdt-15s")
    view = RegistryView(settings, change_gap_s=0.0)
    view.refresh_now()
    assert view.get(wait_s=30) == ([], None, None)  # read once, nothing registered yet

    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "test.lstm.skill", -0.0187)
    mv = client.create_model_version("btcusdt-15s", f"{tmp_path}/m1", run.info.run_id)
    refused = GateDecision(False, "refused: not significantly better than persistence")
    for key, value in refused.tags().items():
        client.set_model_version_tag("btcusdt-15s", mv.version, key, value)
    message = promotion_message(refused, "bootstrap")
    crown(client, "btcusdt-15s", mv.version, "bootstrap", message)

    assert view.outdated()  # the file changed: the page is told to ask again
    versions, _, error = view.get(wait_s=30)  # the next read, not the cached empty registry
    assert error is None and [v.version for v in versions] == ["1"]
    assert versions[0].aliases == ["champion"] and versions[0].promotion == "bootstrap"
    assert versions[0].promotion_message == message
    assert message.startswith("made bootstrap @champion because the registry had none")
    assert versions[0].gate == refused.reason
    # Reading does not change the file: the view is current, the page is not told to ask again.
    assert not view.outdated() and view.get() == (versions, None, None)


def test_a_version_crowned_before_the_message_tag_gets_the_same_sentence() -> None:
    from cryptoarena.dashboard.registry_read import crowning_message
    from cryptoarena.model.champions import GateDecision, promotion_message

    refused = GateDecision(False, "refused: no untouched windows to judge on")
    tags = {"promotion": "forced", **refused.tags()}
    assert crowning_message(tags) == promotion_message(refused, "forced")
    assert crowning_message({"gate": "refused: x"}) is None  # never crowned


def _one_version_registry(tmp_path: Path) -> str:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("arena-test", artifact_location=str(tmp_path / "art"))
    client.create_registered_model("btcusdt-15s")
    run = client.create_run(exp)
    client.create_model_version("btcusdt-15s", f"{tmp_path}/m1", run.info.run_id)
    client.set_registered_model_alias("btcusdt-15s", "champion", "1")
    return uri


READ_IN_A_FRESH_PROCESS = """
import json, sys
from cryptoarena.config import Settings
from cryptoarena.dashboard.registry_view import RegistryView
settings = Settings(mlflow={"tracking_uri": sys.argv[1]}, serving={"model_name": "btcusdt-15s"})
view = RegistryView(settings)
view.refresh_now()
versions, _, error = view.get()
loaded = {m.split(".")[0] for m in sys.modules}
print(json.dumps({"versions": [(v.version, v.aliases) for v in versions], "error": error,
                  "heavy": sorted(loaded & {"mlflow", "pandas", "scipy", "sqlalchemy"})}))
"""


def test_the_dashboard_process_never_imports_mlflow(tmp_path: Path) -> None:
    """Issue #19: MLflow with pandas and scipy was ~150 MB of the dashboard's resident memory;
    the versions are read by a child and reach the dashboard as JSON."""
    uri = _one_version_registry(tmp_path)
    done = subprocess.run([sys.executable, "-c", READ_IN_A_FRESH_PROCESS, uri],
                          capture_output=True, text=True, timeout=400, check=True)  # fmt: skip
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["error"] is None and seen["versions"] == [["1", ["champion"]]]
    assert seen["heavy"] == []


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A tracking server that accepts connections and never answers (a stuck MLflow server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_registry_that_does_not_answer_is_a_clear_state_not_a_hang(silent_server: str) -> None:
    settings = Settings(mlflow={"tracking_uri": silent_server})  # type: ignore[arg-type]
    view = RegistryView(settings, timeout_s=5.0)
    view.refresh_now()  # MLflow alone would retry for minutes
    versions, status, error = view.get()
    assert view.read_once and versions == [] and status is None
    assert error is not None and error.startswith("no answer within 5 s (the read was stopped")


def test_a_stop_ends_a_read_under_way(silent_server: str) -> None:
    """A stopping dashboard does not wait for a registry that does not answer: the read's child
    is killed (also when the stop comes before the child started)."""
    settings = Settings(mlflow={"tracking_uri": silent_server})  # type: ignore[arg-type]
    view = RegistryView(settings, timeout_s=600.0)
    view.get()  # starts the read in the background
    assert not view.stop(0.0)  # the precondition: a read is under way
    assert view.stop(60.0)
    assert view.get()[2] == "the dashboard stopped during the read"


def test_the_first_read_creating_the_database_is_not_a_change(tmp_path: Path) -> None:
    """MLflow creates its SQLite schema on a first read: that is no new version, so the next
    Model page request must not wait for another read (it waited past a client's 10 s)."""
    db = tmp_path / "mlflow.db"
    view = RegistryView(Settings(mlflow={"tracking_uri": f"sqlite:///{db}"}))  # type: ignore[arg-type]
    assert not db.exists()  # the precondition: the read makes it
    view.refresh_now()
    assert db.exists() and view.get()[2] is None
    assert not view.outdated()
