"""GPUs where the user put them, with a fake device list of 4 (no GPU needed): the environment each
lm-eval child is started with (local workers), and the GPUs each Ray task gets (Ray's own
assignment on a local cluster given 4 fake GPUs)."""

from __future__ import annotations

import sys

import pytest

from evalsuite.run import local
from evalsuite.run.jobs import Job, JobSettings, Process
from evalsuite.schema import ModelRef
from evalsuite.results.store import Store

FAKE = "3,5,GPU-9f1c,7"  # an inherited allocation: ids and a UUID, as SLURM or a shared box give them


def process(name: str, device: str = "cuda", **settings) -> Process:
    model = ModelRef(name=name, role="candidate", pretrained="/nonexistent", identity=f"x:{name}", dtype="bfloat16", device=device)
    job = Job(model=model, benchmark="bbh", task="leaderboard_bbh", data_id="hub",
              settings=JobSettings(batch_size=8, start="fresh", **settings))
    return Process(jobs=[job])


class Events:
    def __init__(self):
        self.failed_ = []

    def started(self, p): pass
    def output(self, p, line): pass
    def finished(self, job, rec): pass
    def ended(self, p): pass

    def failed(self, p, message):
        self.failed_.append(message)


def _children(tmp_path, monkeypatch, workers: int, device: str, n: int) -> list[str]:
    """Run `n` processes with `workers` local workers; each child (a real process, standing in
    for lm-eval) records the CUDA_VISIBLE_DEVICES it was started with, then waits so they overlap."""
    log = tmp_path / "env.log"
    code = ("import os, time; time.sleep(0.2); open(%r, 'a').write(os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>') + '\\n');"
            " time.sleep(1.5)" % str(log))
    monkeypatch.setattr(local, "resolve_launcher", lambda launcher: [sys.executable, "-c", code])
    events = Events()
    local.LocalExecutor(workers=workers).run([process(f"m{i}", device) for i in range(n)], Store(tmp_path / "results"), events)
    assert len(events.failed_) == n  # the stand-in writes no lm-eval output
    return log.read_text().split()


def test_local_workers_pick_from_the_inherited_device_list(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", FAKE)
    seen = _children(tmp_path, monkeypatch, workers=4, device="cuda", n=4)
    assert sorted(seen) == sorted(FAKE.split(","))  # one each, all four at once, none outside the list
    # one worker keeps the whole allocation; a CPU run is not placed
    assert _children(tmp_path / "one", monkeypatch, workers=1, device="cuda", n=1) == [FAKE]
    assert _children(tmp_path / "cpu", monkeypatch, workers=2, device="cpu", n=2) == [FAKE, FAKE]


def test_gpu_placement_rules():
    assert local.gpu_placement(1, 4, "cuda:0", {"CUDA_VISIBLE_DEVICES": FAKE}) == {"CUDA_VISIBLE_DEVICES": "5"}
    assert local.gpu_placement(5, 4, "cuda", {"CUDA_VISIBLE_DEVICES": "2,4"}) == {"CUDA_VISIBLE_DEVICES": "4"}  # more workers than GPUs: they share
    assert local.gpu_placement(2, 4, "cuda", {}) == {"CUDA_VISIBLE_DEVICES": "2"}  # nothing inherited: the machine's
    assert local.gpu_placement(0, 4, "cuda", {"CUDA_VISIBLE_DEVICES": ""}) is None
    assert local.gpu_placement(0, 4, "cpu", {"CUDA_VISIBLE_DEVICES": FAKE}) is None


def test_ray_tasks_ask_for_the_gpus_their_jobs_need():
    from evalsuite.config import Backend
    from evalsuite.run.ray_executor import RayExecutor

    ex = RayExecutor()
    assert ex.gpus_for(process("a")) == 1 and ex.gpus_for(process("a", "cpu")) == 0
    assert ex.gpus_for(process("a", backend=Backend(num_processes=2))) == 2
    assert ex.gpus_for(process("a", backend=Backend(name="vllm", tensor_parallel_size=2, data_parallel_size=2))) == 4
    assert RayExecutor(num_gpus=0.5).gpus_for(process("a")) == 0.5  # the user's setting wins


@pytest.mark.slow
def test_ray_workers_see_only_their_gpus(monkeypatch):
    """A local Ray cluster given the fake list of 4: a task asking for what a CUDA job needs sees
    one GPU of the list (Ray sets its CUDA_VISIBLE_DEVICES); four at once see four different ones.
    (With the old `num_gpus: 0`, Ray 2.60 leaves a task the whole inherited list, shared by all.)"""
    ray = pytest.importorskip("ray")
    from evalsuite.run.ray_executor import RayExecutor

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", FAKE)
    ray.init(num_cpus=4, num_gpus=4, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote
        def env_of_task():
            import os
            import time

            time.sleep(1)
            return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

        ex = RayExecutor()
        refs = [env_of_task.options(num_gpus=ex.gpus_for(process(f"m{i}"))).remote() for i in range(4)]
        seen = ray.get(refs)
        assert sorted(seen) == sorted(FAKE.split(","))
    finally:
        ray.shutdown()
