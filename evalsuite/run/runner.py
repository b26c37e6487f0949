"""Run an experiment: resolve (or merge) the models, expand (model x benchmark) jobs, skip the
finished ones, execute the rest through lm-eval, record which job served which cell.

Everything that can fail on bad input (config, mirror, models) is checked before anything is
written under the results folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evalsuite.config import Experiment
from evalsuite.errors import UserError
from evalsuite.models.load import ModelRef, resolve_model
from evalsuite.paths import inside
from evalsuite.run.jobs import Job, JobSettings
from evalsuite.run.local import LocalExecutor
from evalsuite.store import ExperimentRecord, JobRecord, Store, sweep_stale
from evalsuite.suite import load_suite


class RunOutcome(BaseModel):
    experiment: str
    models: list[ModelRef]
    done: dict[str, dict[str, JobRecord]]  # model -> benchmark -> record
    reused: int = 0
    failed: list[str] = []  # one line per failed job, with its log path

    @property
    def ok(self) -> bool:
        return not self.failed

    def result_files(self, store: Store) -> list[Path]:
        return [store.results_path(r) for per in self.done.values() for r in per.values()]


def check_data(exp: Experiment) -> dict[str, str]:
    """Each benchmark's data identity (its own dataset only, so changing one dataset re-runs only
    its jobs); a broken mirror is a UserError raised before anything is written."""
    from evalsuite import data

    if not exp.use_mirror:
        return {b: "hub" for b in exp.benchmarks}
    mirror = Path(exp.data.mirror)
    problems = data.mirror_problems(mirror, exp.benchmarks)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"data.mirror {mirror}: {problems[0]}{more}")
    return {b: data.data_identity(mirror, [b]) for b in exp.benchmarks}


def resolve_models(exp: Experiment, store: Store, console: Console, quiet: bool = False) -> list[ModelRef]:
    refs: list[ModelRef] = []
    merged = None
    if exp.candidate.recipe is not None:
        from evalsuite.models.merge import build_merge

        out = merged_dir(store, exp)
        local = dict(exp.local_models)
        local.update({f"evalsuite-fixtures/{name}": p for name, p in _fixture_map(exp).items()})
        revisions = {m.hub: m.revision for m in exp.parents if m.hub and m.revision}
        result = build_merge(Path(exp.candidate.recipe), out, local_models=local, revisions=revisions, progress=not quiet)
        console.print(f"[bold]merge[/] {exp.candidate.display_name}: {'reused' if result.reused else 'built'} {result.path}")
        merged = (Path(result.path), result.fingerprint)
    refs.append(resolve_model(exp.candidate, exp, "candidate", merged=merged))
    refs += [resolve_model(p, exp, "parent") for p in exp.parents]
    return refs


def merged_dir(store: Store, exp: Experiment) -> Path:
    """results/merged/<candidate>; a symlink out of the results folder is refused, not merged
    through, reused or replaced (it may be the user's on purpose: only they can say)."""
    return inside(inside(store.root, "merged"), exp.candidate.display_name)


def _fixture_map(exp: Experiment) -> dict[str, Path]:
    """Tiny fixture models named in the experiment (as parents), so demo recipes can refer to them."""
    if not any(m.fixture for m in exp.parents):
        return {}
    from evalsuite.fixtures.tiny import build_demo_models
    from evalsuite.models.load import fixtures_root

    return build_demo_models(fixtures_root(exp))


def plan_jobs(exp: Experiment, refs: list[ModelRef], data_ids: dict[str, str], include_path: Optional[Path], nltk_dir: Optional[Path]) -> list[Job]:
    suite = load_suite()
    settings = JobSettings(batch_size=exp.batch_size, limit=exp.limit, offline=exp.offline or exp.use_mirror, threads=exp.threads, backend=exp.backend, task_index=exp.executor.task_index)
    return [
        Job(
            model=ref,
            benchmark=b,
            task=suite.get(b).group,
            settings=settings,
            data_id=data_ids[b],
            include_path=include_path,
            nltk_data=nltk_dir if b == "ifeval" else None,
        )
        for ref in refs
        for b in exp.benchmarks
    ]


class _ProgressEvents:
    """Executor events -> live progress display and the outcome."""

    def __init__(self, progress: Progress, overall, current, outcome: RunOutcome):
        self.progress, self.overall, self.current, self.outcome = progress, overall, current, outcome
        self.running: dict[str, str] = {}

    def _show(self) -> None:
        label = ", ".join(self.running.values()) or "idle"
        self.progress.update(self.current, description=label[:90], visible=True)
        done = sum(len(per) for per in self.outcome.done.values())
        failed = len(self.outcome.failed)
        self.progress.update(
            self.overall, description=f"jobs: {done} done, {len(self.running)} running, {failed} failed"
        )

    def started(self, job: Job) -> None:
        self.running[job.job_id] = f"{job.model.name} · {job.benchmark}"
        self._show()

    def output(self, job: Job, line: str) -> None:
        self.progress.update(self.current, description=f"{job.model.name} · {job.benchmark} │ {line[:70]}")

    def finished(self, job: Job, record: JobRecord) -> None:
        self.running.pop(job.job_id, None)
        self.outcome.done[job.model.name][job.benchmark] = record
        self.progress.advance(self.overall)
        self._show()

    def failed(self, job: Job, message: str) -> None:
        self.running.pop(job.job_id, None)
        self.outcome.failed.append(message)
        self.progress.console.print(f"[red]failed:[/] {message}")
        self.progress.advance(self.overall)
        self._show()


def make_executor(exp: Experiment):
    if exp.executor.name == "ray":
        from evalsuite.run.ray_executor import RayExecutor

        e = exp.executor
        return RayExecutor(address=e.ray_address, num_gpus=e.num_gpus, max_retries=e.max_retries)
    return LocalExecutor(workers=exp.executor.workers)


def run_experiment(exp: Experiment, *, console: Optional[Console] = None, quiet: bool = False) -> RunOutcome:
    console = console or Console(stderr=True, quiet=quiet)
    store = Store(Path(exp.output.results))
    data_ids = check_data(exp)
    executor = make_executor(exp)
    for sub in ("jobs", "cache", "merged"):  # a symlink out of results/ is refused before any work
        inside(store.root, sub)
    store.experiment_file(exp.name)
    if exp.candidate.recipe is not None:
        merged_dir(store, exp)
    with store.lock():  # held from the merge on: a second run cannot swap a model under our jobs
        for folder in ("jobs", "merged", "experiments"):  # what killed runs left (evalsuite/faults.py)
            sweep_stale(store.root / folder)
        refs = resolve_models(exp, store, console, quiet)
        for ref in refs:
            if ref.trust_remote_code:
                say = Console(stderr=True) if console.quiet else console  # a security warning survives --quiet
                say.print(f"[yellow]warning:[/] {ref.name}: trust_remote_code is on — the model's own Python code will run")
        return _run_jobs(exp, store, executor, refs, data_ids, console, quiet)


def _run_jobs(exp: Experiment, store: Store, executor, refs: list[ModelRef], data_ids: dict[str, str], console: Console, quiet: bool) -> RunOutcome:
    include_path = None
    if exp.use_mirror:
        from evalsuite import data

        include_path = store.tasks_dir(data.data_identity(Path(exp.data.mirror), exp.benchmarks))
        if not include_path.is_dir():
            include_path.parent.mkdir(parents=True, exist_ok=True)
            data.write_task_overrides(Path(exp.data.mirror), exp.benchmarks, include_path)
    nltk_dir = None
    if "ifeval" in exp.benchmarks:
        from evalsuite.nltk_data import ensure_punkt_tab

        nltk_dir = store.root / "nltk_data"
        status = ensure_punkt_tab(nltk_dir, offline=exp.offline or exp.use_mirror)
        if status.kind in {"standin", "missing"}:
            console.print(f"[yellow]warning:[/] NLTK punkt_tab: {status.detail} — IFEval scores may differ from the leaderboard's")

    jobs = plan_jobs(exp, refs, data_ids, include_path, nltk_dir)
    outcome = RunOutcome(experiment=exp.name, models=refs, done={r.name: {} for r in refs})
    pending = []
    for job in jobs:
        rec = store.finished_job(job.job_id)
        if rec is not None:
            outcome.done[job.model.name][job.benchmark] = rec
            outcome.reused += 1
        else:
            pending.append(job)

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet) as progress:
        overall = progress.add_task(
            f"{exp.name}: {len(pending)} to run, {outcome.reused} reused ({executor.name})", total=len(jobs), completed=outcome.reused
        )
        current = progress.add_task("", total=None, visible=False)
        executor.run(pending, store, _ProgressEvents(progress, overall, current, outcome))
        progress.update(current, visible=False)

    store.write_experiment(
        ExperimentRecord(
            experiment=exp.name,
            config_file=str(exp.source_file) if exp.source_file else None,
            finished=time.time(),
            models=[r.model_dump(mode="json") for r in refs],
            jobs={m: {b: r.job_id for b, r in per.items()} for m, per in outcome.done.items()},
        )
    )
    return outcome
