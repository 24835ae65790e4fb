"""MLflow tracking (harness/api/tracking.py): `run`, `gate` and the Python API log one MLflow
run per prelabel run, to a local file store and to a real `mlflow server` on 127.0.0.1 that
this module starts in its own virtual environment (the server's dependencies are not
prelabel's: the way a team runs its tracking server beside its project)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import NEW, flat, invoke, label_run, only_run_dir, setup_experiment
from servers import free_port, served, venv_with

import harness

pytestmark = pytest.mark.http


def need_mlflow():
    if os.environ.get("CI"):
        import mlflow  # CI installs the dev extra: missing is a failure there, not a skip

        return mlflow
    return pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    need_mlflow()
    # MLflow 3 keeps the file store only on request; a server uses a database.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return f"file://{tmp_path / 'mlruns'}"


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def logged(uri: str, experiment: str) -> list:
    c = client(uri)
    found = c.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return c.search_runs([found.experiment_id])


def check_run(uri: str, mlrun, run_dir: Path, command: str) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    [block] = metrics["gold_sets"][0]["setups"]
    got = mlrun.data.metrics
    assert got["zs_fake/kappa"] == pytest.approx(block["kappa"]["estimate"])
    assert got["zs_fake/kappa_low"] == pytest.approx(block["kappa"]["low"])
    assert got["zs_fake/kappa_high"] == pytest.approx(block["kappa"]["high"])
    assert got["zs_fake/kappa_n"] == block["kappa"]["n"]
    assert got["zs_fake/accuracy"] == pytest.approx(block["accuracy"]["estimate"])
    assert got["zs_fake/coverage"] == pytest.approx(block["coverage"]["value"])
    assert got["totals/labels"] == 12
    tags = mlrun.data.tags
    assert tags["prelabel.command"] == command and tags["prelabel.run_id"] == run_dir.name
    assert tags["prelabel.recommended"] == metrics["recommendation"]["recommended"]
    params = mlrun.data.params
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert params["model/fake"] == "openai/fake-model"
    assert params["config_hash"] == manifest["config_hash"]
    assert params["gold_set_hash/g"] == manifest["gold_set_hashes"]["g"]
    names = {a.path for a in client(uri).list_artifacts(mlrun.info.run_id)}
    assert {"report.html", "report.md", "metrics.json", "manifest.json"} <= names
    assert mlrun.info.status == "FINISHED"


def test_run_logs_to_the_config_tracking_block(srv, experiment, file_store):
    exp = experiment(
        srv, extra={"tracking": {"mlflow": {"experiment": "sentiment", "tracking_uri": file_store}}}
    )
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    [mlrun] = logged(file_store, "sentiment")
    assert f"mlflow: logged as run {mlrun.info.run_id}" in flat(result.output)
    check_run(file_store, mlrun, only_run_dir(exp), "run")


def test_the_flag_logs_with_the_environments_uri_and_the_configs_name(
    srv, experiment, file_store, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", file_store)
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    assert client(file_store).get_experiment_by_name("exp") is None  # off without the flag
    before = set(exp.run_dirs())
    assert invoke("run", str(exp.config), "--quiet", "--mlflow").exit_code == 0
    [flagged] = set(exp.run_dirs()) - before
    [mlrun] = logged(file_store, "exp")
    assert mlrun.data.tags["prelabel.run_id"] == flagged.name


def test_gate_logs_its_verdict(srv, experiment, file_store, tmp_path):
    exp = experiment(srv)
    assert invoke("run", str(exp.config), "--quiet").exit_code == 0
    baseline = tmp_path / "b.json"
    assert invoke("baseline", "save", str(only_run_dir(exp)), "-o", str(baseline)).exit_code == 0
    os.environ["MLFLOW_TRACKING_URI"] = file_store
    try:
        result = invoke("gate", str(exp.config), "--baseline", str(baseline), "--mlflow")
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert result.exit_code == 0, result.output
    [mlrun] = logged(file_store, "exp")
    assert mlrun.data.tags["prelabel.command"] == "gate"
    assert mlrun.data.tags["prelabel.gate_verdict"] in ("pass", "warn", "PASS", "WARN")


def test_no_tracking_uri_is_a_warning_and_the_run_stands(srv, experiment, file_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    exp = experiment(srv)
    result = invoke("run", str(exp.config), "--quiet", "--mlflow")
    assert result.exit_code == 0, result.output
    assert "no tracking URI is set" in flat(result.output)
    assert "MLFLOW_TRACKING_URI" in flat(result.output)
    assert (only_run_dir(exp) / "metrics.json").exists()


def test_the_python_api_logs_and_returns_the_mlflow_run(srv, experiment, file_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", file_store)
    ev = harness.evaluate(experiment(srv).config, mlflow=True)
    [mlrun] = logged(file_store, "exp")
    assert ev.mlflow_run_id == mlrun.info.run_id
    check_run(file_store, mlrun, ev.run_dir, "run")


def check_label(mlrun, run_dir: Path) -> None:
    """A label run's MLflow record: its routing counts, the pool's label shares with their
    intervals, what labelled it, and its artifacts."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    estimates = json.loads((run_dir / "estimates.json").read_text())
    got, counts = mlrun.data.metrics, manifest["counts"]
    assert mlrun.data.tags["prelabel.command"] == "label"
    assert mlrun.data.tags["prelabel.run_id"] == run_dir.name
    assert mlrun.data.tags["prelabel.setup"] == manifest["setup"] == "zs@fake"
    for key in ("items", "accept", "review", "queue"):
        assert got[f"label/{key}"] == counts[key]
    assert got["label/accept_share"] == pytest.approx(counts["accept"] / counts["items"])
    assert got["label/threshold"] == pytest.approx(manifest["threshold"])
    pos = next(r for r in estimates["labels"] if r["label"] == "positive")["ppi"]
    assert got["pool_share/positive"] == pytest.approx(pos["estimate"])
    assert got["pool_share/positive_low"] == pytest.approx(pos["low"])
    assert got["pool_share/positive_n"] == pos["n_gold"]
    params = mlrun.data.params
    assert params["evaluation_run"] == manifest["evaluation_run"]
    assert params["input_hash"] == manifest["input"]["content_hash"]
    assert params["model"] == manifest["model"]


def test_label_logs_its_routing_and_pool_estimates(srv, experiment, file_store, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    os.environ["MLFLOW_TRACKING_URI"] = file_store
    try:
        result = invoke("label", str(exp.config), "--input", str(new), "--mlflow")
        done = harness.label(exp.config, NEW, mlflow=True)
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert result.exit_code == 0, result.output
    runs = {r.data.tags["prelabel.run_id"]: r for r in logged(file_store, "exp")}
    labelled = [d.name for d in exp.run_dirs() if "-label-" in d.name]
    assert sorted(runs) == sorted(labelled) and done.run_dir.name in runs and len(runs) == 2
    [by_cli] = [r for name, r in runs.items() if name != done.run_dir.name]
    assert f"mlflow: logged as run {by_cli.info.run_id}" in flat(result.output)
    for name, mlrun in runs.items():
        check_label(mlrun, exp.runs_dir / name)
    assert done.mlflow_run_id == runs[done.run_dir.name].info.run_id
    files = {a.path for a in client(file_store).list_artifacts(done.mlflow_run_id)}
    assert {"manifest.json", "estimates.json"} <= files


# ---------------------------------------------------------------- a real mlflow server


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    need_mlflow()
    root = tmp_path_factory.mktemp("mlflow-server")
    bin_ = venv_with(root, "mlflow")
    port = free_port()
    command = [
        str(bin_ / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    with served(command, root, port) as url:
        yield url


def test_run_and_gate_log_to_a_real_mlflow_server(srv, experiment, mlflow_server, tmp_path):
    exp = experiment(
        srv, extra={"tracking": {"mlflow": {"experiment": "served", "tracking_uri": mlflow_server}}}
    )
    result = invoke("run", str(exp.config), "--quiet")
    assert result.exit_code == 0, result.output
    [mlrun] = logged(mlflow_server, "served")
    check_run(mlflow_server, mlrun, only_run_dir(exp), "run")
    baseline = tmp_path / "b.json"
    assert invoke("baseline", "save", str(only_run_dir(exp)), "-o", str(baseline)).exit_code == 0
    result = invoke("gate", str(exp.config), "--baseline", str(baseline))
    assert result.exit_code == 0, result.output
    runs = logged(mlflow_server, "served")
    assert sorted(r.data.tags["prelabel.command"] for r in runs) == ["gate", "run"]


def test_label_logs_to_a_real_mlflow_server(srv, experiment, mlflow_server, tmp_path):
    os.environ["MLFLOW_TRACKING_URI"] = mlflow_server
    try:
        exp, new = setup_experiment(srv, experiment, tmp_path)
        result = invoke("label", str(exp.config), "--input", str(new), "--mlflow")
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    assert result.exit_code == 0, result.output
    [mlrun] = logged(mlflow_server, "exp")  # setup_experiment's run was not flagged
    check_label(mlrun, label_run(exp))
