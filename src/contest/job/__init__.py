"""Jobs: what a user submits (``contest.job.descriptor``) and what the server makes of it."""
