"""The demo path end to end through the real lm-eval on CPU (no mocks): 3 tiny models x 6
benchmarks over the shipped fixture mirror, reuse; reproducible bare commands and kill + resume
on the smallest run with every kind of job (`conftest.small_run`: the same 3 models, 2 benchmarks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalsuite.cli.main import main
from evalsuite.schema import JobRecord
from evalsuite.results.store import Store
from conftest import SMALL_BENCHMARKS, demo_config, small_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SUITE_TASKS = 39


def metrics_of(results_file: Path, tasks=None) -> dict:
    """The numbers of a results JSON (what must be identical between two runs); `tasks`: only those
    (a job's share of a whole-model process's file)."""
    data = json.loads(results_file.read_text())
    keep = (lambda d: {t: v for t, v in d.items() if t in tasks}) if tasks is not None else (lambda d: d)
    return {"results": keep(data["results"]), "n-samples": keep(data["n-samples"])}


def test_demo_runs_all_jobs_of_three_models_and_six_benchmarks(demo_run):
    store, exp = demo_run.store, demo_run.exp
    record = store.read_experiment(exp.name)
    assert set(record.jobs) == {"tiny-merge", "tiny-parent_a", "tiny-parent_b"}
    leaf = set()
    for model, per in record.jobs.items():
        assert set(per) == {"ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"}
        for bench, job_id in per.items():
            rec = store.finished_job(job_id)
            assert rec is not None and rec.model == model and rec.benchmark == bench
            data = json.loads(store.results_path(rec).read_text())
            leaf |= {t for t in data["n-samples"]}
            assert rec.samples_files, "samples must always be logged"
            assert (store.job_dir(job_id) / "command.sh").is_file()
    assert len(leaf) == SUITE_TASKS
    # the chat-template parent really ran with the template (and multiturn few-shot)
    b_job = store.finished_job(record.jobs["tiny-parent_b"]["bbh"])
    b_results = json.loads(store.results_path(b_job).read_text())
    assert "--apply_chat_template" in b_job.command and "--fewshot_as_multiturn" in b_job.command
    assert isinstance(b_results.get("chat_template"), str) and b_results["chat_template"].strip()
    assert b_results.get("fewshot_as_multiturn") is True


def test_recorded_bare_command_reproduces_stored_metrics(small_run, tmp_path):
    """Two jobs' `command.sh` (the stock CLI in a fresh interpreter, as a user would run it), both at
    once (one per core), give the numbers evalsuite stored (computed by a warm-started child): the
    chat-template parent's and the merge's."""
    store = small_run.store
    record = store.read_experiment(small_run.exp.name)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    runs = []
    for model, bench in [("tiny-parent_b", "gpqa"), ("tiny-merge", "ifeval")]:
        rec = store.finished_job(record.jobs[model][bench])
        assert rec.start == "warm"  # evalsuite forked it from its zygote; the script starts afresh
        out = tmp_path / f"{model}-{bench}"
        script = store.job_dir(rec.job_id) / "command.sh"
        runs.append((rec, out, subprocess.Popen(["sh", str(script), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for rec, out, proc in runs:
        output, _ = proc.communicate()
        assert proc.returncode == 0, output[-4000:]
        (again,) = list(out.rglob("results_*.json"))  # the whole process: all of the model's benchmarks
        stored = metrics_of(store.results_path(rec))
        assert stored["n-samples"] and metrics_of(again, tasks=set(stored["results"])) == stored


def test_rerun_loads_no_model(demo_run, monkeypatch, capsys):
    import evalsuite.run.local as local

    def no_model(*a, **k):
        raise AssertionError("a finished experiment must not start lm-eval")

    def no_zygote(*a, **k):
        raise AssertionError("a re-run of a finished experiment must not start a zygote ahead")

    monkeypatch.setattr(local, "execute", no_model)
    monkeypatch.setattr(local.POOL, "prewarm", no_zygote)
    before = {p.name: p.stat().st_mtime_ns for p in demo_run.store.jobs_dir.iterdir()}
    assert main(["run", "--all", "--config", str(demo_run.config), "--quiet"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in demo_run.store.jobs_dir.iterdir()}
    assert before == after
    out = capsys.readouterr().out
    assert "tiny-merge" in out and "Average" in out


def test_the_zygote_starts_ahead_only_when_lm_eval_may_run(demo_run, tmp_path):
    """The warm zygote's head start (its imports overlap the merge and checks) is skipped for the
    re-run of a finished experiment; a first run, or a record whose jobs are not all stored, gets it."""
    import shutil

    from evalsuite.run.runner import may_start_lm_eval

    exp, store = demo_run.exp, demo_run.store
    assert may_start_lm_eval(exp, store) is False
    assert may_start_lm_eval(exp.derive(name="never-run"), store) is True
    bare = Store(tmp_path / "results")  # the record without its jobs
    bare.experiment_file(exp.name).parent.mkdir(parents=True)
    shutil.copyfile(store.experiment_file(exp.name), bare.experiment_file(exp.name))
    assert may_start_lm_eval(exp, bare) is True


def test_second_experiment_sharing_a_parent_evaluates_it_once(demo_run, tmp_path, monkeypatch):
    """Another experiment with the same parent (same settings) reuses the parent's stored jobs."""
    import evalsuite.run.local as local

    other = demo_config(
        tmp_path, name="other-experiment", results=demo_run.store.root,
        **{"candidate:\n  name: tiny-merge\n": "candidate:\n  fixture: parent_a\n", "  - fixture: parent_a\n": ""},
    )
    other.write_text(other.read_text().replace(f"  recipe: {demo_run.exp.candidate.recipe}\n", ""))
    ran = []
    real = local.execute
    monkeypatch.setattr(local, "execute", lambda p, *a, **k: ran.append(p.first.model.name) or real(p, *a, **k))
    assert main(["run", "--all", "--config", str(other), "--quiet"]) == 0
    assert ran == []  # both models were already evaluated by the demo experiment
    rec = demo_run.store.read_experiment("other-experiment")
    first = demo_run.store.read_experiment(demo_run.exp.name)
    assert rec.jobs["tiny-parent_a"] == first.jobs["tiny-parent_a"]


def test_sigkill_midway_then_rerun_gives_identical_results(small_run, tmp_path):
    """Kill `evalsuite run --all` after some jobs finished (the first model's lm-eval process: its
    jobs); the re-run recomputes only the rest, and every number equals the uninterrupted run's
    (`small_run`: same job ids = same settings). One parent's jobs are the small run's, copied in (a
    results folder that already holds finished jobs is a normal state): the killed run computes the
    other two models, one lm-eval process at a time (so that one finishes while the other runs)."""
    import shutil

    store = small_run.store
    per_model = len(SMALL_BENCHMARKS)
    results = tmp_path / "results"
    config = small_config(tmp_path, name="killed", **{"  workers: 2 ": "  workers: 1 "})
    jobs = results / "jobs"
    copied = set(store.read_experiment(small_run.exp.name).jobs["tiny-parent_a"].values())
    for job_id in copied:
        shutil.copytree(store.job_dir(job_id), jobs / job_id)
    cmd = [sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(config), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [p for p in jobs.glob("*--*") if not p.name.startswith(".") and p.name not in copied]
        if len(done) >= per_model:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {p.name: JobRecord.model_validate_json((p / "job.json").read_text()).finished for p in jobs.glob("*--*") if not p.name.startswith(".")}
    assert per_model <= len(set(finished_before) - copied) < 2 * per_model and copied <= set(finished_before)
    time.sleep(1)  # the orphaned lm_eval child (if any) has been killed with its parent
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    rerun = Store(results)
    rec = rerun.read_experiment("killed")
    all_jobs = [j for per in rec.jobs.values() for j in per.values()]
    assert len(all_jobs) == 3 * per_model and copied <= set(all_jobs)
    for job_id in all_jobs:
        r = rerun.finished_job(job_id)
        if job_id in finished_before:
            assert r.finished == finished_before[job_id], "a job finished before the kill was recomputed"
        reference = store.finished_job(job_id)
        if reference is None:  # say which part of the identity differs
            twin = next(p for p in store.jobs_dir.iterdir() if p.name.rsplit("--", 1)[0] == job_id.rsplit("--", 1)[0])
            a, b = r.identity, json.loads((twin / "job.json").read_text())["identity"]
            pytest.fail(f"job id differs from the small run's: { {k: (a.get(k), b.get(k)) for k in a if a.get(k) != b.get(k)} }")
        assert metrics_of(rerun.results_path(r)) == metrics_of(store.results_path(reference))
    assert not list(jobs.glob(".tmp-*")), "nothing half-written may remain"


def test_failed_job_is_reported_with_its_log_and_others_continue(demo_run, tmp_path, capsys):
    """A model whose weights are damaged makes its lm_eval crash: the run goes on, exit code 1."""
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(demo_run.store.root.parent / ".cache" / "evalsuite" / "fixtures" / "parent_a", broken)
    config = json.loads((broken / "config.json").read_text())  # damage evalsuite's checks cannot see:
    (broken / "config.json").write_text(json.dumps({**config, "model_type": "nosuchmodel"}))  # lm_eval crashes
    cfg = demo_config(
        tmp_path, name="with-failure", results=demo_run.store.root,
        **{"  - fixture: parent_b\n": f"  - path: {broken}\n    name: broken\n"},
    )  # all six benchmarks: the other models' jobs are the demo's (one lm-eval process per model)
    code = main(["run", "--all", "--config", str(cfg), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    failed = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert failed and "broken / mmlu_pro+bbh+gpqa+math_hard+ifeval+musr" in failed[0]
    log = Path(failed[0].rsplit("log: ", 1)[1].strip())
    assert log.is_file() and "nosuchmodel" in log.read_text()
    rec = demo_run.store.read_experiment("with-failure")
    assert set(rec.jobs) == {"tiny-merge", "tiny-parent_a", "broken"} and rec.jobs["broken"] == {}
    assert rec.jobs["tiny-parent_a"]["gpqa"] == demo_run.store.read_experiment(demo_run.exp.name).jobs["tiny-parent_a"]["gpqa"]
    assert not list(demo_run.store.jobs_dir.glob(".tmp-*"))


def test_score_command_on_demo_results_gives_six_numbers_per_model(demo_run, capsys):
    record = demo_run.store.read_experiment(demo_run.exp.name)
    folders = [str(demo_run.store.job_dir(j)) for per in record.jobs.values() for j in per.values()]
    assert main(["score", *folders, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    for row in rows:
        for key in ["IFEval", "BBH", "MATH Lvl 5", "MATH Lvl 5 (original parser)", "GPQA", "MuSR", "MMLU-PRO", "Average"]:
            assert 0.0 <= row[key] <= 100.0
