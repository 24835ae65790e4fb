"""Clustered gold items: each item's cluster id from `gold_sets[].cluster_by`, and a warning
when no clustering is set but the items look grouped (statistics.md section 3).

Turns of one conversation, questions on one document, answers from one source are not
independent: the model tends to be right or wrong on a whole group at once, and intervals
that resample single items are then too narrow (on items grouped ten to a cluster a 95%
interval covers 0.80-0.84). With `cluster_by` every interval, comparison and the gate
resample whole clusters instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import Problem, UserError
from harness.core.records import GoldItem

META = "meta."
# A grouped id: a numbered parent (conv12, doc_4) before a separator and a part after it
# (turn3, q2). The parent must carry a digit: a word prefix ("amazon_001", "item-7") names a
# source or a scheme, which is a stratum, not a cluster of related items.
_ID_PARENT = re.compile(r"^(?P<parent>.*\d.*?)[-_:/.#][^-_:/.#]+$")
# Below this many groups a repeated value is a stratum (domain, language, length), which
# slices report; at or above it, it may be a cluster (a conversation, a document).
MIN_GROUPS = 10
MIN_MEAN_SIZE = 2.0
MIN_GROUPED_SHARE = 0.75  # of the items in a group of two or more
# Input fields named like an identifier are checked too; other fields hold text.
_ID_FIELD = re.compile(r"(^|_)id$|Id$", re.IGNORECASE)


def cluster_key(cluster_by: str) -> tuple[str, str]:
    """("meta", name) or ("field", name)."""
    if cluster_by.startswith(META):
        return "meta", cluster_by[len(META) :]
    return "field", cluster_by


def cluster_value(item: GoldItem, cluster_by: str) -> str | None:
    """The item's cluster id, or None when it has none (missing, null, empty, not a scalar)."""
    where, name = cluster_key(cluster_by)
    value: Any = (item.meta if where == "meta" else item.fields).get(name)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text or None


def resolve_clusters(
    items: Sequence[GoldItem],
    cluster_by: str,
    path: Path,
    gold_id: str,
    csv_values: Mapping[str, str | None] | None = None,
) -> tuple[tuple[str, ...], list[Problem]]:
    """Each item's cluster id and a problem (file, line) for every item without one.

    ``csv_values`` (item id -> the cluster column's value) replaces the lookup in fields
    and meta for a CSV gold set, whose columns are read by the parser."""
    where, name = cluster_key(cluster_by)
    what = f"meta field '{name}'" if where == "meta" else f"field '{name}'"
    ids: list[str] = []
    problems: list[Problem] = []
    for item in items:
        value = csv_values.get(item.id) if csv_values is not None else None
        if csv_values is None:
            value = cluster_value(item, cluster_by)
        if value is None:
            problems.append(
                Problem(
                    f"item {item.id!r} has no {what} to cluster by (gold set '{gold_id}' has "
                    f"cluster_by: {cluster_by}); it must be a non-empty string or number",
                    path,
                    item.line,
                )
            )
            value = ""
        ids.append(value)
    return tuple(ids), problems


def cluster_hint(path: Path, cluster_by: str, gold_id: str) -> str:
    where, name = cluster_key(cluster_by)
    carrier = f'"meta": {{"{name}": ...}}' if where == "meta" else f'"{name}": ...'
    return (
        f"give every item of {path.name} its cluster ({carrier}: the same value for items of "
        f"one conversation, document or source), or remove cluster_by from gold set "
        f"'{gold_id}' in the config if its items are independent"
    )


def _grouped(values: Sequence[str], n: int) -> tuple[int, float, int] | None:
    """(groups, mean size, largest) when ``values`` (one per item) look like clusters."""
    sizes = Counter(values)
    groups = len(sizes)
    if groups < MIN_GROUPS or groups > n / MIN_MEAN_SIZE:
        return None
    grouped = sum(s for s in sizes.values() if s >= 2)
    if grouped < MIN_GROUPED_SHARE * n:
        return None
    return groups, n / groups, max(sizes.values())


def grouping_warning(items: Sequence[GoldItem], gold_id: str) -> str | None:
    """Why the items look grouped (ids sharing a numbered prefix, or a meta field or id-like
    input field whose values repeat over many groups), or None."""
    n = len(items)
    if n < MIN_GROUPS * MIN_MEAN_SIZE:
        return None
    found: list[tuple[str, str, tuple[int, float, int]]] = []
    parents = [m.group("parent") if (m := _ID_PARENT.match(item.id)) else None for item in items]
    if all(p is not None for p in parents):
        stats = _grouped([p for p in parents if p is not None], n)
        if stats:
            found.append(("ids", f"item ids share a prefix (e.g. '{parents[0]}')", stats))
    candidates: dict[str, list[str | None]] = {}
    for item in items:
        for key in item.meta:
            candidates.setdefault(f"meta.{key}", [])
        for key in item.fields:
            if _ID_FIELD.search(key):
                candidates.setdefault(key, [])
    for key in candidates:
        values = [cluster_value(item, key) for item in items]
        if all(v is not None for v in values):
            stats = _grouped([v for v in values if v is not None], n)
            if stats:
                found.append((key, f"the values of '{key}' repeat", stats))
    if not found:
        return None
    key, why, (groups, mean, largest) = found[0]
    suggestion = "meta.<field> or an input field naming each item's group" if key == "ids" else key
    return (
        f"gold set '{gold_id}': items look grouped ({why}: {groups} groups of {n} items, "
        f"mean size {mean:.1f}, largest {largest}) but no cluster_by is set, so intervals "
        "treat every item as independent and are too narrow if items of a group are related; "
        f"set gold_sets[].cluster_by: {suggestion} (a conversation, document or source)"
    )


def check_cluster_column(header: Sequence[str], column: str | None, path: Path) -> None:
    """A CSV gold set's cluster_by names a column of its header."""
    if column is not None and column not in header:
        raise UserError.at(
            f"CSV header lacks the cluster_by column '{column}'; it has {list(header)}",
            file=path,
            line=1,
            hint="add the column (the same value on every row of one conversation, document "
            "or source), or fix or remove gold_sets[].cluster_by in the config",
        )


def csv_cluster(
    clusters: dict[str, str | None], item_id: str, cell: str | None, path: Path, line: int
) -> list[Problem]:
    """Record one CSV row's cluster for its item: rows of one item must agree (an empty
    cell takes the item's value from its other rows)."""
    value = (cell or "").strip() or None
    known = clusters.get(item_id)
    if value is not None and known is not None and known != value:
        return [
            Problem(f"item {item_id!r} is in two clusters, {known!r} and {value!r}", path, line)
        ]
    if value is not None or item_id not in clusters:
        clusters[item_id] = value
    return []
