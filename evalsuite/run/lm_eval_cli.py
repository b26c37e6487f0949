"""`python -m evalsuite.run.lm_eval_cli ARGS...` is `lm_eval ARGS...` with evalsuite's lm-eval model
`hf-leaderboard` registered (evalsuite/run/leaderboard_lm.py): lm-eval's own CLI, unchanged
otherwise. The `command.sh` of a job run with `harness: leaderboard` starts lm-eval this way.
"""

from __future__ import annotations

import sys


def prepare() -> None:
    import evalsuite.run.leaderboard_lm  # noqa: F401  (registers --model hf-leaderboard)


def evaluate() -> int:
    """lm-eval's own command line on `sys.argv` (shown as `lm_eval`): its exit status."""
    from lm_eval.__main__ import cli_evaluate

    sys.argv[0] = "lm_eval"
    return cli_evaluate() or 0


def main() -> int:
    prepare()
    return evaluate()


if __name__ == "__main__":
    sys.exit(main())
