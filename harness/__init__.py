"""prelabel: which LLM pre-labeling setup to deploy, with evidence."""

__version__ = "0.1.0"

# The Python API (harness/api): `harness.evaluate(...)` and friends, imported on first use
# so that `import harness` (and `prelabel validate`) stays fast.
_API = {
    "evaluate",
    "load_run",
    "plan",
    "label",
    "load_label",
    "Labelled",
    "Evaluation",
    "LeaderboardRow",
    "Interval",
    "UserError",
}


def __getattr__(name: str):  # PEP 562
    if name in _API:
        import harness.api

        return getattr(harness.api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
