"""Reports: metrics.json (machine-readable, schema in harness/schemas), report.md (for pull
requests) and report.html (one self-contained page to browse and share)."""
