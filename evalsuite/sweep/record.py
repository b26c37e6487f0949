"""The sweep's record: `results/sweeps/<name>/<strategy>.json`, rewritten atomically after every
candidate's round, so a killed sweep resumes from it (jobs are reused by their ids anyway; the
record also spares the merge of a candidate whose round is already stored)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.fsio import atomic_write_text
from evalsuite.paths import inside
from evalsuite.results.store import Store
from evalsuite.sweep.select import Decision

SCHEMA_VERSION = 1


class CandidateRound(BaseModel):
    round: int  # 1-based
    experiment: str
    jobs: dict[str, str]  # benchmark -> job id
    requests: int  # lm-eval requests the candidate's process(es) ran this round
    documents: int  # documents evaluated this round (all tasks)


class CandidateRecord(BaseModel):
    name: str
    params: dict[str, Any]
    label: str
    recipe_file: str  # relative to the sweep folder
    fingerprint: Optional[str] = None  # the merge's (mergekit inputs) fingerprint
    plan_file: Optional[str] = None  # mergekit's per-tensor plan, kept after the merge is deleted
    rounds: list[CandidateRound] = Field(default_factory=list)


class RoundRecord(BaseModel):
    round: int  # 1-based
    share: float  # share of each task's documents seen after it (1.0: the full set)
    alive: list[str]
    best: Optional[str] = None
    scores: dict[str, float] = Field(default_factory=dict)  # candidate -> objective so far
    decisions: list[Decision] = Field(default_factory=list)


class Verdict(BaseModel):
    """One of the winner's paired verdicts (evalsuite.compare on the documents both answered)."""

    other: str
    benchmark: str
    delta: float
    ci_low: float
    ci_high: float
    p_holm: float
    verdict: str
    n_docs: int


class Ranked(BaseModel):
    name: str
    rank: int
    dropped_in_round: Optional[int] = None
    objective: float
    scores: dict[str, float]  # benchmark -> normalized, on the documents it answered
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)  # benchmark -> 95% bootstrap interval
    documents: int  # distinct documents it answered (all tasks)
    label: str = ""


class SweepRecord(BaseModel):
    schema_version: int = SCHEMA_VERSION
    status: Literal["running", "finished"] = "running"
    sweep: str
    strategy: Literal["halving", "full"]
    plan: str  # digest of what decides the outcome (candidates, benchmarks, rounds, seed, ...)
    config_file: Optional[str] = None
    benchmarks: list[str]
    objective: str
    shares: list[float]
    alpha: float
    parents: dict[str, dict[str, str]] = Field(default_factory=dict)  # parent -> benchmark -> job id
    n_docs: dict[str, dict[str, int]] = Field(default_factory=dict)  # benchmark -> task -> documents
    candidates: list[CandidateRecord] = Field(default_factory=list)
    rounds: list[RoundRecord] = Field(default_factory=list)
    ranking: list[Ranked] = Field(default_factory=list)
    winner: Optional[str] = None
    runner_up: Optional[str] = None
    verdicts: list[Verdict] = Field(default_factory=list)
    requests: int = 0  # lm-eval requests run for the candidates (parents not counted)
    started: float = 0.0
    finished: Optional[float] = None

    def candidate(self, name: str) -> CandidateRecord:
        return next(c for c in self.candidates if c.name == name)


def sweep_dir(store: Store, name: str) -> Path:
    return inside(inside(store.root, "sweeps"), name)


def record_path(store: Store, name: str, strategy: str) -> Path:
    return sweep_dir(store, name) / f"{strategy}.json"


def read_record(store: Store, name: str, strategy: str) -> Optional[SweepRecord]:
    path = record_path(store, name, strategy)
    if not path.is_file():
        return None
    try:
        rec = SweepRecord.model_validate_json(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path}: not a sweep record ({str(exc).splitlines()[0]}); move it aside to start the sweep afresh") from None
    if rec.schema_version != SCHEMA_VERSION:
        raise UserError(f"{path}: sweep record schema {rec.schema_version}, this evalsuite reads {SCHEMA_VERSION}")
    return rec


def write_record(store: Store, rec: SweepRecord) -> Path:
    path = record_path(store, rec.sweep, rec.strategy)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, rec.model_dump_json(indent=1) + "\n")
    return path
