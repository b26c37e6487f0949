"""The local executor: each job is one `lm_eval` child process.

A crash or OOM in one job does not kill the run, and GPU memory is released between models. The
child runs exactly the command recorded in the job's `command.sh` (plus lm-eval's request cache,
which cannot change a number and lets an interrupted job resume).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from evalsuite.run.jobs import Job
from evalsuite.store import JobRecord, Store


class JobFailed(Exception):
    def __init__(self, job: Job, log: Path, returncode: int):
        super().__init__(f"{job.model.name} / {job.benchmark}: lm_eval exited with {returncode}; log: {log}")
        self.log = log
        self.returncode = returncode


def resolve_launcher(launcher: list[str]) -> list[str]:
    """Use this Python environment's `lm_eval` / `accelerate` (falls back to `python -m`)."""
    exe = Path(sys.executable).parent / launcher[0]
    if exe.exists():
        return [str(exe), *launcher[1:]]
    return [sys.executable, "-m", launcher[0], *launcher[1:]]


def run_job(job: Job, store: Store, on_output: Optional[Callable[[str], None]] = None) -> JobRecord:
    """Run one job to completion and commit it to the store. Raises JobFailed."""
    tmp = store.new_job_dir(job.job_id)
    (tmp / "command.sh").write_text(job.shell_script())
    out = tmp / "output"
    argv = [*resolve_launcher(job.launcher()), *job.lm_eval_args(out), "--use_cache", str(store.cache_prefix(job.job_id))]
    env = {**os.environ, **job.env(), "PYTHONUNBUFFERED": "1"}
    log_path = tmp / "lm_eval.log"
    started = time.time()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if on_output is not None:
                    on_output(_last_line(log_path))
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        kept = store.root / "failed" / f"{job.job_id}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, kept)
        shutil.rmtree(tmp, ignore_errors=True)
        raise JobFailed(job, kept, proc.returncode)
    results = sorted(out.rglob("results_*.json"))
    if len(results) != 1:
        raise JobFailed(job, log_path, -1)
    record = JobRecord(
        job_id=job.job_id,
        model=job.model.name,
        role=job.model.role,
        benchmark=job.benchmark,
        task=job.task,
        identity=job.identity,
        command=[*job.launcher(), *job.lm_eval_args("OUTPUT_PATH")],
        env=job.env(),
        results_file=results[0].relative_to(tmp).as_posix(),
        samples_files=sorted(p.relative_to(tmp).as_posix() for p in out.rglob("samples_*.jsonl")),
        started=started,
        finished=time.time(),
    )
    store.commit_job(tmp, record)
    return record


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
