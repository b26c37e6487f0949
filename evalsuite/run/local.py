"""Executing jobs: an `lm_eval` child process (a `Process`: one or more jobs of one model) in a
work folder, then a completion record per job.

The child runs exactly the command recorded in `command.sh`, plus lm-eval's request cache (kept per
process id: it cannot change a number and lets an interrupted process resume where it stopped).
`LocalExecutor` runs processes on this machine: a crash or OOM in one does not kill the run, and
GPU memory is released between models.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, Protocol

from pydantic import BaseModel

from evalsuite.faults import checkpoint
from evalsuite.lm_eval_api import PER_TASK_KEYS, PROCESS_RESULTS
from evalsuite.run.jobs import CLI_MODULE, Job, JobSettings, Process, machine_info
from evalsuite.run.lm_eval_main import FULL_INDEX_ENV
from evalsuite.run.warm import CHILD_LOG_ENV, RUN_PID_ENV, die_with_parent, modeling_module
from evalsuite.run.warm_pool import POOL
from evalsuite.results.samples import task_of_samples_file
from evalsuite.schema import JobRecord, StartMode
from evalsuite.fsio import disk_full
from evalsuite.results.store import Store
from evalsuite.suite import load_suite


class JobFailed(Exception):
    def __init__(self, process: Process, log: Path, why: str):
        super().__init__(f"{process.first.model.name} / {'+'.join(j.benchmark for j in process.jobs)}: {why}; log: {log}")
        self.log = log


class Events(Protocol):
    def started(self, process: Process) -> None: ...
    def output(self, process: Process, line: str) -> None: ...
    def finished(self, job: Job, record: JobRecord) -> None: ...
    def ended(self, process: Process) -> None: ...
    def failed(self, process: Process, message: str) -> None: ...


class Execution(BaseModel):
    returncode: int
    started: float
    finished: float
    start: StartMode = "fresh"  # forked from a warm zygote, or a fresh interpreter


def resolve_launcher(launcher: list[str]) -> list[str]:
    """Use this Python environment's programs. lm-eval's CLI (`lm_eval`, or the same CLI with
    evalsuite's model registered) becomes `python -m evalsuite.run.lm_eval_main`: the same CLI
    with a leaderboard-only task index (see that module); `accelerate launch` stays in front."""
    if launcher in (["lm_eval"], ["python", "-m", CLI_MODULE]):
        return [sys.executable, "-m", FAST_MAIN]
    if launcher[-2:-1] == ["-m"]:
        launcher = [*launcher[:-1], FAST_MAIN]
    exe = Path(sys.executable).parent / launcher[0]
    if exe.exists():
        return [str(exe), *launcher[1:]]
    return [sys.executable, "-m", launcher[0], *launcher[1:]]


FAST_MAIN = "evalsuite.run.lm_eval_main"


def execute(
    process: Process, workdir: Path, cache_prefix: Optional[Path], on_output: Optional[Callable[[str], None]] = None,
    placement: Optional[dict] = None, warm: bool = False,
) -> Execution:
    """Run the process's lm_eval command with output under `workdir/output`, log in
    `workdir/lm_eval.log`. `placement`: extra environment that only says where it runs (e.g.
    CUDA_VISIBLE_DEVICES). `warm`: fork it from a zygote with lm-eval's imports done
    (`evalsuite.run.warm`; same program, same numbers) where the launcher allows it."""
    (workdir / "command.sh").write_text(process.shell_script())
    launcher = resolve_launcher(process.launcher())
    args = process.lm_eval_args(workdir / "output")
    if cache_prefix is not None:
        args += ["--use_cache", str(cache_prefix)]
    env = {**child_env(process.env()), **(placement or {}), RUN_PID_ENV: str(os.getpid())}
    if process.first.settings.task_index == "full":
        env[FULL_INDEX_ENV] = "1"
    if process.datasets_cache is not None:
        env["HF_DATASETS_CACHE"] = str(process.datasets_cache)
    log_path = workdir / "lm_eval.log"
    started = time.time()
    with log_path.open("wb") as log:
        proc = None
        if warm and warm_capable(process.first.settings) and launcher[1:] == ["-m", FAST_MAIN]:
            proc, why = POOL.start(args, env, log_path, Path.cwd(), preload=model_modules(process))
            if proc is None:
                log.write(f"evalsuite: {why}; started a fresh process\n".encode())
                log.flush()
            elif os.environ.get(CHILD_LOG_ENV):  # the tests' count of lm-eval processes (tests/conftest.py)
                with open(os.environ[CHILD_LOG_ENV], "a") as fh:
                    fh.write(f"{proc.pid}\twarm\t{os.environ.get('PYTEST_CURRENT_TEST', '')}\t{' '.join(args)}\n")
        if proc is None:
            proc = subprocess.Popen(
                [*launcher, *args], stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
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
    mode = "fresh" if isinstance(proc, subprocess.Popen) else "warm"
    return Execution(returncode=proc.returncode, started=started, finished=time.time(), start=mode)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of an lm-eval child: this process's, with `env` (the job's) over it."""
    return {**os.environ, **env, "PYTHONUNBUFFERED": "1"}


def warm_capable(settings: JobSettings) -> bool:
    """Whether the local executor forks this kind of process from a warm zygote: the plain hf
    backend in one process (`accelerate launch` and vLLM start their own way)."""
    b = settings.backend
    return settings.start == "warm" and b.name == "hf" and b.num_processes == 1


def prewarm(settings: JobSettings) -> None:
    """Start the warm zygote for processes of these settings now, in the background."""
    if warm_capable(settings):
        POOL.prewarm(child_env(settings.env()))


def model_modules(process: Process) -> list[str]:
    """transformers' modeling module of the process's model (from its config.json, for a local
    folder), for the warm start to import beforehand."""
    try:
        model_type = json.loads((Path(process.first.model.pretrained) / "config.json").read_text())["model_type"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    module = modeling_module(str(model_type))
    return [module] if module else []


def commit(process: Process, workdir: Path, ex: Execution, store: Store) -> list[JobRecord]:
    """Check the work folder holds lm-eval's output, then store each of the process's jobs that is
    not stored yet (`process.done`): a lone job's work folder becomes its job folder; a process
    of several jobs is split into one job folder per benchmark (see `split`)."""
    checkpoint("job.output")
    if ex.returncode != 0:
        raise _failed(process, workdir, store, f"lm_eval exited with {ex.returncode}")
    out = workdir / "output"
    results = sorted(out.rglob("results_*.json"))
    if len(results) != 1:
        raise _failed(process, workdir, store, f"expected one results_*.json, found {len(results)}")
    if len(process.jobs) == 1:
        (job,) = process.jobs
        samples = sorted(p.relative_to(workdir).as_posix() for p in out.rglob("samples_*.jsonl"))
        record = _record(process, job, ex, results[0].relative_to(workdir).as_posix(), samples)
        record.batch_sizes = chosen_batch_sizes(results[0])
        return [_commit_folder(workdir, record, store)]
    records = []
    try:
        data = json.loads(results[0].read_text(encoding="utf-8"))  # parsed once for all its jobs
        for job in process.jobs:
            if job.job_id in process.done:
                continue
            tmp = store.new_job_dir(job.job_id)
            try:
                rel_results, rel_samples, extra = split(workdir, results[0], job, tmp, data)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            record = _record(process, job, ex, rel_results, rel_samples, extra)
            record.batch_sizes = chosen_batch_sizes(data)
            records.append(_commit_folder(tmp, record, store))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return records


def chosen_batch_sizes(results) -> Optional[list[int]]:
    """The batch sizes lm-eval's `batch_size: auto` detector chose (its results file's
    `config.batch_sizes`), or None when the size was given (or the file says nothing)."""
    data = results if isinstance(results, dict) else json.loads(Path(results).read_text(encoding="utf-8"))
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    sizes = config.get("batch_sizes")
    if not str(config.get("batch_size", "")).startswith("auto") or not isinstance(sizes, list) or not sizes:
        return None
    return [int(x) for x in sizes if isinstance(x, (int, float))] or None


def split(workdir: Path, results: Path, job: Job, dest: Path, data: Optional[dict] = None) -> tuple[str, list[str], list[str]]:
    """One job's share of a shared process's output, into the job folder `dest`: the results file
    restricted to the job's benchmark (its group and leaf tasks, under every per-task key), its
    own samples files, lm-eval's whole results file (as `process_results_<date>.json`), the log
    and command. Returns the relative paths of the results file, the samples and the extra file."""
    bench = load_suite().get(job.benchmark)
    tasks = {bench.group, *bench.leaf_tasks}
    if data is None:  # `data`: the results file, already parsed
        data = json.loads(results.read_text(encoding="utf-8"))
    mine = {k: ({t: x for t, x in v.items() if t in tasks} if k in PER_TASK_KEYS and isinstance(v, dict) else v) for k, v in data.items()}
    folder = results.parent.relative_to(workdir)
    (dest / folder).mkdir(parents=True)
    rel_results = (folder / results.name).as_posix()
    (dest / rel_results).write_text(json.dumps(mine, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    rel_whole = (folder / (PROCESS_RESULTS + results.name.removeprefix("results_"))).as_posix()
    shutil.copyfile(results, dest / rel_whole)
    samples = []
    for f in sorted(results.parent.glob("samples_*.jsonl")):
        if task_of_samples_file(f) in tasks:
            rel = (folder / f.name).as_posix()
            try:  # the work folder is beside the job folders: a link costs no space
                os.link(f, dest / rel)
            except OSError:
                shutil.copyfile(f, dest / rel)
            samples.append(rel)
    for name in ("command.sh", "lm_eval.log"):
        shutil.copyfile(workdir / name, dest / name)
    return rel_results, samples, [rel_whole]


def _record(process: Process, job: Job, ex: Execution, results_file: str, samples: list[str], extra: Optional[list[str]] = None) -> JobRecord:
    return JobRecord(
        job_id=job.job_id,
        model=job.model.name,
        role=job.model.role,
        benchmark=job.benchmark,
        task=job.task,
        identity=job.identity,
        command=[*process.launcher(), *process.lm_eval_args("OUTPUT_PATH")],
        env=process.env(),
        results_file=results_file,
        samples_files=samples,
        process=process.process_id if len(process.jobs) > 1 else None,
        process_files=extra or [],
        started=ex.started,
        finished=ex.finished,
        start=ex.start,
        machine=machine_info(),
    )


def _commit_folder(folder: Path, record: JobRecord, store: Store) -> JobRecord:
    try:
        store.commit_job(folder, record)
    except BaseException as exc:  # e.g. a full disk: no half-committed work folder stays behind
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError) and disk_full(exc):
            exc.filename = str(store.job_dir(record.job_id))  # not the temp folder, gone by now
        raise
    return record


_NEARLY_FULL = 1 << 20  # bytes free on the results disk below which a failed job is put down to it


def _failed(process: Process, workdir: Path, store: Store, why: str) -> Exception:
    """Keep the process's log under failed/, drop its work folder, and say why it failed.

    A process that failed because the results disk is full comes back as OSError(ENOSPC) naming
    its (first) job folder: that stops the run with one line (every later job would fail alike)
    and keeps the last good experiment record. Any other failure is a JobFailed; the run goes on."""
    log = workdir / "lm_eval.log"
    full = _disk_full(log, store.root)
    kept = store.root / "failed" / f"{process.process_id}.log"
    try:  # a rename, not a copy: it needs no free space
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(log, kept)
    except OSError:
        kept = log  # no log, or it cannot be moved: the message still says where it was
    shutil.rmtree(workdir, ignore_errors=True)
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(store.job_dir(process.first.job_id)))
    return JobFailed(process, kept, why)


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


def run_process(process: Process, store: Store, on_output: Optional[Callable[[str], None]] = None, placement: Optional[dict] = None) -> list[JobRecord]:
    """Run one lm-eval process to completion on this machine (a warm start where it can) and commit
    its jobs. Raises JobFailed (OSError when the results disk is full)."""
    workdir = store.new_job_dir(process.process_id)
    try:
        ex = execute(process, workdir, store.cache_prefix(process.process_id), on_output, placement, warm=True)
    except BaseException:  # e.g. no room for command.sh: no work folder stays behind
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return commit(process, workdir, ex, store)


def report(process: Process, records: list[JobRecord], events: Events) -> None:
    """Tell the events about each job a process stored, then that it ended."""
    for record in records:
        events.finished(next(j for j in process.jobs if j.job_id == record.job_id), record)
    events.ended(process)


def visible_gpus(env: Optional[dict] = None) -> Optional[list[str]]:
    """The GPUs this process was given: the inherited CUDA_VISIBLE_DEVICES list (ids or UUIDs, as
    SLURM or a shared box set it), or None when it is unset (every GPU of the machine)."""
    value = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [d.strip() for d in value.split(",") if d.strip()]


def gpu_placement(slot: int, workers: int, device: str, env: Optional[dict] = None) -> Optional[dict]:
    """The CUDA_VISIBLE_DEVICES of worker `slot` of `workers` on a CUDA device: the slot-th GPU of
    the inherited list (never a GPU outside it), else the slot-th GPU of the machine; None for
    one worker (it keeps what it inherited) or a CPU run."""
    if workers <= 1 or not device.startswith("cuda"):
        return None
    gpus = visible_gpus(env)
    if gpus is None:
        return {"CUDA_VISIBLE_DEVICES": str(slot)}
    return {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]} if gpus else None  # none given: inherited as is


class LocalExecutor:
    """Processes as children on this machine, `workers` at a time. With several workers on a GPU
    machine each worker owns one GPU: the slot-th of the inherited CUDA_VISIBLE_DEVICES list
    (`gpu_placement`; make workers at most the GPUs given, or two workers share one)."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = workers

    def _one(self, process: Process, store: Store, events: Events, slots) -> None:
        slot = slots.get()
        placement = gpu_placement(slot, self.workers, process.first.model.device)
        events.started(process)
        try:
            records = run_process(process, store, on_output=lambda line: events.output(process, line), placement=placement)
        except JobFailed as exc:
            events.failed(process, str(exc))
        else:
            report(process, records, events)
        finally:
            slots.put(slot)

    def run(self, processes: list[Process], store: Store, events: Events) -> None:
        slots: queue.Queue = queue.Queue()
        for i in range(self.workers):
            slots.put(i)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for future in [pool.submit(self._one, p, store, events, slots) for p in processes]:
                future.result()  # surface bugs raised in the worker threads


def _last_line(path: Path) -> str:
    """The last progress line lm-eval printed (tqdm writes \\r-separated updates)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2048))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    progress = [p for p in parts if p.startswith("Running ") and " requests" in p]
    if progress and parts[-1] is not progress[-1] and not parts[-1].startswith("Running "):
        # a warning after the progress bar (it goes to the log): the bar is what tells the state;
        # a line after the last bar that is not a warning (a new phase) is shown as it is
        if "WARNING" in parts[-1] or "Warning" in parts[-1]:
            return progress[-1][:160]
    return parts[-1][:160] if parts else ""
