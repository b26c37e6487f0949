"""Import published per-sample details (the Open LLM Leaderboard's `-details` repos, or any lm-eval
output folder) as ordinary evalsuite jobs, re-scored by the installed lm-eval.

Sources: a hub dataset repo `open-llm-leaderboard/<org>__<model>-details[@revision]`
(huggingface_hub, only the chosen run's files are downloaded), or a local folder holding
`samples_<task>_<date>.jsonl` + `results_<date>.json` (searched recursively, so the
`<org>__<model>/` parent, an evalsuite job folder or an `lm_eval --output_path` folder work too).

Pipeline (nothing is written under the results folder before every step has passed):
  1. select one run (the newest date id, or `run`) and validate every file of it: every line a
     JSON record, doc_ids exactly 0..n-1 per filter (n = `n-samples.<task>.effective`), one date,
     only leaf tasks of the suite, each benchmark complete;
  2. re-compute every per-sample metric with the installed lm-eval task's own
     `process_results(doc, results)` from the recorded responses (multiple choice: the
     (loglikelihood, is_greedy) pairs; generation: the filtered strings) and count agreement
     with the recorded values;
  3. aggregate with lm-eval's own `evaluator_utils._process_results` (the task's `aggregation()`,
     `stderr_for_metric`, `Group.aggregate` for the benchmark's group) into lm-eval's results
     layout, and store one job per benchmark (`Store.commit_job`: temp folder + rename, sha256
     of every file), plus the experiment record `experiments/<name>.json`.

Modules: `evalsuite.published.source` (step 1 and the hub), `evalsuite.published.rescore`
(step 2 and the aggregation), `evalsuite.lm_eval_api` (the lm-eval internals used: `TaskFactory`,
`Group`, `_process_results`, `load_yaml`), this module (step 3: the jobs and the record).

Tasks are built without their datasets (`evalsuite.lm_eval_api.build_task`): lm-eval's own
`TaskFactory` over its registered YAML, the dataset replaced by one recorded document; scoring
never touches the dataset (`process_results` gets each record's own `doc`). Nothing is
downloaded, and the metric code is lm-eval's, unmodified.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from evalsuite.errors import UserError
from evalsuite.names import check_name
from evalsuite.lm_eval_api import PROCESS_RESULTS, build_task, lm_eval_version, package_version, task_files_hash, task_manager
from evalsuite.published.rescore import (MATH_OLD_NOTE, TaskAgreement, benchmark_results, first_doc,  # noqa: F401
                                         nltk_for_ifeval, recorded_math_verify, rescore_task)
from evalsuite.published.source import Selection, fetch_hub, files_identity, parse_hub_id, select_run, validate
from evalsuite.schema import ExperimentRecord, JobRecord, ModelRef
from evalsuite.results.store import Store, job_id_of
from evalsuite.suite import Benchmark, Suite, load_suite


class ImportResult(BaseModel):
    name: str
    source: str
    identity: str  # `published:<repo>@<commit>` or `sha256:<hash of the selected files>`
    run: str  # date id of the imported run
    lm_eval: str  # version that re-scored it
    jobs: dict[str, JobRecord]  # benchmark -> stored job
    agreement: dict[str, TaskAgreement]  # task -> agreement
    reused: bool  # every job was stored already (same source, same lm-eval): nothing re-scored
    experiment_file: Optional[str] = None  # None: imported for an experiment (record=False)


# ---------------------------------------------------------------------------------------------
# the import


def job_identity(model_identity: str, bench: Benchmark, run: str) -> dict:
    return {
        "model": model_identity,
        "task": bench.group,
        "source": "published",
        "run": run,
        "lm_eval": lm_eval_version(),
        "task_files": task_files_hash(),  # the installed task code that re-scored it
        **({"math_verify": package_version("math-verify")} if bench.id == "math_hard" else {}),
    }


def _check_experiment_slot(store: Store, name: str) -> None:
    path = store.experiment_file(name)
    if not path.exists():
        return
    try:
        rec = store.read_experiment(name)
    except UserError:
        raise UserError(f"{path}: an experiment record that cannot be read is in the way; choose another --name") from None
    if not (len(rec.models) == 1 and rec.models[0].published is True):
        raise UserError(f"{path}: experiment {name!r} is an evalsuite run, not an import; choose another --name")


@dataclass
class Prepared:
    """A source selected and validated whole (`prepare_source`), nothing written yet."""

    selection: Selection
    identity: str
    where: str
    run: Optional[str] = None
    revision: Optional[str] = None


def prepare_source(source: str, run: Optional[str] = None, revision: Optional[str] = None,
                   suite: Optional[Suite] = None) -> Prepared:
    """Step 1 of the import (module docstring): find the source (a local folder, or a hub repo
    fetched into the Hugging Face cache), select the run and validate every file of it. Writes
    nothing under any results folder; every problem is one UserError line."""
    suite = suite or load_suite()
    if not isinstance(source, str) or not source.strip():
        raise UserError(f"published source {source!r}: give a details folder or a hub repo id (org/name)")
    local = Path(source)
    hub = None if local.exists() else parse_hub_id(source)
    if hub is None and not local.exists():
        raise UserError(f"{source}: no such folder, and not a hub dataset repo id (org/name[@revision])")
    if hub is not None:
        repo, rev = hub
        if rev and revision and rev != revision:
            raise UserError(f"{source}: revision given twice ({rev} and {revision})")
        folder, commit, run = fetch_hub(repo, rev or revision, run)
        model_identity = f"published:{repo}@{commit}"
        where = f"{repo}@{commit}"
    else:
        if revision:
            raise UserError(f"{source}: --revision is for hub repos, not a local folder")
        folder = local
    sel = select_run(folder, run, suite)
    validate(sel)
    if hub is None:
        model_identity = files_identity(sel)
        where = str(local.resolve())
    return Prepared(selection=sel, identity=model_identity, where=where, run=run, revision=revision)


def import_details(source: str, name: str, store: Store, run: Optional[str] = None,
                   revision: Optional[str] = None, suite: Optional[Suite] = None, record: bool = True,
                   prepared: Optional[Prepared] = None) -> ImportResult:
    """Import one run of published details as jobs of model `name` (module docstring). `record`:
    also write the experiment record `experiments/<name>.json` (`evalsuite import`; an experiment
    with a `published:` model records it in its own record instead). `prepared`: the source as
    `prepare_source` validated it already (an experiment checks its sources before any write)."""
    suite = suite or load_suite()
    check_name(name, "--name")
    if record:
        store.experiment_file(name)  # the slot is checked before the source is fetched or read
        _check_experiment_slot(store, name)
    prepared = prepared or prepare_source(source, run=run, revision=revision, suite=suite)
    sel, model_identity, where = prepared.selection, prepared.identity, prepared.where
    store.experiment_file(name)  # refuses a name that is not one plain file name

    identities = {b.id: job_identity(model_identity, b, sel.run) for b in sel.benchmarks}
    ids = {b.id: job_id_of(name, b.id, identities[b.id]) for b in sel.benchmarks}
    for jid in ids.values():
        store.job_dir(jid)
    done = {b: rec for b, jid in ids.items() if (rec := store.finished_job(jid)) is not None}
    todo = [b for b in sel.benchmarks if b.id not in done]
    agreement: dict[str, TaskAgreement] = {}
    for b, rec in done.items():
        agreement.update(_stored_agreement(store, rec))

    jobs: dict[str, JobRecord] = dict(done)
    if todo:
        created = [p for p in (store.root, store.jobs_dir) if not p.exists()]
        tm = task_manager()
        temps: list[tuple[Path, JobRecord]] = []
        try:
            with nltk_for_ifeval(store, any(b.id == "ifeval" for b in todo)):
                for bench in todo:
                    tmp, rec, agr = _rescore_benchmark(sel, bench, tm, store, name, source, ids[bench.id], identities[bench.id], model_identity, where)
                    temps.append((tmp, rec))
                    agreement.update(agr)
            for tmp, rec in temps:  # every benchmark re-scored: only now does anything appear
                store.commit_job(tmp, rec)
                jobs[rec.benchmark] = rec
        except BaseException:
            for tmp, _ in temps:
                shutil.rmtree(tmp, ignore_errors=True)
            for p in reversed(created):
                try:
                    p.rmdir()
                except OSError:
                    pass
            raise
    jobs = {b.id: jobs[b.id] for b in sel.benchmarks}
    cfg = sel.raw.get("config") if isinstance(sel.raw.get("config"), dict) else {}
    model = ModelRef(
        name=name, role="candidate", identity=model_identity, published=True, source=where,
        pretrained=str(sel.raw.get("model_name") or ""), revision=cfg.get("model_sha") or None,
        dtype=str(cfg.get("model_dtype") or ""), device=str(cfg.get("device") or ""), run=sel.run,
    )
    exp_path = store.write_experiment(ExperimentRecord(
        experiment=name, finished=time.time(), models=[model], jobs={name: {b: r.job_id for b, r in jobs.items()}})) if record else None
    ordered = {t: agreement[t] for b in sel.benchmarks for t in b.leaf_tasks if t in agreement}
    return ImportResult(name=name, source=where, identity=model_identity, run=sel.run, lm_eval=lm_eval_version(),
                        jobs=jobs, agreement=ordered, reused=not todo, experiment_file=str(exp_path) if exp_path else None)


IMPORT_FILE = "import.json"  # in each job folder: source and agreement (informational)


def _stored_agreement(store: Store, rec: JobRecord) -> dict[str, TaskAgreement]:
    try:
        data = json.loads((store.job_dir(rec.job_id) / IMPORT_FILE).read_text())
        return {t: TaskAgreement.model_validate(a) for t, a in data.get("agreement", {}).items()}
    except (OSError, ValueError):
        return {}


def _rescore_benchmark(sel: Selection, bench: Benchmark, tm, store: Store, name: str, source: str, job_id: str,
                       identity: dict, model_identity: str, where: str) -> tuple[Path, JobRecord, dict[str, TaskAgreement]]:
    started = time.time()
    tmp = store.new_job_dir(job_id)
    try:
        folder = Path("output") / name
        (tmp / folder).mkdir(parents=True)
        tasks, raw_metrics, agreement, samples = {}, {}, {}, []
        for t in bench.leaf_tasks:
            path = sel.samples[t]
            tasks[t] = build_task(tm, t, first_doc(path))
            rel = (folder / f"samples_{t}_{sel.run}.jsonl").as_posix()
            raw_metrics[t], agreement[t] = rescore_task(tasks[t], t, path, tmp / rel, recorded_math_verify(sel, t))
            samples.append(rel)
        meta = {"source": where, "identity": model_identity, "run": sel.run, "lm_eval_version": lm_eval_version(),
                "rescored": True}
        data = benchmark_results(sel, bench, tm, tasks, raw_metrics, name, meta)
        rel_results = (folder / f"results_{sel.run}.json").as_posix()
        (tmp / rel_results).write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        rel_source = (folder / f"{PROCESS_RESULTS}{sel.run}.json").as_posix()
        shutil.copyfile(sel.task_file[bench.leaf_tasks[0]], tmp / rel_source)
        (tmp / IMPORT_FILE).write_text(json.dumps({
            "source": where, "identity": model_identity, "run": sel.run,
            "agreement": {t: a.model_dump() for t, a in agreement.items()}}, indent=2), encoding="utf-8")
        command = ["evalsuite", "import", source, "--name", name, "--run", sel.run]
        record = JobRecord(job_id=job_id, model=name, role="candidate", benchmark=bench.id, task=bench.group,
                           identity=identity, command=command, env={}, results_file=rel_results, samples_files=samples,
                           process_files=[rel_source], started=started, finished=time.time())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, record, agreement


def agreement_rows(result: ImportResult) -> list[tuple[str, int, int, int, str]]:
    """(task, records, compared, agree, remark) for the report."""
    rows = []
    for t, a in result.agreement.items():
        remark = "; ".join([*(["filled in: " + ", ".join(a.filled)] if a.filled else []), *a.notes, *a.mismatches[:1]])
        rows.append((t, a.records, a.compared, a.agree, remark))
    return rows
