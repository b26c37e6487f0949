"""The Ray executor on a local cluster (CPU): same job ids, same numbers as the local executor."""

from __future__ import annotations

import json

import pytest

from conftest import demo_config
from evalsuite.cli.main import main
from evalsuite.results.store import Store

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")


@pytest.fixture
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def small_config(dest, name):
    """The demo's fixture candidate alone on GPQA + MuSR: one lm-eval process (harness leaderboard)."""
    cfg = demo_config(dest, name=name, **{
        "[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": "[gpqa, musr]",
        "parents:\n  - fixture: parent_a\n  - fixture: parent_b\n    chat_template: true": "parents: []\n#",
    })
    text = cfg.read_text()
    start = text.index("  name: tiny-merge\n")
    cfg.write_text(text[:start] + "  fixture: candidate\n" + text[text.index("  dtype:", start):])
    return cfg


def test_ray_executor_matches_local_executor(tmp_path, local_cluster):
    local_cfg = small_config(tmp_path / "local", "local-run")
    assert main(["run", "--all", "--config", str(local_cfg), "--quiet", "--no-report"]) == 0
    local_store = Store(tmp_path / "local" / "results")
    cfg = small_config(tmp_path, "ray-run")
    assert main(["run", "--all", "--config", str(cfg), "--executor", "ray", "--quiet"]) == 0
    ray_store = Store(tmp_path / "results")
    rec = ray_store.read_experiment("ray-run")
    jobs = [j for per in rec.jobs.values() for j in per.values()]
    assert len(jobs) == 2 and rec.jobs == local_store.read_experiment("local-run").jobs
    for job_id in jobs:
        mine = ray_store.finished_job(job_id)
        reference = local_store.finished_job(job_id)
        assert mine is not None and reference is not None
        a = json.loads(ray_store.results_path(mine).read_text())
        b = json.loads(local_store.results_path(reference).read_text())
        assert a["results"] == b["results"] and a["n-samples"] == b["n-samples"]
        # the same lm_eval command, up to where the files live
        def command(store, rec):
            args = list(rec.command)
            args[args.index("--include_path") + 1] = "TASKS"
            return " ".join(args).replace(str(store.root.parent), "ROOT")

        assert command(ray_store, mine) == command(local_store, reference)
