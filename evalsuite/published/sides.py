"""The two sides `evalsuite verify` compares: one model's documents per benchmark and leaf task,
with the task configs, dtype and numeric environment of its results (`Side`).

The local side is the study of the model's jobs in the experiment's last run (`stored_runs`,
`side_from_runs`), or of a `--limit` run of it alone (`limit_overrides`). The reference
(`reference_side`) is a details repo id or a details folder imported by
`evalsuite.published.importer.import_details`, or a folder of job folders read as it is
(`side_from_folder`); by default the details repo derived from the model's hub id (`details_repo`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from evalsuite.errors import UserError
from evalsuite.hub import HUB_ID
from evalsuite.published.importer import import_details
from evalsuite.results.files import ResultsMeta, merge_as, meta_of, read_raw_results, read_results_json
from evalsuite.results.samples import SAMPLES_NAME, TaskDocs, metrics_needed, read_samples
from evalsuite.results.store import Store, job_record
from evalsuite.score import score_model
from evalsuite.study import Study, StudyJob, load_study
from evalsuite.suite import Suite

DETAILS_ORG = "open-llm-leaderboard"


def sanitize_model(name: str) -> str:
    """The tracker's model-name sanitization (`org/name` -> `org__name`)."""
    return re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name)


def details_repo(hub_id: str) -> str:
    """`org/name` -> `open-llm-leaderboard/org__name-details`."""
    return f"{DETAILS_ORG}/{sanitize_model(hub_id)}-details"


# ---------------------------------------------------------------------------------------------
# the two sides


@dataclass
class Side:
    """One model's documents per benchmark and leaf task, with the task configs of its results."""

    label: str
    where: str
    docs: dict[str, dict[str, TaskDocs]] = field(default_factory=dict)  # benchmark -> task -> docs
    configs: dict[str, dict] = field(default_factory=dict)  # task -> lm-eval task config
    stderr: dict[str, Optional[float]] = field(default_factory=dict)  # benchmark -> normalized SE
    imported: Optional[dict] = None  # how import_details stored it (identity, run, re-scoring agreement)
    dtype: Optional[str] = None  # the dtype the model ran in (results config: model_dtype, else model_args dtype)
    environment: dict = field(default_factory=dict)  # numeric environment + machine of its jobs (job.json), or the results file's versions


def environment_of(record, meta: ResultsMeta) -> dict:
    """What a side's numbers were computed with, to show beside them: an evalsuite job's numeric
    environment and machine (job.json), else what lm-eval's results file says (transformers
    version); the dtype either way."""
    env = dict((record.identity or {}).get("numeric_env") or {}) if record is not None else {}
    machine = getattr(record, "machine", None) or {}
    env.update({k: v for k, v in machine.items() if v})
    if not env.get("transformers") and meta.transformers_version:
        env["transformers"] = str(meta.transformers_version)
    if meta.dtype:
        env["dtype"] = meta.dtype
    return env


def side_from_jobs(store, jobs: Mapping[str, Any], label: str, suite: Suite, where: str = "", stderr: bool = True) -> Side:
    """A side from finished jobs of a results store (`benchmark -> JobRecord`): see `side_from_runs`."""
    runs = {}
    for bench_id, rec in jobs.items():
        folder = store.job_dir(rec.job_id)
        runs[bench_id] = StudyJob(record=rec, folder=folder, verified=False,
                                  results=read_results_json(folder / rec.results_file, rec.sha256.get(rec.results_file)))
    return side_from_runs(runs, label, suite, where=where or str(store.root), stderr=stderr)


def side_from_runs(runs: Mapping[str, Any], label: str, suite: Suite, where: str, stderr: bool = True, scores=None) -> Side:
    """A side from one model's jobs in a study (`benchmark -> evalsuite.study.StudyJob`): their
    samples (checked against the recorded sha256 while read, unless checked already), task
    configs and (`stderr`) each benchmark's normalized standard error (from `scores`, the study's
    ModelScores of the model, else scored here from the parsed results)."""
    side = Side(label=label, where=where)
    for bench_id, run in runs.items():
        side.docs[bench_id] = run.samples(suite)
        side.configs.update(run.parsed.configs)
        side.dtype = side.dtype or run.meta.dtype
        side.environment = side.environment or environment_of(run.record, run.meta)
    if runs and stderr:
        if scores is None:
            scores = score_model(merge_as([r.parsed for r in runs.values()], label), suite)
        side.stderr = {s.benchmark: s.stderr for s in scores.scores.values() if s.id == s.benchmark}
    return side


def _configs(results: dict) -> dict[str, dict]:
    configs = results.get("configs")
    return {t: c for t, c in configs.items() if isinstance(c, dict)} if isinstance(configs, dict) else {}


def side_from_folder(folder: Path, label: str, suite: Suite, benchmarks: Sequence[str], expect: Optional[str] = None) -> Side:
    """A side from a local folder: job folders of a results store (`*/job.json`), or a details
    folder laid out like the leaderboard's details repos (`<org>__<model>/samples_<task>_<date>.jsonl`
    and `results_<date>.json`; the folder itself or one above it). Where several runs sit side by
    side, each task's newest samples file is used. `expect`: the `<org>__<model>` folder to pick
    when there are several."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--against {folder}: no such folder")
    job_files = sorted(folder.glob("*/job.json")) or ([folder / "job.json"] if (folder / "job.json").is_file() else [])
    if job_files:
        return _side_from_job_folders(job_files, label, suite, benchmarks, folder)
    samples = [p for p in folder.rglob("samples_*.jsonl") if p.is_file() and SAMPLES_NAME.match(p.name)]
    if not samples:
        raise UserError(f"--against {folder}: no lm-eval samples_<task>_<date>.jsonl files (nor job folders) in this folder")
    where = details_model_folder(folder, expect)
    newest: dict[str, tuple[str, Path]] = {}
    for p in samples:
        if p.parent != where:
            continue
        m = SAMPLES_NAME.match(p.name)
        task, date = m.group("task"), m.group("date")
        if task not in newest or date > newest[task][0]:
            newest[task] = (date, p)
    side = Side(label=label, where=str(where))
    for results_file in sorted(where.glob("results_*.json")):  # oldest first: the newest config wins
        data = read_raw_results(results_file)
        if not isinstance(data, dict):
            raise UserError(f"{results_file}: cannot read results JSON (not a JSON object)")
        side.configs.update(_configs(data))
        meta = meta_of(data)
        side.dtype = meta.dtype or side.dtype
        side.environment = environment_of(None, meta) or side.environment
    for bench_id in benchmarks:
        bench = suite.get(bench_id)
        have = [t for t in bench.leaf_tasks if t in newest]
        if not have:
            continue
        metrics = metrics_needed(bench)
        side.docs[bench_id] = {t: read_samples(newest[t][1], metrics, t) for t in have}
    if not side.docs:
        raise UserError(f"--against {where}: no samples of the {', '.join(benchmarks)} tasks")
    return side


def details_model_folder(folder: Path, expect: Optional[str] = None) -> Path:
    """The one model folder of a details folder (where its samples and results files are): several
    (`<org>__<model>/` side by side) are refused unless `expect` names exactly one of them. The same
    rule for a folder read as it is and for one that verify imports."""
    folder = Path(folder)
    files = [p for p in folder.rglob("*") if p.is_file() and (SAMPLES_NAME.match(p.name) or p.name.startswith("results_") and p.suffix == ".json")]
    parents = sorted({p.parent for p in files}) or [folder]
    if len(parents) > 1:
        chosen = [p for p in parents if expect and p.name == expect]
        if len(chosen) != 1:
            names = ", ".join(str(p.relative_to(folder)) for p in parents[:4])
            raise UserError(f"--against {folder}: samples of several models ({names}); pass the folder of one")
        parents = chosen
    return parents[0]


def check_source(source: Optional[str], spec) -> None:
    """What can be checked of `--against` before anything runs or is written: a folder exists (a
    details folder holds one model's details), else it is a details repo id."""
    if source is None:
        if not spec.hub:
            raise UserError(f"model {spec.display_name} has no hub id: say what to check it against with --against REPO_OR_FOLDER")
        return
    path = Path(source).expanduser()
    if path.is_dir():
        if not ((path / "job.json").is_file() or any(path.glob("*/job.json"))):
            details_model_folder(path, sanitize_model(spec.hub) if spec.hub else None)
        return
    if path.exists() or not _looks_like_repo(source):
        raise UserError(f"--against {source}: no such folder")


def _side_from_job_folders(job_files: Sequence[Path], label: str, suite: Suite, benchmarks: Sequence[str], folder: Path) -> Side:
    jobs: dict[str, Any] = {}
    roots = {f.parent.parent for f in job_files}
    if len(roots) != 1:
        raise UserError(f"--against {folder}: job folders in different places")
    for f in job_files:
        rec = job_record(f.parent, f.parent.name, "job")
        if rec.benchmark not in benchmarks:
            continue
        if rec.benchmark in jobs:
            raise UserError(f"--against {folder}: two jobs for {rec.benchmark} ({jobs[rec.benchmark].job_id}, {rec.job_id}); pass the jobs of one model")
        jobs[rec.benchmark] = rec
    if not jobs:
        raise UserError(f"--against {folder}: no job of the {', '.join(benchmarks)} benchmarks")
    return side_from_jobs(Store(roots.pop(), jobs_here=True), jobs, label, suite, where=str(folder), stderr=False)


# ---------------------------------------------------------------------------------------------
# the experiment side: which jobs, which reference, the --limit run


def find_model(exp, name: str):
    """The ModelSpec named `name` in the experiment (UserError listing the names otherwise)."""
    for m in exp.models:
        if m.display_name == name:
            return m
    raise UserError(f"model {name!r} is not in experiment {exp.name} (models: {', '.join(m.display_name for m in exp.models)})")


def stored_runs(store, experiment: str, model: str) -> Study:
    """The study of `model` alone in the experiment's last run (every job's files checked)."""
    rec = store.read_experiment(experiment)
    per = rec.jobs.get(model)
    if not per:
        raise UserError(f"{store.experiment_file(experiment)}: the last run of {experiment} has no jobs of {model}")
    only = rec.model_copy(update={"models": [m for m in rec.models if m.name == model], "jobs": {model: per}})
    return load_study(store, only, check_all=True)


def stored_jobs(store, experiment: str, model: str) -> dict[str, Any]:
    """benchmark -> JobRecord of `model` in the experiment's last run (sha256-checked)."""
    return stored_runs(store, experiment, model).jobs[model]


def limit_overrides(exp, model: str, limit: int, merged: Optional[Path]) -> tuple[dict, str]:
    """Config overrides that run only `model` with `limit` documents per task, under an
    experiment name of its own (the experiment's own record stays as it is), and a note on how.

    A parent becomes the candidate of a one-model experiment (a job's identity has no role in
    it). A recipe candidate needs its parents for the merge: with the merged folder already built
    it runs from that folder (`path:`), else the whole experiment runs with the limit."""
    spec = find_model(exp, model)
    name = f"{exp.name}-verify-{model}"[:128]
    base = {"limit": limit, "name": name}
    if spec is exp.candidate and spec.recipe is None:
        return {**base, "parents": []}, f"{model} alone"
    if spec is exp.candidate:
        if merged is not None and merged.is_dir():
            return {**base, "parents": [], "candidate": {"recipe": None, "path": str(merged), "name": model}}, \
                f"{model} alone, from its merged folder {merged}"
        return base, f"the whole experiment ({model} is merged from its parents and not built yet)"
    return {**base, "parents": [], "candidate": spec.model_dump(mode="json")}, f"{model} alone"


def reference_side(source: Optional[str], spec, store, suite: Suite, benchmarks: Sequence[str]) -> Side:
    """The reference: `source` (a details repo id or a folder), or the details repo derived from
    the model's hub id. Repo ids and details folders go through `evalsuite.published.importer.import_details`
    (`_importer`); folders of job folders are read as they are."""
    model = spec.display_name
    expect = sanitize_model(spec.hub) if spec.hub else None
    if source is None:
        if not spec.hub:
            raise UserError(f"model {model} has no hub id: say what to check it against with --against REPO_OR_FOLDER")
        source = details_repo(spec.hub)
    importer = _importer()
    path = Path(source).expanduser()
    if path.is_dir() and (importer is None or (path / "job.json").is_file() or any(path.glob("*/job.json"))):
        return side_from_folder(path, f"{model} (reference)", suite, benchmarks, expect)
    if not path.is_dir() and (path.exists() or not _looks_like_repo(source)):
        raise UserError(f"--against {source}: no such folder")
    if path.is_dir():  # one model's details only, as when the folder is read as it is
        chosen = details_model_folder(path, expect)
        source = str(chosen) if chosen != path else source
    if importer is None:
        raise UserError(f"{source}: importing a details repo needs the details importer (evalsuite.published.importer), which is not available here; "
                        f"download the repo and pass its folder with --against")
    result = importer(source, f"{model}-published", store)
    jobs = {b: r for b, r in result.jobs.items() if b in benchmarks}
    if not jobs:
        raise UserError(f"{source}: no details of the {', '.join(benchmarks)} benchmarks")
    side = side_from_jobs(store, jobs, f"{model} (reference)", suite, where=str(source), stderr=False)
    agreement = [a for t, a in result.agreement.items() if any(t in suite.get(b).leaf_tasks for b in jobs)]
    side.imported = {
        "name": result.name, "source": result.source, "identity": result.identity, "run": result.run,
        "lm_eval": result.lm_eval, "reused": result.reused, "jobs": {b: r.job_id for b, r in jobs.items()},
        "verdicts_compared": sum(a.compared for a in agreement), "verdicts_agree": sum(a.agree for a in agreement),
    }
    return side


def _looks_like_repo(source: str) -> bool:
    return bool(HUB_ID.match(source)) and not source.startswith((".", "~"))


def _importer():
    """The details importer (a function: a test takes it away to read details folders as they are)."""
    return import_details
