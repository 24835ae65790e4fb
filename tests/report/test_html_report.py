"""report.html: one self-contained, inert page, checked as markup and in headless Chromium.

The markup tests parse the page with html.parser (no external reference, no script, no
event-handler attribute, item text escaped, every leaderboard figure with its n and
interval, every plot well-formed SVG). The browser tests load it from file:// in the
system Chromium, driven over the DevTools protocol with aiohttp (already a dev dependency:
no browser download, no Playwright), and assert no console message, no page error, no
dialog, and a leaderboard visible in a non-blank screenshot. Without Chromium they are
skipped locally and fail under CI=..., where .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import shutil
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.core.records import GoldItem, GoldSet, LabelRecord, RunManifest, Setup
from harness.report.html import code_ticks, render_html
from harness.report.writer import write_reports
from harness.score import deploy as score_deploy
from harness.score.disagreements import disagreements
from harness.score.metrics_json import score_run
from harness.score.predictions import CodedGoldSet, ItemPredictions

try:  # tests/ on sys.path (rootdir conftest, no tests/__init__.py)
    from fake_openai import FakeOpenAIServer
except ImportError:
    from fake_openai import FakeOpenAIServer

LABELS = ["positive", "negative", "neutral"]
EVIL = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">click</a> javascript:alert(1)',
]


def _gold(n: int = 60) -> GoldSet:
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        truth = LABELS[i % 3]
        anns = {
            a: truth if rng.random() < 0.8 else LABELS[int(rng.integers(3))]
            for a in ("ann_a", "ann_b", "ann_c")
        }
        text = f"{EVIL[i % 3]} review {i}" if i < 12 else f"review number {i}"
        meta = {"domain": ["books", "toys", "<i>odd</i>"][i % 3], "length": "short"}
        fields = {"text": text, "product": '<b onmouseover="x()">kettle</b>'}
        items.append(GoldItem(id=f"i{i:03d}", fields=fields, annotations=anns, meta=meta))
    groups = {"experts": ("ann_a", "ann_b"), "crowd": ("ann_c",)}
    annotators = ("ann_a", "ann_b", "ann_c")
    return GoldSet("reviews", "gold.jsonl", tuple(items), annotators, "ab" * 32, groups)


def _records(gold: GoldSet, setup: str, skill: float, seed: int) -> list[LabelRecord]:
    rng = np.random.default_rng(seed)
    coded = CodedGoldSet(gold, LABELS)
    out = []
    for i, item in enumerate(gold.items):
        right = rng.random() < skill
        ref = LABELS[coded.reference[i]]
        label = ref if right else LABELS[(LABELS.index(ref) + 1) % 3]
        failed = i % 29 == 28
        out.append(
            LabelRecord(
                setup=setup,
                gold_set=gold.id,
                item=item.id,
                label=None if failed else label,
                failure="no_label_found" if failed else None,
                confidence=None
                if failed
                else float(np.clip(rng.normal(0.8 if right else 0.6, 0.15), 0.05, 1)),
                confidence_source=None if failed else "verbalized",
                latency_s=0.2 + 0.1 * rng.random(),
                cost_usd=0.0004,
            )
        )
    return out


def _manifest(metrics: dict[str, Any]) -> RunManifest:
    return RunManifest(
        run_id=metrics["run_id"],
        status="complete",
        prelabel_version="0.1.0",
        config_path="/tmp/<b>exp</b>.yaml",
        config_hash="cd" * 32,
        config={"description": "a <script>alert(2)</script> description"},
        prompt_hashes={},
        gold_set_hashes={g["id"]: g["content_hash"] for g in metrics["gold_sets"]},
        setups=[],
        packages={},
        python="3.11",
        platform="linux",
        git_commit="0123456789abcdef",
        git_dirty=False,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:01:00+00:00",
        totals={"labels": 120, "cached": 0, "calls": 120, "cost_usd": 0.048},
    )


@pytest.fixture(scope="module")
def classified() -> tuple[RunManifest, dict[str, Any]]:
    return classified_run()


def classified_run() -> tuple[RunManifest, dict[str, Any]]:
    """Two setups on 60 items with confidences, failures, slices and hostile text, scored by
    score_run, with at most 15 disagreements shown per setup."""
    mp = pytest.MonkeyPatch()
    mp.setattr(score_deploy, "MAX_DISAGREEMENTS", 15)
    try:
        gold = _gold()
        setups = [
            Setup("zero_shot@fake", "zero_shot", "fake"),
            Setup("few_shot@fake", "few", "fake"),
        ]
        records = _records(gold, setups[0].id, 0.75, 1) + _records(gold, setups[1].id, 0.6, 2)
        metrics = score_run([gold], setups, records, LABELS, n_boot=200)
    finally:
        mp.undo()
    metrics.update(run_id="20260101-000000-html-test", experiment="html-test")
    return _manifest(metrics), metrics


# ------------------------------------------------------------------------------ markup checks


class Page(HTMLParser):
    """Every start tag with its attributes, and the text content."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)


def assert_self_contained_and_inert(html: str) -> Page:
    page = Page(html)
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html
    for m in re.finditer(r"url\(([^)]*)\)", html):
        assert m.group(1).strip("'\" ").startswith("data:"), m.group(0)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "iframe" not in tags and "object" not in tags
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "action", "formaction", "poster", "data", "xlink:href"):
                ok = value.startswith("#") or value.startswith("data:")
                assert ok, f"<{tag} {name}={value!r}> is not a local or data reference"
            assert not value.strip().lower().startswith("javascript:"), (tag, name, value)
        if tag == "link":
            assert attrs.get("rel") == "icon", attrs
    csp = [a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "script-src" not in csp[0]
    return page


def svgs(html: str) -> list[ET.Element]:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    return [ET.fromstring(s) for s in found]


def test_report_is_one_self_contained_inert_file(classified):
    html = render_html(*classified)
    page = assert_self_contained_and_inert(html)
    text = "".join(page.text)
    # The hostile item text is shown, as text: the parser sees it as data, never as tags.
    for evil in EVIL:
        assert evil in text
    assert "<script>alert(2)</script>" in text and "&lt;script&gt;" in html
    assert html.count("<script") == 0


def test_leaderboard_numbers_carry_their_n_and_interval(classified):
    html = render_html(*classified)
    table = re.search(r'<table class="leaderboard".*?</table>', html, flags=re.S).group(0)
    rows = re.findall(r'<tr class="setup-row.*?</tr>', table, flags=re.S)
    assert len(rows) == 2
    for row in rows:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        n, kappa, acc, f1, coverage, ceiling, ece, cost, latency = cells[2:]
        assert n == "60"
        for cell in (kappa, acc, f1, ece):  # an estimate with its interval
            assert re.search(r'class="est">-?\d\.\d{3}</span> <span class="ci">\[-?\d', cell), cell
        assert re.search(r"\d+/60", coverage)
        for cell in (ceiling, ece, latency):  # their own n
            assert re.search(r"n=\d+", cell), cell
        assert cost.startswith("$0.0004")


def test_every_plot_is_valid_svg(classified):
    html = render_html(*classified)
    plots = svgs(html)
    labels = [p.get("aria-label") for p in plots]
    for kind in ("Reliability diagram", "Risk-coverage curve", "Confusion matrix", "Pareto plot"):
        assert sum(label.startswith(kind) for label in labels) >= 1, kind
    assert sum("accuracy by domain" in label for label in labels) == 2  # one per setup
    assert all(p.tag == "svg" and p.get("viewBox") for p in plots)
    # A slice value with markup is escaped inside the SVG text too.
    assert any("<i>odd</i>" in "".join(p.itertext()) for p in plots)


def test_disagreements_confident_first_capped_and_escaped(classified):
    _, metrics = classified
    block = metrics["gold_sets"][0]["setups"][0]["disagreements"]
    assert block["shown"] == len(block["items"]) == 15 < block["n"]
    confs = [x["confidence"] for x in block["items"] if x["predicted"] is not None]
    assert confs == sorted(confs, reverse=True)
    assert all(x["predicted"] != x["reference"] for x in block["items"])
    html = render_html(*classified)
    assert f"{block['n'] - 15} of {block['n']} disagreements are left out" in html
    first = block["items"][0]
    assert first["text"].startswith("text: ") and "\nproduct: " in first["text"]


def test_disagreements_order_failed_items_last():
    gold = _gold(9)
    coded = CodedGoldSet(gold, LABELS)
    recs = []
    for i, item in enumerate(gold.items):
        wrong = LABELS[(int(coded.reference[i]) + 1) % 3]
        label, conf = [(wrong, 0.9), (wrong, None), (None, None)][i % 3]
        recs.append(
            LabelRecord(setup="s", gold_set="reviews", item=item.id, label=label, confidence=conf)
        )
    block = disagreements(coded, ItemPredictions(coded, recs))
    assert block["n"] == block["shown"] == 9
    tiers = [(x["predicted"] is None, x["confidence"] is None) for x in block["items"]]
    assert tiers == [(False, False)] * 3 + [(False, True)] * 3 + [(True, True)] * 3
    assert block["items"][0]["annotations"] == dict(gold.items[0].annotations)


def test_disagreements_order_equals_sorting_rows_by_tier_shown_confidence_and_position():
    """The order is one array sort: failed last, then answered without a confidence, then by
    the confidence as shown (6 decimals: values equal there tie) descending, ties by
    position. It must equal sorting the rows by that key one by one."""
    import math

    gold = _gold(300)
    coded = CodedGoldSet(gold, LABELS)
    rng = np.random.default_rng(5)
    recs = []
    for i, item in enumerate(gold.items):
        wrong = LABELS[(int(coded.reference[i]) + 1) % 3]
        kind = rng.integers(0, 5)
        # Confidences a hair apart: equal once rounded to 6 decimals, so position decides.
        conf = float(rng.choice([0.5, 0.7, 0.9])) + float(rng.integers(0, 3)) * 1e-8
        label, c = [(wrong, conf), (wrong, conf), (wrong, None), (None, None), (LABELS[0], 0.8)][
            kind
        ]
        recs.append(
            LabelRecord(setup="s", gold_set="reviews", item=item.id, label=label, confidence=c)
        )
    preds = ItemPredictions(coded, recs)
    block = disagreements(coded, preds, limit=1000)
    by_hand = []
    for i in range(len(gold.items)):
        if coded.reference[i] >= 0 and preds.pred[i] != coded.reference[i]:
            c = float(preds.confidence[i])
            shown = None if math.isnan(c) else round(c, 6)
            tier = 2 if preds.pred[i] < 0 else (0 if shown is not None else 1)
            by_hand.append(((tier, -(shown or 0.0), i), gold.items[i].id, shown))
    by_hand.sort()
    assert [x["item"] for x in block["items"]] == [item for _, item, _ in by_hand]
    assert [x["confidence"] for x in block["items"]] == [shown for _, _, shown in by_hand]
    assert block["n"] == len(by_hand) > 100


def add_other_blocks(metrics: dict[str, Any]) -> None:
    """The deploy decision (harness.score.decision) on the first gold set, as the pipeline adds
    it: a cost block per setup, the gold set's recommendation, and the top-level one."""
    from harness.config import Constraints, CostConfig, ReportConfig
    from harness.score.decision import cost_block, recommend

    costs = CostConfig(human_label_usd=0.08, human_review_usd=0.03)
    limits = Constraints(min_kappa_low=-0.5, max_ece=0.5, max_cost_per_1k_usd=100)
    gs = metrics["gold_sets"][0]
    for b in gs["setups"]:
        b["cost"] = cost_block(b, costs)
    gs["recommendation"] = recommend(gs, ReportConfig(constraints=limits), costs)
    metrics["recommendation"] = gs["recommendation"]


def test_blocks_from_other_stations_render_and_their_absence_is_fine(classified):
    manifest, metrics = classified
    metrics = json.loads(json.dumps(metrics))
    gs = metrics["gold_sets"][0]
    add_other_blocks(metrics)
    html = render_html(manifest, metrics)
    assert_self_contained_and_inert(html)
    rec = gs["recommendation"]
    assert rec["recommended"] and str(code_ticks(rec["reason"])) in html  # setups as <code>
    for shown in (
        "Annotator groups",  # blocks of a shape the report does not know: generic tables
        "Against each annotator group",
        "alternative annotator test",
        "Recalibration, before and after",
        "Cost per setup",
        "Pareto front",
        "hybrid USD per 1,000 items",
        "kappa low ≥ -0.5",
        "$ / 1k items ≤ $100.00",
    ):
        assert shown in html, shown
    assert html.count('<div class="big">Recommended:') == 1  # in its gold set, not twice
    svgs(html)
    for key in ("confidence_sources", "disagreements", "selective", "calibration", "slices"):
        for block in gs["setups"]:
            block.pop(key, None)
    metrics.pop("recommendation")
    html = render_html(manifest, metrics)
    assert "Recalibration" in html and "Disagreements with the reference" not in html
    assert_self_contained_and_inert(html)


def test_a_null_or_empty_block_never_breaks_the_page(classified):
    """Keys are read defensively: a block another station renames or nulls leaves a blank
    cell, not a failed run after the labels were paid for."""
    manifest, metrics = classified
    for key in metrics["gold_sets"][0]["setups"][0]:
        for value in (None, {}):
            broken = copy.deepcopy(metrics)
            broken["gold_sets"][0]["setups"][0][key] = value
            assert '<table class="leaderboard"' in render_html(manifest, broken), key


def test_write_reports_writes_report_html_atomically(classified, tmp_path):
    write_reports(tmp_path, *classified)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "metrics.json",
        "report.html",
        "report.md",
    ]
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == render_html(*classified)


# ------------------------------------------------------------------- every task type, for real

TEMPLATE = "--- user\nLabel item {{ item.id }}\n"  # the fake models answer without reading
TOPICS = ["food", "service", "price"]
AXES = [{"name": name, "labels": ["1", "2", "3"]} for name in ("helpfulness", "clarity")]
CANDIDATES = [{"id": "A", "text": "short"}, {"id": "B", "text": "a longer answer"}]


def _same(label: Any) -> dict[str, Any]:
    return dict.fromkeys("xyz", label)


# task -> (task config, the fake model's reply, item i -> (its fields, its annotations))
TASKS: dict[str, tuple[dict, str, Any]] = {
    "classification": (
        {"type": "classification", "labels": LABELS},
        "positive",
        lambda i: ({"text": f"{EVIL[i % 3]} {i}"}, _same(LABELS[i % 3])),
    ),
    "ordinal": (
        {"type": "ordinal", "labels": ["1", "2", "3", "4", "5"]},
        "3",
        lambda i: ({"text": f"level {i % 5 + 1}"}, _same(str(i % 5 + 1))),
    ),
    "pairwise": (
        {"type": "pairwise", "pairwise": {"swap": True}},
        "A",
        lambda i: (
            {"prompt": "Say <b>hi</b>", "response_a": "short", "response_b": "x" * (40 + i)},
            _same("AB"[i % 2]),
        ),
    ),
    "multilabel": (
        {"type": "multilabel", "labels": TOPICS},
        json.dumps({"labels": TOPICS[:1]}),
        lambda i: ({"text": f"review {i}"}, _same(TOPICS[: i % 3 + 1])),
    ),
    "rubric": (
        {"type": "rubric", "axes": AXES},
        json.dumps({"helpfulness": "2", "clarity": "2"}),
        lambda i: ({"text": f"answer {i}"}, _same({"helpfulness": str(i % 3 + 1), "clarity": "2"})),
    ),
    "ranking": (
        {"type": "ranking"},
        json.dumps({"ranking": ["B", "A"]}),
        lambda i: (
            {"prompt": f"q{i}", "candidates": CANDIDATES},
            {"x": ["B", "A"], "y": ["A", "B"] if i % 2 else ["B", "A"]},
        ),
    ),
}


def run_task_type(task: str, tmp_path: Path) -> Path:
    """A real run (YAML, HTTP to a fake model, scoring, write_reports) of one task type."""
    import yaml

    from harness.run.pipeline import run_experiment

    task_cfg, reply, item = TASKS[task]
    rows = []
    for i in range(8):
        fields, annotations = item(i)
        rows.append({"id": f"i{i}", **fields, "annotations": annotations})
    (tmp_path / "t.j2").write_text(TEMPLATE)
    (tmp_path / "g.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with FakeOpenAIServer(lambda request, attempt: reply) as srv:
        config = {
            "name": task,
            "task": task_cfg,
            "gold_sets": [{"id": "g", "path": "g.jsonl"}],
            "prompts": [{"id": "p", "template": "t.j2"}],
            "models": [{"id": "fake", "model": "openai/fake-model", "api_base": srv.base_url}],
            "run": {"retries": 0},
            "report": {"bootstrap": 200},
        }
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
        return run_experiment(tmp_path / "c.yaml", runs_dir=tmp_path / "runs").run_dir


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_type_renders(task, tmp_path):
    run_dir = run_task_type(task, tmp_path)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert_self_contained_and_inert(html)
    assert re.search(r'<table class="leaderboard"', html)
    assert len(re.findall(r'<tr class="setup-row', html)) >= 1
    assert svgs(html)
    if task in ("multilabel", "rubric"):
        assert "Combined leaderboard" in html and '<details class="part"' in html
    if task == "ordinal":
        assert "Ordinal view" in html
    if task == "pairwise":
        assert "Position consistency" in html


# --------------------------------------------------------------------------- headless Chromium

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


def chromium() -> str:
    """The system Chromium; skipped without it locally, a failure in CI (which installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    found = found or next((p for p in ("/usr/bin/chromium",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser tests, but chromium is not installed (see .ci/run)")
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI runs this")


class Cdp:
    """A minimal Chrome DevTools Protocol client: commands by id, events collected."""

    def __init__(self, ws: Any):
        self.ws, self.next_id, self.pending, self.events = ws, 0, {}, []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)

    async def send(self, method: str, params: dict | None = None, session: str | None = None):
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = fut
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        reply = await asyncio.wait_for(fut, 30)
        assert "error" not in reply, (method, reply["error"])
        return reply["result"]

    async def event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events:
                if e["method"] == method:
                    return e
            await asyncio.sleep(0.05)
        raise TimeoutError(method)


LEADERBOARD_JS = """(() => {
  const t = document.querySelector('table.leaderboard');
  if (!t) return null;
  const box = t.getBoundingClientRect();
  const rows = [...t.querySelectorAll('tbody tr.setup-row')].filter(tr => {
    const r = tr.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight
      && getComputedStyle(tr).visibility === 'visible';
  }).map(tr => tr.innerText);
  return {box: [box.x, box.y, box.width, box.height], rows, scripts: document.scripts.length,
          handlers: document.querySelectorAll('[onerror],[onload],[onclick],[onmouseover]').length,
          svgs: document.querySelectorAll('svg.plot').length, width: innerWidth};
})()"""


async def _load(url: str, user_dir: Path, width: int, height: int) -> dict:
    import aiohttp

    log = (user_dir / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", "about:blank"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        port_file = user_dir / "DevToolsActivePort"
        for _ in range(300):  # Chromium writes its port here once DevTools listens
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            assert proc.poll() is None, (user_dir / "chromium.log").read_text()[-2000:]
            await asyncio.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        url_ws = f"ws://127.0.0.1:{port}{path}"
        async with aiohttp.ClientSession() as http, http.ws_connect(url_ws, max_msg_size=0) as ws:
            cdp = Cdp(ws)
            target = await cdp.send("Target.createTarget", {"url": "about:blank"})
            attach = {"targetId": target["targetId"], "flatten": True}
            s = (await cdp.send("Target.attachToTarget", attach))["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                await cdp.send(f"{domain}.enable", session=s)
            metrics = {
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": False,
            }
            await cdp.send("Emulation.setDeviceMetricsOverride", metrics, session=s)
            await cdp.send("Page.navigate", {"url": url}, session=s)
            await cdp.event("Page.loadEventFired")
            await asyncio.sleep(0.5)  # late console messages (CSP reports are async)
            dom = await cdp.send(
                "Runtime.evaluate", {"expression": LEADERBOARD_JS, "returnByValue": True}, s
            )
            png = await cdp.send("Page.captureScreenshot", {"format": "png"}, session=s)
            await cdp.send("Browser.close")
            cdp.reader.cancel()
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    import base64

    noise = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
    return {
        "messages": [e for e in cdp.events if e["method"] in noise],
        "dialogs": [e for e in cdp.events if e["method"] == "Page.javascriptDialogOpening"],
        "dom": dom["result"].get("value"),
        "png": base64.b64decode(png["data"]),
    }


def load_in_chromium(path: Path, tmp: Path, width: int = 1280, height: int = 900) -> dict:
    user_dir = tmp / f"chromium-profile-{time.monotonic_ns()}"
    user_dir.mkdir()
    return asyncio.run(_load(path.resolve().as_uri(), user_dir, width, height))


def png_pixels(png: bytes) -> np.ndarray:
    """Decode an 8-bit RGB(A), non-interlaced PNG (what Chromium writes) to an array."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.int32)
    prev = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + prev) % 256
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        else:  # Average and Paeth depend on the pixel just decoded: byte by byte
            row = line.copy()
            for x in range(width * bpp):
                a = row[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (line[x] + pred) % 256
        out[y], prev = row, row
    return out.reshape(height, width, bpp)[:, :, :3]


@pytest.fixture(scope="module")
def report_file(classified, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(*classified), encoding="utf-8")
    return path


def test_report_loads_in_chromium_clean_and_shows_the_leaderboard(report_file, tmp_path):
    page = load_in_chromium(report_file, tmp_path)
    assert page["messages"] == [], page["messages"]  # no console output, error or exception
    assert page["dialogs"] == []  # the hostile item text ran nothing
    dom = page["dom"]
    assert dom["scripts"] == 0 and dom["handlers"] == 0 and dom["svgs"] >= 8
    # Both setups' leaderboard rows are rendered inside the first screen.
    assert len(dom["rows"]) == 2 and "zero_shot@fake" in " ".join(dom["rows"])
    pixels = png_pixels(page["png"])
    assert pixels.shape == (900, 1280, 3)
    x, y, w, h = (round(v) for v in dom["box"])
    assert y >= 0 and y + h <= 900
    board = pixels[y : y + h, x : x + w]
    dark = (board.sum(axis=2) < 300).mean()  # text strokes in the leaderboard's box
    assert 0.01 < dark < 0.5, dark
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # a page, not a blank screen


def test_the_browser_check_sees_what_it_must_catch(tmp_path):
    """The negative control: a page that breaks the rules does show up as messages."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src '
        '\'none\'"><img src="https://example.invalid/x.png"><script>alert(1)</script>',
        encoding="utf-8",
    )
    page = load_in_chromium(bad, tmp_path)
    text = json.dumps(page["messages"])
    assert "Content Security Policy" in text and page["dialogs"] == []
