"""`evalsuite regress` on real demo runs: a re-run against itself passes, a worse candidate fails
naming the benchmark (JUnit failure), drift in task hashes / lm-eval version stops the gate."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest

from evalsuite.cli.main import main
from evalsuite.fixtures.tiny import build_demo_models
from evalsuite.history.db import db_path
from evalsuite.history.runs import get_run, record_run
from evalsuite.history.regress import BenchmarkResult, Difference, RegressReport, junit_xml, regress
from evalsuite.schema import ExperimentRecord, JobRecord
from evalsuite.results.store import Store

from conftest import NIGHTLY_BENCHMARKS
from conftest import nightly_config as demo_config
from regress_models import train_good_model

BENCHMARKS = NIGHTLY_BENCHMARKS


def run(config: Path) -> ExperimentRecord:
    assert main(["run", "--all", "--config", str(config), "--quiet"]) == 0
    return Store(Path(yaml.safe_load(config.read_text())["output"]["results"])).read_experiment("nightly-demo")


def discordant(root: Path, base_job: str, cur_job: str) -> tuple[int, int, int]:
    """Independent count from the samples files: (documents, right only now, right only before)."""
    def correct(job_id: str) -> dict:
        rec = JobRecord.model_validate_json((root / "jobs" / job_id / "job.json").read_text())
        out = {}
        for name in rec.samples_files:
            for line in (root / "jobs" / job_id / name).read_text().splitlines():
                s = json.loads(line)
                out[(name.split("samples_")[1].rsplit("_20", 1)[0], s["doc_id"])] = s["acc_norm"] >= 0.5
        return out

    a, b = correct(base_job), correct(cur_job)
    assert a.keys() == b.keys()
    return len(a), sum(b[k] and not a[k] for k in a), sum(a[k] and not b[k] for k in a)


def samples_of(root: Path, job_id: str) -> list[Path]:
    rec = Store(root).finished_job(job_id)
    return [Store(root).job_dir(job_id) / name for name in rec.samples_files]


def correct_count(root: Path, job_id: str) -> int:
    """How many documents lm-eval scored right (acc_norm) in a job's samples files."""
    return sum(json.loads(line)["acc_norm"] >= 0.5 for f in samples_of(root, job_id) for line in f.read_text().splitlines())


def holm_by_hand(ps: list[float]) -> list[float]:
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def mcnemar_exact(only_now: int, only_before: int) -> float:
    """Oracle independent of evalsuite: McNemar's exact test is scipy's two-sided binomial test of the
    discordant pairs at 1/2 (no discordant pairs: nothing to test, p = 1)."""
    m = only_now + only_before
    return 1.0 if m == 0 else float(binomtest(only_now, m, 0.5, alternative="two-sided").pvalue)


@pytest.fixture(scope="module")
def runs(nightly_demo, tmp_path_factory):
    """Real demo runs, recorded in a history of this module's own results folder:
    a1 = the demo candidate (untrained fixture model); b = a real run with another tiny model as
    candidate (fixture parent_b, given as a local folder); good = a real run with the candidate
    fine-tuned on the fixture BBH documents (tests/regress_models.py), a truly better model;
    a2 = `evalsuite run` of the untrained candidate again (every job reused), recorded last, so
    against `good` it is a real worse candidate."""
    shared, rec_a1 = nightly_demo  # the session's nightly run (tests/conftest.py), shared with test_history
    models = build_demo_models(shared / "models")  # plain local model folders
    # run b as its own process while the good model trains here (one core each)
    b_config = demo_config(shared / "b.yaml", shared / "results", candidate={"path": str(models["parent_b"]), "name": "tiny-other"})
    b_run = subprocess.Popen([sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--config", str(b_config), "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        good = shared / "models" / "tiny-good"
        if not (good / "model.safetensors").is_file():
            bbh_samples = samples_of(shared / "results", rec_a1.jobs["tiny-candidate"]["bbh"])
            train_good_model(models["candidate"], bbh_samples, good)
    finally:
        b_out, _ = b_run.communicate(timeout=1200)
    assert b_run.returncode == 0, b_out[-3000:]
    rec_b = Store(shared / "results").read_experiment("nightly-demo")
    assert rec_b.candidate.name == "tiny-other"
    assert rec_b.jobs["tiny-other"]["bbh"] != rec_a1.jobs["tiny-candidate"]["bbh"]
    rec_good = run(demo_config(shared / "g.yaml", shared / "results", candidate={"path": str(good), "name": "tiny-good"}))
    rec_a2 = run(demo_config(shared / "a.yaml", shared / "results"))

    root = tmp_path_factory.mktemp("regress") / "results"
    shutil.copytree(shared / "results" / "jobs", root / "jobs", ignore=shutil.ignore_patterns(".tmp-*", ".stale-*"))
    ids = {"a1": record_run(root, rec_a1), "b": record_run(root, rec_b), "good": record_run(root, rec_good)}
    ids["a2"] = ids["w"] = record_run(root, rec_a2)
    return root, ids


def gate(root: Path, *args: str) -> int:
    return main(["regress", "--results", str(root), *args])


def junit_cases(path: Path) -> dict[str, ET.Element]:
    tree = ET.parse(path)  # valid XML or this raises
    return {c.get("name"): c for c in tree.getroot().iter("testcase")}


@pytest.mark.slow
def test_rerun_against_itself_passes(runs, tmp_path, capsys):
    root, ids = runs
    assert get_run(root, ids["a1"]).jobs == get_run(root, ids["a2"]).jobs  # same stored jobs, two runs
    junit = tmp_path / "ci" / "regress.xml"
    assert gate(root, "--baseline", ids["a1"], "--current", ids["a2"], "--junit", str(junit)) == 0
    captured = capsys.readouterr()
    assert "no regression" in captured.err and "BBH" in captured.out and "GPQA" in captured.out
    cases = junit_cases(junit)
    assert set(cases) == {"BBH", "GPQA"}
    assert not any(c.find("failure") is not None or c.find("error") is not None for c in cases.values())


@pytest.mark.slow
def test_worse_candidate_fails_naming_the_benchmark(runs, tmp_path, capsys):
    """Baseline: the fine-tuned candidate; current: the untrained one. Both real lm-eval runs."""
    root, ids = runs
    base, cur = get_run(root, ids["good"]), get_run(root, ids["w"])
    good_bbh, bad_bbh = base.job("tiny-good", "bbh").job_id, cur.job("tiny-candidate", "bbh").job_id
    assert correct_count(root, good_bbh) >= correct_count(root, bad_bbh) + 15  # lm-eval: truly better
    assert base.main_scores("tiny-good")["bbh"].value > cur.main_scores("tiny-candidate")["bbh"].value

    junit = tmp_path / "regress.xml"
    assert gate(root, "--baseline", ids["good"], "--current", ids["w"], "--junit", str(junit)) == 1
    captured = capsys.readouterr()
    assert "REGRESSION in tiny-candidate/bbh" in captured.err and "gpqa" not in captured.err.split("REGRESSION")[1]
    assert "BBH" in captured.out
    cases = junit_cases(junit)
    failure = cases["BBH"].find("failure")
    assert failure is not None and "BBH regressed by" in failure.get("message")
    assert cases["GPQA"].find("failure") is None
    root_el = ET.parse(junit).getroot()
    assert root_el.get("failures") == "1" and root_el.get("errors") == "0"

    report = regress(root, ids["good"], ids["w"])
    assert [r.benchmark for r in report.results] == BENCHMARKS
    counts = {r.benchmark: discordant(root, base.job("tiny-good", r.benchmark).job_id, cur.job("tiny-candidate", r.benchmark).job_id)
              for r in report.results}
    ps = [mcnemar_exact(counts[r.benchmark][1], counts[r.benchmark][2]) for r in report.results]
    for r, p, p_holm in zip(report.results, ps, holm_by_hand(ps)):
        assert r.model == "tiny-candidate" and r.paired
        assert (r.n_docs, r.only_current, r.only_baseline) == counts[r.benchmark]
        assert r.p_value == pytest.approx(p) and r.p_holm == pytest.approx(p_holm)
        assert r.delta == pytest.approx(cur.main_scores("tiny-candidate")[r.benchmark].value - base.main_scores("tiny-good")[r.benchmark].value)
    bbh = report.results[0]
    assert bbh.status == "regression" and bbh.only_baseline > bbh.only_current and bbh.p_holm < 0.05
    # the other way round it is a significant improvement, which never fails the gate
    back = regress(root, ids["w"], ids["good"])
    assert back.results[0].status == "improvement" and back.exit_code == 0
    # a tolerance larger than the drop lets it pass; so does a significance level below its p
    assert gate(root, "--baseline", ids["good"], "--current", ids["w"], "--tolerance", str(-bbh.delta + 1)) == 0
    assert gate(root, "--baseline", ids["good"], "--current", ids["w"], "--alpha", str(bbh.p_holm / 2)) == 0


@pytest.mark.slow
def test_a_real_other_model_is_not_a_significant_regression(runs, capsys):
    """A real lm-eval run of another random tiny model: comparable (only the model changed), the
    paired statistics count the real per-document disagreements, and random-vs-random
    differences on 2 documents per task are not significant."""
    root, ids = runs
    report = regress(root, ids["a1"], ids["b"])
    assert report.comparable and report.exit_code == 0
    base, cur = get_run(root, ids["a1"]), get_run(root, ids["b"])
    for r in report.results:
        assert r.model == "tiny-other" and r.paired and r.status == "unchanged"
        n, only_now, only_before = discordant(root, base.job("tiny-candidate", r.benchmark).job_id, cur.job("tiny-other", r.benchmark).job_id)
        assert (r.n_docs, r.only_current, r.only_baseline) == (n, only_now, only_before)
        assert r.p_value == pytest.approx(mcnemar_exact(only_now, only_before))
        assert r.delta == pytest.approx(cur.main_scores("tiny-other")[r.benchmark].value - base.main_scores("tiny-candidate")[r.benchmark].value)
    assert gate(root, "--baseline", ids["a1"], "--current", ids["b"]) == 0
    assert "tiny-other" in capsys.readouterr().out


@pytest.mark.slow
def test_drift_in_task_hash_and_lm_eval_version_stops_the_gate(runs, tmp_path, capsys):
    root, ids = runs
    copy = tmp_path / "results"
    shutil.copytree(root, copy)  # history.sqlite (+ WAL) and jobs: the recorded values are edited below
    bbh_task = "leaderboard_bbh_boolean_expressions"
    with sqlite3.connect(db_path(copy)) as conn:
        identity, hashes = conn.execute("SELECT identity, task_hashes FROM run_jobs WHERE run_id=? AND benchmark='bbh'", (ids["a2"],)).fetchone()
        identity, hashes = json.loads(identity), json.loads(hashes)
        identity["lm_eval"] = "0.4.99"
        hashes[bbh_task] = "0" * 64
        conn.execute("UPDATE run_jobs SET identity=?, task_hashes=? WHERE run_id=? AND benchmark='bbh'",
                     (json.dumps(identity), json.dumps(hashes), ids["a2"]))
    junit = tmp_path / "regress.xml"
    assert gate(copy, "--baseline", ids["a1"], "--current", ids["a2"], "--junit", str(junit)) == 2
    err = capsys.readouterr().err
    drift = [line for line in err.splitlines() if "not comparable:" in line]
    assert any("bbh: lm_eval differs" in line and "0.4.99" in line for line in drift)
    assert any(f"task hash of {bbh_task} differs" in line for line in drift)
    assert len(drift) == 2  # GPQA's jobs and every other task hash are unchanged
    error = junit_cases(junit)["comparability"].find("error")
    assert error is not None and "0.4.99" in error.text
    # --allow-drift compares anyway and only warns
    assert gate(copy, "--baseline", ids["a1"], "--current", ids["a2"], "--allow-drift") == 0
    err = capsys.readouterr().err
    assert "warning: not comparable:" in err and "no regression" in err


@pytest.mark.slow
def test_baseline_by_name_and_default_current(runs, tmp_path, capsys):
    root, ids = runs
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    assert main(["baseline", "set", "nightly", "--run", ids["good"], "--results", str(copy)]) == 0
    capsys.readouterr()
    assert gate(copy, "--baseline", "nightly") == 1  # default current = the latest run = w
    assert f"run {ids['w']} vs baseline {ids['good']}" in capsys.readouterr().out.replace("\n", " ")
    assert gate(copy, "--baseline", "no-such-baseline") == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert gate(copy, "--baseline", "nightly", "--tolerance", "-1") == 2


def test_junit_is_valid_and_escaped():
    nasty = 'm<&>"\'\x01model'
    report = RegressReport(
        experiment="exp<1>", baseline_run="r1", current_run="r2", tolerance=1.0, alpha=0.05, allow_drift=True,
        differences=[Difference(model=nasty, benchmark="bbh", field="task hash of x&y", baseline="a<b", current="c>d")],
        results=[
            BenchmarkResult(model=nasty, benchmark="bbh", display="BBH & co", baseline=50.0, current=40.0, delta=-10.0,
                            status="regression", reason="drop <big> & \"significant\""),
            BenchmarkResult(model="ok", benchmark="gpqa", display="GPQA", baseline=5.0, current=5.0, delta=0.0),
        ],
    )
    root = ET.fromstring(junit_xml(report).encode())
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"BBH & co", "GPQA", "comparability"}
    assert cases["BBH & co"].get("classname") == "exp<1>.m<&>\"'?model"
    assert "drop <big> & \"significant\"" in cases["BBH & co"].find("failure").text
    assert cases["comparability"].find("error") is None  # drift allowed: a warning in system-err
    assert "x&y" in cases["comparability"].find("system-err").text
    assert root.get("failures") == "1" and report.exit_code == 1


@pytest.mark.slow
def test_without_sample_logs_the_tolerance_alone_decides(runs, tmp_path):
    root, ids = runs
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    worse = get_run(copy, ids["w"]).job("tiny-candidate", "bbh")
    shutil.rmtree(copy / "jobs" / worse.job_id)  # the job folder is gone, its scores stay in the history
    report = regress(copy, ids["good"], ids["w"])
    bbh = next(r for r in report.results if r.benchmark == "bbh")
    assert not bbh.paired and bbh.p_value is None and "tolerance only" in bbh.reason
    assert bbh.status == "regression" and report.exit_code == 1
    assert regress(copy, ids["good"], ids["w"], tolerance=-bbh.delta + 0.01).exit_code == 0


@pytest.mark.slow
def test_the_machine_is_shown_and_another_one_named_but_not_a_drift(runs, tmp_path, capsys):
    """The machine is no part of a job's identity: the gate names it for both runs, and names
    both when they differ (a GPU run against a CPU baseline), without calling that a drift."""
    root, ids = runs
    assert gate(root, "--baseline", ids["a1"], "--current", ids["a2"]) == 0
    assert "machine (both runs): CPU" in capsys.readouterr().err
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    gpu = {"cuda": "12.4", "cudnn": "90100", "gpu": "NVIDIA H100 80GB HBM3"}
    baseline_jobs = {j.job_id for j in get_run(copy, ids["a1"]).jobs}
    for job_id in {j.job_id for j in get_run(copy, ids["good"]).jobs} - baseline_jobs:  # as if run on a GPU
        path = copy / "jobs" / job_id / "job.json"
        rec = json.loads(path.read_text())
        rec["machine"] = gpu
        path.write_text(json.dumps(rec))
    code = gate(copy, "--baseline", ids["a1"], "--current", ids["good"])
    err = capsys.readouterr().err
    assert "machine differs: baseline CPU, current NVIDIA H100 80GB HBM3, CUDA 12.4, cuDNN 90100" in err, err
    assert "drift" not in err.replace("(not a drift", "")
    assert code == 0, err
