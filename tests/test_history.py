"""The run history (results/history.sqlite) on real demo runs: what a run records, the CLI, the
trend plot, and crash safety (SIGKILL in the middle of the recording transaction)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.history.db import db_path
from evalsuite.history.runs import get_run, list_baselines, list_runs, record_run
from evalsuite.report.plots import trend_figure, trend_png
from evalsuite.results.store import Store

from conftest import NIGHTLY_BENCHMARKS

pytestmark = pytest.mark.slow

BENCHMARKS = NIGHTLY_BENCHMARKS


def fresh_root(shared: Path, dest: Path) -> Path:
    """A results folder holding copies of the shared finished jobs, with its own history."""
    dest.mkdir(parents=True)
    shutil.copytree(shared / "results" / "jobs", dest / "jobs", ignore=shutil.ignore_patterns(".tmp-*", ".stale-*"))
    return dest


@pytest.fixture(scope="module")
def demo(nightly_demo):
    """The session's nightly run (tests/conftest.py): (its folder, its experiment record)."""
    return nightly_demo


def test_record_run_stores_scores_jobs_and_task_hashes(demo, tmp_path):
    from evalsuite.score import score_paths

    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    run_id = record_run(root, record)
    run = get_run(root, run_id)
    store = Store(root)
    assert run.experiment == "nightly-demo" and run.status == "ok" and run.candidate == "tiny-candidate"
    assert {(j.model, j.benchmark) for j in run.jobs} == {("tiny-candidate", b) for b in BENCHMARKS}
    for job in run.jobs:
        rec = store.finished_job(job.job_id)
        assert rec is not None and job.identity == rec.identity
        data = json.loads((root / job.results_file).read_text())
        # lm-eval's own task hashes (one per leaf task), version and the job's data identity
        assert job.task_hashes == data["task_hashes"] and set(job.task_hashes) == set(data["n-samples"])
        assert job.lm_eval_version == data["lm_eval_version"] == run.lm_eval
        assert rec.identity["data"] in run.data.split(",")  # one data identity per benchmark
        assert job.samples_files and all((root / f).is_file() for f in job.samples_files)
        # the scores are the scorer's numbers for that results file, benchmark and subtasks
        (scored,) = score_paths([root / job.results_file])
        for s in scored.scores.values():
            assert run.score("tiny-candidate", s.id).value == pytest.approx(s.value, abs=1e-12)
            for sub, v in s.subtasks.items():
                assert run.score("tiny-candidate", s.id, sub).value == pytest.approx(v, abs=1e-12)
    bbh_subtasks = [s for s in run.scores if s.benchmark == "bbh" and s.subtask]
    assert len(bbh_subtasks) == 24
    # GPQA with 2 documents per subtask: lm-eval's stderr is a number -> normalized per subtask
    gpqa = [s for s in run.scores if s.benchmark == "gpqa" and s.subtask]
    data = json.loads((root / run.job("tiny-candidate", "gpqa").results_file).read_text())
    for s in gpqa:
        se = data["results"][s.subtask].get("acc_norm_stderr,none")
        expected = 100 * se / 0.75 if isinstance(se, (int, float)) else None
        assert s.stderr == (pytest.approx(expected) if expected is not None else None)


def test_list_runs_filters_and_orders(demo, tmp_path):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    first = record_run(root, record)
    renamed = record.model_copy(deep=True)
    renamed.experiment = "other"
    second = record_run(root, renamed)
    assert [r.run_id for r in list_runs(root)] == [first, second]
    assert [r.run_id for r in list_runs(root, experiment="other")] == [second]
    assert [r.run_id for r in list_runs(root, model="tiny-candidate", limit=1)] == [second]
    assert list_runs(root, model="no-such-model") == []
    assert get_run(root, first[:-3]).run_id == first  # unique prefix


def test_history_cli_table_and_json(demo, tmp_path, capsys):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    run_id = record_run(root, record)
    assert main(["history", "--results", str(root), "--format", "json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["run_id"] == run_id and entry["experiment"] == "nightly-demo"
    (model,) = entry["models"]
    assert model["name"] == "tiny-candidate" and set(model["scores"]) == set(BENCHMARKS)
    assert model["jobs"] == record.jobs["tiny-candidate"]
    assert entry["machines"] == ["CPU"]  # job.json's machine: no GPU here
    assert main(["history", "--results", str(root), "--model", "tiny-candidate"]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "BBH" in out and "GPQA" in out
    assert main(["history", "--results", str(root), "--model", "nobody", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_history_cli_without_history_is_a_one_line_error(tmp_path, capsys):
    assert main(["history", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no run history" in err and "\n" not in err


def test_baseline_set_and_list(demo, tmp_path, capsys):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    first = record_run(root, record)
    second = record_run(root, record)
    assert main(["baseline", "set", "nightly", "--results", str(root)]) == 0  # default: the latest run
    assert main(["baseline", "set", "release", "--run", first, "--results", str(root)]) == 0
    assert {b.name: b.run_id for b in list_baselines(root)} == {"nightly": second, "release": first}
    capsys.readouterr()
    assert main(["baseline", "list", "--results", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"nightly\t{second}" in out and f"release\t{first}" in out
    assert main(["baseline", "set", "release", "--if-missing", "--results", str(root)]) == 0
    assert {b.name: b.run_id for b in list_baselines(root)}["release"] == first  # kept
    # a run with failed jobs is recorded as partial; the default baseline skips it
    partial = record_run(root, record, failed=["tiny-candidate / gpqa: lm_eval exited with 1; log: x"])
    assert get_run(root, partial).status == "partial"
    assert main(["baseline", "set", "latest", "--results", str(root)]) == 0
    assert {b.name: b.run_id for b in list_baselines(root)}["latest"] == second
    assert main(["baseline", "set", "x", "--run", "nope", "--results", str(root)]) == 2
    assert main(["baseline", "set", "bad name", "--results", str(root)]) == 2


def test_trend_figure_has_a_panel_per_benchmark(demo, tmp_path):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    for _ in range(3):
        record_run(root, record)
    fig = trend_figure(root, "nightly-demo")
    assert [ax.get_title() for ax in fig.axes] == ["BBH", "GPQA"]
    for ax in fig.axes:
        (series,) = ax.containers  # one model: one errorbar series over the three runs
        assert len(series.lines[0].get_xdata()) == 3
    assert trend_png(root, "nightly-demo").startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(UserError):
        trend_figure(root, "no-such-experiment")


def test_a_damaged_job_records_nothing(demo, tmp_path):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    record_run(root, record)
    job = Store(root).finished_job(record.jobs["tiny-candidate"]["bbh"])
    (Store(root).results_path(job)).unlink()
    with pytest.raises(UserError, match="missing or damaged"):
        record_run(root, record)
    assert len(list_runs(root)) == 1


CHILD = """
import sys, time
from pathlib import Path
from evalsuite.history.runs import record_run
from evalsuite.schema import ExperimentRecord

root, record_file, kill_at, marker = sys.argv[1:5]

def hook(stage):
    if stage == kill_at:
        Path(marker).write_text(stage)
        time.sleep(600)  # the parent SIGKILLs us here, inside the transaction

record_run(Path(root), ExperimentRecord.model_validate_json(Path(record_file).read_text()), on_stage=hook)
"""


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "run_models", "run_jobs", "scores")}
        # no row of a run that is not in `runs` (a half-recorded run)
        for t in ("run_models", "run_jobs", "scores"):
            assert conn.execute(f"SELECT count(*) FROM {t} WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchone()[0] == 0
    return out


@pytest.mark.parametrize("kill_at", ["run", "jobs", "scores"])
def test_sigkill_during_recording_leaves_whole_run_or_none(demo, tmp_path, kill_at):
    shared, record = demo
    root = fresh_root(shared, tmp_path / "results")
    complete = record_run(root, record)
    before = _counts(db_path(root))
    record_file = tmp_path / "record.json"
    record_file.write_text(record.model_dump_json())
    marker = tmp_path / "in-transaction"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(record_file), kill_at, str(marker)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()[0].decode()[-2000:] if proc.poll() is not None else "child never reached the hook"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the database opens cleanly and still holds exactly the complete run
    assert _counts(db_path(root)) == before
    assert [r.run_id for r in list_runs(root)] == [complete]
    # and it is not left locked: the next recording goes through whole
    again = record_run(root, record)
    after = _counts(db_path(root))
    assert after["runs"] == before["runs"] + 1
    assert {k: after[k] - before[k] for k in after} == {k: before[k] for k in before}  # same size as the first run
    assert len(get_run(root, again).scores) == len(get_run(root, complete).scores)
