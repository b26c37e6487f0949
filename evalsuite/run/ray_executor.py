"""The Ray executor: each lm-eval process (one job, or all of a model's jobs with
`harness: leaderboard`) is a Ray task with a GPU request.

The task runs the same `execute()` as the local executor in a scratch folder on its node, and sends
the process's files (lm-eval results, samples, log, command) back to the driver, which alone writes
the results store. A task whose lm_eval fails is retried `max_retries` times; Ray itself retries
tasks lost with their worker.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Optional

from evalsuite.errors import UserError
from evalsuite.paths import inside
from evalsuite.run.jobs import Process
from evalsuite.run.local import Events, Execution, JobFailed, commit, execute, report
from evalsuite.results.store import Store


def _run_remote(process_json: str, cache_prefix: Optional[str]) -> dict:
    """Runs on a Ray worker: execute the process in a scratch folder, return its files."""
    process = Process.model_validate_json(process_json)
    with tempfile.TemporaryDirectory(prefix="evalsuite-ray-") as d:
        ex = execute(process, Path(d), Path(cache_prefix) if cache_prefix else None)
        files = {p.relative_to(d).as_posix(): p.read_bytes() for p in Path(d).rglob("*") if p.is_file()}
    return {"execution": ex.model_dump(), "files": files}


def write_payload(workdir: Path, files: dict[str, bytes]) -> None:
    """Write the files a worker sent back into the job's work folder; every part of each relative
    path must stay inside it (a name is never trusted to be a path)."""
    for rel, data in files.items():
        dest = workdir
        for part in PurePosixPath(rel).parts:
            dest = inside(dest, part)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


class RayExecutor:
    name = "ray"

    def __init__(self, address: Optional[str] = None, num_gpus: Optional[float] = None, max_retries: int = 1, shared_cache: bool = True):
        self.address = address
        self.num_gpus = num_gpus  # None: what each process needs (`gpus_for`)
        self.max_retries = max_retries
        self.shared_cache = shared_cache  # the store's request cache is visible to the workers

    def gpus_for(self, process: Process) -> float:
        """The GPUs the process's Ray task asks for: `executor.num_gpus` when set, else what its
        model needs on a CUDA device (one; hf data parallel: one per process; vllm: tensor x data
        parallel), none on a CPU. Ray then sets the task's CUDA_VISIBLE_DEVICES to exactly those
        (with 0, Ray hides every GPU: CUDA_VISIBLE_DEVICES='')."""
        if self.num_gpus is not None:
            return self.num_gpus
        if not process.first.model.device.startswith("cuda"):
            return 0
        b = process.first.settings.backend
        if b.name == "vllm":
            return b.tensor_parallel_size * b.data_parallel_size
        return max(1, b.num_processes)

    def _init(self):
        try:
            import ray
        except ImportError as exc:
            raise UserError("the ray executor needs Ray: pip install -e '.[ray]'") from exc
        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {"include_dashboard": False}
            try:
                ray.init(log_to_driver=False, **kwargs)
            except ConnectionError as exc:
                raise UserError(f"cannot reach the Ray cluster at {self.address}: {exc}") from exc
        return ray

    def run(self, processes: list[Process], store: Store, events: Events) -> None:
        if not processes:
            return
        ray = self._init()
        remote = ray.remote(max_retries=2)(_run_remote)
        tries = {p.process_id: 0 for p in processes}
        by_ref = {}

        def submit(process: Process):
            cache = str(store.cache_prefix(process.process_id)) if self.shared_cache else None
            by_ref[remote.options(num_gpus=self.gpus_for(process)).remote(process.model_dump_json(), cache)] = process
            events.started(process)

        for process in processes:
            submit(process)
        while by_ref:
            done, _ = ray.wait(list(by_ref), num_returns=1)
            process = by_ref.pop(done[0])
            try:
                payload = ray.get(done[0])
            except Exception as exc:  # the task itself died (worker lost, OOM): already retried by Ray
                events.failed(process, f"{process.label}: Ray task failed: {str(exc).splitlines()[0]}")
                continue
            workdir = store.new_job_dir(process.process_id)
            try:
                write_payload(workdir, payload["files"])
            except UserError as exc:  # a worker sent a path out of the job folder: not trusted
                shutil.rmtree(workdir, ignore_errors=True)
                events.failed(process, f"{process.label}: {exc}")
                continue
            except BaseException:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
            try:
                records = commit(process, workdir, Execution(**payload["execution"]), store)
            except JobFailed as exc:
                tries[process.process_id] += 1
                if tries[process.process_id] <= self.max_retries:
                    submit(process)
                else:
                    events.failed(process, str(exc))
                continue
            report(process, records, events)
