"""When a provider never answered: stop early, and never present such a setup as a result.

A run against a server that is not there (a wrong port, a wrong host) used to retry every
item `run.retries` times and then score nothing but failures: kappa 0.000, "recommended:
none", exit 0. Two checks in the runner prevent that:

- Fail fast: `FAIL_FAST_AFTER` consecutive identical "cannot connect" failures (refused,
  host not found) of a model that has not answered once in this run stop the run. A model
  that answered before and then drops connections is a transient outage: it is retried as
  usual. Auth, unknown-model and quota errors stop the run at the first one (`fatal`).
- After the run: a setup with no answer at all (neither fresh nor cached) whose failures
  all say the provider refused or never answered is an error, not a result. A parse failure
  or an empty answer is an answer (the model spoke, badly): such a run still reports.

Either way the command exits 2 with a message naming the setup, the model, where it was
called, the cause and the fix; every answer received so far is already cached.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.config import ModelConfig
from harness.core.errors import Problem, UserError
from harness.core.records import LabelRecord
from harness.providers import ProviderError

# Few enough that a dead server costs a handful of requests, not retries x items; more than
# one so that a single refused connection during a server's restart does not end a run.
FAIL_FAST_AFTER = 3

# Failure kinds that mean "no answer came back" for a provider reason. A setup whose
# failures are all of these, with no answer at all, was never measured.
NO_ANSWER = frozenset(
    {
        "connection",
        "auth",
        "not_found",
        "quota",
        "timeout",
        "rate_limited",
        "bad_request",
        "context_window",
        "provider_error",
    }
)

HINT = (
    "nothing was scored; fix the above and run the same command: every answer received "
    "so far is cached, and the run folder is kept with the reason in manifest.json"
)


def no_answer(kind: str) -> bool:
    # batch_*: a batch that failed, expired or was cancelled as a whole (harness/run/batch.py)
    return kind in NO_ANSWER or kind.startswith(("http_5", "batch_"))


@dataclass
class _Tally:
    answered: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    detail: dict[str, str] = field(default_factory=dict)  # first detail of each kind


class Health:
    """Per model: the streak of identical unreachable errors; per setup: what came back."""

    def __init__(self, models: Mapping[str, ModelConfig]):
        self.models = models
        self._answered: set[str] = set()  # models that answered at least once this run
        self._streak: dict[str, tuple[tuple[str, str], int]] = {}
        self._first: dict[tuple[str, str], ProviderError] = {}  # (model, kind) -> error
        self._setups: dict[str, _Tally] = {}

    def answered(self, model_id: str) -> None:
        self._answered.add(model_id)

    def failed(self, model_id: str, error: ProviderError) -> bool:
        """A failed request; True when the model should get no further calls (fail fast)."""
        self._first.setdefault((model_id, error.kind), error)
        if model_id in self._answered or not error.unreachable:
            self._streak.pop(model_id, None)  # any other outcome breaks the streak
            return False
        same = (error.kind, error.detail)
        last, n = self._streak.get(model_id, (same, 0))
        n = n + 1 if last == same else 1
        self._streak[model_id] = (same, n)
        return n >= FAIL_FAST_AFTER

    def record(self, record: LabelRecord) -> None:
        tally = self._setups.get(record.setup)
        if tally is None:
            tally = self._setups[record.setup] = _Tally()
        if record.label is not None or record.raw is not None:
            tally.answered += 1
        elif record.failure:
            tally.failures[record.failure] += 1
            tally.detail.setdefault(record.failure, record.failure_detail or "")

    def unanswered(self) -> list[str]:
        """Setups with no answer at all whose every failure is a provider's (the decision)."""
        return [
            setup
            for setup, t in self._setups.items()
            if not t.answered and t.failures and all(no_answer(k) for k in t.failures)
        ]

    def error(
        self, setups: Mapping[str, str], timeout_s: float, kind: str | None = None
    ) -> UserError:
        """The error for `setups` (setup id -> model id) that got no answer; `kind`: the
        failure that stopped the run early (else each setup's most common one)."""
        problems = []
        for setup, model_id in setups.items():
            tally = self._setups.get(setup, _Tally())
            k = kind or (tally.failures.most_common(1)[0][0] if tally.failures else "unknown")
            first = self._first.get((model_id, k))
            detail = first.detail if first else tally.detail.get(k, "")
            counts = ", ".join(f"{n} {f}" for f, n in sorted(tally.failures.items()))
            problems.append(self._problem(setup, model_id, k, detail, first, counts, timeout_s))
        return UserError(problems, HINT)

    def _problem(
        self,
        setup: str,
        model_id: str,
        kind: str,
        detail: str,
        first: ProviderError | None,
        counts: str,
        timeout_s: float,
    ) -> Problem:
        m = self.models[model_id]
        i = list(self.models).index(model_id)
        where = m.api_base or f"the provider's endpoint for {m.model}"
        unreachable = first.unreachable if first else None
        cause, fix, key = explain(kind, unreachable, m, i, where, timeout_s)
        seen = f"; failed: {counts}" if counts else ""
        return Problem(
            f"setup '{setup}', model '{model_id}' ({m.model} at {where}): {cause}: {fix} "
            f"(first error: {detail[:240]}{seen})",
            key=key,
        )


def explain(
    kind: str, unreachable: str | None, m: ModelConfig, i: int, where: str, timeout_s: float
) -> tuple[str, str, str]:
    """(cause, fix, config key) of a failure kind, in the user's terms."""
    base = f"models[{i}].api_base" if m.api_base else f"models[{i}].model"
    key_var = f"${m.api_key_env}" if m.api_key_env else "the provider's key variable"
    if kind == "connection":
        if unreachable == "refused":
            return f"connection refused at {where}", f"is the server running? check {base}", base
        if unreachable == "dns":
            return f"host not found for {where}", f"check the host name in {base}", base
        return (
            f"no connection to {where}",
            f"is the server running and reachable from here? check {base}",
            base,
        )
    if m.api_key_env:
        key_fix = f"check that {key_var} holds a valid key for this provider"
    elif m.api_base:
        key_fix = f"set models[{i}].api_key_env to the variable that holds the server's key"
    else:
        key_fix = f"check the provider's key variable, or set models[{i}].api_key_env"
    table = {
        "auth": (
            "authentication failed (the key was refused)",
            key_fix,
            f"models[{i}].api_key_env" if m.api_key_env else f"models[{i}]",
        ),
        "not_found": (
            f"model '{m.model}' not found",
            f"check models[{i}].model against the models the provider serves",
            f"models[{i}].model",
        ),
        "quota": (
            "the account's quota or credit is used up",
            f"add credit or raise the quota with the provider, or use another key in {key_var}",
            f"models[{i}]",
        ),
        "timeout": (
            f"every call timed out after {timeout_s:g} s",
            f"is the server overloaded? raise run.timeout_s or check {base}",
            "run.timeout_s",
        ),
        "rate_limited": (
            "every call was rate-limited (HTTP 429), retries included",
            f"set models[{i}].rpm / lower run.concurrency, or raise run.retries",
            f"models[{i}].rpm",
        ),
        "bad_request": (
            "the provider rejected every request as invalid",
            f"check models[{i}].params and the model name",
            f"models[{i}].params",
        ),
        "context_window": (
            "every prompt is longer than the model's context window",
            "shorten the template or the few-shot examples, or use a model with a longer one",
            f"models[{i}].model",
        ),
    }
    batch = f"models[{i}].batch"
    table.update(
        {
            "batch_failed": (
                "the provider rejected the batch as a whole",
                f"the provider's reason is below; check models[{i}].params, or set {batch} "
                "to false to call live",
                batch,
            ),
            "batch_cancelled": (
                "the batch was cancelled at the provider",
                "run the same command to send it again",
                batch,
            ),
            "batch_expired": (
                "the batch expired before any of its requests ran",
                f"run the same command to send it again, or set {batch} to false to call live",
                batch,
            ),
        }
    )
    if kind in table:
        return table[kind]
    if kind.startswith("http_5"):
        return (
            f"the server failed every call ({kind})",
            f"check the server's logs or status at {where}, then run again",
            base,
        )
    return f"every call failed ({kind})", f"check {base} and the model", base


def locate(exc: UserError, path: object, key_lines: Mapping[str, int]) -> UserError:
    """Point problems that name only a config key at the config file and the key's line."""
    for problem in exc.problems:
        if problem.file is None and problem.key:
            problem.file = str(path)
            problem.line = problem.line or key_lines.get(problem.key)
    return exc
