"""Run an experiment: resolve (or merge) the models, expand (model x benchmark) jobs, skip the
finished ones, execute the rest through lm-eval, record which job served which cell.

Everything that can fail on bad input (config, mirror, models) is checked before anything is
written under the results folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Optional, Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from evalsuite.config import Experiment
from evalsuite.data.hub_data import hub_identity, hub_snapshots, identity_folders
from evalsuite.data.nltk_data import ensure_punkt_tab
from evalsuite.data.overrides import write_task_overrides
from evalsuite.data.tasks import data_identity, leaderboard_order, mirror_problems
from evalsuite.errors import UserError
from evalsuite.fixtures.tiny import build_demo_models
from evalsuite.history.db import check_history_file
from evalsuite.models.load import env_offline, fixtures_root, resolve_model
from evalsuite.models.merge import build_merge
from evalsuite.paths import inside
from evalsuite.preflight import check_study
from evalsuite.run.events import ProgressEvents, RunOutcome
from evalsuite.run.jobs import Job, JobSettings, Process
from evalsuite.run.local import LocalExecutor, prewarm
from evalsuite.schema import ExperimentRecord, ModelRef
from evalsuite.fsio import sweep_stale
from evalsuite.results.store import Store
from evalsuite.study import load_study
from evalsuite.suite import load_suite


def _digest(value) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def check_data(exp: Experiment) -> dict[str, str]:
    """Each benchmark's data identity (its own dataset only, so changing one dataset re-runs only
    its jobs): the sha256 of its mirror folder, or `hub:REPO@COMMIT` of its hub dataset (pinned by
    `data.revisions`, else resolved now). A hub dataset is put in the HF hub cache at that commit
    (downloaded when online) and checked there: lm-eval reads that snapshot folder
    (`data.hub_snapshots`). A broken mirror or snapshot, or a hub commit that cannot be resolved or
    read, is a UserError raised before anything is written and before any model loads."""
    if not exp.use_mirror:
        folders = hub_snapshots(exp.benchmarks, exp.data.revisions, offline=exp.offline or env_offline())
        return {b: hub_identity(b, folders[b].name) for b in exp.benchmarks}
    mirror = Path(exp.data.mirror)
    problems = mirror_problems(mirror, exp.benchmarks)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"data.mirror {mirror}: {problems[0]}{more}")
    return {b: data_identity(mirror, [b]) for b in exp.benchmarks}


def resolve_models(exp: Experiment, store: Store, console: Console, quiet: bool = False) -> list[ModelRef]:
    refs: list[ModelRef] = []
    merged = None
    if exp.candidate.recipe is not None:
        out = merged_dir(store, exp)
        if any(m.fixture for m in exp.parents):
            console.print("[bold]fixtures[/] the demo's tiny models (built once, then reused)")
        local, revisions = merge_inputs(exp)
        console.print(f"[bold]merge[/] {exp.candidate.display_name}: checking or building with mergekit ({exp.candidate.recipe})")
        result = build_merge(Path(exp.candidate.recipe), out, local_models=local, revisions=revisions, progress=not quiet)
        console.print(f"[bold]merge[/] {exp.candidate.display_name}: {'reused' if result.reused else 'built'} {result.path}")
        merged = (Path(result.path), result.fingerprint)
    refs.append(resolve_model(exp.candidate, exp, "candidate", merged=merged))
    refs += [resolve_model(p, exp, "parent") for p in exp.parents]
    return refs


def merge_inputs(exp: Experiment) -> tuple[dict[str, Path], dict[str, str]]:
    """What the candidate's recipe is merged from: local folders for hub ids (the experiment's
    `local_models` and the demo's fixtures), and the parents' pinned hub revisions."""
    local = dict(exp.local_models)
    local.update({f"evalsuite-fixtures/{name}": p for name, p in _fixture_map(exp).items()})
    return local, {m.hub: m.revision for m in exp.parents if m.hub and m.revision}


def merged_dir(store: Store, exp: Experiment) -> Path:
    """results/merged/<candidate>; a symlink out of the results folder is refused, not merged
    through, reused or replaced (it may be the user's on purpose: only they can say)."""
    return inside(inside(store.root, "merged"), exp.candidate.display_name)


def _fixture_map(exp: Experiment) -> dict[str, Path]:
    """Tiny fixture models named in the experiment (as parents), so demo recipes can refer to them."""
    if not any(m.fixture for m in exp.parents):
        return {}
    return build_demo_models(fixtures_root(exp))


def job_settings(exp: Experiment) -> JobSettings:
    return JobSettings(
        batch_size=exp.batch_size, limit=exp.limit, offline=exp.offline or exp.use_mirror, threads=exp.threads,
        backend=exp.backend, task_index=exp.executor.task_index, start=exp.executor.start, harness=exp.harness,
    )


def plan_jobs(exp: Experiment, refs: list[ModelRef], data_ids: dict[str, str], include_path: Optional[Path], nltk_dir: Optional[Path]) -> list[Job]:
    """Every (model x benchmark) job, each model's in the `leaderboard` group's order. With
    `harness: leaderboard` each job names the benchmarks that share its lm-eval process."""
    suite = load_suite()
    settings = job_settings(exp)
    order = [b for b in leaderboard_order() if b in exp.benchmarks]
    process = tuple(order) if exp.harness == "leaderboard" else ()
    return [
        Job(
            model=ref,
            benchmark=b,
            task=suite.get(b).group,
            settings=settings,
            data_id=data_ids[b],
            include_path=include_path,
            nltk_data=nltk_dir if b == "ifeval" else None,
            process=process,
            samples=exp.samples[b] if exp.samples is not None and ref.role == "candidate" else None,
        )
        for ref in refs
        for b in order
    ]


def evaluated_jobs(exp: Experiment, refs: list[ModelRef], data_ids: dict[str, str], include_path: Optional[Path],
                   nltk_dir: Optional[Path]) -> list[Job]:
    """The jobs lm-eval runs: every model's but the `published:` ones' (imported, not evaluated)."""
    return plan_jobs(exp, [r for r in refs if not r.published], data_ids, include_path, nltk_dir)


class PublishedImporter(Protocol):
    """What a run needs of the import of published details: `evalsuite.published.importer` (the
    module itself fits), passed by the caller of `run_experiment`, so that run/ does not import the
    published package (which builds on run/'s neighbours: store, lm_eval_api)."""

    def prepare_source(self, source: str, run: Optional[str] = None, revision: Optional[str] = None) -> Any: ...

    def import_details(self, source: str, name: str, store: Store, run: Optional[str] = None, revision: Optional[str] = None,
                       record: bool = True, prepared: Any = None) -> Any: ...


def _import_published(ref: ModelRef, exp: Experiment, store: Store, console: Console, outcome: RunOutcome,
                      importer: PublishedImporter, prepared=None) -> None:
    """A `published:` model: its results are the leaderboard's details, imported once (re-scored
    with this lm-eval, stored as ordinary jobs: evalsuite.published.importer) and reused after; no model is
    loaded. A benchmark the details lack is a failed cell."""
    res = importer.import_details(ref.published, ref.name, store, revision=ref.revision, record=False, prepared=prepared)
    ref.identity = res.identity
    for bench in exp.benchmarks:
        rec = res.jobs.get(bench)
        if rec is None:
            outcome.failed.append(f"{ref.name} / {bench}: the published details {ref.published} have no {bench} results")
        else:
            outcome.done[ref.name][bench] = rec
            outcome.reused += 1
    console.print(f"[bold]published[/] {ref.name}: {'reused' if res.reused else 'imported'} {ref.published}")


def check_math_parsers() -> None:
    """MATH's original parser (`exact_match_original`) needs sympy's `parse_latex`; where it cannot
    run (an ANTLR runtime other than the 4.11 lm-eval[math] pins, e.g. pulled in by math-verify
    0.5.2) lm-eval's scorer swallows the error and scores 0: refuse instead of reporting that."""
    try:
        from sympy.parsing.latex import parse_latex  # here: ~0.9 s to import, and its failure is the check

        parse_latex("\\frac{1}{2}")
    except Exception as exc:  # ImportError, antlr version errors
        raise UserError(
            f"MATH's original parser cannot run here (sympy parse_latex: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "install antlr4-python3-runtime==4.11 as lm-eval[math] pins it (docs/fidelity.md)") from None


def plan_processes(jobs: list[Job], finished: set[str], datasets_cache: Optional[Path]) -> list[Process]:
    """The lm-eval processes that compute the unfinished jobs. `harness: upstream`: one per job.
    `harness: leaderboard`: one per model over all its benchmarks (its jobs stored before are
    recomputed with the others, since they share batches, but not stored again)."""
    processes: list[Process] = []
    by_model: dict[str, list[Job]] = {}
    for job in jobs:
        if job.settings.harness == "leaderboard":
            by_model.setdefault(job.model.name, []).append(job)
        elif job.job_id not in finished:
            processes.append(Process(jobs=[job], datasets_cache=datasets_cache))
    for group in by_model.values():
        if any(j.job_id not in finished for j in group):
            done = [j.job_id for j in group if j.job_id in finished]
            processes.append(Process(jobs=group, done=done, datasets_cache=datasets_cache))
    return processes


def make_executor(exp: Experiment):
    if exp.executor.name == "ray":
        from evalsuite.run.ray_executor import RayExecutor  # here: ray is an optional extra (seconds to import)

        e = exp.executor
        return RayExecutor(address=e.ray_address, num_gpus=e.num_gpus, max_retries=e.max_retries)
    return LocalExecutor(workers=exp.executor.workers)


def run_experiment(exp: Experiment, *, console: Optional[Console] = None, quiet: bool = False,
                   importer: Optional[PublishedImporter] = None) -> RunOutcome:
    """Run (or reuse) every job of the experiment. `importer`: the import of published details
    (`evalsuite.published.importer`), needed when a model is `published:`."""
    console = console or Console(stderr=True, quiet=quiet)
    store = Store(Path(exp.output.results))
    data_ids = check_data(exp)

    check_study(exp)  # hub models at their revisions, gated repos, disk: before any model loads
    executor = make_executor(exp)
    for sub in ("jobs", "cache", "merged"):  # a symlink out of results/ is refused before any work
        inside(store.root, sub)
    store.experiment_file(exp.name)

    check_history_file(store.root)  # a history.sqlite of another program is refused before any work
    published = prepare_published(exp, importer)  # every `published:` source selected and validated, before results/ exists
    if exp.candidate.recipe is not None:
        merged_dir(store, exp)
    if exp.executor.name == "local" and not all(m.published for m in [exp.candidate, *exp.parents]) and may_start_lm_eval(exp, store):
        prewarm(job_settings(exp))  # the zygote's imports overlap with the merge and the checks below
    with store.lock():  # held from the merge on: a second run cannot swap a model under our jobs
        for folder in ("jobs", "merged", "experiments"):  # what killed runs left (evalsuite/faults.py)
            sweep_stale(store.root / folder)
        refs = resolve_models(exp, store, console, quiet)
        for ref in refs:
            if ref.trust_remote_code:
                say = Console(stderr=True) if console.quiet else console  # a security warning survives --quiet
                say.print(f"[yellow]warning:[/] {ref.name}: trust_remote_code is on — the model's own Python code will run")
        return _run_jobs(exp, store, executor, refs, data_ids, console, quiet, published, importer)


def may_start_lm_eval(exp: Experiment, store: Store) -> bool:
    """Whether this run is likely to start lm-eval, judged before any model is resolved: False for
    the re-run of a finished experiment (its last record names a stored job for every model and
    benchmark evaluated now). Only the zygote's head start depends on it: a job that must run all
    the same starts the zygote when it is submitted. A zygote started for nothing costs a child's
    imports (about 4 s of CPU beside the run's own work) and ~0.4 GB."""
    try:
        record = store.read_experiment(exp.name) if store.experiment_file(exp.name).is_file() else None
    except Exception:  # noqa: BLE001  (a damaged record: the run says so itself)
        return True
    if record is None:
        return True
    for m in exp.models:
        if m.published is None:
            for bench in exp.benchmarks:
                job_id = record.jobs.get(m.display_name, {}).get(bench)
                if job_id is None or not (store.job_dir(job_id) / "job.json").is_file():
                    return True
    return False


def prepare_published(exp: Experiment, importer: Optional[PublishedImporter]) -> dict:
    """model name -> its `published:` source selected and validated whole (evalsuite.published.importer.
    prepare_source), so that a missing or damaged source is refused before anything is written."""
    published = [m for m in exp.models if m.published is not None]
    if published and importer is None:
        raise ValueError("run_experiment: a published: model needs importer=evalsuite.published.importer")
    return {m.display_name: importer.prepare_source(m.published, revision=m.revision) for m in published}


def _run_jobs(exp: Experiment, store: Store, executor, refs: list[ModelRef], data_ids: dict[str, str], console: Console, quiet: bool,
              published: Optional[dict] = None, importer: Optional[PublishedImporter] = None) -> RunOutcome:
    # lm-eval task overrides: the mirror's folders, or the hub datasets at their resolved commits
    mirror = Path(exp.data.mirror) if exp.use_mirror else None
    data_key = data_identity(mirror, exp.benchmarks) if mirror else _digest(data_ids)
    folders = None if mirror else identity_folders(data_ids)  # the hub snapshots at the commits
    where = [{b: str(f) for b, f in folders.items()}] if folders else []  # their paths are in the YAMLs
    include_path = store.tasks_dir(_digest([data_key, exp.harness, *where]))  # the overrides depend on these
    if not include_path.is_dir():
        include_path.parent.mkdir(parents=True, exist_ok=True)
        write_task_overrides(mirror, exp.benchmarks, include_path, None, exp.harness, folders)
    # a mirror (or hub snapshots) is read through a `datasets` cache of its own content: datasets
    # caches a local folder by its base name, so a changed mirror in a new folder could be served
    # the old rows
    datasets_cache = store.datasets_cache(data_key)
    nltk_dir = None
    if "ifeval" in exp.benchmarks:
        nltk_dir = store.root / "nltk_data"
        status = ensure_punkt_tab(nltk_dir, offline=exp.offline or exp.use_mirror)
        if status.kind in {"standin", "missing"}:
            console.print(f"[yellow]warning:[/] NLTK punkt_tab: {status.detail} — IFEval scores may differ from the leaderboard's")

    outcome = RunOutcome(experiment=exp.name, models=refs, done={r.name: {} for r in refs})
    for ref in refs:
        if ref.published:
            _import_published(ref, exp, store, console, outcome, importer, (published or {}).get(ref.name))
    jobs = evaluated_jobs(exp, refs, data_ids, include_path, nltk_dir)
    for job in jobs:
        rec = store.finished_job(job.job_id, job.identity)
        if rec is not None:
            outcome.done[job.model.name][job.benchmark] = rec
            outcome.reused += 1
    finished = {r.job_id for per in outcome.done.values() for r in per.values()}
    processes = plan_processes(jobs, finished, datasets_cache)
    pending = [j for p in processes for j in p.jobs if j.job_id not in p.done]
    if any(j.benchmark == "math_hard" for j in pending):
        check_math_parsers()

    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}")]
    with Progress(*columns, console=console, disable=quiet) as progress:
        overall = progress.add_task(
            f"{exp.name}: {len(pending)} to run in {len(processes)} lm-eval process(es), {outcome.reused} reused ({executor.name})",
            total=len(refs) * len(exp.benchmarks), completed=outcome.reused + len(outcome.failed),  # published cells count as reused
            eta="",
        )
        current = progress.add_task("", total=None, visible=False, eta="")
        workers = getattr(executor, "workers", 1) or 1
        executor.run(processes, store, ProgressEvents(progress, overall, current, outcome, processes, workers))
        progress.update(current, visible=False)

    record = ExperimentRecord(
        experiment=exp.name,
        config_file=str(exp.source_file) if exp.source_file else None,
        finished=time.time(),
        models=refs,
        jobs={m: {b: r.job_id for b, r in per.items()} for m, per in outcome.done.items()},
    )
    store.write_experiment(record)
    # every job of the record was hashed in this process (the reuse check, the commit, the import)
    outcome.study = load_study(store, record, verified={r.job_id for per in outcome.done.values() for r in per.values()})
    return outcome
