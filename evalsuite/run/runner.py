"""Run an experiment: resolve (or merge) the models, expand (model x benchmark) jobs, skip the
finished ones, execute the rest through lm-eval, record which job served which cell.

Everything that can fail on bad input (config, mirror, models) is checked before anything is
written under the results folder.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Optional, Protocol

from pydantic import BaseModel, ConfigDict, Field, SkipValidation
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from evalsuite.config import Experiment
from evalsuite.errors import UserError
from evalsuite.models.load import resolve_model
from evalsuite.paths import inside
from evalsuite.run.jobs import Job, JobSettings, Process
from evalsuite.run.local import LocalExecutor, prewarm
from evalsuite.schema import ExperimentRecord, JobRecord, ModelRef
from evalsuite.store import Store, sweep_stale
from evalsuite.study import Study, load_study
from evalsuite.suite import load_suite


def _digest(value) -> str:
    import hashlib
    import json

    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


class RunOutcome(BaseModel):
    """What one `evalsuite run` did, and the study of its experiment record (evalsuite.study)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    experiment: str
    models: list[ModelRef]
    done: dict[str, dict[str, JobRecord]]  # model -> benchmark -> record
    reused: int = 0
    failed: list[str] = []  # one line per failed job, with its log path
    study: SkipValidation[Optional[Study]] = Field(default=None, exclude=True)  # set once the experiment record is written

    @property
    def ok(self) -> bool:
        return not self.failed

    def result_files(self, store: Store) -> list[Path]:
        return [store.results_path(r) for per in self.done.values() for r in per.values()]


def check_data(exp: Experiment) -> dict[str, str]:
    """Each benchmark's data identity (its own dataset only, so changing one dataset re-runs only
    its jobs): the sha256 of its mirror folder, or `hub:REPO@COMMIT` of its hub dataset (pinned by
    `data.revisions`, else resolved now). A hub dataset is put in the HF hub cache at that commit
    (downloaded when online) and checked there: lm-eval reads that snapshot folder
    (`data.hub_snapshots`). A broken mirror or snapshot, or a hub commit that cannot be resolved or
    read, is a UserError raised before anything is written and before any model loads."""
    from evalsuite.data.hub_data import hub_identity, hub_snapshots, identity_folders
    from evalsuite.data.overrides import write_task_overrides
    from evalsuite.data.tasks import data_identity, mirror_problems

    if not exp.use_mirror:
        from evalsuite.models.load import env_offline

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
        from evalsuite.models.merge import build_merge

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
    from evalsuite.fixtures.tiny import build_demo_models
    from evalsuite.models.load import fixtures_root

    return build_demo_models(fixtures_root(exp))


def job_settings(exp: Experiment) -> JobSettings:
    return JobSettings(
        batch_size=exp.batch_size, limit=exp.limit, offline=exp.offline or exp.use_mirror, threads=exp.threads,
        backend=exp.backend, task_index=exp.executor.task_index, start=exp.executor.start, harness=exp.harness,
    )


def plan_jobs(exp: Experiment, refs: list[ModelRef], data_ids: dict[str, str], include_path: Optional[Path], nltk_dir: Optional[Path]) -> list[Job]:
    """Every (model x benchmark) job, each model's in the `leaderboard` group's order. With
    `harness: leaderboard` each job names the benchmarks that share its lm-eval process."""
    from evalsuite.data.tasks import leaderboard_order

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
        from sympy.parsing.latex import parse_latex

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


_TQDM = re.compile(r"Running (loglikelihood|generate_until|loglikelihood_rolling) requests:\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([0-9:]+)<")


def _seconds(clock: str) -> float:
    out = 0.0
    for part in clock.split(":"):
        out = out * 60 + float(part)
    return out


def _clock(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _interpolate(history: list[tuple[int, float]], done: int) -> float:
    """Seconds a bar history took to reach `done` requests (piecewise linear)."""
    prev = history[0]
    for point in history[1:]:
        if point[0] >= done:
            span = point[0] - prev[0]
            return prev[1] + (point[1] - prev[1]) * ((done - prev[0]) / span if span else 1.0)
        prev = point
    return history[-1][1]


class _Child:
    """One running lm-eval process as its own progress bars tell it."""

    def __init__(self, process: Process):
        self.process, self.started = process, time.time()
        self.first_request: Optional[float] = None  # when its first request phase began (start-up before)
        self.phases: dict[str, tuple[int, int, float, float]] = {}  # phase -> (done, total, elapsed s, seen at)
        self.ended: Optional[float] = None
        self.history: dict[str, list[tuple[int, float]]] = {}  # phase -> (requests done, seconds) as the bar moved
        self.line = "starting"

    def see(self, line: str) -> None:
        m = _TQDM.search(line)
        if m is None:
            self.line = line
            return
        kind = "generation" if m.group(1) == "generate_until" else "loglikelihood"
        done, total, elapsed = int(m.group(3)), int(m.group(4)), _seconds(m.group(5))
        now = time.time()
        if self.first_request is None:
            self.first_request = now - elapsed
        self.phases[kind] = (done, total, elapsed, now)
        hist = self.history.setdefault(kind, [(0, 0.0)])
        if done > hist[-1][0]:
            hist.append((done, elapsed))
        self.line = f"{kind} {done}/{total} ({100 * done // max(total, 1)}%)"

    def complete(self, kind: str) -> bool:
        d, t, _, _ = self.phases.get(kind, (0, 1, 0.0, 0.0))
        return d >= t


class _ProgressEvents:
    """Executor events -> live progress display and the outcome.

    The estimate is made of requests, read from each child's own progress bars (lm-eval's tqdm
    lines in its log). lm-eval sends the longest requests first, so a phase's early pace
    overstates its cost: once one process has finished a phase (loglikelihood, generation), that
    phase's measured duration is what the others are expected to take (every model runs the same
    requests); before that, the pace so far. Processes not started yet cost one start-up plus each
    phase, and are queued on the workers as the executor will. No figure until a request has been
    timed in every phase seen: never a guess shown as one."""

    def __init__(self, progress: Progress, overall, current, outcome: RunOutcome, processes: list[Process] = (), workers: int = 1):
        self.progress, self.overall, self.current, self.outcome = progress, overall, current, outcome
        self.running: dict[str, _Child] = {}
        self.finished_children: list[_Child] = []
        self.total_processes, self.workers = len(processes), max(1, workers)
        size = processes[0].first.settings.batch_size if processes else 1
        self.batch = size if isinstance(size, int) and size > 0 else 1  # "auto": unknown, counted as 1
        self.ended_count = 0
        # on the CPU, processes running at once share the cores: each runs at 1/slowdown(k) of its
        # speed alone (torch takes every core unless `threads` is set); on GPUs each has its own
        first = processes[0].first if processes else None
        cpu = str(getattr(getattr(first, "model", None), "device", "cpu")).startswith("cpu")
        cores = os.cpu_count() or 1
        threads = getattr(getattr(first, "settings", None), "threads", None) or cores
        self.share = threads / cores if cpu else 0.0

    def slowdown(self, k: float) -> float:
        """How much slower a process runs with k processes (itself included) running at once."""
        return max(1.0, k * self.share)

    def _crowd(self, child: _Child, now: float) -> float:
        """The average number of processes that ran beside `child` (itself included) over its life."""
        end = child.ended or now
        life = end - child.started
        if life <= 0:
            return 1.0
        beside = sum(max(0.0, min(end, o.ended or now) - max(child.started, o.started)) for o in self._children() if o is not child)
        return 1.0 + beside / life

    def _children(self) -> list[_Child]:
        return [*self.finished_children, *self.running.values()]

    def _phase_seconds(self, kind: str) -> Optional[float]:
        """A whole phase's duration: measured where a process completed it, else from the pace so
        far (seconds per request x requests) of those in it; None before its first request."""
        whole = [el for c in self._children() if c.complete(kind) for d, t, el, _ in [c.phases[kind]]]
        if whole:
            return sum(whole) / len(whole)
        # lm-eval answers a batch at once and then ticks its bar once per request: a bar at 1/16 has
        # a whole batch done (up to batch_size requests), not one
        pace = [(el / min(t, -(-d // self.batch) * self.batch)) * t
                for c in self._children() if kind in c.phases for d, t, el, _ in [c.phases[kind]] if d]
        return sum(pace) / len(pace) if pace else None

    def _reference(self, kind: str) -> Optional[list[tuple[int, float]]]:
        """The bar history of the latest process that completed `kind` (None: none has)."""
        for c in reversed(self._children()):
            if c.complete(kind) and len(c.history.get(kind, ())) > 1:
                return c.history[kind]
        return None

    def _startup(self) -> Optional[float]:
        starts = [c.first_request - c.started for c in self._children() if c.first_request is not None]
        return sum(starts) / len(starts) if starts else None

    def estimate(self) -> tuple[Optional[float], int, int]:
        """(seconds left, requests done, requests in all) over every lm-eval process of the run."""
        children = self._children()
        kinds = sorted({k for c in children for k in c.phases})
        totals = {k: max(c.phases[k][1] for c in children if k in c.phases) for k in kinds}
        durations = {k: self._phase_seconds(k) for k in kinds}
        startup = self._startup()
        tails = [c.ended - c.started - (c.first_request - c.started) - sum(el for _, _, el, _ in c.phases.values())
                 for c in self.finished_children if c.ended is not None and c.first_request is not None]
        tail = max(0.0, sum(tails) / len(tails)) if tails else 0.0  # between and after phases: building, scoring, writing
        pending = max(0, self.total_processes - self.ended_count - len(self.running))
        done = sum(c.phases.get(k, (0,))[0] for c in children for k in kinds)
        whole = sum(totals.values()) * (len(children) + pending)
        known = bool(kinds) and startup is not None and all(v is not None for v in durations.values())
        # a generation phase not reached by any process yet: its cost is unknown
        if "generation" not in kinds and not self.finished_children:
            known = False
        if not known:
            return None, done, whole
        now = time.time()
        # the measured durations are seconds under the crowd the measured processes had: work in
        # seconds alone is duration / slowdown(that crowd)
        measured = self.finished_children or list(self.running.values())
        ref_slow = self.slowdown(sum(self._crowd(c, now) for c in measured) / len(measured))
        left = []
        for c in self.running.values():
            rest = 0.0 if c.first_request is not None else max(0.0, startup - (now - c.started))
            pace = 1.0  # this process's speed against the reference, carried to its later phases
            for k in kinds:
                d, t, el, seen = c.phases.get(k, (0, totals[k], 0.0, now))
                if d >= t:
                    continue
                spent = el + (now - seen) if k in c.phases else 0.0
                ref = self._reference(k)
                if ref is not None and d > 0:
                    # where the finished process was at this many requests, and how much slower or
                    # faster this one is going: lm-eval's order (longest first) is the same in both
                    at = _interpolate(ref, d)
                    pace = min(5.0, max(0.2, spent / at)) if at > 0 else 1.0
                    rest += max(0.0, ref[-1][1] - at) * pace
                else:
                    rest += max(durations[k] * 0.05, durations[k] - spent) if k in c.phases else durations[k] * pace
            left.append((rest + max(0.0, tail - (now - c.phases[kinds[-1]][3]) if c.complete(kinds[-1]) else tail)) / ref_slow)
        one = (startup + sum(durations.values()) + tail) / ref_slow
        return self._finish_time(left, [one] * pending), done, whole

    def _finish_time(self, running: list[float], pending: list[float]) -> float:
        """When the last process ends: `running` and `pending` in seconds of work alone; the pending
        ones start on the first worker free, as the executor starts them; while k run at once each
        goes at 1/slowdown(k)."""
        active, queue, clock = list(running), list(pending), 0.0
        while len(active) < self.workers and queue:
            active.append(queue.pop(0))
        while active:
            step = min(active)
            clock += step * self.slowdown(len(active))
            active = [w - step for w in active if w - step > 1e-9]
            while len(active) < self.workers and queue:
                active.append(queue.pop(0))
        return clock

    def _show(self) -> None:
        lines = [f"{c.process.first.model.name} │ {c.line[:44]}" for c in self.running.values()]
        self.progress.update(self.current, description="\n".join(lines) or "idle", visible=True)
        jobs = sum(len(per) for per in self.outcome.done.values())
        left, done, whole = self.estimate()
        req = f"requests {done:,}/{whole:,}" if whole else "requests: starting"
        failed = f", {len(self.outcome.failed)} failed" if self.outcome.failed else ""
        self.progress.update(
            self.overall, description=f"jobs {jobs}/{next(t.total for t in self.progress.tasks if t.id == self.overall):g}{failed} · lm-eval {len(self.running)} running · {req}",
            eta=f"~{_clock(left)} left" if left is not None else "left: timing",
        )

    def started(self, process: Process) -> None:
        self.running[process.process_id] = _Child(process)
        self.progress.console.print(f"[bold]lm-eval[/] started {process.label} ({len(self.running) + self.ended_count} of {self.total_processes})")
        self._show()

    def output(self, process: Process, line: str) -> None:
        child = self.running.get(process.process_id)
        if child is not None:
            child.see(line)
            self._show()

    def finished(self, job: Job, record: JobRecord) -> None:
        self.outcome.done[job.model.name][job.benchmark] = record
        self.progress.advance(self.overall)
        self._show()

    def _end(self, process: Process) -> Optional[_Child]:
        child = self.running.pop(process.process_id, None)
        self.ended_count += 1
        if child is not None:
            child.ended = time.time()
            # its last bar lines may have come after the last look at its log: a finished process
            # has sent every request of the phases it began
            child.phases = {k: (t, t, el, seen) for k, (d, t, el, seen) in child.phases.items()}
            self.finished_children.append(child)
        return child

    def ended(self, process: Process) -> None:
        child = self._end(process)
        took = f" in {_clock(time.time() - child.started)}" if child else ""
        self.progress.console.print(f"[bold]lm-eval[/] finished {process.label}{took}")
        self._show()

    def failed(self, process: Process, message: str) -> None:
        self._end(process)
        self.outcome.failed.append(message)
        self.progress.console.print(f"[red]failed:[/] {message}")
        self.progress.advance(self.overall, len([j for j in process.jobs if j.job_id not in process.done]))
        self._show()


def make_executor(exp: Experiment):
    if exp.executor.name == "ray":
        from evalsuite.run.ray_executor import RayExecutor

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
    from evalsuite.preflight import check_study

    check_study(exp)  # hub models at their revisions, gated repos, disk: before any model loads
    executor = make_executor(exp)
    for sub in ("jobs", "cache", "merged"):  # a symlink out of results/ is refused before any work
        inside(store.root, sub)
    store.experiment_file(exp.name)
    from evalsuite.history.runs import check_history_file

    check_history_file(store.root)  # a history.sqlite of another program is refused before any work
    published = prepare_published(exp, importer)  # every `published:` source selected and validated, before results/ exists
    if exp.candidate.recipe is not None:
        merged_dir(store, exp)
    if exp.executor.name == "local" and not all(m.published for m in [exp.candidate, *exp.parents]):
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


def prepare_published(exp: Experiment, importer: Optional[PublishedImporter]) -> dict:
    """model name -> its `published:` source selected and validated whole (evalsuite.published.importer.
    prepare_source), so that a missing or damaged source is refused before anything is written."""
    published = [m for m in exp.models if m.published is not None]
    if published and importer is None:
        raise ValueError("run_experiment: a published: model needs importer=evalsuite.published.importer")
    return {m.display_name: importer.prepare_source(m.published, revision=m.revision) for m in published}


def _run_jobs(exp: Experiment, store: Store, executor, refs: list[ModelRef], data_ids: dict[str, str], console: Console, quiet: bool,
              published: Optional[dict] = None, importer: Optional[PublishedImporter] = None) -> RunOutcome:
    from evalsuite.data.hub_data import hub_identity, hub_snapshots, identity_folders
    from evalsuite.data.overrides import write_task_overrides
    from evalsuite.data.tasks import data_identity, mirror_problems

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
        from evalsuite.data.nltk_data import ensure_punkt_tab

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
        executor.run(processes, store, _ProgressEvents(progress, overall, current, outcome, processes, workers))
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
