"""The one study of a run (evalsuite/study.py) and the versioned records (evalsuite/schema.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import demo_config
from evalsuite.errors import UserError
from evalsuite.schema import SCHEMA_VERSION, ExperimentRecord, JobRecord, ModelRef
from evalsuite.results.store import Store
from read_counter import count_reads


def _job(store: Store, version) -> JobRecord:
    folder = store.job_dir("m--bbh--0123")
    folder.mkdir(parents=True)
    (folder / "r.json").write_text("{}")
    rec = JobRecord(job_id="m--bbh--0123", model="m", role="candidate", benchmark="bbh", task="leaderboard_bbh", identity={},
                    command=[], env={}, results_file="r.json", samples_files=[], sha256={"r.json": "x"}, started=0, finished=1)
    data = rec.model_dump(mode="json")
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    (folder / "job.json").write_text(json.dumps(data))
    return rec


def test_a_job_record_of_an_older_schema_is_recomputed_and_a_newer_one_refused(tmp_path):
    store = Store(tmp_path / "a")
    _job(store, SCHEMA_VERSION - 1)
    assert store.finished_job("m--bbh--0123") is None  # recomputed by the run
    with pytest.raises(UserError, match=r"schema version 0, older .*re-run `evalsuite run`") as err:
        store.job_record("m--bbh--0123")
    assert "\n" not in str(err.value)
    store = Store(tmp_path / "b")
    _job(store, SCHEMA_VERSION + 1)
    with pytest.raises(UserError, match="newer than this evalsuite reads .*upgrade evalsuite"):
        store.finished_job("m--bbh--0123")
    store = Store(tmp_path / "c")
    _job(store, None)  # written without the key: the same fields, read as version 1
    assert store.job_record("m--bbh--0123").schema_version == SCHEMA_VERSION == 1


def test_an_experiment_record_of_another_schema_gets_one_line(tmp_path):
    store = Store(tmp_path)
    ref = ModelRef(name="m", role="candidate", pretrained="/m", identity="sha256:x", dtype="float32", device="cpu")
    store.write_experiment(ExperimentRecord(experiment="e", finished=0.0, models=[ref]))
    assert store.read_experiment("e").models == [ref]
    path = store.experiment_file("e")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["models"][0] == ref.model_dump(mode="json")
    assert "source" not in data["models"][0] and "run" not in data["models"][0]  # import-only keys
    for version, words in ((0, "older than this evalsuite reads (1); re-run `evalsuite run --all`"), (2, "newer")):
        path.write_text(json.dumps({**data, "schema_version": version}))
        with pytest.raises(UserError, match="schema version") as err:
            store.read_experiment("e")
        assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_one_run_parses_each_results_file_once_and_hashes_each_samples_file_at_most_once(demo_run, tmp_path):
    """The demo's first `evalsuite run` (jobs, history, tables, report: counted by the session's
    demo fixture) and a re-run of it (everything reused) in a copy of its results: each results file
    is parsed once (`evalsuite.study`: the runner's study serves the history, the CLI tables and the
    report), each samples file is hashed at most once (at its commit, or the reuse check) and read in
    full at most twice (that hash and the report's one parse). On the re-run every job record, results
file and samples file is opened at most twice (verified, parsed; the report's sample browser reads
its records through the parse's handle)."""
    import shutil

    from evalsuite.cli.main import main
    from evalsuite.suite import load_suite

    if demo_run.reads is None:
        pytest.skip("EVALSUITE_TEST_DEMO_CONFIG: a reused demo's first run was not counted")
    models = 1 + len(demo_run.exp.parents)
    n_samples = models * sum(len(load_suite().get(b).leaf_tasks) for b in demo_run.exp.benchmarks)
    demo_dir = Path(demo_run.exp.output.results).parent
    copy = tmp_path / "demo"
    shutil.copytree(demo_dir, copy, symlinks=True, ignore=shutil.ignore_patterns("reports"))
    config = demo_config(copy, name=demo_run.exp.name, results=copy / "results")
    with count_reads() as rerun:
        assert main(["run", "--all", "--config", str(config), "--quiet"]) == 0
    for label, counts in (("first", demo_run.reads), ("rerun", rerun)):
        s = counts.summary()
        assert s["results_files"] >= models * len(demo_run.exp.benchmarks) and s["samples_files"] == n_samples, (label, s)
        assert s["results_parses_max"] == 1, (label, counts.per_file("results", ("parse",)).most_common(3))
        assert s["samples_hashes_max"] == 1, (label, counts.per_file("samples", ("hash", "parse+hash")).most_common(3))
        assert s["samples_full_reads_max"] <= 2, (label, s)
    opens = rerun.summary()["opens_max"]  # a re-run opens each stored file at most twice: verify, parse
    assert set(opens) == {"job", "results", "samples"} and 1 <= min(opens.values()) and max(opens.values()) <= 2, opens
    assert list((copy / "reports").glob(f"{demo_run.exp.name}-*.html"))
