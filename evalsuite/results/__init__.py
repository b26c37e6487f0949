"""Stored results: the one place that reads what lm-eval and evalsuite wrote.

``files`` reads lm-eval's results files (``results_*.json`` and the
legacy layouts) into :class:`~evalsuite.results.files.ModelResults`.
"""
