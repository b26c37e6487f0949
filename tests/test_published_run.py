"""`published:` models in an experiment: a parent whose results are the leaderboard's details is
imported (re-scored with this lm-eval, stored as ordinary jobs) instead of evaluated; no model is
loaded for it, the run reuses the import, and the report marks it and pairs it with the candidate.

The details folder is laid out from the demo run's own lm-eval output (what lm-eval 0.4.13's
EvaluationTracker wrote), exactly as a leaderboard details repo holds it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import demo_config
from evalsuite.cli.main import main
from evalsuite.results.files import load_results_as
from evalsuite.score import score_model
from evalsuite.results.store import Store
from test_report import PAYLOAD, chromium  # noqa: F401  (the DevTools fixture of the report tests)

pytestmark = pytest.mark.slow


def details_folder(demo_run, model: str, dest: Path) -> Path:
    """`<org>__<model>/samples_<task>_<date>.jsonl` + `results_<date>.json` of one demo model."""
    store = demo_run.store
    record = store.read_experiment(demo_run.exp.name)
    folder = dest / f"evalsuite-fixtures__{model}"
    folder.mkdir(parents=True)
    for job_id in record.jobs[model].values():
        rec = store.finished_job(job_id)
        for rel in rec.samples_files:
            shutil.copyfile(store.job_dir(job_id) / rel, folder / Path(rel).name)
        (whole,) = rec.process_files  # harness leaderboard: lm-eval's whole results file of the model's process
        shutil.copyfile(store.job_dir(job_id) / whole, folder / Path(whole).name.removeprefix("process_"))
    return folder


def plant(demo_run, details: Path) -> dict:
    """PAYLOAD (HTML) at the head of every prompt of one BBH document of the published parent where
    it and the candidate disagree, so the report shows the parent's prompt; returns the doc."""
    from evalsuite.results.samples import pair_docs
    from evalsuite.study import read_study
    from evalsuite.suite import load_suite

    study = read_study(demo_run.store.root, demo_run.exp.name)
    bench = load_suite().get("bbh")
    for task in bench.leaf_tasks:
        a, b = study.docs["tiny-merge"]["bbh"][task], study.docs["tiny-parent_a"]["bbh"][task]
        ia, ib, _ = pair_docs(a, b)
        diff = [int(b.doc_ids[ib[k]]) for k in range(len(ia)) if a.correct(bench.metrics[0])[ia[k]] != b.correct(bench.metrics[0])[ib[k]]]
        if diff:
            (f,) = details.glob(f"samples_{task}_*.jsonl")
            rows = [json.loads(line) for line in f.read_text().splitlines()]
            for rec in rows:
                if rec["doc_id"] == diff[0]:
                    for g in rec["arguments"].values():
                        g["arg_0"] = PAYLOAD + "\n" + g["arg_0"]
            f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            return {"task": task, "doc_id": diff[0]}
    pytest.fail("the demo has no BBH document where tiny-merge and tiny-parent_a disagree")


def test_a_published_parent_is_imported_not_evaluated_and_marked_in_the_report(demo_run, tmp_path, monkeypatch, chromium):
    import evalsuite.run.local as local

    details = details_folder(demo_run, "tiny-parent_a", tmp_path / "details")
    planted = plant(demo_run, details)
    # a results folder of its own holding the demo's candidate and parent_b jobs and the merge
    demo = demo_run.store.read_experiment(demo_run.exp.name)
    results = tmp_path / "results"
    for model in ("tiny-merge", "tiny-parent_b"):
        for job_id in demo.jobs[model].values():
            shutil.copytree(demo_run.store.job_dir(job_id), results / "jobs" / job_id)
    shutil.copytree(demo_run.store.root / "merged", results / "merged")
    cfg = demo_config(
        tmp_path, name="with-published", results=results,
        **{"  - fixture: parent_a\n": f"  - name: parent_a-published\n    published: {details}\n"},
    )

    def no_model(*a, **k):
        raise AssertionError("no lm-eval process may start: the candidate and parent_b are stored, parent_a is published")

    monkeypatch.setattr(local, "execute", no_model)
    assert main(["run", "--all", "--config", str(cfg), "--quiet"]) == 0
    store = Store(results)
    rec = store.read_experiment("with-published")
    pub = next(m for m in rec.models if m.name == "parent_a-published")
    assert pub.published == str(details) and pub.identity.startswith("sha256:") and pub.role == "parent"
    assert set(rec.jobs["parent_a-published"]) == set(demo_run.exp.benchmarks)
    assert rec.jobs["tiny-merge"] == demo.jobs["tiny-merge"] and rec.jobs["tiny-parent_b"] == demo.jobs["tiny-parent_b"]
    # the imported jobs give the numbers the demo's own jobs of that model give
    ours = score_model(load_results_as([store.results_path(store.finished_job(j)) for j in rec.jobs["parent_a-published"].values()], "m"))
    d = demo_run.store
    theirs = score_model(load_results_as([d.results_path(d.finished_job(j)) for j in demo.jobs["tiny-parent_a"].values()], "m"))
    assert {k: s.value for k, s in ours.scores.items()} == pytest.approx({k: s.value for k, s in theirs.scores.items()}, abs=1e-12)
    # a second run reuses the import
    first = {j: store.finished_job(j).finished for j in rec.jobs["parent_a-published"].values()}
    assert main(["run", "--all", "--config", str(cfg), "--quiet", "--no-report"]) == 0
    assert {j: store.finished_job(j).finished for j in store.read_experiment("with-published").jobs["parent_a-published"].values()} == first
    # the report marks it and pairs it with the candidate document by document
    reports = sorted((tmp_path / "reports").glob("with-published-*.html"))
    html = reports[-1].read_text()
    assert "results: the leaderboard's published details (no model run here)" in html
    assert "parent_a-published</td><td class=\"name\">parent (published details)</td>" in html
    # model outputs and prompts from the details stay inert: escaped in the file, text in Chromium
    assert PAYLOAD not in html
    chromium.call("Page.navigate", url=reports[-1].as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=60)
    dom = chromium.eval("""(() => ({
        planted: document.querySelectorAll('img[src="x"]').length, scripts: document.scripts.length,
        text: document.body.textContent.includes(%s), rows: document.querySelectorAll('#headline-table tbody tr').length}))()""" % json.dumps(PAYLOAD))
    assert dom == {"planted": 0, "scripts": 1, "text": True, "rows": 3}, (dom, planted)
    assert chromium.problems() == []


def test_documents_whose_hash_differs_are_counted_not_paired():
    """A published parent's document with the candidate's doc_id but other content (e.g. GPQA's
    choices in another order) is not paired, and the comparison says how many there were."""
    from evalsuite.compare import compare_models
    from evalsuite.config import StatsSettings
    from evalsuite.results.samples import TaskDocs

    acc = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    cand = TaskDocs.from_values("leaderboard_mmlu_pro", {"acc,none": acc}, doc_hash=[f"h{i}" for i in range(6)])
    par = TaskDocs.from_values("leaderboard_mmlu_pro", {"acc,none": acc}, doc_hash=["h0", "h1", "other", "h3", "other", "h5"])
    (row,) = compare_models({"cand": {"mmlu_pro": {"leaderboard_mmlu_pro": cand}}, "par": {"mmlu_pro": {"leaderboard_mmlu_pro": par}}},
                            "cand", ["par"], stats=StatsSettings(n_boot=200, seed=0)).rows
    assert (row.n_docs, row.hash_differs, row.unpaired) == (4, 2, 4)


def test_a_published_parent_from_the_hub_online_then_offline(demo_run, sim_hub, tmp_path, monkeypatch):
    """The published-parents study against the simulated hub (tests/hub_server.py): the parent is a
    gated details repo on the hub, named by its hub id. Online, `run` checks it is readable with
    the token, downloads it and imports it; then offline, in a fresh results folder, the same
    config reads it from the HF cache alone (no request to the hub) and gets the same jobs; without
    the token the online run stops before anything is written."""
    import evalsuite.run.local as local
    from hub_server import folder_files, use_in_process

    details = details_folder(demo_run, "tiny-parent_a", tmp_path / "details")
    repo_id = "open-llm-leaderboard/evalsuite-fixtures__tiny-parent_a-details"
    repo = sim_hub.repo(repo_id, "dataset", gated=True)
    repo.granted.add("hf_granted")
    repo.add_commit({f"{details.name}/{name}": data for name, data in folder_files(details).items()})
    demo = demo_run.store.read_experiment(demo_run.exp.name)

    def results_with_stored_jobs(root: Path) -> Path:
        for model in ("tiny-merge", "tiny-parent_b"):
            for job_id in demo.jobs[model].values():
                shutil.copytree(demo_run.store.job_dir(job_id), root / "jobs" / job_id)
        shutil.copytree(demo_run.store.root / "merged", root / "merged")
        return root

    def config(name: str, results: Path, offline: bool) -> Path:
        return demo_config(tmp_path / f"cfg-{name}", name="hub-published", results=results, **{
            "  - fixture: parent_a\n": f"  - name: parent_a-published\n    published: {repo_id}\n",
            "offline: true": f"offline: {str(offline).lower()}"})

    def no_model(*a, **k):
        raise AssertionError("no lm-eval process may start: the candidate and parent_b are stored, parent_a is published")

    monkeypatch.setattr(local, "execute", no_model)
    hf_home = tmp_path / "hf"
    # online without a token: refused before the first write
    use_in_process(monkeypatch, sim_hub, hf_home, offline=False)
    refused = tmp_path / "refused"
    assert main(["run", "--all", "--config", str(config("refused", refused, False)), "--quiet", "--no-report"]) == 2
    assert not refused.exists()
    # online with the token: downloaded and imported
    use_in_process(monkeypatch, sim_hub, hf_home, offline=False, token="hf_granted")
    online = results_with_stored_jobs(tmp_path / "online")
    assert main(["run", "--all", "--config", str(config("online", online, False)), "--quiet", "--no-report"]) == 0
    assert sim_hub.file_requests(repo_id)  # the details came from the hub
    rec = Store(online).read_experiment("hub-published")
    pub = next(m for m in rec.models if m.name == "parent_a-published")
    assert pub.published == repo_id and pub.role == "parent"
    jobs = rec.jobs["parent_a-published"]
    assert set(jobs) == set(demo_run.exp.benchmarks)
    store, d = Store(online), demo_run.store
    ours = score_model(load_results_as([store.results_path(store.finished_job(j)) for j in jobs.values()], "m"))
    theirs = score_model(load_results_as([d.results_path(d.finished_job(j)) for j in demo.jobs["tiny-parent_a"].values()], "m"))
    assert {k: s.value for k, s in ours.scores.items()} == pytest.approx({k: s.value for k, s in theirs.scores.items()}, abs=1e-12)
    # offline, a fresh results folder: from the HF cache alone, the same jobs
    use_in_process(monkeypatch, sim_hub, hf_home, offline=True)
    asked = len(sim_hub.requests)
    offline = results_with_stored_jobs(tmp_path / "offline")
    assert main(["run", "--all", "--config", str(config("offline", offline, True)), "--quiet", "--no-report"]) == 0
    assert len(sim_hub.requests) == asked
    assert Store(offline).read_experiment("hub-published").jobs["parent_a-published"] == jobs
