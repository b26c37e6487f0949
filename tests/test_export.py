"""`evalsuite export` (#19 item 4): the demo's stored runs written in the leaderboard's details
layout, then read back by `evalsuite import` (same scores, same per-document records) and by
`evalsuite verify --against` in one step. No new lm-eval runs: the session demo's jobs are read
(harness leaderboard: one process per model) and, for `harness: upstream`'s layout (one results
file per job), copied and re-recorded as separate processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.cli.main import main

MERGE = "tiny-merge"


def _export(demo_run, out: Path, *extra: str) -> tuple[int, str, str]:
    return main(["export", "--config", str(demo_run.config), "--model", MERGE, "--out", str(out), *extra]), "", ""


def _records(path: Path) -> dict[int, dict]:
    keep = ("doc_id", "doc_hash", "prompt_hash", "target", "filtered_resps", "resps")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        out[rec["doc_id"]] = {k: json.dumps(rec.get(k), sort_keys=True) for k in keep}
    return out


def test_export_import_round_trip(demo_run, tmp_path, capsys):
    from evalsuite.published.importer import import_details
    from evalsuite.results.samples import SAMPLES_NAME
    from evalsuite.results.store import Store
    from evalsuite.study import load_study
    from evalsuite.published.sides import stored_runs

    out = tmp_path / "details"
    code = main(["export", "--config", str(demo_run.config), "--model", MERGE, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    (folder,) = out.iterdir()
    assert folder.name == "evalsuite__tiny-merge"  # no hub id: evalsuite/<model>
    names = sorted(p.name for p in folder.iterdir())
    results = [n for n in names if n.startswith("results_")]
    samples = [n for n in names if n.startswith("samples_")]
    assert len(results) == 1 and len(samples) == 39  # one per leaf task of the six benchmarks
    run = results[0].removeprefix("results_").removesuffix(".json")
    assert all(n.startswith("samples_leaderboard_") and n.endswith(f"_{run}.jsonl") for n in samples)

    stored = stored_runs(demo_run.store, demo_run.exp.name, MERGE)
    # the files are lm-eval's own, byte for byte
    for job in stored.runs[MERGE].values():
        for rel in job.record.samples_files:
            task = SAMPLES_NAME.match(Path(rel).name).group("task")
            assert (folder / f"samples_{task}_{run}.jsonl").read_bytes() == (job.folder / rel).read_bytes()

    # import: the same scores and the same per-document records
    store = Store(tmp_path / "results")
    res = import_details(str(out), "round-trip", store)
    assert res.run == run and set(res.jobs) == set(stored.runs[MERGE])
    assert all(a.agree == a.compared for a in res.agreement.values())
    imported = load_study(store, store.read_experiment("round-trip"))
    a, b = stored.scores[MERGE], imported.scores["round-trip"]
    assert {d: s.value for d, s in a.scores.items()} == {d: s.value for d, s in b.scores.items()}
    assert a.average == b.average
    for bench, rec in res.jobs.items():
        for rel in rec.samples_files:
            task = SAMPLES_NAME.match(Path(rel).name).group("task")
            assert _records(store.job_dir(rec.job_id) / rel) == _records(folder / f"samples_{task}_{run}.jsonl")

    # a second export into the same place is refused, nothing changed
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    code = main(["export", "--config", str(demo_run.config), "--model", MERGE, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "already exists" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_upstream_layout_merges_the_jobs_results(demo_run, tmp_path):
    """harness upstream stores one lm-eval results file per job: the export merges them task by
    task. Simulated on copies of the demo's jobs with their shared-process fields removed (the
    per-job results files hold exactly their own tasks, as an upstream job's does)."""
    from evalsuite.published.importer import import_details
    from evalsuite.published.export import export_run
    from evalsuite.results.store import Store
    from evalsuite.published.sides import stored_runs

    stored = stored_runs(demo_run.store, demo_run.exp.name, MERGE)
    for job in stored.runs[MERGE].values():
        job.record = job.record.model_copy(update={"process": None, "process_files": []})
    done = export_run(stored, MERGE, tmp_path / "up", "someone/tiny-merge")
    assert not done.whole_process_file and done.folder.name == "someone__tiny-merge"
    data = json.loads((done.folder / done.results).read_text())
    assert {t for t in data["n-samples"]} == {t for j in stored.runs[MERGE].values() for t in json.loads(
        (j.folder / j.record.results_file).read_text())["n-samples"]}
    store = Store(tmp_path / "results")
    res = import_details(str(tmp_path / "up"), "up", store)
    from evalsuite.study import load_study

    b = load_study(store, store.read_experiment("up")).scores["up"]
    assert {d: s.value for d, s in stored.scores[MERGE].scores.items()} == {d: s.value for d, s in b.scores.items()}
    assert set(res.jobs) == set(stored.runs[MERGE])


def test_verify_against_an_export_in_one_step(demo_run, tmp_path, capsys):
    """The exported folder is what verify reads: the model against its own export passes (its
    import goes to a results folder of this test's own, via a copied config)."""
    import yaml

    out = tmp_path / "details"
    assert main(["export", "--config", str(demo_run.config), "--model", MERGE, "--out", str(out)]) == 0
    results = tmp_path / "results"
    for sub in ("jobs", "experiments"):
        shutil.copytree(demo_run.store.root / sub, results / sub, symlinks=True)
    data = yaml.safe_load(Path(demo_run.config).read_text())
    data["output"] = {"results": str(results), "reports": str(tmp_path / "reports")}
    data["candidate"]["recipe"] = str(demo_run.exp.candidate.recipe)
    data["data"]["mirror"] = str(demo_run.exp.data.mirror)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    code = main(["verify", "--config", str(config), "--model", MERGE, "--against", str(out), "--format", "json"])
    o = capsys.readouterr()
    assert code == 0, o.err
    result = json.loads(o.out)
    assert result["passed"] and all(b["agreement_passed"] for b in result["benchmarks"])


@pytest.mark.parametrize("args, words", [
    (["--hub-id", "not a hub id"], "--hub-id"),
    (["--model", "nope"], "model 'nope' is not in experiment"),
])
def test_bad_input_is_one_line(demo_run, tmp_path, capsys, args, words):
    base = ["export", "--config", str(demo_run.config), "--model", MERGE, "--out", str(tmp_path / "o")]
    if "--model" in args:
        base = base[:3] + base[5:]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
