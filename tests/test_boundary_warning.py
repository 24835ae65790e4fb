"""A config outside any git work tree has no project boundary (harness/core/paths.py): every
command that reads its files says so once on stderr, with how to set one."""

from __future__ import annotations

from conftest import flat, invoke, only_run_dir, setup_experiment

WARNING = "no project boundary"


def commands(exp, new, tmp_path) -> dict[str, list[str]]:
    baseline = tmp_path / "baseline.json"
    assert invoke("baseline", "save", str(only_run_dir(exp)), "-o", str(baseline)).exit_code == 0
    config = str(exp.config)
    return {
        "validate": ["validate", config],
        "plan": ["plan", config],
        "run": ["run", config, "--quiet"],
        "gate": ["gate", config, "--baseline", str(baseline)],
        "label": ["label", config, "--input", str(new)],
    }


def test_every_command_warns_once_when_the_config_has_no_boundary(
    srv, experiment, tmp_path, monkeypatch
):
    monkeypatch.delenv("PRELABEL_PROJECT_ROOT", raising=False)
    exp, new = setup_experiment(srv, experiment, tmp_path)
    assert not any((p / ".git").exists() for p in (exp.root, *exp.root.parents))
    for name, args in commands(exp, new, tmp_path).items():
        result = invoke(*args)
        assert result.exit_code == 0, (name, result.output)
        stderr = flat(result.stderr)
        assert stderr.count(WARNING) == 1, (name, stderr)
        assert f"{exp.config} is in no git work tree and $PRELABEL_PROJECT_ROOT is not set" in (
            stderr
        )
        assert f"export PRELABEL_PROJECT_ROOT={exp.root}" in stderr
        assert WARNING not in result.stdout  # stdout stays clean for scripts (plan --json)


def test_no_warning_inside_a_git_work_tree_or_a_pinned_root(srv, experiment, tmp_path, monkeypatch):
    monkeypatch.delenv("PRELABEL_PROJECT_ROOT", raising=False)
    exp, new = setup_experiment(srv, experiment, tmp_path)
    runs = commands(exp, new, tmp_path)
    monkeypatch.setenv("PRELABEL_PROJECT_ROOT", str(tmp_path))
    for name in ("validate", "label"):
        result = invoke(*runs[name])
        assert result.exit_code == 0 and WARNING not in result.output, (name, result.output)
    monkeypatch.delenv("PRELABEL_PROJECT_ROOT")
    (exp.root / ".git").mkdir()
    for name in ("plan", "gate"):
        result = invoke(*runs[name])
        assert result.exit_code == 0 and WARNING not in result.output, (name, result.output)
