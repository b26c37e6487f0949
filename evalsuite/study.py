"""One experiment run as every stage after the run reads it: `load_study(store, record)`.

Read once: each job's record, each results file (its bytes hashed against the recorded sha256
and parsed from the same bytes), each model's scores (`evalsuite.score`, once per model over its
jobs' results). Samples are read lazily, on first use of `study.docs[model][benchmark]` (compare,
the report's sample browser, verify), their sha256 checked in the same pass — unless the caller
has already checked the job's files in this process (`verified`: the runner's reuse check and
commit hash every file), so no samples file is hashed twice in one `evalsuite run`.

The history (`history.record_run`), the CLI tables (`cli/run.py`), `compare`, the report and
`verify` take a Study instead of reaching into the store themselves.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional

from evalsuite.compare import Comparison, compare_models
from evalsuite.errors import UserError
from evalsuite.results.files import ModelResults, ResultsMeta, merge_as, meta_of, read_results_json, results_of
from evalsuite.results.samples import TaskDocs, read_benchmark_samples
from evalsuite.results.store import Store, job_record
from evalsuite.schema import ExperimentRecord, JobRecord, ModelRef, ModelScores
from evalsuite.score import score_model
from evalsuite.suite import Suite, load_suite


@dataclass
class StudyJob:
    """One finished job of the run: its record, folder and parsed results file."""

    record: JobRecord
    folder: Path
    results: dict  # lm-eval's results JSON
    verified: bool  # every file's sha256 checked in this process already

    @cached_property
    def parsed(self) -> ModelResults:
        """The results file read into typed fields (metrics, n-shot, documents, task configs)."""
        return results_of(self.results, self.folder / self.record.results_file)

    @cached_property
    def meta(self) -> ResultsMeta:
        """The results file's run-level fields (versions, config, dtype, task hashes)."""
        return meta_of(self.results)

    def samples(self, suite: Suite) -> dict[str, TaskDocs]:
        """leaf task -> documents (sha256 checked while read unless `verified`)."""
        digests = {} if self.verified else {self.folder / rel: h for rel, h in self.record.sha256.items()}
        bench = suite.get(self.record.benchmark)
        return read_benchmark_samples(bench, [self.folder / f for f in self.record.samples_files], digests)


class _LazyDocs(Mapping):
    """benchmark -> task -> TaskDocs of one model, each benchmark read on first access."""

    def __init__(self, jobs: Mapping[str, StudyJob], suite: Suite):
        self._jobs, self._suite, self._read = jobs, suite, {}

    def __getitem__(self, bench: str) -> dict[str, TaskDocs]:
        if bench not in self._read:
            self._read[bench] = self._jobs[bench].samples(self._suite)
        return self._read[bench]

    def __iter__(self) -> Iterator[str]:
        return iter(self._jobs)

    def __len__(self) -> int:
        return len(self._jobs)


@dataclass
class Study:
    """What the store holds for one experiment run: models, their jobs, scores and samples."""

    record: ExperimentRecord
    store: Store
    suite: Suite
    runs: dict[str, dict[str, StudyJob]]  # model -> benchmark -> job
    scores: dict[str, ModelScores]  # model -> leaderboard numbers (models with jobs)
    model_results: dict[str, ModelResults]  # model -> its jobs' results, merged (what was scored)
    docs: dict[str, _LazyDocs] = field(default_factory=dict)  # model -> benchmark -> task -> docs (lazy)

    @property
    def experiment(self) -> str:
        return self.record.experiment

    @property
    def finished(self) -> float:
        return self.record.finished

    @property
    def config_file(self) -> Optional[str]:
        return self.record.config_file

    @property
    def models(self) -> list[ModelRef]:
        return self.record.models

    @property
    def jobs(self) -> dict[str, dict[str, JobRecord]]:
        return {m: {b: j.record for b, j in per.items()} for m, per in self.runs.items()}

    @property
    def job_dirs(self) -> dict[str, dict[str, Path]]:
        return {m: {b: j.folder for b, j in per.items()} for m, per in self.runs.items()}

    @property
    def results(self) -> dict[str, dict[str, dict]]:
        """model -> benchmark -> parsed lm-eval results JSON."""
        return {m: {b: j.results for b, j in per.items()} for m, per in self.runs.items()}

    @property
    def candidate(self) -> str:
        return self.record.candidate.name

    @property
    def parents(self) -> list[str]:
        return [m.name for m in self.record.parents]


def load_study(store: Store, record: ExperimentRecord, suite: Optional[Suite] = None,
               verified: Collection[str] = (), check_all: bool = False) -> Study:
    """The study of one experiment record. `verified`: ids of jobs whose files this process has
    checked against their sha256 already (their samples are then read without hashing).
    `check_all`: check every other job's files now (`Store.finished_job`), not as they are read:
    for a reader of the results alone that must still refuse a damaged job (the history)."""
    suite = suite or load_suite()
    if check_all:
        verified = set(verified)
        for name, per in record.jobs.items():
            for bench_id, job_id in per.items():
                if job_id not in verified and store.finished_job(job_id) is None:
                    raise UserError(f"{store.job_dir(job_id)}: job of {name} on {bench_id} is missing or damaged (rerun `evalsuite run`)")
                verified.add(job_id)
    runs: dict[str, dict[str, StudyJob]] = {}
    scores: dict[str, ModelScores] = {}
    merged: dict[str, ModelResults] = {}
    for model in record.models:
        name = model.name
        runs[name] = {}
        parsed = []
        for bench_id, job_id in record.jobs.get(name, {}).items():
            job = _job(store, job_id, f"job of {name} on {bench_id}", job_id in verified)
            runs[name][bench_id] = job
            parsed.append(job.parsed)
        if parsed:
            merged[name] = merge_as(parsed, name)
            scores[name] = score_model(merged[name], suite)
    study = Study(record=record, store=store, suite=suite, runs=runs, scores=scores, model_results=merged)
    study.docs = {name: _LazyDocs(per, suite) for name, per in runs.items()}
    return study


def read_study(results_dir: Path, experiment: str, suite: Optional[Suite] = None) -> Study:
    """`load_study` of an experiment's last run in a results folder."""
    store = Store(Path(results_dir))
    return load_study(store, store.read_experiment(experiment), suite)


def _job(store: Store, job_id: str, what: str, verified: bool) -> StudyJob:
    folder = store.job_dir(job_id)
    rec = job_record(folder, job_id, what)
    sha256 = None if verified else rec.sha256.get(rec.results_file)
    return StudyJob(record=rec, folder=folder, results=read_results_json(folder / rec.results_file, sha256), verified=verified)


def compare_study(study: Study, **kwargs) -> Comparison:
    have = [p for p in study.parents if study.docs.get(p)]
    return compare_models(study.docs, study.candidate, have, suite=kwargs.pop("suite", study.suite), **kwargs)
