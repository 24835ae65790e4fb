"""Gate: later runs against a baseline: baselines, paired regressions, the CI gate, and the drift
canary.
"""
