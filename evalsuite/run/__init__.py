"""The run stage: (model x benchmark) jobs executed through lm-eval.

Nothing is imported eagerly: `python -m evalsuite.run.lm_eval_main` imports this package first,
and a package that imported that module itself would make runpy warn ("found in sys.modules
after import of package ... unpredictable behaviour") at the top of every job's log.
"""

from typing import Any

__all__ = ["Job", "JobSettings", "RunOutcome", "run_experiment"]


def __getattr__(name: str) -> Any:
    if name in ("Job", "JobSettings"):
        from evalsuite.run import jobs

        return getattr(jobs, name)
    if name == "RunOutcome":
        from evalsuite.run import events

        return events.RunOutcome
    if name == "run_experiment":
        from evalsuite.run import runner

        return runner.run_experiment
    raise AttributeError(f"module 'evalsuite.run' has no attribute {name!r}")
