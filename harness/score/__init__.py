"""Score: label records + gold sets -> every number of metrics.json, and the deploy decision. Pure
of files and Markdown: it returns dicts.
"""
