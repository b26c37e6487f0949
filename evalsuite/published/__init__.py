"""The published-details work: importing the leaderboard's details (`importer.import_details`: the
source's files `source`, re-scored by the installed lm-eval `rescore`), checking a local run
against them (`verify`), the model card (`card`) and the leaderboard's contents table
(`contents`)."""
