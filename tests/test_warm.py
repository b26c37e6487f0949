"""Warm starts (evalsuite/run/warm.py): what a zygote may import, when it refuses, and that the
executor then starts a fresh process and says so. That a warm child computes exactly what a fresh
stock `lm_eval` computes is shown end to end: every job of the tests' shared runs is run warm, and
tests/test_run_e2e.py::test_recorded_bare_command_reproduces_stored_metrics re-runs two of them with
their `command.sh` (a fresh interpreter, the stock CLI) and gets the stored numbers."""

from __future__ import annotations

import os
import sys

import pytest

from evalsuite.run.warm import LATE_BOUND, PRELOAD, modeling_module
from evalsuite.run.warm_pool import WarmPool, Zygote

from conftest import lm_eval_program


def test_the_zygote_imports_lm_eval_s_model_stack_but_nothing_that_reads_a_late_bound_variable():
    zygote = Zygote({**os.environ}, [*PRELOAD, "transformers.models.gemma2.modeling_gemma2"])
    try:
        assert zygote.refused is None and zygote.alive
    finally:
        zygote.close()
    assert not zygote.alive


def test_a_zygote_that_imported_datasets_refuses_and_the_pool_remembers(tmp_path):
    pool = WarmPool()
    try:
        env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache")}
        child, why = pool.start(["--help"], env, tmp_path / "log", tmp_path, preload=["datasets"])
        assert child is None and why == "the warm start was refused (imported datasets)"
        assert list(pool.refused.values()) == ["imported datasets"]
        # the same environment outside LATE_BOUND is the same zygote (refused at once, no new start)
        child, why = pool.start(["--help"], {**env, "HF_DATASETS_CACHE": "/elsewhere", "NLTK_DATA": "/x"}, tmp_path / "log", tmp_path, preload=["datasets"])
        assert child is None and len(pool.refused) == 1
    finally:
        pool.close()


def test_the_pool_key_ignores_only_late_bound_variables():
    base = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    key = WarmPool.key(base)
    assert all(WarmPool.key({**base, name: "anything"}) == key for name in LATE_BOUND)
    assert WarmPool.key({**base, "OMP_NUM_THREADS": "2"}) != key  # read when torch loads: another zygote
    assert WarmPool.key({**base, "HF_HOME": "/h"}) != key


def test_a_warm_child_runs_lm_eval_s_cli_with_its_own_arguments_environment_and_log(tmp_path):
    """`lm_eval run --help` through a zygote: lm-eval's own CLI prints its usage into the child's
    log and exits 0; a late-bound variable the zygote was started without is no obstacle."""
    pool = WarmPool()
    log = tmp_path / "lm_eval.log"
    try:
        env = {**os.environ, "NLTK_DATA": str(tmp_path / "nltk")}
        child, why = pool.start(["run", "--help"], env, log, tmp_path, preload=[])
        assert why == "" and child is not None and child.pid != os.getpid()
        assert child.wait(timeout=120) == 0
    finally:
        pool.close()
    text = log.read_text()
    assert "usage: lm-eval run" in text and "--model_args" in text


def test_a_failed_warm_child_reports_its_exit_code(tmp_path):
    pool = WarmPool()
    log = tmp_path / "lm_eval.log"
    try:
        child, _ = pool.start(["run", "--no-such-option"], {**os.environ}, log, tmp_path, preload=[])
        assert child.wait(timeout=120) == 2  # argparse's usage error, as the stock CLI exits
    finally:
        pool.close()
    assert "unrecognized arguments: --no-such-option" in log.read_text()


def test_modeling_module_of_a_config_model_type():
    assert modeling_module("gemma2") == "transformers.models.gemma2.modeling_gemma2"
    assert modeling_module("no-such-model") is None


@pytest.mark.parametrize("argv, program", [
    ([sys.executable, "-m", "evalsuite.run.lm_eval_main", "run"], "evalsuite.run.lm_eval_main"),
    ([sys.executable, "-m", "evalsuite.run.lm_eval_cli", "run"], "evalsuite.run.lm_eval_cli"),
    ([sys.executable, "/venv/bin/lm_eval", "run"], "lm_eval"),
    ([sys.executable, "-m", "lm_eval", "run"], "lm_eval"),
    ([sys.executable, "-m", "evalsuite.cli.main", "run"], None),
    ([sys.executable, "-m", "evalsuite.run.warm", "torch"], None),
    ([sys.executable, "-c", "print(1)"], None),
])
def test_the_suite_s_count_of_lm_eval_processes_tells_programs_apart(argv, program):
    assert lm_eval_program(argv) == program
