"""Crash points for the fault tests (tests/test_faults.py).

`EVALSUITE_KILL_AT=<point>` in the environment of `evalsuite run` makes the process that reaches
<point> kill the run with SIGKILL — no `finally`, no clean-up — as a power cut or the OOM killer
would. Points inside an lm_eval child kill its parent (the `evalsuite run` process) first; the
other children die with their parent (PR_SET_PDEATHSIG). Without the variable `checkpoint` is one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "EVALSUITE_KILL_AT"

# point -> where it is (the order a run passes them)
POINTS: dict[str, str] = {
    "merge.shards": "mergekit has written the merged shards into the temp folder; no plan, no marker",
    "lm_eval.model_loaded": "an lm_eval child has loaded the model, before any request",
    "lm_eval.loglikelihood": "an lm_eval child is between loglikelihood batches",
    "lm_eval.generate": "an lm_eval child is generating",
    "lm_eval.save": "an lm_eval child has written its results file and one samples file",
    "job.output": "lm_eval exited cleanly; its output is in the job's temp folder, no record yet",
    "job.commit": "job.json is written in the temp folder, before the rename into the store",
    "experiment.write": "the experiment record is written to a temp file, before the rename",
    "history.scores": "every history row is inserted, before COMMIT",
    "sweep.candidate": "a sweep candidate's round is stored and recorded, before the next candidate",
    "report.write": "the report's HTML and Markdown are written, before its JSON sidecar",
}


def checkpoint(point: str) -> None:
    if os.environ.get(ENV) != point:
        return
    assert point in POINTS, point
    if point.startswith("lm_eval."):  # the `evalsuite run` process (a warm child's parent is the zygote)
        os.kill(int(os.environ.get("EVALSUITE_RUN_PID") or os.getppid()), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def install_lm_eval_points() -> None:
    """In an lm_eval child (run/lm_eval_main.py): wrap the lm-eval methods the points sit in."""
    point = os.environ.get(ENV, "")
    if not point.startswith("lm_eval."):
        return
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.models.huggingface import HFLM

    def after(cls, name: str, at_call: int) -> None:
        original = getattr(cls, name)
        calls = [0]

        def wrapped(*args, **kwargs):
            out = original(*args, **kwargs)
            calls[0] += 1
            if calls[0] == at_call:
                checkpoint(point)
            return out

        setattr(cls, name, wrapped)

    where = {
        "lm_eval.model_loaded": (HFLM, "_create_model", 1),
        "lm_eval.loglikelihood": (HFLM, "_model_call", 1),
        "lm_eval.generate": (HFLM, "_model_generate", 1),
        "lm_eval.save": (EvaluationTracker, "save_results_samples", 1),
    }
    after(*where[point])
