"""SIGKILL at ten points of `evalsuite run --all` (real processes, real files, real lm-eval).

Each case kills a run of the demo's merged candidate on GPQA (loglikelihood) and IFEval
(generation), one document per task (`conftest.small_config`), at one crash point of
evalsuite/faults.py, checks that nothing half-written is visible (every stored job verifies,
records parse, the history has no partial run, a merge folder is complete or absent), then re-runs
without the fault: the re-run must finish and every number, sample and merged shard must equal an
uninterrupted run's (`small_run`, the session's shared run of the same settings: same job ids).

The job that is not under test is copied from the uninterrupted run's store (a results folder
that already holds a finished job is a normal state: another experiment may have run it). With
`harness: leaderboard` (the default) both jobs share one lm-eval process: the copied job is
recomputed with the other (they share batches) but must not be stored again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SMALL_BENCHMARKS, small_config
from evalsuite.faults import ENV, POINTS
from evalsuite.schema import ExperimentRecord
from evalsuite.results.store import Store

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BENCHES = SMALL_BENCHMARKS

# point -> the benchmark the killed run computes (the other one is copied in); None: both copied
RUNS = {
    "merge.shards": None,
    "lm_eval.model_loaded": "gpqa",
    "lm_eval.loglikelihood": "gpqa",
    "lm_eval.generate": "ifeval",
    "lm_eval.save": "gpqa",
    "job.output": "gpqa",
    "job.commit": "gpqa",
    "experiment.write": None,
    "history.scores": None,
    "report.write": None,
}


def test_every_crash_point_is_exercised():
    # sweep.candidate: tests/test_sweep.py kills a sweep there and resumes it
    assert set(RUNS) | {"sweep.candidate"} == set(POINTS) and len(POINTS) == 11


def metrics_and_samples(store: Store, job_id: str) -> tuple:
    rec = store.finished_job(job_id)
    assert rec is not None, job_id
    data = json.loads(store.results_path(rec).read_text())
    samples = []
    for rel in rec.samples_files:
        rows = [json.loads(line) for line in (store.job_dir(job_id) / rel).read_text().splitlines()]
        samples.append([(r["doc_id"], r["resps"], r["filtered_resps"]) for r in rows])
    return data["results"], data["n-samples"], samples


def history_runs(root: Path) -> int:
    db = root / "history.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for t in ("run_models", "run_jobs", "scores"):  # no row of a half-recorded run
            assert conn.execute(f"SELECT count(*) FROM {t} WHERE run_id NOT IN (SELECT run_id FROM runs)").fetchone()[0] == 0
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


def leftovers(*folders: Path) -> list[str]:
    """Temp files and folders of dead processes (hidden names evalsuite's writers use)."""
    out = []
    for folder in folders:
        if folder.exists():
            out += [str(p) for p in folder.rglob(".*") if any(m in p.name for m in (".tmp", ".old-"))]
    return out


def assert_nothing_half_written(results: Path, reports: Path, name: str) -> None:
    store = Store(results)
    for job in store.jobs_dir.iterdir() if store.jobs_dir.exists() else []:
        if not job.name.startswith("."):
            assert store.finished_job(job.name) is not None, f"a visible job folder is incomplete: {job}"
    if store.experiment_file(name).exists():
        ExperimentRecord.model_validate_json(store.experiment_file(name).read_text())
    merged = results / "merged" / "tiny-merge"
    if merged.exists():
        assert (merged / "evalsuite_merge.json").is_file(), "a visible merge folder is incomplete"
    for side in reports.glob("*.json") if reports.exists() else []:
        listed = json.loads(side.read_text())
        assert side.with_suffix(".html").is_file() and side.with_suffix(".md").is_file(), listed
    history_runs(results)


@pytest.fixture(scope="module")
def reference(small_run):
    """The uninterrupted run of the fault config's settings (the session's `small_run`): the run,
    its store and the candidate's job ids."""
    record = small_run.store.read_experiment(small_run.exp.name)
    return small_run, small_run.store, {b: record.jobs["tiny-merge"][b] for b in BENCHES}


def fault_config(tmp_path: Path, small_run) -> Path:
    """`small_run`'s settings for its candidate alone (experiment "faults"); the recipe's parents
    mapped to the small run's fixture models."""
    from evalsuite.fixtures.tiny import build_demo_models
    from evalsuite.models.load import fixtures_root

    parents = build_demo_models(fixtures_root(small_run.exp))
    local = "".join(f"  evalsuite-fixtures/{n}: {parents[n]}\n" for n in ("parent_a", "parent_b"))
    return small_config(
        tmp_path, name="faults",
        **{"parents:\n  - fixture: parent_a\n  - fixture: parent_b\n    chat_template: true": f"local_models:\n{local}parents: []\n#"},
    )


def kill_and_rerun(point: str, reference, tmp_path: Path) -> None:
    """One crash point: kill a run there, check nothing half-written is visible, re-run without the
    fault, check every number, sample and shard equals the uninterrupted run's."""
    small_run, ref_store, ref_jobs = reference
    config = fault_config(tmp_path, small_run)
    results, reports = tmp_path / "results", tmp_path / "reports"
    for bench, job_id in ref_jobs.items():
        if bench != RUNS[point]:
            shutil.copytree(ref_store.job_dir(job_id), results / "jobs" / job_id)
    before = {j: (results / "jobs" / j / "job.json").stat().st_mtime_ns for j in ref_jobs.values() if (results / "jobs" / j).exists()}

    cmd = [sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(config), "--quiet"]
    killed = subprocess.run(cmd, env={**os.environ, ENV: point}, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert killed.returncode == -9, f"not killed at {point}: rc={killed.returncode}\n{killed.stderr[-3000:]}"
    assert_nothing_half_written(results, reports, "faults")
    runs_before = history_runs(results)

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_nothing_half_written(results, reports, "faults")
    assert not leftovers(results, reports), leftovers(results, reports)

    store = Store(results)
    rec = store.read_experiment("faults")
    assert rec.jobs == {"tiny-merge": ref_jobs}, "different job ids: some setting or the merge changed"
    for bench, job_id in ref_jobs.items():
        assert metrics_and_samples(store, job_id) == metrics_and_samples(ref_store, job_id), bench
        if job_id in before:  # a job finished before the kill is reused, not recomputed
            assert (results / "jobs" / job_id / "job.json").stat().st_mtime_ns == before[job_id]
    ours, theirs = results / "merged" / "tiny-merge", ref_store.root / "merged" / "tiny-merge"
    shards = sorted(p.name for p in theirs.glob("*.safetensors"))
    assert shards and sorted(p.name for p in ours.glob("*.safetensors")) == shards
    for shard in shards:
        assert (ours / shard).read_bytes() == (theirs / shard).read_bytes(), shard
    assert history_runs(results) == runs_before + 1
    assert len(list(reports.glob("*.json"))) >= 1


@pytest.fixture(scope="module")
def crash_cases(reference, request, tmp_path_factory) -> dict:
    """`kill_and_rerun` for every crash point this session selected, two at a time (each case is an
    `evalsuite run` process and its lm-eval child in folders of its own; the machine has two
    cores): point -> None, or the exception the case raised (its test raises it again)."""
    from concurrent.futures import ThreadPoolExecutor

    selected = [item.callspec.params["point"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "point" in item.callspec.params]

    def case(point: str):
        try:
            kill_and_rerun(point, reference, tmp_path_factory.mktemp(f"fault-{point}"))
        except BaseException as exc:  # noqa: BLE001  (reported by the point's own test)
            return exc
        return None

    points = [p for p in RUNS if p in selected]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(points, pool.map(case, points)))


@pytest.mark.parametrize("point", list(RUNS))
def test_sigkill_then_rerun_gives_identical_results(point, crash_cases):
    error = crash_cases[point]
    if error is not None:
        raise error


def test_jobs_whose_model_path_differs_score_as_one_model(small_run, tmp_path):
    """A job reused from another results folder (or from before the folder was moved) names the
    model by its old path; the run's scores and report still treat the jobs as one model."""
    from evalsuite.results.files import load_results, load_results_as
    from evalsuite.score import score_model, score_paths

    record = small_run.store.read_experiment(small_run.exp.name)
    files = []
    for bench in BENCHES:
        rec = small_run.store.finished_job(record.jobs["tiny-merge"][bench])
        dest = tmp_path / bench / "results.json"
        dest.parent.mkdir()
        shutil.copyfile(small_run.store.results_path(rec), dest)
        files.append(dest)
    expected = score_paths(files)
    assert len(expected) == 1
    moved = json.loads(files[1].read_text())
    moved["model_name"] = "/old/place/results/merged/tiny-merge"
    files[1].write_text(json.dumps(moved))
    assert len(load_results(files)) == 2  # what the scorer sees by lm-eval's own model names
    ours = score_model(load_results_as(files, "tiny-merge"), None)
    assert ours.model == "tiny-merge"
    assert ours.scores == expected[0].scores and set(ours.scores) == {"GPQA", "IFEval"}


def test_a_corrupt_request_cache_is_dropped_and_the_job_recomputed(reference, tmp_path):
    """lm-eval's request cache of an unfinished job is torn (a crash or disk error mid-write):
    evalsuite drops it instead of letting lm-eval trust or trip over it."""
    small_run, ref_store, ref_jobs = reference
    config = fault_config(tmp_path, small_run)
    results = tmp_path / "results"
    shutil.copytree(ref_store.job_dir(ref_jobs["ifeval"]), results / "jobs" / ref_jobs["ifeval"])
    process = ref_store.finished_job(ref_jobs["gpqa"]).process  # the request cache is the lm-eval process's
    cache = results / "cache" / (process or ref_jobs["gpqa"])
    cache.mkdir(parents=True)
    (cache / "requests_rank0.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    cmd = [sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(config), "--quiet", "--no-report"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(results)
    assert metrics_and_samples(store, ref_jobs["gpqa"]) == metrics_and_samples(ref_store, ref_jobs["gpqa"])
    with sqlite3.connect(cache / "requests_rank0.db") as conn:  # rebuilt by lm-eval from scratch
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
