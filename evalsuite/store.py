"""The results folder: the only module that decides where things live under `results/`.

Layout (everything a run writes appears atomically):

    results/
      jobs/<job_id>/           one finished (model x benchmark) job; the folder appears only when
        job.json               complete — job.json is its completion record
        command.sh             the bare `lm_eval` command (and environment) that reproduces it
        lm_eval.log            what lm-eval printed
        output/...             lm-eval's own results_*.json and samples_*.jsonl, untouched
      jobs/.tmp-<job_id>-<pid>/  a job in progress (removed or replaced on the next run)
      cache/<job_id>/          lm-eval's request cache for that job (lets an interrupted job resume)
      tasks/<data_id>/         generated lm-eval task overrides (a local mirror, or hub commits)
      datasets/<data_id>/      the `datasets` cache of a local mirror's content (HF_DATASETS_CACHE)
      experiments/<name>.json  the last run of an experiment: which job served which model x benchmark
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, Optional, Union

from evalsuite.errors import UserError
from evalsuite.faults import checkpoint
from evalsuite.paths import inside
from evalsuite.schema import REDO_EXPERIMENT, SCHEMA_VERSION, ExperimentRecord, JobRecord, SchemaMismatch, parse_record, read_job_record

__all__ = ["SCHEMA_VERSION", "ExperimentRecord", "JobRecord", "Store"]  # the records live in evalsuite.schema


def atomic_write_text(path: Path, text: str, *, point: Optional[str] = None) -> None:
    """Write via a temp file in the same folder + os.replace: readers see old or new, never half.
    `point`: a crash point (evalsuite/faults.py) between the temp file and the rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        if point:
            checkpoint(point)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _name_full_disk(exc, path)
        raise


def temp_prefix(name: str) -> str:
    """Hidden temp name beside `name`, tagged with this process id so a later run can tell the
    leftovers of a dead process (SIGKILL, power cut) from a live writer's: see `sweep_stale`."""
    return f".{name}.tmp-{os.getpid()}-"


_STALE = (  # .NAME.tmp-PID-xxxx (files, folders), .NAME.old-PID (swap_folder), .tmp-JOB-PID (jobs)
    re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?$"),
    re.compile(r"^\.(?P<kind>tmp)-(?P<name>.+)-(?P<pid>\d+)$"),
)


def sweep_stale(folder: Path, only: Optional[str] = None) -> list[Path]:
    """Clear what dead evalsuite processes left in `folder`: their temp files and folders are
    removed; a previous version moved aside by an interrupted `swap_folder` is put back when its
    replacement never arrived (else removed). `only`: leave every name but this one alone (a
    folder evalsuite does not own). Returns what was removed or restored."""
    done: list[Path] = []
    if not folder.is_dir():
        return done
    for p in folder.iterdir():
        m = _STALE[0].match(p.name) or _STALE[1].match(p.name)
        if m is None or _pid_alive(m["pid"]) or (only is not None and m["name"] != only):
            continue
        target = folder / m["name"]
        if m["kind"] == "old" and not target.exists():
            os.replace(p, target)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        done.append(p)
    return done


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# How a full disk shows up: OSError's errnos; in messages and logs, Python's, SQLite's and Rust's
# (safetensors) words for it.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_WORDS = ("No space left on device", "[Errno 28]", "os error 28", "database or disk is full", "Disk quota exceeded")


def disk_full(error: Union[BaseException, str]) -> bool:
    """Does this exception (by errno, or by its message when it is not an OSError) or this log
    text say the disk is full?"""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL_ERRNOS
    return any(w in str(error) for w in DISK_FULL_WORDS)


def _name_full_disk(exc: BaseException, path: Path) -> None:
    """A write that fails on a full disk names no file (the error comes at write or close) or a
    temp file that is gone by now: name the file or folder that was being written instead."""
    if isinstance(exc, OSError) and disk_full(exc):
        exc.filename = str(path)


def swap_folder(new: Path, target: Path) -> None:
    """Rename the finished folder `new` onto `target` (same parent). A previous `target` is moved
    aside first, put back if the rename fails, and removed only once the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None and old.is_symlink():  # the target was a link (inside the folder): drop the link only
        old.unlink()
    elif old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(target: Path, files: Mapping[str, Union[bytes, str]]) -> None:
    """Write `files` (relative path -> content) as the folder `target`, all or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        normal_modes(tmp)
        swap_folder(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _name_full_disk(exc, target)
        raise


def normal_modes(folder: Path) -> None:
    """mkdtemp makes 0700 folders (and safetensors writers 0600 files): before a temp folder is
    renamed into place, give it and its files the modes the umask would have given them."""
    umask = _umask()
    folder.chmod(0o777 & ~umask)
    for p in folder.rglob("*"):  # sub-folders keep their x bit (0666 on a folder locks it)
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Store:
    def __init__(self, root: Path):
        self.root = Path(root)

    # -- paths
    @property
    def jobs_dir(self) -> Path:
        return inside(self.root, "jobs")

    def job_dir(self, job_id: str) -> Path:
        return inside(self.jobs_dir, job_id)

    def cache_prefix(self, job_id: str) -> Path:
        """lm-eval's request cache of one job. A database that SQLite cannot read back whole
        (a torn write, a disk error) is dropped, not trusted: the job then recomputes."""
        d = inside(inside(self.root, "cache"), job_id)
        d.mkdir(parents=True, exist_ok=True)
        for db in d.glob("requests*.db"):
            if not _sqlite_intact(db):
                for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")):
                    p.unlink(missing_ok=True)
        return d / "requests"

    def tasks_dir(self, data_id: str) -> Path:
        return self.root / "tasks" / data_id.replace(":", "-")

    def datasets_cache(self, data_id: str) -> Path:
        """The `datasets` cache (HF_DATASETS_CACHE) of one mirror's data identity."""
        return inside(self.root, "datasets") / data_id.replace(":", "-")

    def experiment_file(self, name: str) -> Path:
        return inside(inside(self.root, "experiments"), f"{name}.json")

    # -- jobs
    def new_job_dir(self, job_id: str) -> Path:
        """A fresh temp folder for a job in progress (stale ones of dead runs are removed)."""
        self.job_dir(job_id)  # refuses an id that is not one plain name before anything is touched
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.jobs_dir.glob(f".tmp-{job_id}-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if not _pid_alive(pid):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = self.jobs_dir / f".tmp-{job_id}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        return tmp

    def commit_job(self, tmp: Path, record: JobRecord) -> Path:
        """Write the completion record, then rename the folder into place (atomic)."""
        record.sha256 = {rel: file_sha256(tmp / rel) for rel in [record.results_file, *record.samples_files, *record.process_files]}
        atomic_write_text(tmp / "job.json", record.model_dump_json(indent=2))
        checkpoint("job.commit")
        final = self.job_dir(record.job_id)
        if final.exists():  # a corrupt leftover: keep it aside rather than delete user data
            final.rename(final.with_name(f".stale-{record.job_id}-{os.getpid()}"))
        os.replace(tmp, final)
        return final

    def job_record(self, job_id: str, what: str = "job record") -> JobRecord:
        """A job's `job.json` as it is (files not checked). A record of an older schema version
        is a UserError saying to re-run (the run recomputes it: see `finished_job`), a newer one
        saying to upgrade; ValueError / OSError when it is absent or damaged."""
        return read_job_record(self.job_dir(job_id), what)

    def finished_job(self, job_id: str, identity: Optional[dict] = None) -> Optional[JobRecord]:
        """The record of a finished job, or None if absent, damaged or of an older schema version
        (then it is recomputed); its files' sha256 checked. A newer version is a UserError.
        `identity`: the job's identity as planned now; a record whose stored identity differs (e.g.
        another torch / transformers / tokenizers / kernels version) is recomputed, not reused."""
        folder = self.job_dir(job_id)
        try:
            rec = self.job_record(job_id)
        except (OSError, ValueError):
            return None
        except SchemaMismatch as exc:
            if exc.newer:
                raise
            return None
        if rec.job_id != job_id or not rec.sha256:
            return None
        if identity is not None and json.loads(json.dumps(identity, sort_keys=True, default=str)) != rec.identity:
            return None
        for rel, digest in rec.sha256.items():  # a damaged or edited file is recomputed, not trusted
            try:
                if file_sha256(folder / rel) != digest:
                    return None
            except OSError:
                return None
        return rec

    def results_path(self, rec: JobRecord) -> Path:
        return self.job_dir(rec.job_id) / rec.results_file

    # -- one writer at a time
    @contextmanager
    def lock(self):
        """Hold the results folder for one `evalsuite run`; a second one is refused with a clear
        message instead of interleaving writes. A results folder this call created is removed
        again when the run fails before writing anything into it (bad input writes nothing)."""
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        fh = open(path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"results folder {self.root} is in use by another evalsuite run ({holder}); wait for it to finish") from None
        try:
            fh.seek(0)
            fh.truncate()
            try:  # unbuffered: a full disk fails here once, not again at close, and names the file
                os.write(fh.fileno(), f"pid {os.getpid()}".encode())
            except OSError as exc:
                _name_full_disk(exc, path)
                raise
            yield
        except BaseException:
            if created and [p.name for p in self.root.iterdir()] == [".lock"]:
                path.unlink(missing_ok=True)
                self.root.rmdir()
            raise
        finally:
            if not fh.closed:
                fh.seek(0)
                fh.truncate()
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()

    # -- experiments
    def write_experiment(self, rec: ExperimentRecord) -> Path:
        path = self.experiment_file(rec.experiment)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, rec.model_dump_json(indent=2), point="experiment.write")
        return path

    def read_experiment(self, name: str) -> ExperimentRecord:
        """The experiment's last run; one line for a missing, damaged or other-version record."""
        path = self.experiment_file(name)
        try:
            return parse_record(ExperimentRecord, path.read_bytes(), path, f"the record of experiment {name!r}", REDO_EXPERIMENT)
        except OSError as exc:
            raise UserError(f"{path}: no finished run of experiment {name!r} (run `evalsuite run --all` first){self._finished_elsewhere()}") from exc
        except ValueError as exc:
            raise UserError(f"{path}: damaged experiment record: {str(exc).splitlines()[0]}") from exc


    def _finished_elsewhere(self) -> str:
        """'; finished runs here: NAME (--config FILE), ...' for the experiments of this results
        folder that have a finished run (what a user who ran the demo is looking for), else ''."""
        found = []
        for path in sorted((self.root / "experiments").glob("*.json")):
            try:
                rec = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(rec, dict) and rec.get("experiment"):
                where = f" (--config {rec['config_file']})" if rec.get("config_file") else ""
                found.append(f"{rec['experiment']}{where}")
        return f"; finished runs in {self.root}: {', '.join(found)}" if found else ""


def _sqlite_intact(db: Path) -> bool:
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
