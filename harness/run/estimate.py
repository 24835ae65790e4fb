"""What calls will cost before they are made: tokens, prices, dollars.

Used by `prelabel plan` (before a run, for every call) and by the runner (before each call,
for the budget cap and the tokens-per-minute limit; see harness/run/ratelimit.py).

- Input tokens, two ways. `rough_input_tokens`: characters / 4 plus 4 per message, instant,
  no tokenizer; the runner uses it before every call (and corrects it with the reply's usage
  after), and `plan` uses it for local models (loading a GGUF's tokenizer costs seconds).
  Counted: the provider's own `count_tokens` (harness.providers) where it has one, i.e.
  `litellm.token_counter` on the rendered messages (the model's own tokenizer where litellm
  has it, else tiktoken's cl100k_base, bundled: no download); `plan` uses it for litellm models.
- Output tokens: the call's `max_tokens` (or `max_completion_tokens`), else
  DEFAULT_OUTPUT_TOKENS; a label is a few tokens, so this is an upper bound when set.
- Prices (USD per token): the model's `*_cost_per_mtok` from the config, else litellm's local
  price map (never fetched), 0 for in-process local models, None ("unknown") otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.config import ModelConfig
from harness.core.records import CallSpec
from harness.providers import batch_prices, live_prices
from harness.run.plan import CHARS_PER_TOKEN, Plan

DEFAULT_OUTPUT_TOKENS = 16
ROUGH = f"characters/{CHARS_PER_TOKEN}"
COUNTED = "litellm.token_counter"


def rough_input_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return chars // CHARS_PER_TOKEN + 4 * len(messages)


def output_tokens(spec: CallSpec) -> tuple[int, str]:
    """(tokens, basis): the call's max_tokens, else the stated default."""
    for key in ("max_tokens", "max_completion_tokens"):
        value = spec.params.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return int(value), key
    return DEFAULT_OUTPUT_TOKENS, f"default {DEFAULT_OUTPUT_TOKENS}"


def prices(model: ModelConfig) -> tuple[tuple[float, float] | None, str]:
    """((input, output) USD per token, source), or (None, "unknown"): a batch model's batch
    price (harness/providers: batch_prices), else the live price."""
    return batch_prices(model) if model.batch else live_prices(model)


def cost(price: tuple[float, float] | None, tokens_in: int, tokens_out: int) -> float | None:
    return None if price is None else tokens_in * price[0] + tokens_out * price[1]


def estimate_plan(plan: Plan, is_cached: Any) -> dict[str, Any]:
    """Per setup: calls, cached share, and the tokens and dollars of the calls still to make.

    `is_cached(key) -> bool` looks a cache key up (nothing is called). A call that two
    setups share is paid once: it counts under the first setup that makes it.
    """
    models = plan.models
    rows: dict[str, dict[str, Any]] = {}
    for setup in plan.setups:
        model = models[setup.model_id]
        rows[setup.id] = {
            "setup": setup.id,
            "model": model.model,
            "calls": 0,
            "cached": 0,
            "shared": 0,
            "to_call": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "price_source": None,
            "input_token_count": (
                f"{model.kind.name}.token_counter" if model.kind.count_tokens else ROUGH
            ),
            "output_token_basis": set(),
            "replayed": not model.kind.called,
            **({"batch": True, "live_cost_usd": 0.0} if model.batch else {}),
        }
    price_of = {m.id: prices(m) for m in models.values() if m.kind.called}
    live_of = {m.id: live_prices(m)[0] for m in models.values() if m.batch}
    seen: set[str] = set()
    for spec in plan.specs:
        row = rows[spec.setup_id]
        row["calls"] += 1
        if is_cached(spec.cache_key):
            row["cached"] += 1
            continue
        if spec.cache_key in seen:
            row["shared"] += 1  # another setup pays for this call
            continue
        seen.add(spec.cache_key)
        model = models[spec.model_id]
        count = model.kind.count_tokens
        tokens_in = (
            count(model.model, spec.messages) if count else rough_input_tokens(spec.messages)
        )
        tokens_out, basis = output_tokens(spec)
        price, _ = price_of[spec.model_id]
        row["to_call"] += 1
        row["input_tokens"] += tokens_in
        row["output_tokens"] += tokens_out
        row["output_token_basis"].add(basis)
        spent = cost(price, tokens_in, tokens_out)
        row["cost_usd"] = (
            None if spent is None or row["cost_usd"] is None else row["cost_usd"] + spent
        )
        if "live_cost_usd" in row:  # batch mode: what the same calls would cost live
            live = cost(live_of[spec.model_id], tokens_in, tokens_out)
            row["live_cost_usd"] = (
                None
                if live is None or row["live_cost_usd"] is None
                else row["live_cost_usd"] + live
            )
    for setup in plan.setups:
        row = rows[setup.id]
        row["cached_share"] = row["cached"] / row["calls"] if row["calls"] else None
        row["output_token_basis"] = ", ".join(sorted(row["output_token_basis"])) or None
        if not row["replayed"]:
            price, source = price_of[setup.model_id]
            row["price_source"] = source
            if price is None:
                row["cost_usd"] = None
        if row["cost_usd"] is not None:
            row["cost_usd"] = round(row["cost_usd"], 8)
        if "live_cost_usd" in row:
            live = row["live_cost_usd"]
            row["live_cost_usd"] = None if live is None else round(live, 8)
            row["saving_usd"] = (
                None
                if live is None or row["cost_usd"] is None
                else round(live - row["cost_usd"], 8)
            )
    table = list(rows.values()) + jury_rows(plan.resolved.experiment.juries)
    unknown = [r["setup"] for r in table if r["cost_usd"] is None and r["to_call"]]
    calls = sum(r["calls"] for r in table)
    cached = sum(r["cached"] for r in table)
    run = plan.resolved.experiment.run
    return {
        "setups": table,
        "total": {
            "calls": calls,
            "cached": cached,
            "shared": sum(r["shared"] for r in table),
            "cached_share": cached / calls if calls else None,
            "to_call": sum(r["to_call"] for r in table),
            "input_tokens": sum(r["input_tokens"] for r in table),
            "output_tokens": sum(r["output_tokens"] for r in table),
            # The known part; `cost_unknown_for` lists the setups whose price is unknown.
            "cost_usd": round(sum(r["cost_usd"] or 0.0 for r in table), 8),
            "cost_unknown_for": unknown,
            # Batch mode: what the batch setups save against the same calls made live.
            "saving_usd": round(sum(r.get("saving_usd") or 0.0 for r in table), 8),
        },
        "budget_usd": run.budget_usd,
        "max_calls": run.max_calls,
        "method": {
            "input_tokens": f"{COUNTED} for litellm models, {ROUGH} (+4 per message) "
            "for local models",
            "output_tokens": f"max_tokens per call, else {DEFAULT_OUTPUT_TOKENS}",
            "cost": "config *_cost_per_mtok, else litellm's price map; local models are "
            "free; unknown when neither prices the model; batch: true models at the price "
            "map's batch price, else the live price less batch_discount",
        },
    }


def jury_rows(juries: Sequence[Any]) -> list[dict[str, Any]]:
    """A jury makes no call: its members' labels are combined, and they are planned (and
    paid for) once, under their own setups, whether or not they are also compared alone."""
    return [
        {
            "setup": jury.id,
            "model": None,
            "calls": 0,
            "cached": 0,
            "shared": 0,
            "to_call": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "price_source": f"jury of {', '.join(jury.setups)}: no calls of its own",
            "input_token_count": None,
            "output_token_basis": None,
            "replayed": False,
            "cached_share": None,
            "jury": {"members": list(jury.setups), "rule": jury.rule},
        }
        for jury in juries
    ]
