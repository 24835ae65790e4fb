"""Run: from a loaded config to label records on disk: plan, cache, rate limits, the concurrent
runner and its one wiring (`calls.py`, used by `run`, `label` and the canary), the manifest,
the run store, and the pipeline that ties them.
"""
