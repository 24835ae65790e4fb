"""A run's call specs (rendered messages, ~0.5 kB a call) do not live through its scoring,
even when the caller holds the plan (the CLI does); a plan read after its run says so."""

from __future__ import annotations

import gc

import pytest

from harness.core.records import CallSpec
from harness.run import pipeline
from harness.run.pipeline import prepare, run_experiment

pytestmark = pytest.mark.http


def test_no_call_spec_is_alive_while_the_run_is_scored(srv, experiment, monkeypatch):
    exp = experiment(srv)
    plan = prepare(exp.config)
    assert len(plan.specs) == 12
    score = pipeline.score_experiment
    alive: list[int] = []

    def counting(*args, **kwargs):
        gc.collect()
        alive.append(sum(isinstance(o, CallSpec) for o in gc.get_objects()))
        return score(*args, **kwargs)

    monkeypatch.setattr(pipeline, "score_experiment", counting)
    result = run_experiment(exp.config, plan=plan)
    assert result.metrics is not None and alive == [0]
    with pytest.raises(RuntimeError, match="prepare it again"):
        len(plan.specs)
