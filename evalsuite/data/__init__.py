"""The data stage: where lm-eval reads the six leaderboard datasets from.

- `tasks`: lm-eval's leaderboard task index, what each leaf task reads, the checks of a dataset
  repo folder, the data identity of a mirror;
- `overrides`: the generated lm-eval task overrides (`--include_path`);
- `hub_data`: hub datasets at their commit (hub-cache snapshots, `hub:REPO@COMMIT` identities);
- `repo_files`: a dataset repo folder's configs, data files, columns and rows as `datasets` reads them;
- `nltk_data`: NLTK's punkt_tab for IFEval, offline;
- `gpqa_order`: GPQA's choice order as the leaderboard's run produced it (`harness: leaderboard`).
"""
