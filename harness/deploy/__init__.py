"""Deploy: the chosen pre-labeler at work: labelling new items, routing them to review, auditing
the reviews, pool estimates, and Label Studio.
"""
