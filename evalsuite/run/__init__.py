"""The run stage: (model x benchmark) jobs executed through lm-eval."""

from evalsuite.run.jobs import Job, JobSettings
from evalsuite.run.runner import RunOutcome, run_experiment

__all__ = ["Job", "JobSettings", "RunOutcome", "run_experiment"]
