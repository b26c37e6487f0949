"""`evalsuite plan`: what a run will do and cost, before anything runs.

Request counts come from lm-eval itself: each benchmark's tasks are built by lm-eval's TaskManager
from the same task files and data the run uses (the dataset-mirror or pinned-hub overrides written
to a temporary folder), and `Task.build_all_requests` makes the very requests the run will send:
one per choice for multiple-choice tasks (loglikelihood), one per document for generation.
Nothing is written under the results folder; no model is loaded or merged.

Time: requests x seconds per request, per kind. The seconds come from `--ll-per-s/--gen-per-s`
(the user's figure), else from lm-eval's own progress bars in the logs of processes this results
folder already ran (measured on this machine), else there is no estimate (said so).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, Field

from evalsuite.config import Experiment
from evalsuite.data.overrides import write_task_overrides
from evalsuite.models.load import fixtures_root
from evalsuite.results.store import Store
from evalsuite.run.events import clock_seconds
from evalsuite.run.lm_eval_main import install_leaderboard_index
from evalsuite.run.runner import check_data, merged_dir
from evalsuite.suite import load_suite

KINDS = ("loglikelihood", "generation")


class BenchmarkPlan(BaseModel):
    benchmark: str
    display: str
    documents: int
    loglikelihood: int  # requests per model
    generation: int


class ModelPlan(BaseModel):
    model: str
    role: str
    finished: list[str]  # benchmarks finished in the experiment's last run (reused if nothing changed)
    to_run: list[str]


class Throughput(BaseModel):
    loglikelihood: Optional[float] = None  # requests per second
    generation: Optional[float] = None
    source: str


class Plan(BaseModel):
    experiment: str
    harness: str
    limit: Optional[float]
    benchmarks: list[BenchmarkPlan]
    models: list[ModelPlan]
    jobs: int
    jobs_to_run: int
    processes: int  # lm-eval processes to start
    requests: dict[str, int]  # kind -> requests still to run (every model not finished)
    disk: dict[str, Optional[int]] = Field(default_factory=dict)  # what -> bytes (None: unknown)
    disk_notes: list[str] = Field(default_factory=list)
    throughput: Throughput
    seconds: Optional[float]  # estimated lm-eval time, None when no throughput is known
    workers: int = 1


# ------------------------------------------------------------------------------------ requests


def count_requests(exp: Experiment) -> dict[str, dict[str, int]]:
    """benchmark id -> {"documents", "loglikelihood", "generation"}: the requests lm-eval builds for
    one model with the experiment's tasks, data and limit."""
    out: dict[str, dict[str, int]] = {}
    for bench_id, tasks in requests_per_document(exp, exp.limit).items():
        counts = {"documents": 0, "loglikelihood": 0, "generation": 0}
        for docs in tasks.values():
            counts["documents"] += len(docs)
            for ll, gen in docs.values():
                counts["loglikelihood"] += ll
                counts["generation"] += gen
        out[bench_id] = counts
    return out


def requests_per_document(exp: Experiment, limit: Optional[float]) -> dict[str, dict[str, dict[int, tuple[int, int]]]]:
    """benchmark id -> leaf task -> document index -> (loglikelihood, generation) requests that
    lm-eval's own task code builds for that document, on the experiment's task files and data, the
    first `limit` documents (None: every one; a document's index is its place in the task's
    evaluation split, the index lm-eval's `--samples` takes)."""
    data_ids = check_data(exp)  # a broken mirror or unresolvable hub data: one error line
    mirror = Path(exp.data.mirror) if exp.use_mirror else None
    revisions = None if mirror else {b: d.rsplit("@", 1)[1] for b, d in data_ids.items()}
    suite = load_suite()
    out: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
    with tempfile.TemporaryDirectory(prefix="evalsuite-plan-") as tmp:
        include = write_task_overrides(mirror, list(exp.benchmarks), Path(tmp) / "tasks", revisions, exp.harness)
        saved = {k: os.environ.get(k) for k in ("HF_DATASETS_CACHE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "NLTK_DATA")}
        stack = contextlib.ExitStack()
        try:
            import datasets.config as ds_config  # bound at its import: set below as well as in the environment

            if mirror is not None:  # the mirror read through a throwaway datasets cache (in the user's
                # cache, offline, another mirror's copy of the same dataset name could be read instead)
                os.environ["HF_DATASETS_CACHE"] = str(Path(tmp) / "datasets")
                stack.enter_context(_patched(ds_config, HF_DATASETS_CACHE=Path(tmp) / "datasets"))
            nltk_dir = Path(exp.output.results) / "nltk_data"  # the run's own copy, when it has one
            if nltk_dir.is_dir():
                os.environ["NLTK_DATA"] = str(nltk_dir)
            if exp.offline or mirror is not None:
                os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
                stack.enter_context(_patched(ds_config, HF_HUB_OFFLINE=True, HF_DATASETS_OFFLINE=True))
            install_leaderboard_index()
            import lm_eval.tasks as tasks_module
            stack.enter_context(_Quiet())
            manager = tasks_module.TaskManager(include_path=str(include))
            for bench_id in exp.benchmarks:
                bench = suite.get(bench_id)
                per_task: dict[str, dict[int, tuple[int, int]]] = {}
                for task in manager.load([bench.group])["tasks"].values():
                    task.build_all_requests(limit=limit, rank=0, world_size=1)
                    generation = task.OUTPUT_TYPE == "generate_until"
                    docs: dict[int, list[int]] = {}
                    for inst in task.instances:
                        docs.setdefault(inst.doc_id, [0, 0])[1 if generation else 0] += 1
                    per_task[task.config.task] = {d: (ll, gen) for d, (ll, gen) in sorted(docs.items())}
                out[bench_id] = per_task
        finally:
            stack.close()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return out


@contextlib.contextmanager
def _patched(module, **values):
    """Module attributes set for the duration (those a library binds from the environment at import)."""
    old = {k: getattr(module, k) for k in values if hasattr(module, k)}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k in values:
            if k in old:
                setattr(module, k, old[k])
            else:
                delattr(module, k)


class _Quiet:
    """lm-eval's and datasets' progress bars and warnings while tasks are built: not the user's
    business before a run (the run's logs keep them)."""

    def __enter__(self):
        import io
        import logging

        self._stderr = contextlib.redirect_stderr(io.StringIO())
        self._stderr.__enter__()
        self._stdout = contextlib.redirect_stdout(io.StringIO())  # lm-eval's IFEval prints its NLTK download
        self._stdout.__enter__()
        self._levels = {}
        for name in ("lm_eval", "datasets", "evalsuite"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        import logging

        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._stdout.__exit__(*exc)
        return self._stderr.__exit__(*exc)


# ---------------------------------------------------------------------------------- throughput

_BAR = re.compile(r"Running (loglikelihood|generate_until) requests:\s*100%\|[^|]*\|\s*(\d+)/(\d+)\s*\[([0-9:]+)<")


def measured_throughput(results: Path) -> Optional[Throughput]:
    """Requests per second per kind from lm-eval's finished progress bars in the logs of the
    processes this results folder ran (one log per process: jobs that shared one have copies)."""
    spent = {k: [0.0, 0] for k in KINDS}
    logs = 0
    seen: set[str] = set()
    for log in sorted((results / "jobs").glob("*/lm_eval.log")):
        if log.parent.name.startswith("."):
            continue
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        key = text[-4000:]
        if key in seen:  # the same process's log, copied into each of its jobs
            continue
        seen.add(key)
        found = False
        for m in _BAR.finditer(text.replace("\r", "\n")):
            kind = "generation" if m.group(1) == "generate_until" else "loglikelihood"
            spent[kind][0] += clock_seconds(m.group(4))
            spent[kind][1] += int(m.group(2))
            found = True
        logs += found
    if not logs:
        return None
    rates = {k: (n / t if t > 0 else None) if n else None for k, (t, n) in spent.items()}
    return Throughput(**rates, source=f"measured on this machine: lm-eval's progress bars in {logs} process log(s) under {results / 'jobs'}")


# ---------------------------------------------------------------------------------------- plan


def _folder_bytes(path: Path) -> Optional[int]:
    try:
        return sum(p.stat().st_size for p in path.rglob("*.safetensors"))
    except OSError:
        return None


def make_plan(exp: Experiment, ll_per_s: Optional[float] = None, gen_per_s: Optional[float] = None) -> Plan:
    suite = load_suite()
    store = Store(Path(exp.output.results))
    counts = count_requests(exp)
    models = [("candidate", exp.candidate), *(("parent", p) for p in exp.parents)]
    last: dict[str, dict[str, str]] = {}
    if store.experiment_file(exp.name).is_file():
        try:
            last = store.read_experiment(exp.name).jobs
        except Exception:  # a damaged record: nothing counts as finished
            last = {}
    model_plans = []
    for role, m in models:
        name = m.display_name
        if m.published:
            model_plans.append(ModelPlan(model=name, role=role, finished=list(exp.benchmarks), to_run=[]))
            continue
        done = [b for b in exp.benchmarks if (jid := last.get(name, {}).get(b)) and store.finished_job(jid) is not None]
        model_plans.append(ModelPlan(model=name, role=role, finished=done, to_run=[b for b in exp.benchmarks if b not in done]))
    to_run_models = [mp for mp in model_plans if mp.to_run]
    if exp.harness == "leaderboard":  # one process per model, over all its benchmarks (finished ones recomputed, not stored)
        processes = len(to_run_models)
        requests = {k: sum(counts[b][k] for b in exp.benchmarks) * processes for k in KINDS}
    else:
        processes = sum(len(mp.to_run) for mp in model_plans)
        requests = {k: sum(counts[b][k] for mp in model_plans for b in mp.to_run) for k in KINDS}

    if ll_per_s or gen_per_s:
        tp = Throughput(loglikelihood=ll_per_s, generation=gen_per_s, source="given on the command line (--ll-per-s/--gen-per-s)")
    else:
        tp = measured_throughput(store.root) or Throughput(source="none: give --ll-per-s/--gen-per-s, or run once (plan then reads the logs)")
    seconds: Optional[float] = 0.0
    for k in KINDS:
        rate = getattr(tp, k)
        if requests[k]:
            seconds = None if rate is None or seconds is None else seconds + requests[k] / rate
    workers = max(1, exp.executor.workers)
    if seconds is not None:
        seconds /= min(workers, max(1, processes))

    disk: dict[str, Optional[int]] = {}
    notes: list[str] = []
    if exp.candidate.recipe is not None:
        built = merged_dir(store, exp)
        if built.is_dir() and any(built.glob("*.safetensors")):
            disk["merge"] = 0
            notes.append(f"merge: already built in {built} (reused when its fingerprint matches)")
        else:
            sizes = [_folder_bytes(Path(p.path)) for p in exp.parents if p.path]
            fixtures = [p for p in exp.parents if p.fixture]
            if fixtures:
                sizes += [_folder_bytes(fixtures_root(exp) / p.fixture) for p in fixtures if (fixtures_root(exp) / p.fixture).is_dir()]
            known = [s for s in sizes if s]
            disk["merge"] = max(known) if known else None
            notes.append("merge: about one parent's weights (the largest local parent's safetensors)" if known else
                         "merge: unknown (no parent's weights on this disk yet)")
    per_doc = store.samples_bytes_per_record()
    docs = sum(counts[b]["documents"] for mp in to_run_models for b in exp.benchmarks)
    disk["outputs"] = int(per_doc * docs) if per_doc is not None else None
    notes.append("outputs: lm-eval's samples files, at the bytes per document of the jobs stored here" if per_doc is not None
                 else "outputs: unknown until a job is stored here (lm-eval's samples files: a few KB per document)")

    return Plan(
        experiment=exp.name, harness=exp.harness, limit=exp.limit,
        benchmarks=[BenchmarkPlan(benchmark=b, display=suite.get(b).display, **counts[b]) for b in exp.benchmarks],
        models=model_plans, jobs=len(model_plans) * len(exp.benchmarks), jobs_to_run=sum(len(mp.to_run) for mp in model_plans),
        processes=processes, requests=requests, disk=disk, disk_notes=notes, throughput=tp, seconds=seconds, workers=workers,
    )
