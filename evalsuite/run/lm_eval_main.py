"""`python -m evalsuite.run.lm_eval_main ARGS...` runs `lm_eval ARGS...` with a smaller task index.

At every start lm-eval's TaskManager walks its whole task tree (~14,700 tasks; about 7 s of CPU on
a laptop core) to find the few it was asked for. The leaderboard tasks live in one folder and
reference nothing outside it, so evalsuite indexes only that folder, then any `--include_path`
(the dataset-mirror overrides), in the same order lm-eval uses (defaults first, includes override
them). The rest of the program is lm-eval's own CLI, unchanged: same arguments, same task files,
same numbers. The job's `command.sh` keeps the stock `lm_eval` command, and a test checks that it
reproduces what this launcher stored.

Like `evalsuite.run.lm_eval_cli` it registers evalsuite's `hf-leaderboard` model. With
`EVALSUITE_FULL_TASK_INDEX=1` (`executor.task_index: full`) it indexes lm-eval's whole task tree.
"""

from __future__ import annotations

import logging
import os
import sys

from evalsuite.data.tasks import OVERRIDE_MARKER
from evalsuite.faults import install_lm_eval_points
from evalsuite.lm_eval_api import leaderboard_dir

FULL_INDEX_ENV = "EVALSUITE_FULL_TASK_INDEX"  # "1": index lm-eval's whole task tree (task_index: full)


def install_leaderboard_index() -> None:
    """Make every TaskManager lm-eval creates index the leaderboard folder (+ include paths) only."""
    import lm_eval.tasks as tasks_module  # here: the parent imports this module too (run/local.py), lm-eval only its children

    base = tasks_module.TaskManager
    if getattr(base, "_evalsuite_leaderboard_only", False):
        return
    root = leaderboard_dir()

    class LeaderboardTaskManager(base):
        _evalsuite_leaderboard_only = True

        def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
            extra = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
            paths = ([root] if include_defaults else []) + extra
            super().__init__(verbosity=verbosity, include_path=paths or None, include_defaults=False, metadata=metadata)

    tasks_module.TaskManager = LeaderboardTaskManager
    quiet_intended_overrides()


class _IntendedOverrides:
    """Drops lm-eval's "Task X from P overrides existing task from Q" warning where P is a task
    file evalsuite wrote (it starts with evalsuite's override marker: the dataset mirror or pinned
    hub data; overriding the leaderboard's task is its point). Any other override is reported."""

    def filter(self, record) -> bool:
        if not str(record.msg).startswith("Task '%s' from %s overrides existing task"):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) >= 2 and _written_by_evalsuite(str(args[1])))


def _written_by_evalsuite(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(len(OVERRIDE_MARKER)) == OVERRIDE_MARKER
    except OSError:
        return False


def quiet_intended_overrides() -> None:
    logger = logging.getLogger("lm_eval.tasks._index")
    if not any(isinstance(f, _IntendedOverrides) for f in logger.filters):
        logger.addFilter(_IntendedOverrides())


def main() -> int:
    from evalsuite.run.lm_eval_cli import evaluate, prepare  # here: lm-eval, torch (the child only; run/local.py imports this module)

    prepare()
    if os.environ.get(FULL_INDEX_ENV) != "1":
        install_leaderboard_index()
    install_lm_eval_points()
    return evaluate()


if __name__ == "__main__":
    sys.exit(main())
