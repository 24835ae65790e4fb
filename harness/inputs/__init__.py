"""Inputs: what a run reads besides its config: gold sets, unlabelled pools, prompt templates (in a
sandbox), and PII masking of item text.
"""
