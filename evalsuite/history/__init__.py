"""The run history and the regression gate: the SQLite history of finished runs and its baselines
(`runs`), and the gate of a recorded run against a baseline (`regress`)."""
