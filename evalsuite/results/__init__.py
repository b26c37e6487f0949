"""Stored results: the one place that reads what lm-eval and evalsuite wrote.

``store``: the results folder, job records (``job.json``) and job ids, experiment records, the
one-writer lock; ``files``: lm-eval's results files (``results_*.json`` and the legacy layouts)
read into :class:`~evalsuite.results.files.ModelResults`; ``samples``: lm-eval's samples files
read into per-document values (``TaskDocs``) and their full records on demand.
"""
