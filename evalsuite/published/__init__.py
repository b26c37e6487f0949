"""Importing the leaderboard's published details (`evalsuite.details.import_details`): the
source's files (`source`), re-scored by the installed lm-eval (`rescore`)."""
