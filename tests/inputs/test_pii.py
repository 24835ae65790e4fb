"""PII masking (harness/inputs/pii.py): realistic strings, the config, and end to end through the
fake server: the masked model receives placeholders, an unmasked model the original text,
the cache keeps them apart, and the manifest counts replacements without any value."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import last_user_text
from typer.testing import CliRunner

from harness.cli.app import app
from harness.config import ModelConfig, load_experiment
from harness.config.pii import PiiConfig
from harness.core.records import GoldItem
from harness.inputs.pii import PiiMasker, luhn_valid, masker_for, pii_config
from harness.run.plan import make_plan


def mask(text: str, **config) -> str:
    return PiiMasker(PiiConfig(**config)).mask(text)


# --------------------------------------------------------------------------- realistic strings

MASKED = [
    # e-mail: plus tags, subdomains, apostrophes, non-ASCII, quoted and bracketed
    (
        "Please email me at jane.doe+returns@gmail.com about the refund.",
        "Please email me at [EMAIL] about the refund.",
    ),
    ("Contact: o'brien@mail.example.co.uk", "Contact: [EMAIL]"),
    ("Escríbeme: josé.garcía@correo.es", "Escríbeme: [EMAIL]"),
    ("Write to <support@shop.io> or 'sales@shop.io'.", "Write to <[EMAIL]> or '[EMAIL]'."),
    # phone: international, North American, European national formats
    ("Call me on +44 7700 900123 or 020 7946 0958.", "Call me on [PHONE] or [PHONE]."),
    ("Reach us at +1 (415) 555-0132 any time", "Reach us at [PHONE] any time"),
    ("US: (415) 555-0132, 415.555.0132, 415-555-0132", "US: [PHONE], [PHONE], [PHONE]"),
    ("Toll-free 1-800-555-0199 (24/7)", "Toll-free [PHONE] (24/7)"),
    ("Ruf an: +49 30 1234567 oder 030 1234567", "Ruf an: [PHONE] oder [PHONE]"),
    ("Appelez le 06 12 34 56 78 ou +33 1 23 45 67 89", "Appelez le [PHONE] ou [PHONE]"),
    ("From abroad dial 0044 20 7946 0958", "From abroad dial [PHONE]"),
    ("India +91 98765 43210, Japan +81 3-1234-5678", "India [PHONE], Japan [PHONE]"),
    # card: Luhn-valid numbers of the major networks, grouped or not
    (
        "Charged to 4111 1111 1111 1111, refund to 5555-5555-5555-4444",
        "Charged to [CARD], refund to [CARD]",
    ),
    ("Amex 3782 822463 10005 and 6011111111111117", "Amex [CARD] and [CARD]"),
    ("card no. 4012888888881881 exp 12/27", "card no. [CARD] exp 12/27"),
    # ip: v4 with a port, v6 in full, compressed, loopback, with a zone
    ("Blocked from 192.168.1.20:8080 again", "Blocked from [IP]:8080 again"),
    ("IPv6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 failed", "IPv6 [IP] failed"),
    (
        "Routes 2001:db8::ff00:42:8329, ::1 and fe80::1ff:fe23:4567:890a%eth2",
        "Routes [IP], [IP] and [IP]",
    ),
]

KEPT = [
    "Upgraded the firmware to v2.10.3 on 2024-03-15 and paid $1,299.99 for it.",
    "Order #1234567812345678 arrived late.",  # 16 digits that fail the Luhn check
    "Ordered 4111 1111 1111 1112 by mistake",  # a card number with a typo: not a card
    "Tracking 1000000000000008 (Luhn-valid, but no card network starts with 1)",
    "Rated 4.5/5 — 3 of 10 stars, batch 20240315, model XR-2000, 10.5 x 20 cm.",
    "Meeting at 10:30:15 on 15.03.2024 (or 03/15/2024); MAC 00:1A:2B:3C:4D:5E.",
    "ISBN 978-3-16-148410-0, library version 1.2.3, build 1.2.3.4.5",
    "Room 101, 2 x 500 ml, € 19,99, 1999-2004, ZIP 94107, call after 5 pm",
    "Shipped 06.12.2023 12 units; std::vector<int> works; a::b",
    "Sizes 36 38 40 42, codes 123 456, score 98.6%",
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_pii_in_realistic_text_is_masked(text, expected):
    assert mask(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_numbers_that_are_not_pii_are_kept(text):
    assert mask(text) == text


def test_luhn_tells_card_numbers_from_order_numbers():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("1234567812345678") and not luhn_valid("4111111111111112")
    assert mask("4111111111111111") == "[CARD]" and mask("1234567812345678") == "1234567812345678"


def test_counts_per_kind_and_typed_placeholders():
    masker = PiiMasker(PiiConfig(patterns={"order_id": r"ORD-\d{6}", "Ticket": r"#T\d+"}))
    out = masker.mask(
        "ORD-123456 from ann@x.org / bob@y.org, +1 415 555 0132, 10.0.0.1, #T42, "
        "card 4111-1111-1111-1111"
    )
    assert out == "[ORDER_ID] from [EMAIL] / [EMAIL], [PHONE], [IP], [TICKET], card [CARD]"
    assert masker.counts == {"order_id": 1, "Ticket": 1, "email": 2, "phone": 1, "ip": 1, "card": 1}


def test_user_patterns_run_before_the_built_in_kinds():
    # A customer number that looks like a phone number is masked as what the user says it is.
    assert mask("customer 020-7946-0958", patterns={"customer": r"0\d{2}-\d{4}-\d{4}"}) == (
        "customer [CUSTOMER]"
    )


def test_kinds_select_what_is_masked():
    text = "ann@x.org, +44 20 7946 0958, 192.168.0.1, 4111 1111 1111 1111"
    assert (
        mask(text, kinds=["email"]) == "[EMAIL], +44 20 7946 0958, 192.168.0.1, 4111 1111 1111 1111"
    )
    assert mask(text, kinds=["ip", "card"]) == "ann@x.org, +44 20 7946 0958, [IP], [CARD]"
    assert mask(text, kinds=[]) == text


def test_items_are_masked_field_by_field_and_counted_once():
    masker = PiiMasker(PiiConfig())
    item = GoldItem(
        "r1",
        {
            "text": "Mail ann@x.org",
            "stars": 5,
            "candidates": [{"id": "A", "text": "call 415-555-0132"}, "B: 10.1.2.3"],
        },
        {"a": "positive"},
        meta={"email": "kept@meta.org"},  # meta is never sent
    )
    masked = masker.item(item)
    assert masked.fields == {
        "text": "Mail [EMAIL]",
        "stars": 5,
        "candidates": [{"id": "A", "text": "call [PHONE]"}, "B: [IP]"],
    }
    assert masked.annotations == item.annotations and masked.meta == item.meta
    assert masker.item(item) is masked  # once per item, however many prompts use it
    clean = GoldItem("r2", {"text": "No PII here."}, {"a": "neutral"})
    assert masker.item(clean) is clean
    assert masker.summary() == {
        "kinds": ["email", "phone", "card", "ip"],
        "patterns": [],
        "replacements": {"email": 1, "phone": 1, "card": 0, "ip": 1},
        "items_masked": 1,
        "examples_masked": 0,
    }


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("value", "kinds"),
    [
        (True, ["email", "phone", "card", "ip"]),
        (False, None),
        (None, None),
        ({"kinds": ["email"]}, ["email"]),
        ({"enabled": False, "kinds": ["email"]}, None),
    ],
)
def test_mask_pii_is_a_flag_or_a_mapping(value, kinds):
    model = ModelConfig(id="m", model="openai/x", mask_pii=value)
    config = pii_config(model.mask_pii)
    assert (config.kinds if config else None) == kinds
    assert (masker_for(model.mask_pii) is None) == (kinds is None)


@pytest.mark.parametrize(
    ("patterns", "fragment"),
    [
        ({"order": "ORD-(\\d+"}, "not a valid regular expression"),
        ({"order": "\\d*"}, "matches the empty string"),
        ({"email": "x+"}, "built-in kind"),
        ({"order id": "x+"}, "letters, digits and _"),
    ],
)
def test_bad_user_patterns_are_refused_with_their_name(patterns, fragment):
    with pytest.raises(ValueError, match=fragment):
        PiiConfig(patterns=patterns)


# --------------------------------------------------------------------------- end to end

PII_GOLD = [
    ("p01", "Great blender! Questions to jane.doe+blender@gmail.com", ["positive"] * 3),
    ("p02", "Awful. Call me at +44 20 7946 0958 for the refund.", ["negative"] * 3),
    ("p03", "Great price, paid with 4111 1111 1111 1111.", ["positive"] * 3),
    ("p04", "Works with firmware v2.10.3, bought 2024-03-15 for $1,299.99.", ["neutral"] * 3),
    ("p05", "Awful router, logs show 192.168.0.12 and 2001:db8::7334.", ["negative"] * 3),
    ("p06", "Order ORD-884213 arrived; tracking 1234567812345678.", ["neutral"] * 3),
]
VALUES = [
    "jane.doe+blender@gmail.com",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "192.168.0.12",
    "2001:db8::7334",
    "ORD-884213",
]


def test_the_masked_model_receives_placeholders_and_the_other_the_original(srv, experiment):
    exp = experiment(
        srv,
        gold=PII_GOLD,
        models=[
            {
                "id": "external",
                "model": "openai/external",
                "api_base": srv.base_url,
                "mask_pii": {"patterns": {"order_id": r"ORD-\d{6}"}},
            },
            {"id": "inhouse", "model": "openai/inhouse", "api_base": srv.base_url},
        ],
    )
    pool = exp.root / "pool.jsonl"
    pool.write_text(json.dumps({"id": "x1", "text": "Mail bob@example.org", "label": "neutral"}))
    exp.data["prompts"][0]["few_shot"] = {"k": 1, "pool": "pool.jsonl"}
    exp.rewrite()
    exp.template.write_text(
        "--- user\n{% for ex in examples %}{{ ex.text }} -> {{ ex.label }}\n{% endfor %}"
        "{{ item.text }}\n"
    )
    result = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert result.exit_code == 0, result.output

    sent = {"external": [], "inhouse": []}
    for request in srv.requests:
        sent[request["model"]].append(last_user_text(request))
    assert len(sent["external"]) == len(sent["inhouse"]) == len(PII_GOLD)
    external = "\n".join(sent["external"])
    for value in [*VALUES, "bob@example.org"]:
        assert value not in external
        assert value in "\n".join(sent["inhouse"])
    assert "Questions to [EMAIL]" in external and "Call me at [PHONE] for" in external
    assert "paid with [CARD]." in external and "logs show [IP] and [IP]." in external
    assert "Order [ORDER_ID] arrived; tracking 1234567812345678." in external
    assert "firmware v2.10.3, bought 2024-03-15 for $1,299.99." in external
    assert "[EMAIL] -> neutral" in external  # the few-shot example too

    [run_dir] = exp.run_dirs()
    manifest_text = (run_dir / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    setups = {s["id"]: s for s in manifest["setups"]}
    assert setups["zs@external"]["pii_masking"] == {
        "kinds": ["email", "phone", "card", "ip"],
        "patterns": ["order_id"],
        "replacements": {"order_id": 1, "email": 2, "phone": 1, "card": 1, "ip": 2},
        "items_masked": 5,
        "examples_masked": 1,
    }
    assert "pii_masking" not in setups["zs@inhouse"]
    for value in VALUES:  # the manifest says what was masked, never the values
        assert value not in manifest_text

    # Masking is deterministic: a rerun takes every label from the cache.
    calls = srv.count
    again = CliRunner().invoke(app, ["run", str(exp.config), "--quiet"])
    assert again.exit_code == 0 and srv.count == calls


def test_masking_is_part_of_the_cache_key_only_where_it_changes_the_prompt(srv, experiment):
    exp = experiment(srv, gold=PII_GOLD)
    plain = {s.item_id: s.cache_key for s in make_plan(load_experiment(exp.config)).specs}
    exp.data["models"][0]["mask_pii"] = True
    exp.config.write_text(yaml.safe_dump(exp.data, sort_keys=False))
    masked = {s.item_id: s.cache_key for s in make_plan(load_experiment(exp.config)).specs}
    changed = {i for i in plain if plain[i] != masked[i]}
    assert changed == {"p01", "p02", "p03", "p05"}  # p04 and p06 hold no built-in PII


def test_pairwise_responses_are_masked_in_both_orders(srv, experiment):
    exp = experiment(
        srv, models=[{"id": "m", "model": "openai/m", "api_base": srv.base_url, "mask_pii": True}]
    )
    exp.gold.write_text(
        json.dumps(
            {
                "id": "pair1",
                "prompt": "How do I reach support?",
                "response_a": "Write to help@shop.io",
                "response_b": "Call 415-555-0132",
                "annotations": {"a": "A", "b": "A"},
            }
        )
        + "\n"
    )
    exp.data["task"] = {"type": "pairwise"}
    exp.rewrite()
    exp.template.write_text(
        "--- user\n{{ item.prompt }}\nA: {{ item.response_a }}\nB: {{ item.response_b }}\n"
    )
    plan = make_plan(load_experiment(exp.config))
    shown = sorted(spec.messages[-1]["content"] for spec in plan.specs)
    assert shown == [
        "How do I reach support?\nA: Call [PHONE]\nB: Write to [EMAIL]",
        "How do I reach support?\nA: Write to [EMAIL]\nB: Call [PHONE]",
    ]
    assert plan.pii["m"]["replacements"] == {"email": 1, "phone": 1, "card": 0, "ip": 0}
