"""The run history: every finished `evalsuite run` recorded in `results/history.sqlite`.

One row per run (id, time, experiment, lm-eval version, data identity), its models (identity and
settings), its jobs (job id, full job identity, lm-eval's per-task `task_hashes`, where the
results and per-sample logs are) and its leaderboard-normalized scores with standard errors per
benchmark and per subtask (from `evalsuite.score`). Named baselines point at runs.

A run is written in ONE transaction (WAL journal, synchronous=FULL): a crash or SIGKILL at any
point leaves the whole run or none of it. Everything that can fail (reading and scoring results
files) happens before the transaction starts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.faults import checkpoint
from evalsuite.history.db import connect, db_path, new_run_id, transaction
from evalsuite.names import check_name
from evalsuite.schema import ExperimentRecord
from evalsuite.schema import ModelScores
from evalsuite.results.store import Store
from evalsuite.study import Study, load_study

# ---------------------------------------------------------------------------------------------
# data


class ScoreEntry(BaseModel):
    model: str
    benchmark: str
    score_id: str
    display: str
    subtask: str = ""
    value: float
    stderr: Optional[float] = None
    raw: Optional[float] = None
    in_average: bool = True


class JobEntry(BaseModel):
    model: str
    benchmark: str
    job_id: str
    identity: dict[str, Any]
    task_hashes: dict[str, str] = Field(default_factory=dict)
    lm_eval_version: Optional[str] = None
    results_file: str
    samples_files: list[str] = Field(default_factory=list)


class ModelEntry(BaseModel):
    name: str
    role: str
    identity: str
    ref: dict[str, Any] = Field(default_factory=dict)


class RunInfo(BaseModel):
    """One recorded run, as read back from the history."""

    run_id: str
    seq: int
    created: float
    experiment: str
    config_file: Optional[str] = None
    finished: Optional[float] = None
    status: str = "ok"
    failed: list[str] = Field(default_factory=list)
    lm_eval: str
    data: str
    models: list[ModelEntry] = Field(default_factory=list)
    jobs: list[JobEntry] = Field(default_factory=list)
    scores: list[ScoreEntry] = Field(default_factory=list)

    @property
    def candidate(self) -> Optional[str]:
        return next((m.name for m in self.models if m.role == "candidate"), None)

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))

    def job(self, model: str, benchmark: str) -> Optional[JobEntry]:
        return next((j for j in self.jobs if j.model == model and j.benchmark == benchmark), None)

    def score(self, model: str, score_id: str, subtask: str = "") -> Optional[ScoreEntry]:
        return next((s for s in self.scores if s.model == model and s.score_id == score_id and s.subtask == subtask), None)

    def main_scores(self, model: str) -> dict[str, ScoreEntry]:
        """benchmark id -> the benchmark's own number (no subtasks, no extra scores)."""
        return {s.benchmark: s for s in self.scores if s.model == model and s.subtask == "" and s.score_id == s.benchmark}


class Baseline(BaseModel):
    name: str
    run_id: str
    created: float


# ---------------------------------------------------------------------------------------------
# recording


def _job_scores(model: str, bench_id: str, scored: ModelScores) -> list[ScoreEntry]:
    """Normalized scores (benchmark and subtasks, with standard errors) of one job's benchmark,
    from its model's scores in the study (scored once, in evalsuite.study; subtasks by evalsuite.score)."""
    out: list[ScoreEntry] = []
    for s in scored.scores.values():
        if s.benchmark != bench_id:
            continue
        common = dict(model=model, benchmark=s.benchmark, score_id=s.id, display=s.display, in_average=s.in_average)
        out.append(ScoreEntry(value=s.value, stderr=s.stderr, raw=s.raw, **common))
        out += [ScoreEntry(subtask=key, value=value, raw=s.subtask_raw.get(key), stderr=s.subtask_stderr.get(key), **common)
                for key, value in s.subtasks.items()]
    return out


def _collect(study: Study) -> tuple[list[ModelEntry], list[JobEntry], list[ScoreEntry]]:
    root = study.record  # the experiment record, as written
    models = [ModelEntry(name=m.name, role=m.role, identity=m.identity, ref=m.model_dump(mode="json")) for m in root.models]
    jobs: list[JobEntry] = []
    scores: list[ScoreEntry] = []
    for model, per in root.jobs.items():
        for bench, job_id in per.items():
            job = study.runs[model][bench]
            meta = job.meta
            results_file = job.folder / job.record.results_file
            base = study.store.root
            jobs.append(JobEntry(
                model=model, benchmark=bench, job_id=job_id, identity=job.record.identity,
                task_hashes={str(k): str(v) for k, v in meta.task_hashes.items()},
                lm_eval_version=meta.lm_eval_version if isinstance(meta.lm_eval_version, str) else None,
                results_file=results_file.relative_to(base).as_posix(),
                samples_files=[(job.folder / f).relative_to(base).as_posix() for f in job.record.samples_files],
            ))
            scores += _job_scores(model, bench, study.scores[model])
    return models, jobs, scores


def _joined(values: Iterable[Any]) -> str:
    return ",".join(sorted({str(v) for v in values if v is not None}))


def record_run(
    results_root: Path,
    run: Union[ExperimentRecord, Study],
    *,
    failed: Sequence[str] = (),
    created: Optional[float] = None,
    on_stage: Optional[Callable[[str], None]] = None,
) -> str:
    """Record one finished experiment run in the history; returns its run id.

    `failed`: the run's failure lines (the run is then recorded with status `partial`).
    `on_stage(stage)` is called inside the transaction after each table is written (`run`,
    `models`, `jobs`, `scores`) — a hook for crash tests; nothing is visible before COMMIT.
    `run`: the run's study (evalsuite.study), or an experiment record to load one from (every
    job's files checked first: a damaged job records nothing)."""
    results_root = Path(results_root)
    study = run if not isinstance(run, ExperimentRecord) else load_study(Store(results_root), run, check_all=True)
    experiment_record = study.record
    models, jobs, scores = _collect(study)
    created = time.time() if created is None else created
    run_id = new_run_id(created)
    def stage(name: str) -> None:
        checkpoint(f"history.{name}")
        if on_stage is not None:
            on_stage(name)
    with closing(connect(results_root, create=True)) as conn, transaction(conn):
        conn.execute(
            "INSERT INTO runs (run_id, created, experiment, config_file, finished, status, failed, lm_eval, data, candidate, record)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id, created, experiment_record.experiment, experiment_record.config_file, experiment_record.finished,
                "partial" if failed else "ok", json.dumps(list(failed)),
                _joined(j.identity.get("lm_eval") for j in jobs), _joined(j.identity.get("data") for j in jobs),
                next((m.name for m in models if m.role == "candidate"), None), experiment_record.model_dump_json(),
            ),
        )
        stage("run")
        conn.executemany(
            "INSERT INTO run_models (run_id, position, name, role, identity, ref) VALUES (?,?,?,?,?,?)",
            [(run_id, i, m.name, m.role, m.identity, json.dumps(m.ref, sort_keys=True)) for i, m in enumerate(models)],
        )
        stage("models")
        conn.executemany(
            "INSERT INTO run_jobs (run_id, model, benchmark, job_id, identity, task_hashes, lm_eval_version, results_file, samples_files)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (run_id, j.model, j.benchmark, j.job_id, json.dumps(j.identity, sort_keys=True), json.dumps(j.task_hashes, sort_keys=True),
                 j.lm_eval_version, j.results_file, json.dumps(j.samples_files))
                for j in jobs
            ],
        )
        stage("jobs")
        conn.executemany(
            "INSERT INTO scores (run_id, model, benchmark, score_id, display, subtask, value, stderr, raw, in_average)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(run_id, s.model, s.benchmark, s.score_id, s.display, s.subtask, s.value, s.stderr, s.raw, int(s.in_average)) for s in scores],
        )
        stage("scores")
    return run_id


# ---------------------------------------------------------------------------------------------
# reading


def _run_from_rows(conn: sqlite3.Connection, row: sqlite3.Row, *, details: bool = True) -> RunInfo:
    run_id = row["run_id"]
    models = [
        ModelEntry(name=r["name"], role=r["role"], identity=r["identity"], ref=json.loads(r["ref"]))
        for r in conn.execute("SELECT * FROM run_models WHERE run_id=? ORDER BY position", (run_id,))
    ]
    jobs = []
    if details:
        jobs = [
            JobEntry(
                model=r["model"], benchmark=r["benchmark"], job_id=r["job_id"], identity=json.loads(r["identity"]),
                task_hashes=json.loads(r["task_hashes"]), lm_eval_version=r["lm_eval_version"],
                results_file=r["results_file"], samples_files=json.loads(r["samples_files"]),
            )
            for r in conn.execute("SELECT * FROM run_jobs WHERE run_id=? ORDER BY model, benchmark", (run_id,))
        ]
    query = "SELECT * FROM scores WHERE run_id=?" + ("" if details else " AND subtask=''") + " ORDER BY model, benchmark, score_id, subtask"
    scores = [
        ScoreEntry(
            model=r["model"], benchmark=r["benchmark"], score_id=r["score_id"], display=r["display"], subtask=r["subtask"],
            value=r["value"], stderr=r["stderr"], raw=r["raw"], in_average=bool(r["in_average"]),
        )
        for r in conn.execute(query, (run_id,))
    ]
    return RunInfo(
        run_id=run_id, seq=row["seq"], created=row["created"], experiment=row["experiment"], config_file=row["config_file"],
        finished=row["finished"], status=row["status"], failed=json.loads(row["failed"]), lm_eval=row["lm_eval"],
        data=row["data"], models=models, jobs=jobs, scores=scores,
    )


def describe_machine(machine: Optional[dict]) -> str:
    """A job record's `machine` in words: "NVIDIA H100 80GB HBM3, CUDA 12.4, cuDNN 90100", "CPU"
    (no GPU), "not recorded" (an imported or older record)."""
    if not machine:
        return "not recorded"
    if not machine.get("gpu"):
        return "CPU"
    parts = [str(machine["gpu"])]
    parts += [f"{label} {machine[key]}" for key, label in (("cuda", "CUDA"), ("cudnn", "cuDNN")) if machine.get(key)]
    return ", ".join(parts)


def machines(results_root: Path, run: RunInfo) -> list[str]:
    """The machines a run's jobs ran on (`describe_machine`, each once, sorted); jobs whose record
    is gone are left out."""
    store, found = Store(results_root), set()
    for job in run.jobs:
        try:
            found.add(describe_machine(store.job_record(job.job_id).machine))
        except (OSError, ValueError, UserError):
            continue
    return sorted(found)


def list_runs(
    results_root: Path,
    *,
    experiment: Optional[str] = None,
    model: Optional[str] = None,
    limit: Optional[int] = None,
    details: bool = False,
) -> list[RunInfo]:
    """Recorded runs, oldest first; `model` keeps runs that evaluated a model of that name.
    Without `details` only benchmark-level scores are read (no jobs, no subtasks)."""
    where, args = [], []
    if experiment is not None:
        where.append("experiment = ?")
        args.append(experiment)
    if model is not None:
        where.append("run_id IN (SELECT run_id FROM run_models WHERE name = ?)")
        args.append(model)
    sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq DESC"
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UserError(f"--last {limit}: the number of runs to list must be 1 or more")
        sql += f" LIMIT {int(limit)}"
    with closing(connect(results_root, create=False)) as conn:
        rows = conn.execute(sql, args).fetchall()
        return [_run_from_rows(conn, r, details=details) for r in reversed(rows)]


def get_run(results_root: Path, run_id: str) -> RunInfo:
    """One run with its jobs and all scores. `run_id` may be a unique prefix."""
    if not run_id:
        raise UserError("empty run id (see `evalsuite history`)")
    like = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with closing(connect(results_root, create=False)) as conn:
        rows = conn.execute("SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY seq", (like,)).fetchall()
        exact = [r for r in rows if r["run_id"] == run_id]
        if exact:
            rows = exact
        if not rows:
            raise UserError(f"{db_path(results_root)}: no run {run_id!r} in the history (see `evalsuite history`)")
        if len(rows) > 1:
            raise UserError(f"run id {run_id!r} is ambiguous ({len(rows)} runs start with it)")
        return _run_from_rows(conn, rows[0])


def latest_run(results_root: Path, *, experiment: Optional[str] = None, ok_only: bool = False) -> RunInfo:
    sql, args = "SELECT * FROM runs", []
    cond = []
    if experiment is not None:
        cond.append("experiment = ?")
        args.append(experiment)
    if ok_only:
        cond.append("status = 'ok'")
    if cond:
        sql += " WHERE " + " AND ".join(cond)
    sql += " ORDER BY seq DESC LIMIT 1"
    with closing(connect(results_root, create=False)) as conn:
        row = conn.execute(sql, args).fetchone()
        if row is None:
            what = f" of experiment {experiment!r}" if experiment else ""
            raise UserError(f"{db_path(results_root)}: no recorded run{what} yet")
        return _run_from_rows(conn, row)


# ---------------------------------------------------------------------------------------------
# baselines


def set_baseline(results_root: Path, name: str, run_id: Optional[str] = None) -> Baseline:
    """Point baseline `name` at a run (default: the latest complete run). Replaces an old pointer."""
    check_name(name, "baseline name")
    run = get_run(results_root, run_id) if run_id else latest_run(results_root, ok_only=True)
    created = time.time()
    with closing(connect(results_root, create=False, write=True)) as conn:
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO baselines (name, run_id, created) VALUES (?,?,?)", (name, run.run_id, created))
    return Baseline(name=name, run_id=run.run_id, created=created)


def list_baselines(results_root: Path) -> list[Baseline]:
    with closing(connect(results_root, create=False)) as conn:
        return [Baseline(name=r["name"], run_id=r["run_id"], created=r["created"]) for r in conn.execute("SELECT * FROM baselines ORDER BY name")]


def resolve_run(results_root: Path, ref: str) -> RunInfo:
    """A baseline name or a run id (or unique prefix) -> the run."""
    with closing(connect(results_root, create=False)) as conn:
        row = conn.execute("SELECT run_id FROM baselines WHERE name = ?", (ref,)).fetchone()
    return get_run(results_root, row["run_id"] if row else ref)
