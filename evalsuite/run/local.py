"""Executing one job: an `lm_eval` child process in a work folder, then a completion record.

The child runs exactly the command recorded in the job's `command.sh`, plus lm-eval's request cache
(kept per job id: it cannot change a number and lets an interrupted job resume where it stopped).
`LocalExecutor` runs jobs one after another on this machine: a crash or OOM in one job does not kill
the run, and GPU memory is released between models.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

from pydantic import BaseModel

from evalsuite.faults import checkpoint
from evalsuite.run.jobs import Job
from evalsuite.store import JobRecord, Store, disk_full


class JobFailed(Exception):
    def __init__(self, job: Job, log: Path, why: str):
        super().__init__(f"{job.model.name} / {job.benchmark}: {why}; log: {log}")
        self.log = log


class Events(Protocol):
    def started(self, job: Job) -> None: ...
    def output(self, job: Job, line: str) -> None: ...
    def finished(self, job: Job, record: JobRecord) -> None: ...
    def failed(self, job: Job, message: str) -> None: ...


class Execution(BaseModel):
    returncode: int
    started: float
    finished: float


def resolve_launcher(launcher: list[str], task_index: str = "full") -> list[str]:
    """Use this Python environment's `lm_eval` / `accelerate` (falls back to `python -m`).
    task_index "leaderboard": `lm_eval` becomes `python -m evalsuite.run.lm_eval_main` (the same
    CLI with a leaderboard-only task index; see that module)."""
    if task_index == "leaderboard":
        if launcher == ["lm_eval"]:
            return [sys.executable, "-m", FAST_MAIN]
        if launcher[-2:] == ["-m", "lm_eval"]:
            launcher = [*launcher[:-1], FAST_MAIN]
    exe = Path(sys.executable).parent / launcher[0]
    if exe.exists():
        return [str(exe), *launcher[1:]]
    return [sys.executable, "-m", launcher[0], *launcher[1:]]


FAST_MAIN = "evalsuite.run.lm_eval_main"


def execute(
    job: Job, workdir: Path, cache_prefix: Optional[Path], on_output: Optional[Callable[[str], None]] = None, placement: Optional[dict] = None
) -> Execution:
    """Run the job's lm_eval command with output under `workdir/output`, log in `workdir/lm_eval.log`.
    `placement`: extra environment that only says where it runs (e.g. CUDA_VISIBLE_DEVICES)."""
    (workdir / "command.sh").write_text(job.shell_script())
    argv = [*resolve_launcher(job.launcher(), job.settings.task_index), *job.lm_eval_args(workdir / "output")]
    if cache_prefix is not None:
        argv += ["--use_cache", str(cache_prefix)]
    env = {**os.environ, **job.env(), **(placement or {}), "PYTHONUNBUFFERED": "1"}
    log_path = workdir / "lm_eval.log"
    started = time.time()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if on_output is not None:
                    on_output(_last_line(log_path))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return Execution(returncode=proc.returncode, started=started, finished=time.time())


def commit(job: Job, workdir: Path, ex: Execution, store: Store) -> JobRecord:
    """Check the work folder holds lm-eval's output, write the record, move it into the store."""
    checkpoint("job.output")
    if ex.returncode != 0:
        raise _failed(job, workdir, store, f"lm_eval exited with {ex.returncode}")
    out = workdir / "output"
    results = sorted(out.rglob("results_*.json"))
    if len(results) != 1:
        raise _failed(job, workdir, store, f"expected one results_*.json, found {len(results)}")
    record = JobRecord(
        job_id=job.job_id,
        model=job.model.name,
        role=job.model.role,
        benchmark=job.benchmark,
        task=job.task,
        identity=job.identity,
        command=[*job.launcher(), *job.lm_eval_args("OUTPUT_PATH")],
        env=job.env(),
        results_file=results[0].relative_to(workdir).as_posix(),
        samples_files=sorted(p.relative_to(workdir).as_posix() for p in out.rglob("samples_*.jsonl")),
        started=ex.started,
        finished=ex.finished,
    )
    try:
        store.commit_job(workdir, record)
    except BaseException as exc:  # e.g. a full disk: no half-committed work folder stays behind
        shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(exc, OSError) and disk_full(exc):
            exc.filename = str(store.job_dir(job.job_id))  # not the temp folder, gone by now
        raise
    return record


_NEARLY_FULL = 1 << 20  # bytes free on the results disk below which a failed job is put down to it


def _failed(job: Job, workdir: Path, store: Store, why: str) -> Exception:
    """Keep the job's log under failed/, drop its work folder, and say why it failed.

    A job that failed because the results disk is full comes back as OSError(ENOSPC) naming its
    job folder: that stops the run with one line (every later job would fail alike) and keeps the
    last good experiment record. Any other failure is a JobFailed; the run goes on."""
    log = workdir / "lm_eval.log"
    full = _disk_full(log, store.root)
    kept = store.root / "failed" / f"{job.job_id}.log"
    try:  # a rename, not a copy: it needs no free space
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(log, kept)
    except OSError:
        kept = log  # no log, or it cannot be moved: the message still says where it was
    shutil.rmtree(workdir, ignore_errors=True)
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(store.job_dir(job.job_id)))
    return JobFailed(job, kept, why)


def _disk_full(log: Path, root: Path) -> bool:
    """Did the job fail for want of space on the results disk? Its log says so (or is empty:
    lm-eval could not even write that), and the disk has next to nothing free."""
    try:
        size = log.stat().st_size
        with log.open("rb") as fh:
            fh.seek(max(0, size - 65536))
            tail = fh.read().decode("utf-8", "replace")
        free = shutil.disk_usage(root).free
    except OSError:
        return False
    return (size == 0 or disk_full(tail)) and free < _NEARLY_FULL


def run_job(job: Job, store: Store, on_output: Optional[Callable[[str], None]] = None, placement: Optional[dict] = None) -> JobRecord:
    """Run one job to completion on this machine and commit it. Raises JobFailed (OSError when
    the results disk is full)."""
    workdir = store.new_job_dir(job.job_id)
    try:
        ex = execute(job, workdir, store.cache_prefix(job.job_id), on_output, placement)
    except BaseException:  # e.g. no room for command.sh: no work folder stays behind
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return commit(job, workdir, ex, store)


class LocalExecutor:
    """Jobs as child processes on this machine, `workers` at a time. With several workers on a
    GPU machine each worker owns one GPU (CUDA_VISIBLE_DEVICES = its slot)."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def _one(self, job: Job, store: Store, events: Events, slots) -> None:
        slot = slots.get()
        placement = {"CUDA_VISIBLE_DEVICES": str(slot)} if self.workers > 1 and job.model.device.startswith("cuda") else None
        events.started(job)
        try:
            record = run_job(job, store, on_output=lambda line: events.output(job, line), placement=placement)
        except JobFailed as exc:
            events.failed(job, str(exc))
        else:
            events.finished(job, record)
        finally:
            slots.put(slot)

    def run(self, jobs: list[Job], store: Store, events: Events) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        slots: queue.Queue = queue.Queue()
        for i in range(self.workers):
            slots.put(i)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(self._one, job, store, events, slots) for job in jobs]:
                future.result()  # surface bugs raised in the worker threads


def _die_with_parent() -> None:
    """Linux: the lm_eval child gets SIGKILL when evalsuite dies, so no orphan keeps writing."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _last_line(path: Path) -> str:
    """The last progress line lm-eval printed (tqdm writes \\r-separated updates)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2048))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    return parts[-1][:120] if parts else ""
