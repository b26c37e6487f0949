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

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from evalsuite.errors import UserError
from evalsuite.faults import checkpoint
from evalsuite.fsio import atomic_write_text, file_sha256, name_full_disk, pid_alive
from evalsuite.paths import inside
from evalsuite.schema import REDO_EXPERIMENT, REDO_JOB, SCHEMA_VERSION, ExperimentRecord, JobRecord, SchemaMismatch, parse_record

__all__ = ["SCHEMA_VERSION", "ExperimentRecord", "JobRecord", "Store"]  # the records live in evalsuite.schema


def job_id_of(model: str, benchmark: str, identity: Mapping[str, Any]) -> str:
    """The id (and folder name) of a job: `<model>--<benchmark>--<16 hex of its identity>`; the one
    rule for evaluated (`run/jobs.Job`) and imported (`published/importer`) jobs."""
    blob = json.dumps(identity, sort_keys=True).encode()
    return f"{model}--{benchmark}--{hashlib.sha256(blob).hexdigest()[:16]}"


def read_job_record(folder: Path, what: str = "job record") -> JobRecord:
    """`folder/job.json` (the one reader of job records), its version checked (OSError /
    ValueError: absent or damaged)."""
    path = Path(folder) / "job.json"
    return parse_record(JobRecord, path.read_bytes(), path, what, REDO_JOB)


def job_record(folder: Path, job_id: str, what: str) -> JobRecord:
    """A finished job's record, its schema version checked (its files' sha256, when recorded,
    are checked as they are read; samples: in the parsing pass)."""
    try:
        job = read_job_record(folder, what)
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: {what} is missing or damaged (rerun `evalsuite run`)") from exc
    if job.job_id != job_id:
        raise UserError(f"{folder}/job.json: records job {job.job_id}, expected {job_id}")
    return job


class Store:
    """A results folder. `jobs_here`: job folders sit in `root` itself, named by their id (a folder of
    job folders copied out of a store, as `verify --against` reads them), not in `root/jobs`."""

    def __init__(self, root: Path, *, jobs_here: bool = False):
        self.root = Path(root)
        self.jobs_here = jobs_here

    # -- paths
    @property
    def jobs_dir(self) -> Path:
        return self.root if self.jobs_here else inside(self.root, "jobs")

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
            if not pid_alive(pid):
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

    def samples_bytes_per_record(self, jobs: int = 50) -> Optional[float]:
        """Bytes per samples record over the first `jobs` stored jobs (what a new job's samples
        files will take per document, for `evalsuite plan`), or None when none is stored."""
        total, records = 0, 0
        for job in sorted(self.jobs_dir.glob("*/job.json"))[:jobs]:
            folder = job.parent
            if folder.name.startswith("."):
                continue
            for f in folder.rglob("samples_*.jsonl"):
                try:
                    total += f.stat().st_size
                    with f.open("rb") as fh:
                        records += sum(1 for _ in fh)
                except OSError:
                    continue
        return total / records if records else None

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
                name_full_disk(exc, path)
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
