"""Every input error a user can make, through the real CLI, in one table.

Each case breaks one input of a small valid experiment (`conftest.experiment`) and states
what the message must contain: what is wrong, where (file and line, or config key) and what
to do (a `hint:`). `prelabel run` and `prelabel validate` must both exit with code 2, print
no traceback, call no model and write nothing at all: no run folder, no cache, no file
anywhere under the test's folder created or changed.

Two policies are pinned here (see GoldSetConfig.max_item_bytes and harness/core/paths.py):
- An item whose input fields exceed `gold_sets[].max_item_bytes` (default 1,000,000 bytes,
  ~250k tokens) is refused, naming its line and the limit; raising the key accepts it.
- A config inside a git work tree may read inputs only from inside that work tree: a
  relative path climbing out, an absolute path elsewhere and a symlink leading out are all
  refused. The opt-in is the environment ($PRELABEL_ALLOW_PATHS), never the config.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GOLD
from typer.testing import CliRunner

from harness.cli.app import app
from harness.run.cache import LabelCache

pytestmark = pytest.mark.http


@dataclass
class Expect:
    what: str  # regex: what is wrong
    where: str  # regex: file:line, or file and key
    hint: str = ""  # regex the `hint:` line must match (beyond existing)
    config: Path | None = None  # run this config path instead of the experiment's


@dataclass
class Ctx:
    exp: object
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def root(self) -> Path:
        return self.exp.root

    def write_config(self, **changes: object) -> None:
        self.exp.data.update(changes)
        self.exp.rewrite()

    def line(self, path: Path, needle: str) -> int:
        for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if needle in text:
                return i
        raise AssertionError(f"{needle!r} not in {path}")

    def config_line(self, needle: str) -> int:
        return self.line(self.exp.config, needle)

    def gold_line(self, item_id: str) -> int:
        return self.line(self.exp.gold, f'"id": "{item_id}"')

    def append_gold(self, raw: str | bytes) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        with self.exp.gold.open("ab") as f:
            f.write(data)

    def outside(self, name: str = "secret.txt", text: str = "TOP-SECRET-CONTENT\n") -> Path:
        path = self.tmp / "outside" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path


def gold_line_json(item_id: str, text: str, anns: dict | None = None, **extra: object) -> str:
    row = {"id": item_id, "text": text, **({"annotations": anns} if anns is not None else {})}
    return json.dumps({**row, **extra}) + "\n"


CONFIG = r"experiment\.yaml"
ANNS = {"ann_a": "positive", "ann_b": "positive"}


# --------------------------------------------------------------------------- config file


def config_missing(c: Ctx) -> Expect:
    return Expect("config file not found", r"nope\.yaml", "check the path", c.root / "nope.yaml")


def config_is_a_directory(c: Ctx) -> Expect:
    return Expect("cannot read config: Is a directory", str(c.root.name), "", c.root)


def config_not_utf8(c: Ctx) -> Expect:
    text = c.exp.config.read_text().replace("name: exp", "name: exp\ndescription: caf\xe9")
    c.exp.config.write_bytes(text.encode("latin-1"))
    return Expect("not valid UTF-8", rf"{CONFIG}:2\b", "UTF-8")


def config_empty(c: Ctx) -> Expect:
    c.exp.config.write_text("")
    return Expect("must be a YAML mapping", CONFIG, "configs/demo.yaml")


def config_is_another_file(c: Ctx) -> Expect:
    other = c.outside("passwd", "root:x:0:0:root:/root:/bin/bash\nTOP-SECRET-CONTENT:x:1:1\n")
    return Expect("must be a YAML mapping", r"passwd", "configs/demo.yaml", other)


def config_not_a_mapping(c: Ctx) -> Expect:
    c.exp.config.write_text("- name: exp\n- task: x\n")
    return Expect("must be a YAML mapping", CONFIG, "configs/demo.yaml")


def yaml_syntax(c: Ctx) -> Expect:
    text = c.exp.config.read_text().replace("  concurrency: 4", "  concurrency: [4, 5")
    c.exp.config.write_text(text)
    line = c.config_line("concurrency: [4")
    # PyYAML reports where it noticed the problem: the unclosed line or the next one.
    return Expect("YAML syntax error", rf"{CONFIG}:({line}|{line + 1})\b", "fix the YAML")


def yaml_tab_indent(c: Ctx) -> Expect:
    c.exp.config.write_text(
        c.exp.config.read_text().replace("  concurrency: 4", "\tconcurrency: 4")
    )
    return Expect("YAML syntax error.*'\\\\t'", rf"{CONFIG}:{c.config_line('concurrency')}\b")


def duplicate_key(c: Ctx) -> Expect:
    text = c.exp.config.read_text().replace("  retries: 2\n", "  retries: 2\n  retries: 3\n")
    c.exp.config.write_text(text)
    return Expect("duplicate key", rf"{CONFIG}:{c.config_line('retries: 3')}, key 'run\.retries'")


def unknown_key_nested(c: Ctx) -> Expect:
    c.exp.data["run"]["concurency"] = 3
    c.write_config()
    line = c.config_line("concurency:")
    return Expect("unknown key 'concurency'", rf"{CONFIG}:{line}, key 'run\.concurency'", "README")


def unknown_key_top_level(c: Ctx) -> Expect:
    c.write_config(reprot={"bootstrap": 100})
    line = c.config_line("reprot:")
    return Expect("unknown key 'reprot'", rf"{CONFIG}:{line}, key 'reprot'", "README")


def missing_required_key(c: Ctx) -> Expect:
    del c.exp.data["task"]
    c.write_config()
    return Expect("required key is missing", rf"{CONFIG}(:\d+)?, key 'task'")


def wrong_type_scalar(c: Ctx) -> Expect:
    c.exp.data["run"]["retries"] = "many"
    c.write_config()
    line = c.config_line("retries:")
    return Expect("valid integer", rf"{CONFIG}:{line}, key 'run\.retries'")


def wrong_type_list(c: Ctx) -> Expect:
    c.write_config(gold_sets="gold.jsonl")
    line = c.config_line("gold_sets:")
    return Expect("valid list", rf"{CONFIG}:{line}, key 'gold_sets'")


def out_of_range(c: Ctx) -> Expect:
    c.exp.data["run"]["concurrency"] = 0
    c.write_config()
    line = c.config_line("concurrency:")
    return Expect("greater than or equal to 1", rf"{CONFIG}:{line}, key 'run\.concurrency'")


def label_is_a_yaml_boolean(c: Ctx) -> Expect:
    text = c.exp.config.read_text().replace("  - neutral", "  - no")
    c.exp.config.write_text(text)
    return Expect("YAML boolean.*quote it", rf"{CONFIG}:\d+, key 'task\.labels\[2\]'")


def setup_names_unknown_model(c: Ctx) -> Expect:
    c.write_config(setups=[{"prompt": "zs", "model": "gpt5"}])
    line = c.config_line("model: gpt5")
    return Expect("names model 'gpt5'", rf"{CONFIG}:{line}, key 'setups\[0\]\.model'")


def max_item_bytes_not_positive(c: Ctx) -> Expect:
    c.exp.data["gold_sets"][0]["max_item_bytes"] = 0
    c.write_config()
    line = c.config_line("max_item_bytes")
    return Expect("greater than or equal to 1", rf"{CONFIG}:{line}, key 'gold_sets\[0\]")


# --------------------------------------------------------------------------- referenced files


def _missing(key_path: tuple, value: str, key: str, what: str) -> Callable[[Ctx], Expect]:
    def case(c: Ctx) -> Expect:
        node = c.exp.data
        for part in key_path[:-1]:
            node = node[part]
        node[key_path[-1]] = value
        c.write_config()
        line = c.config_line(value)
        return Expect(f"{what} .* does not exist", rf"{CONFIG}:{line}, key '{key}'", "relative")

    return case


def missing_pool(c: Ctx) -> Expect:
    c.exp.data["prompts"][0]["few_shot"] = {"k": 2, "pool": "pool-missing.jsonl"}
    c.write_config()
    line = c.config_line("pool-missing")
    return Expect(
        "few-shot pool .* does not exist", rf"{CONFIG}:{line}, key 'prompts\[0\]\.few_shot\.pool'"
    )


def missing_guidelines(c: Ctx) -> Expect:
    c.exp.data["task"]["guidelines_file"] = "docs/guide-missing.md"
    c.write_config()
    line = c.config_line("guide-missing")
    return Expect(
        "guidelines file .* does not exist", rf"{CONFIG}:{line}, key 'task\.guidelines_file'"
    )


def missing_replay(c: Ctx) -> Expect:
    c.write_config(models=[{"id": "vendor", "model": "replay/vendor-missing.jsonl"}])
    line = c.config_line("vendor-missing")
    return Expect(
        "replay labels file .* does not exist", rf"{CONFIG}:{line}, key 'models\[0\]\.model'"
    )


def gold_is_a_directory(c: Ctx) -> Expect:
    (c.root / "golds").mkdir()
    c.exp.data["gold_sets"][0]["path"] = "golds"
    c.write_config()
    line = c.config_line("path: golds")
    return Expect("gold set .* is a directory", rf"{CONFIG}:{line}, key 'gold_sets\[0\]\.path'")


def gold_unreadable(c: Ctx) -> Expect:
    """Permission denied (simulated: the tests may run as root, who reads anything)."""
    gold = c.exp.gold
    gold.chmod(0)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == gold:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    c.monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return Expect("cannot read gold set: Permission denied", r"gold\.jsonl", "permissions")


def template_unreadable(c: Ctx) -> Expect:
    c.exp.template.write_bytes(b"--- user\n{{ item.text }} caf\xe9\n")
    return Expect("prompt template is not valid UTF-8", r"zero_shot\.j2:2\b", "UTF-8")


def template_empty(c: Ctx) -> Expect:
    c.exp.template.write_text("\n\n")
    return Expect("prompt template is empty", r"zero_shot\.j2", "fill in")


# --------------------------------------------------------------------------- templates


def template_syntax(c: Ctx) -> Expect:
    c.exp.template.write_text(c.exp.template.read_text() + "{% if item.text %}\n{{ item.id }\n")
    line = c.line(c.exp.template, "{{ item.id }")
    return Expect("template syntax error", rf"zero_shot\.j2:{line}\b", "fix the template")


def template_unknown_variable(c: Ctx) -> Expect:
    text = c.exp.template.read_text().replace("{{ item.text }}", "{{ review }}")
    c.exp.template.write_text(text)
    line = c.line(c.exp.template, "{{ review }}")
    return Expect(r"unknown template variable\(s\) \['review'\]", rf"zero_shot\.j2:{line}\b")


def template_undefined_item_field(c: Ctx) -> Expect:
    text = c.exp.template.read_text().replace("item.text", "item.title")
    c.exp.template.write_text(text)
    line = c.line(c.exp.template, "--- user") + 1
    return Expect(
        "template fails on item 'g01'.*title", rf"zero_shot\.j2:{line}\b", "fields are.*'text'"
    )


def template_unknown_filter(c: Ctx) -> Expect:
    text = c.exp.template.read_text().replace("{{ item.text }}", "{{ item.text | shout }}")
    c.exp.template.write_text(text)
    line = c.line(c.exp.template, "shout")
    return Expect("template syntax error.*shout", rf"zero_shot\.j2:{line}\b")


def template_without_user_message(c: Ctx) -> Expect:
    c.exp.template.write_text("--- system\nLabel the review.\n")
    return Expect("template has no user message", r"zero_shot\.j2", "--- user")


def template_runtime_error(c: Ctx) -> Expect:
    c.exp.template.write_text("--- user\n{{ item.text }} {{ 1 / 0 }}\n")
    return Expect("template error on item 'g01'.*ZeroDivisionError", r"zero_shot\.j2:2\b")


# --------------------------------------------------------------------------- gold sets


def gold_duplicate_id(c: Ctx) -> Expect:
    c.append_gold(gold_line_json("g03", "Another review.", ANNS))
    line = len(c.exp.gold.read_text().splitlines())
    return Expect(
        rf"duplicate id 'g03' \(first on line {c.gold_line('g03')}\)",
        rf"gold\.jsonl:{line}\b",
        "fix these rows of gold.jsonl",
    )


def gold_unknown_label(c: Ctx) -> Expect:
    c.exp.gold.write_text(
        c.exp.gold.read_text().replace('"ann_b": "neutral"', '"ann_b": "nuetral"', 1)
    )
    line = c.line(c.exp.gold, "nuetral")
    return Expect(r"unknown labels \['nuetral'\]", rf"gold\.jsonl:{line}\b", "allowed labels")


def gold_no_annotations(c: Ctx) -> Expect:
    c.append_gold(gold_line_json("g13", "No one labelled me."))
    return Expect(
        "item 'g13' has no 'annotations'", rf"gold\.jsonl:{c.gold_line('g13')}\b", "fix these rows"
    )


def gold_empty_annotations(c: Ctx) -> Expect:
    c.append_gold(gold_line_json("g13", "Labelled by nobody.", {}))
    return Expect("item 'g13' has no 'annotations'", rf"gold\.jsonl:{c.gold_line('g13')}\b")


def gold_invalid_json(c: Ctx) -> Expect:
    c.append_gold('{"id": "g13", "text": "unterminated, "annotations": {}}\n')
    line = len(c.exp.gold.read_text().splitlines())
    return Expect("invalid JSON", rf"gold\.jsonl:{line}\b", "fix these rows")


def gold_not_utf8(c: Ctx) -> Expect:
    c.append_gold(b'{"id": "g13", "text": "caf\xe9", "annotations": {"a": "positive"}}\n')
    line = len(c.exp.gold.read_bytes().splitlines())
    return Expect("gold set is not valid UTF-8", rf"gold\.jsonl:{line}\b", "UTF-8")


def gold_empty_file(c: Ctx) -> Expect:
    c.exp.gold.write_text("")
    return Expect("gold set is empty", r"gold\.jsonl", "fill in")


def gold_only_comments(c: Ctx) -> Expect:
    c.exp.gold.write_text("# exported 2024-03-15\n\n# nothing yet\n")
    return Expect("no items", r"gold\.jsonl", "fix these rows")


def gold_item_of_10_mb(c: Ctx) -> Expect:
    c.append_gold(gold_line_json("huge", "log line\n" * 1_200_000, ANNS))  # ~10.8 MB
    return Expect(
        r"item 'huge' has 1[01],\d{3},\d{3} bytes of input text, over the limit of 1,000,000",
        rf"gold\.jsonl:{len(GOLD) + 2}\b",
        "max_item_bytes",
    )


def gold_json_nested_too_deeply(c: Ctx) -> Expect:
    c.append_gold('{"id": "deep", "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    line = len(GOLD) + 2
    return Expect("invalid JSON: nested too deeply", rf"gold\.jsonl:{line}\b", "fix these rows")


def gold_csv_missing_columns(c: Ctx) -> Expect:
    csv = c.root / "gold.csv"
    csv.write_text("item,worker,label\ng01,a,positive\n")
    c.exp.data["gold_sets"][0]["path"] = "gold.csv"
    c.write_config()
    return Expect(r"CSV header lacks columns \['id', 'annotator'\]", r"gold\.csv:1\b", "columns")


def pool_overlaps_gold(c: Ctx) -> Expect:
    pool = c.root / "pool.jsonl"
    pool.write_text(
        json.dumps({"id": "p1", "text": "a great blender, it works well", "label": "positive"})
        + "\n"
        + json.dumps({"id": "p2", "text": "Fine.", "label": "neutral"})
        + "\n"
    )
    c.exp.data["prompts"][0]["few_shot"] = {"k": 1, "pool": "pool.jsonl"}
    c.write_config()
    return Expect("pool example 'p1' is gold item 'g01'", r"pool\.jsonl", "never be gold items")


def pool_unknown_label(c: Ctx) -> Expect:
    pool = c.root / "pool.jsonl"
    pool.write_text(json.dumps({"id": "p1", "text": "Fine.", "label": "meh"}) + "\n")
    c.exp.data["prompts"][0]["few_shot"] = {"k": 1, "pool": "pool.jsonl"}
    c.write_config()
    return Expect("label 'meh' is not one of", r"pool\.jsonl:1\b", "few-shot pool")


# ---------------------------------------------------------------- paths outside the project


def outside_relative(c: Ctx) -> Expect:
    c.outside("gold.jsonl", c.exp.gold.read_text())  # a valid gold set, still refused
    c.exp.data["gold_sets"][0]["path"] = "../outside/gold.jsonl"
    c.write_config()
    line = c.config_line("../outside")
    return Expect(
        "gold set '../outside/gold.jsonl' resolves to .*outside/gold.jsonl, outside the project",
        rf"{CONFIG}:{line}, key 'gold_sets\[0\]\.path'",
        "PRELABEL_ALLOW_PATHS",
    )


def outside_climbing_to_etc_passwd(c: Ctx) -> Expect:
    up = "../" * len(c.root.resolve().parts)
    c.exp.data["task"]["guidelines_file"] = f"{up}etc/passwd"
    c.write_config()
    line = c.config_line("etc/passwd")
    return Expect(
        "guidelines file .* resolves to /etc/passwd, outside the project",
        rf"{CONFIG}:{line}, key 'task\.guidelines_file'",
        "pull request",
    )


def outside_absolute(c: Ctx) -> Expect:
    secret = c.outside("template.j2", "--- user\n{{ item.text }}\n")
    c.exp.data["prompts"][0]["template"] = str(secret)
    c.write_config()
    line = c.config_line(str(secret))
    return Expect(
        "prompt template .* outside the project",
        rf"{CONFIG}:{line}, key 'prompts\[0\]\.template'",
        "PRELABEL_ALLOW_PATHS",
    )


def outside_proc_environ(c: Ctx) -> Expect:
    c.exp.data["prompts"][0]["template"] = "/proc/self/environ"
    c.write_config()
    return Expect("prompt template '/proc/self/environ'.* outside the project", CONFIG)


def outside_through_symlink(c: Ctx) -> Expect:
    target = c.outside("gold.jsonl", c.exp.gold.read_text())
    c.exp.gold.unlink()
    c.exp.gold.symlink_to(target)
    line = c.config_line("gold.jsonl")
    return Expect(
        "gold set 'gold.jsonl' resolves through a symlink to .*outside/gold.jsonl",
        rf"{CONFIG}:{line}, key 'gold_sets\[0\]\.path'",
    )


def outside_replay_file(c: Ctx) -> Expect:
    c.outside("labels.jsonl", '{"id": "g01", "label": "positive"}\n')
    c.write_config(models=[{"id": "vendor", "model": "replay/../outside/labels.jsonl"}])
    line = c.config_line("replay/")
    return Expect(
        "replay labels file .* outside the project", rf"{CONFIG}:{line}, key 'models\[0\]\.model'"
    )


# --------------------------------------------------------------------------- PII masking config


def pii_bad_regex(c: Ctx) -> Expect:
    c.exp.data["models"][0]["mask_pii"] = {"patterns": {"order_id": "ORD-(\\d{6}"}}
    c.write_config()
    line = c.config_line("order_id")
    return Expect(
        "pattern 'order_id' is not a valid regular expression",
        rf"{CONFIG}:{line}, key 'models\[0\]\.mask_pii\.patterns\.order_id'",
    )


def pii_regex_matching_nothing(c: Ctx) -> Expect:
    c.exp.data["models"][0]["mask_pii"] = {"patterns": {"ticket": "T?\\d*"}}
    c.write_config()
    return Expect("pattern 'ticket' matches the empty string", rf"{CONFIG}:\d+, key 'models\[0\]")


def pii_unknown_kind(c: Ctx) -> Expect:
    c.exp.data["models"][0]["mask_pii"] = {"kinds": ["email", "ssn"]}
    c.write_config()
    return Expect(
        "Input should be 'email', 'phone', 'card' or 'ip'",
        rf"{CONFIG}:\d+, key 'models\[0\]\.mask_pii\.kinds\[1\]'",
    )


def pii_wrong_type(c: Ctx) -> Expect:
    c.exp.data["models"][0]["mask_pii"] = "emails"
    c.write_config()
    line = c.config_line("mask_pii")
    return Expect("mask_pii is true, false or a mapping", rf"{CONFIG}:{line}, key 'models\[0\]")


def pii_on_replayed_labels(c: Ctx) -> Expect:
    (c.root / "vendor.jsonl").write_text('{"id": "g01", "label": "positive"}\n')
    c.write_config(models=[{"id": "v", "model": "replay/vendor.jsonl", "mask_pii": True}])
    return Expect("mask_pii has no effect on replayed labels", rf"{CONFIG}:\d+, key 'models\[0\]")


# --------------------------------------------------------------------------- models


def missing_api_key(c: Ctx) -> Expect:
    c.monkeypatch.delenv("PRELABEL_TEST_UNSET_KEY", raising=False)
    c.exp.data["models"][0]["api_key_env"] = "PRELABEL_TEST_UNSET_KEY"
    c.write_config()
    return Expect("PRELABEL_TEST_UNSET_KEY", rf"{CONFIG}.*key 'models[.\[]", "export")


def unknown_local_model(c: Ctx) -> Expect:
    c.write_config(models=[{"id": "tiny", "model": "local/no-such-model"}])
    return Expect("local/no-such-model", rf"{CONFIG}(:\d+|.*key 'models)")


CASES: dict[str, Callable[[Ctx], Expect]] = {
    "config-missing": config_missing,
    "config-is-a-directory": config_is_a_directory,
    "config-not-utf8": config_not_utf8,
    "config-empty": config_empty,
    "config-is-another-file": config_is_another_file,
    "config-not-a-mapping": config_not_a_mapping,
    "yaml-syntax": yaml_syntax,
    "yaml-tab-indent": yaml_tab_indent,
    "duplicate-key": duplicate_key,
    "unknown-key-nested": unknown_key_nested,
    "unknown-key-top-level": unknown_key_top_level,
    "missing-required-key": missing_required_key,
    "wrong-type-scalar": wrong_type_scalar,
    "wrong-type-list": wrong_type_list,
    "out-of-range": out_of_range,
    "label-is-a-yaml-boolean": label_is_a_yaml_boolean,
    "setup-names-unknown-model": setup_names_unknown_model,
    "max-item-bytes-not-positive": max_item_bytes_not_positive,
    "missing-gold-file": _missing(
        ("gold_sets", 0, "path"), "nowhere/gold-missing.jsonl", r"gold_sets\[0\]\.path", "gold set"
    ),
    "missing-template": _missing(
        ("prompts", 0, "template"), "tpl-missing.j2", r"prompts\[0\]\.template", "prompt template"
    ),
    "missing-pool": missing_pool,
    "missing-guidelines-file": missing_guidelines,
    "missing-replay-file": missing_replay,
    "gold-is-a-directory": gold_is_a_directory,
    "gold-unreadable": gold_unreadable,
    "template-not-utf8": template_unreadable,
    "template-empty": template_empty,
    "template-syntax": template_syntax,
    "template-unknown-variable": template_unknown_variable,
    "template-undefined-item-field": template_undefined_item_field,
    "template-unknown-filter": template_unknown_filter,
    "template-without-user-message": template_without_user_message,
    "template-runtime-error": template_runtime_error,
    "gold-duplicate-id": gold_duplicate_id,
    "gold-unknown-label": gold_unknown_label,
    "gold-no-annotations": gold_no_annotations,
    "gold-empty-annotations": gold_empty_annotations,
    "gold-invalid-json": gold_invalid_json,
    "gold-not-utf8": gold_not_utf8,
    "gold-empty-file": gold_empty_file,
    "gold-only-comments": gold_only_comments,
    "gold-item-of-10-mb": gold_item_of_10_mb,
    "gold-json-nested-too-deeply": gold_json_nested_too_deeply,
    "gold-csv-missing-columns": gold_csv_missing_columns,
    "pool-overlaps-gold": pool_overlaps_gold,
    "pool-unknown-label": pool_unknown_label,
    "outside-relative-path": outside_relative,
    "outside-climbing-to-etc-passwd": outside_climbing_to_etc_passwd,
    "outside-absolute-path": outside_absolute,
    "outside-proc-self-environ": outside_proc_environ,
    "outside-through-symlink": outside_through_symlink,
    "outside-replay-file": outside_replay_file,
    "pii-bad-regex": pii_bad_regex,
    "pii-regex-matching-empty": pii_regex_matching_nothing,
    "pii-unknown-kind": pii_unknown_kind,
    "pii-wrong-type": pii_wrong_type,
    "pii-on-replayed-labels": pii_on_replayed_labels,
    "missing-api-key-env": missing_api_key,
    "unknown-local-model": unknown_local_model,
}


def snapshot(folder: Path, cache_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under `folder`, but the cache, with its size and mtime."""
    out = {}
    for path in folder.rglob("*"):
        if not path.is_relative_to(cache_dir):
            stat = path.lstat()
            out[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return out


def cache_entries(cache_dir: Path) -> int:
    if not cache_dir.exists():
        return 0
    cache = LabelCache(cache_dir)
    try:
        return len(cache)
    finally:
        cache.close()


def flat(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_names_the_place_says_what_to_do_and_writes_nothing(
    srv, experiment, tmp_path, monkeypatch, cache_dir, command, case
):
    exp = experiment(srv)
    (exp.root / ".git").mkdir()  # the experiment is a project: a git work tree
    monkeypatch.delenv("PRELABEL_ALLOW_PATHS", raising=False)
    monkeypatch.delenv("PRELABEL_PROJECT_ROOT", raising=False)
    expect = CASES[case](Ctx(exp, tmp_path, monkeypatch))
    config = expect.config or exp.config
    before = snapshot(tmp_path, cache_dir)

    args = [command, str(config), *(["--quiet"] if command == "run" else [])]
    result = CliRunner().invoke(app, args)

    out = flat(result.output)
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    assert "Traceback" not in out
    assert out.startswith("error: "), out
    assert re.search(expect.what, out), (expect.what, out)
    assert re.search(expect.where, out), (expect.where, out)
    hint = re.search(r"hint: (.*)$", out)
    assert hint, f"no hint: says what is wrong but not what to do: {out}"
    assert re.search(expect.hint, hint.group(1)), (expect.hint, hint.group(1))
    # Nothing written: no run folder, no cache entry, no file created or touched anywhere.
    # (`run` with a missing API key leaves an empty cache database: run/pipeline.py opens the
    # cache before it checks the keys. Empty, it holds nothing.)
    assert snapshot(tmp_path, cache_dir) == before
    assert not exp.runs_dir.exists()
    assert cache_entries(cache_dir) == 0
    assert srv.count == 0
    assert "TOP-SECRET-CONTENT" not in out and "root:x:0" not in out  # no file content shown


# --------------------------------------------------------------------------- the policies' opt-ins


def test_a_10_mb_item_is_accepted_when_the_gold_set_raises_its_limit(srv, experiment):
    exp = experiment(srv)
    with exp.gold.open("a") as f:
        f.write(gold_line_json("huge", "log line\n" * 1_200_000, ANNS))
    exp.data["gold_sets"][0]["max_item_bytes"] = 20_000_000
    exp.rewrite()
    result = CliRunner().invoke(app, ["validate", str(exp.config)])
    assert result.exit_code == 0, result.output
    assert "13 items" in flat(result.output)


def test_the_size_limit_counts_the_input_fields_not_the_annotations(srv, experiment):
    exp = experiment(srv)
    anns = {f"annotator_{i:05d}": "positive" for i in range(40_000)}  # ~1 MB of annotations
    with exp.gold.open("a") as f:
        f.write(gold_line_json("crowded", "Short text.", anns))
    result = CliRunner().invoke(app, ["validate", str(exp.config)])
    assert result.exit_code == 0, result.output


def test_the_size_limit_holds_for_csv_gold_sets_and_names_the_items_first_row(
    srv, experiment, tmp_path
):
    exp = experiment(srv)
    big = "word " * 250_000  # 1.25 MB
    (exp.root / "gold.csv").write_text(
        f'id,annotator,label,text\ng1,a,positive,ok\ng2,a,negative,"{big}"\ng2,b,negative,"{big}"\n'
    )
    exp.data["gold_sets"][0].update(path="gold.csv", columns={"fields": ["text"]})
    exp.rewrite()
    result = CliRunner().invoke(app, ["validate", str(exp.config)])
    assert result.exit_code == 2
    assert re.search(r"gold\.csv:3\b.*item 'g2' has 1,250,\d{3} bytes", flat(result.output))


def test_every_case_differs_from_a_valid_experiment(srv, experiment):
    """The table's baseline is valid: each case fails because of its own edit only."""
    exp = experiment(srv)
    (exp.root / ".git").mkdir()
    result = CliRunner().invoke(app, ["validate", str(exp.config)])
    assert result.exit_code == 0, result.output
    assert os.path.isdir(exp.root / ".git")
