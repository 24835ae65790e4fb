"""Live Label Studio (harness/deploy/labelstudio_server.py): `prelabel labelstudio push/pull`
against a real Label Studio server on 127.0.0.1 that this module starts in its own virtual
environment (its pinned Django stack clashes with prelabel's dependencies).

The server: `label-studio start --internal-host 127.0.0.1 --port P --no-browser` with its data
in a tmp folder and a user made at start-up (--username, --password, --user-token).
Label Studio 1.2x disables legacy tokens by default ("legacy token authentication has been
disabled for this organization", 401), so the server starts with --enable-legacy-api-token
and the user's token is LABEL_STUDIO_API_KEY; a personal access token (the 1.2x default)
is tested too. Install into the venv: about 1-2 minutes; first start (migrations): ~30 s."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest
from conftest import flat, invoke, label_run, setup_experiment
from servers import free_port, served, venv_with

pytestmark = pytest.mark.http

TOKEN = "prelabel0test0token0for0label0studio"
CONFIG = '<View><Text name="text" value="$text"/><Choices name="label" toName="text">' + (
    '<Choice value="a"/></Choices></View>'
)


def need_sdk():
    if os.environ.get("CI"):
        import label_studio_sdk  # CI installs the dev extra: missing is a failure there

        return label_studio_sdk
    return pytest.importorskip("label_studio_sdk", reason="the labelstudio extra is not installed")


@pytest.fixture(scope="module")
def ls_server(tmp_path_factory):
    need_sdk()
    root = tmp_path_factory.mktemp("label-studio")
    bin_ = venv_with(root, "label-studio")
    port, data = free_port(), root / "data"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data)}
    env.pop("LABEL_STUDIO_API_KEY", None)
    command = [
        str(bin_ / "label-studio"),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--username",
        "reviewer@example.com",
        "--password",
        "prelabel-test-password",
        "--user-token",
        TOKEN,
        "--enable-legacy-api-token",
    ]
    with served(command, root, port, env=env) as url:
        yield url


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)


def client(url: str):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=url, api_key=TOKEN)


def tasks_of(url: str, project: int) -> dict[str, object]:
    return {t.data["prelabel_item_id"]: t for t in client(url).tasks.list(project=project)}


@pytest.mark.parametrize("command", ["push", "pull"])
def test_a_missing_key_is_an_error_naming_the_variable(command, monkeypatch, tmp_path):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    where = [str(tmp_path)] if command == "push" else ["-o", str(tmp_path / "out.json")]
    result = invoke("labelstudio", command, *where, "--url", "http://127.0.0.1:9", "--project", "1")
    assert result.exit_code == 2, result.output
    text = flat(result.output)
    assert "LABEL_STUDIO_API_KEY is not set" in text and "export LABEL_STUDIO_API_KEY=" in text


def test_push_annotate_pull_audit(ls_server, key, srv, experiment, tmp_path):
    exp, new = setup_experiment(srv, experiment, tmp_path)
    labelled = invoke(
        "label", str(exp.config), "--input", str(new), "--blind-share", "0", "--audit-share", "1"
    )
    assert labelled.exit_code == 0, labelled.output
    run = label_run(exp)
    queue = {
        q["item"]: q for q in map(json.loads, (run / "review_queue.jsonl").read_text().splitlines())
    }

    # A project made from the labeling config prelabel writes for the experiment.
    xml = tmp_path / "config.xml"
    assert invoke("labelstudio", "config", str(exp.config), "-o", str(xml)).exit_code == 0
    project = client(ls_server).projects.create(
        title="prelabel review", label_config=xml.read_text()
    )

    push = ["labelstudio", "push", str(run), "--url", ls_server, "--project", str(project.id)]
    pushed = invoke(*push, "--page-size", "1")
    assert pushed.exit_code == 0, pushed.output
    assert "4 tasks sent (2 with predictions), 0 already in" in flat(pushed.output)
    tasks = tasks_of(ls_server, project.id)
    assert sorted(tasks) == ["n1", "n2", "n3", "n4"]
    for item in ("n3", "n4"):  # sent to review with the pre-label as a prediction
        [pred] = client(ls_server).predictions.list(task=tasks[item].id)
        assert pred.model_version == "zs@fake"
        assert pred.score == pytest.approx(queue[item]["confidence"])
        assert pred.result[0]["value"] == {"choices": [queue[item]["label"]]}
    for item in ("n1", "n2"):  # audited blind: nothing shown to anchor the reviewer
        assert list(client(ls_server).predictions.list(task=tasks[item].id)) == []

    again = invoke(*push)
    assert again.exit_code == 0, again.output
    assert "0 tasks sent (0 with predictions), 4 already in" in flat(again.output)
    assert len(list(client(ls_server).tasks.list(project=project.id))) == 4

    # Reviewers answer through the API, as the labelling UI does.
    said = {"n3": queue["n3"]["label"], "n4": "negative", "n1": "neutral", "n2": "negative"}
    for item, label in said.items():
        client(ls_server).annotations.create(
            id=tasks[item].id,
            result=[
                {
                    "from_name": "label",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            ],
        )

    reviews = tmp_path / "reviews.json"
    pull = ["labelstudio", "pull", "--url", ls_server, "--project", str(project.id)]
    pulled = invoke(*pull, "-o", str(reviews))
    assert pulled.exit_code == 0, pulled.output
    assert "4 tasks ->" in flat(pulled.output)
    audited = invoke("audit", str(run), "--reviews", str(reviews))
    assert audited.exit_code == 0, audited.output
    a = json.loads((run / "audit.json").read_text())
    assert a["reviewed_items"] == 4
    assert (a["acceptance"]["count"], a["acceptance"]["n"]) == (1, 2)  # n3 kept, n4 corrected
    assert (a["realised_error"]["count"], a["realised_error"]["n"]) == (1, 2)  # n1 wrong

    # As a gold set: the rows the offline import makes of the same export.
    gold = tmp_path / "gold.jsonl"
    as_gold = invoke(*pull, "-o", str(gold), "--config", str(exp.config))
    assert as_gold.exit_code == 0, as_gold.output
    offline = tmp_path / "offline.jsonl"
    imported = invoke(
        "labelstudio", "import", str(reviews), "--config", str(exp.config), "-o", str(offline)
    )
    assert imported.exit_code == 0, imported.output
    rows = [json.loads(x) for x in gold.read_text().splitlines() if not x.startswith("#")]
    assert rows == [json.loads(x) for x in offline.read_text().splitlines() if x[:1] != "#"]
    assert {r["id"]: list(r["annotations"].values()) for r in rows} == {
        item: [label] for item, label in said.items()
    }


def test_a_wrong_key_or_project_is_a_user_error(ls_server, monkeypatch, tmp_path):
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "not-the-key")
    pull = ["labelstudio", "pull", "--url", ls_server, "-o", str(tmp_path / "x.json")]
    refused = invoke(*pull, "--project", "1")
    assert refused.exit_code == 2 and "refused the key (401)" in flat(refused.output)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", TOKEN)
    missing = invoke(*pull, "--project", "999")
    assert missing.exit_code == 2 and "has no project 999 (404)" in flat(missing.output)
    gone = invoke(*pull[:3], "http://127.0.0.1:9", *pull[4:], "--project", "1")
    assert gone.exit_code == 2 and "cannot reach Label Studio" in flat(gone.output)


def test_a_personal_access_token_works(ls_server, monkeypatch, tmp_path):
    """Label Studio 1.2x's default key: a JWT refresh token the SDK trades for access tokens."""
    made = urllib.request.Request(
        f"{ls_server}/api/token/", method="POST", headers={"Authorization": f"Token {TOKEN}"}
    )
    with urllib.request.urlopen(made) as r:
        pat = json.loads(r.read())["token"]
    assert pat.count(".") == 2 and pat != TOKEN
    project = client(ls_server).projects.create(title="pat", label_config=CONFIG)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", pat)
    out = tmp_path / "x.json"
    pulled = invoke(
        "labelstudio", "pull", "--url", ls_server, "--project", str(project.id), "-o", str(out)
    )
    assert pulled.exit_code == 0, pulled.output
    assert json.loads(out.read_text()) == []
