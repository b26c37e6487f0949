"""The numeric environment in every job (#19 item 2): torch / transformers / tokenizers / kernels
versions, the attention implementation and the hub-kernels setting are identity; a stored job whose
recorded identity differs from the planned one is recomputed, not reused; `harness: leaderboard`
turns hub kernels off in the job's environment and in `command.sh`. No new lm-eval runs: the reuse
test copies the demo's stored jobs and replaces the executor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalsuite.run.jobs import NUMERIC_PACKAGES, Job, JobSettings, Process, attention_implementation, numeric_env
from evalsuite.schema import ModelRef


def _job(harness: str = "leaderboard", pretrained: str = "/nonexistent/model", **settings) -> Job:
    model = ModelRef(name="m", role="candidate", pretrained=pretrained, identity="sha256:x", dtype="bfloat16", device="cpu")
    return Job(model=model, benchmark="bbh", task="leaderboard_bbh", data_id="d",
               settings=JobSettings(batch_size=1, harness=harness, **settings), process=("bbh",) if harness == "leaderboard" else ())


def test_identity_names_the_numeric_environment():
    from importlib.metadata import version

    env = _job().identity["numeric_env"]
    assert set(env) == {*NUMERIC_PACKAGES, "attn_implementation", "hub_kernels"}
    assert env["torch"] == version("torch") and env["transformers"] == version("transformers")
    assert env["tokenizers"] == version("tokenizers") and env["kernels"] == version("kernels")
    assert env["attn_implementation"] == "unknown"  # no config.json on this machine


def test_leaderboard_harness_turns_hub_kernels_off_in_env_and_command_sh(monkeypatch):
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    lb, up = _job("leaderboard"), _job("upstream")
    assert lb.env()["USE_HUB_KERNELS"] == "NO" and "USE_HUB_KERNELS" not in up.env()
    assert "USE_HUB_KERNELS=NO" in Process(jobs=[lb]).shell_script()
    assert "USE_HUB_KERNELS" not in Process(jobs=[up]).shell_script()
    assert lb.identity["numeric_env"]["hub_kernels"] == "off"
    assert up.identity["numeric_env"]["hub_kernels"] == "on"  # transformers' default with `kernels` installed


def test_a_run_with_hub_kernels_on_is_another_job(monkeypatch):
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    on = _job("upstream").job_id
    monkeypatch.setenv("USE_HUB_KERNELS", "NO")
    off = _job("upstream").job_id
    monkeypatch.setenv("USE_HUB_KERNELS", "yes")
    assert on != off and _job("upstream").job_id == on


def test_another_library_version_is_another_job(monkeypatch):
    from evalsuite.run import jobs

    before = _job().job_id
    real = jobs.package_version
    monkeypatch.setattr(jobs, "package_version", lambda name: "4.45.2" if name == "transformers" else real(name))
    assert _job().job_id != before


def test_attention_implementation_from_the_models_config(tmp_path):
    gemma, llama, own = tmp_path / "gemma", tmp_path / "llama", tmp_path / "own"
    for folder, cfg in [(gemma, {"architectures": ["Gemma2ForCausalLM"]}), (llama, {"architectures": ["LlamaForCausalLM"]}),
                        (own, {"architectures": ["LlamaForCausalLM"], "_attn_implementation": "flash_attention_2"})]:
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(cfg))
    # transformers 5 declares Gemma-2 without SDPA (eager); Llama supports it
    assert attention_implementation(str(gemma)) == "eager"
    assert attention_implementation(str(llama)) == "sdpa"
    assert attention_implementation(str(own)) == "flash_attention_2"
    model = ModelRef(name="g", role="candidate", pretrained=str(gemma), identity="i", dtype="auto", device="cpu")
    assert numeric_env(model, {})["attn_implementation"] == "eager"


def test_doctor_shows_versions_against_the_leaderboards():
    from evalsuite.config import Experiment
    from evalsuite.doctor import numeric_environment

    checks = {c.name: c for c in numeric_environment(Experiment.model_validate({"name": "x", "candidate": {"hub": "a/b"}}))}
    from importlib.metadata import version

    tf = checks["numeric env transformers"]
    assert version("transformers") in tf.detail
    if version("transformers") != "4.45.2":
        assert tf.status == "warn" and "the leaderboard ran 4.45.2" in tf.detail
    assert checks["numeric env hub kernels"].status == "ok"  # harness leaderboard (the default) turns them off
    assert "GPU" in checks["machine"].detail


def test_a_stored_job_of_another_version_is_not_reused(demo_run, tmp_path, monkeypatch):
    """parent_a's six stored demo jobs in a results folder of their own, planned again with a
    replaced executor: all six are reused; after one job's recorded transformers version is edited
    (its job id and files unchanged), that job is planned for computing again."""
    import sys

    from evalsuite.run import runner
    from evalsuite.published.sides import stored_jobs

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import demo_config

    results = tmp_path / "results"
    jobs = stored_jobs(demo_run.store, demo_run.exp.name, "tiny-parent_a")
    for rec in jobs.values():
        shutil.copytree(demo_run.store.job_dir(rec.job_id), results / "jobs" / rec.job_id, symlinks=True)
    config = demo_config(tmp_path, name="env-test", results=results)
    text = config.read_text()
    head, rest = text.split("candidate:\n", 1)
    rest = rest.split("benchmarks:", 1)[1]
    config.write_text(head + "candidate:\n  fixture: parent_a\nparents: []\nbenchmarks:" + rest)
    assert jobs["bbh"].identity["numeric_env"]["transformers"]  # the demo's records hold it

    asked: list[list[str]] = []

    class Planned(Exception):
        pass

    class Recorder:
        name = "recorder"

        def run(self, processes, store, events):
            asked.append(sorted(j.job_id for p in processes for j in p.jobs if j.job_id not in p.done))
            raise Planned

    monkeypatch.setattr(runner, "make_executor", lambda exp: Recorder())
    from evalsuite.config import load_experiment

    exp = load_experiment(config)
    with pytest.raises(Planned):
        runner.run_experiment(exp, quiet=True)
    assert asked == [[]]  # nothing to compute: every job reused

    path = results / "jobs" / jobs["bbh"].job_id / "job.json"
    data = json.loads(path.read_text())
    data["identity"]["numeric_env"]["transformers"] = "4.45.2"
    path.write_text(json.dumps(data))
    with pytest.raises(Planned):
        runner.run_experiment(load_experiment(config), quiet=True)
    assert asked[1] == [jobs["bbh"].job_id]
