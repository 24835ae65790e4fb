"""prelabel: which LLM pre-labeling setup to deploy, with evidence."""

__version__ = "0.1.0"
