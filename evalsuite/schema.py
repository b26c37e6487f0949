"""The records that cross stages, in one place (pydantic): what a model is (`ModelRef`), what a
finished job stored (`JobRecord`), which job served which model x benchmark in an experiment's
last run (`ExperimentRecord`). The study built from them (scores, lazily read samples) is
`evalsuite.study.Study`; what a run did is `evalsuite.run.events.RunOutcome`.

`schema_version` is written into every job and experiment record and checked on read
(`check_version`): a record of another version is refused with one line saying what to do.
Records written before this module existed carry version 1 too (JobRecord and ExperimentRecord
always wrote `schema_version: 1` with these fields; `models` held ModelRef dumps), so they read
as they are; a record without the key is taken as version 1 (the fields are the same).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, Field, model_serializer

from evalsuite.errors import UserError

SCHEMA_VERSION = 1
R = TypeVar("R", bound="BaseModel")
REDO_JOB = "re-run `evalsuite run` to compute it again"
REDO_EXPERIMENT = "re-run `evalsuite run --all` to write it again (finished jobs are reused)"

Status = Literal["ok"]  # a job record exists only for a finished job
Role = Literal["candidate", "parent"]
# Which lm-eval evalsuite reproduces (docs/fidelity.md): "leaderboard" = the Hugging Face fork the
# Open LLM Leaderboard ran (its model-side rules on top of lm-eval 0.4.13, one lm-eval process per
# model over all its benchmarks); "upstream" = lm-eval 0.4.13 as released, one process per job.
Harness = Literal["leaderboard", "upstream"]
# Which task files each lm_eval process indexes at start (evalsuite/run/lm_eval_main.py).
TaskIndex = Literal["leaderboard", "full"]
StartMode = Literal["warm", "fresh"]  # how a local lm_eval process starts (evalsuite/run/warm.py); not identity


class ModelRef(BaseModel):
    """One model of an experiment as lm-eval is given it, with its content identity."""

    name: str
    role: Role
    pretrained: str
    revision: Optional[str] = None
    identity: str
    dtype: str
    device: str
    chat_template: bool = False
    multiturn: bool = False
    trust_remote_code: bool = False
    local_path: Optional[Path] = None
    # the leaderboard's details (repo id or folder): no model is loaded. `evalsuite import` records
    # True here, with the details' `source` and `run`.
    published: Union[str, bool, None] = None
    source: Optional[str] = None
    run: Optional[str] = None

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        out = handler(self)
        for key in ("source", "run"):  # only imports have them: other records stay as they were
            if out.get(key) is None:
                out.pop(key, None)
        return out


class JobRecord(BaseModel):
    """Completion record of one job, written last into the job folder (`job.json`)."""

    schema_version: int = SCHEMA_VERSION
    status: Status = "ok"
    job_id: str
    model: str
    role: Role
    benchmark: str
    task: str
    identity: dict
    command: list[str]
    env: dict[str, str]
    results_file: str  # relative to the job folder
    samples_files: list[str]
    process: Optional[str] = None  # id of the shared lm-eval process that computed it (harness leaderboard)
    process_files: list[str] = Field(default_factory=list)  # that process's whole results file
    sha256: dict[str, str] = Field(default_factory=dict)  # relative path -> hash of lm-eval's files
    started: float
    finished: float
    # how its lm-eval process started: forked from a warm zygote or a fresh interpreter
    # (evalsuite/run/warm.py; not identity: the same program either way). None: imported, or older.
    start: Optional[StartMode] = None
    # CUDA / cuDNN versions and the GPU's name where it ran (evalsuite.run.jobs.machine_info):
    # recorded and shown where numbers are compared, not identity. None: imported, or older.
    machine: Optional[dict[str, Optional[str]]] = None
    # the batch size(s) lm-eval's `batch_size: auto` chose (its results' config.batch_sizes); None:
    # the size was given, or an older record
    batch_sizes: Optional[list[int]] = None

    @property
    def duration_s(self) -> float:
        return self.finished - self.started


class ExperimentRecord(BaseModel):
    """The last run of an experiment: its models (candidate first) and which job served each
    model x benchmark."""

    schema_version: int = SCHEMA_VERSION
    experiment: str
    config_file: Optional[str] = None
    finished: float
    models: list[ModelRef]
    jobs: dict[str, dict[str, str]] = Field(default_factory=dict)  # model -> benchmark -> job_id

    @property
    def candidate(self) -> ModelRef:
        return next(m for m in self.models if m.role == "candidate")

    @property
    def parents(self) -> list[ModelRef]:
        return [m for m in self.models if m.role != "candidate"]


def parse_record(cls: type[R], text: Union[str, bytes], path: Path, what: str, redo: str) -> R:
    """A record's JSON text -> `cls`, its schema version checked first (`check_version`). A text
    that is not a record of `cls` raises ValueError (the caller says what is damaged)."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    version = data.get("schema_version", 1)
    check_version(path, version if isinstance(version, int) else -1, what, redo)
    return cls.model_validate(data)


class SchemaMismatch(UserError):
    """A record of another schema version (`newer`: written by a newer evalsuite)."""

    def __init__(self, message: str, newer: bool):
        super().__init__(message)
        self.newer = newer


def check_version(path: Path, version: int, what: str, redo: str) -> None:
    """One line for a record of another schema version: `redo` says how to write it again."""
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise SchemaMismatch(f"{path}: {what} has schema version {version}, newer than this evalsuite reads "
                             f"({SCHEMA_VERSION}); upgrade evalsuite", newer=True)
    raise SchemaMismatch(f"{path}: {what} has schema version {version}, older than this evalsuite reads "
                         f"({SCHEMA_VERSION}); {redo}", newer=False)


# ---------------------------------------------------------------------------------------------
# leaderboard scores (computed by evalsuite.score; never stored as such)


class Score(BaseModel):
    """One leaderboard number (a benchmark's main score or one of its extra scores)."""

    id: str
    display: str
    benchmark: str
    value: float
    """normalized, 0-100, unrounded"""
    raw: float
    """raw aggregate in [0, 1]: unweighted mean for normalize_then_mean, else as combined"""
    stderr: Optional[float]
    """normalized standard error (module docstring), None when lm-eval gave none"""
    subtasks: dict[str, float]
    """normalized value per leaf task (per metric key for mean_of_metrics)"""
    subtask_raw: dict[str, float] = Field(default_factory=dict)
    """raw value per key of `subtasks`, as the results file gives it"""
    subtask_stderr: dict[str, Optional[float]] = Field(default_factory=dict)
    """normalized standard error per key of `subtasks` (`normalize_stderr`)"""
    in_average: bool
    label: Optional[str] = None
    """what produced the number (MATH: which parser), from the suite file; None: nothing to say"""
    task_version: Optional[float] = None
    """version of the lm-eval task code that wrote the values (None: unknown or mixed)"""
    metrics: list[str] = Field(default_factory=list)
    """the metric keys read from the results file (a version rule may differ from the suite's)"""


class Incomplete(BaseModel):
    """A benchmark of which the results hold only some subtasks: no benchmark number."""

    benchmark: str
    present: int
    tasks: int
    missing: list[str]
    subtasks: dict[str, float] = Field(default_factory=dict)
    """normalized value per present subtask (its own random baseline), where that is well defined
    (one metric per subtask); empty otherwise"""


class ModelScores(BaseModel):
    model: str
    scores: dict[str, Score]
    """display name -> Score, in the suite's column order; absent benchmarks left out"""
    average: Optional[float]
    """plain mean of the benchmarks' main scores, only when all are present"""
    average_label: str = "Average"
    sources: list[str] = Field(default_factory=list)
    limit: Optional[Union[int, float]] = None
    """lm-eval's --limit of the results (the largest, if files differ); None: complete runs"""
    notes: list[str] = Field(default_factory=list)
    """one-line remarks to show under a table (parser versions, --limit, a missing Average)"""
    incomplete: dict[str, "Incomplete"] = Field(default_factory=dict)
    """display name -> a benchmark with only some of its subtasks in the results (`partial` scoring):
    no number, no Average"""

    def value(self, display: str) -> Optional[float]:
        if display == self.average_label:
            return self.average
        s = self.scores.get(display)
        return s.value if s else None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        out.update({d: s.value for d, s in self.scores.items()})
        if self.average is not None:
            out[self.average_label] = self.average
        out["raw"] = {d: s.raw for d, s in self.scores.items()}
        out["stderr"] = {d: s.stderr for d, s in self.scores.items()}
        out["subtasks"] = {d: s.subtasks for d, s in self.scores.items()}
        out["sources"] = list(self.sources)
        out["limit"] = self.limit
        out["labels"] = {d: s.label for d, s in self.scores.items() if s.label is not None}
        out["task_versions"] = {d: s.task_version for d, s in self.scores.items()}
        out["notes"] = list(self.notes)
        if self.incomplete:
            out["incomplete"] = {d: i.model_dump() for d, i in self.incomplete.items()}
        return out
