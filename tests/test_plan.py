"""`evalsuite plan`: its request counts are the requests lm-eval really ran (the session's demo
run: its samples files and its processes' own progress bars; no new lm-eval run)."""

from __future__ import annotations

import json
import re

from evalsuite.results.store import Store


def _requests_in_samples(store: Store, rec) -> tuple[int, int]:
    """(documents, requests) in a stored job's samples files: one line per document, one
    `arguments` entry per request lm-eval sent for it."""
    docs = reqs = 0
    for rel in rec.samples_files:
        for line in (store.job_dir(rec.job_id) / rel).read_text(encoding="utf-8").splitlines():
            docs += 1
            reqs += len(json.loads(line)["arguments"])
    return docs, reqs


def test_plan_counts_equal_what_lm_eval_ran(demo_run, capsys):
    from evalsuite.cli.main import main
    from evalsuite.run.plan import count_requests, make_plan

    exp, store = demo_run.exp, demo_run.store
    counts = count_requests(exp)
    record = store.read_experiment(exp.name)
    for model, per in record.jobs.items():
        for bench, job_id in per.items():
            rec = store.finished_job(job_id)
            assert _requests_in_samples(store, rec) == (counts[bench]["documents"], counts[bench]["loglikelihood"] + counts[bench]["generation"]), (model, bench)
        # the model's one lm-eval process: its own progress bars' totals, per kind of request
        log = (store.job_dir(next(iter(per.values()))) / "lm_eval.log").read_text(encoding="utf-8", errors="replace")
        totals = {k: int(n) for k, n in re.findall(r"Running (loglikelihood|generate_until) requests:\s*100%\|[^|]*\|\s*\d+/(\d+)", log)}
        assert totals == {"loglikelihood": sum(c["loglikelihood"] for c in counts.values()),
                          "generate_until": sum(c["generation"] for c in counts.values())}, model

    plan = make_plan(exp)  # everything finished: nothing to run, throughput measured from those logs
    assert plan.jobs == 18 and plan.jobs_to_run == 0 and plan.processes == 0
    assert plan.throughput.loglikelihood and plan.throughput.generation and "measured" in plan.throughput.source
    given = make_plan(exp, ll_per_s=10.0, gen_per_s=1.0)
    assert "given" in given.throughput.source and given.seconds == 0

    assert main(["plan", "--config", str(demo_run.config), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {b["benchmark"]: b["loglikelihood"] for b in out["benchmarks"]} == {b: c["loglikelihood"] for b, c in counts.items()}


def test_two_mirrors_of_one_dataset_are_each_counted_from_their_own_files(tmp_path):
    """The demo's mirror (8 MMLU-Pro questions) and the sweep's (96) in one process: offline, a
    dataset read through the user's datasets cache can come back as another mirror's copy of the
    same name; plan reads each mirror through its own throwaway cache."""
    from conftest import REPO, demo_config

    from evalsuite.config import load_experiment
    from evalsuite.run.plan import requests_per_document
    from evalsuite.sweep import load_sweep

    demo = load_experiment(demo_config(tmp_path / "demo"))
    demo = demo.model_copy(update={"benchmarks": ["mmlu_pro"]})
    sweep = load_sweep(REPO / "examples" / "demo-sweep.yaml").base
    for exp, n in ((demo, 8), (sweep, 96), (demo, 8)):
        (per_task,) = requests_per_document(exp, None)["mmlu_pro"].values()
        assert len(per_task) == n and sorted(per_task) == list(range(n)), exp.data.mirror
        assert all(2 <= ll <= 10 and gen == 0 for ll, gen in per_task.values())
