"""The report's statement of how a gold set's items are resampled: whole clusters of
`cluster_by`, or the warning that they look grouped and no clustering is set
(statistics.md section 3)."""

from __future__ import annotations

from typing import Any


def clustering_lines(gs: dict[str, Any]) -> list[str]:
    c = gs.get("clustering") or {}
    out = []
    if c.get("resampled") == "clusters":
        mean = c.get("mean_size")
        out.append(
            f"Clustered items: {c['n_items']} items in {c['n_clusters']} clusters by "
            f"`{c['by']}` (mean size {mean:.1f}, largest {c['max_size']}); "
            f"{c['applies_to']}."
            if mean is not None
            else f"Clustered items by `{c['by']}`: {c.get('note', 'no items')}."
        )
    if c.get("resampled") == "clusters" and c.get("note") and c.get("mean_size") is not None:
        out.append(f"Note: {c['note']}.")
    if c.get("warning"):
        out.append(f"**Warning:** {c['warning']}.")
    return [line for text in out for line in ("", text)]


def with_clustering(section: list[str], gs: dict[str, Any]) -> list[str]:
    """``section`` with the clustering lines under its gold-set heading."""
    lines = clustering_lines(gs)
    for i, line in enumerate(section):
        if line.startswith("## Gold set"):
            return section[: i + 1] + lines + section[i + 1 :]
    return lines + section
