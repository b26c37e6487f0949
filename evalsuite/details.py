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

How tasks are built without their datasets: the task is built by lm-eval's own `TaskFactory`
from its registered YAML (the index of lm-eval's `tasks/leaderboard` folder, as
`evalsuite.run.lm_eval_main` indexes it) with two overrides that lm-eval's `TaskConfig`
supports: `custom_dataset` (a callable `ConfigurableTask.download` calls instead of
`datasets.load_dataset`) returning an in-memory `datasets.Dataset.from_list([first recorded
doc])` for whichever split the config asks for, and `process_docs: None` (the records hold the
documents already processed). `__init__` needs one document (it renders a test prompt);
scoring itself never touches the dataset: `process_results` gets each record's own `doc`.
Nothing is downloaded, no dataset is needed, and the metric code is lm-eval's, unmodified.
The stored `configs.<task>` is `dump_config()` with the original `process_docs` put back.

MATH: files of task version <= 2 (before Math-Verify) carry `exact_match` from the original
parser and no `exact_match_original`; there the recorded `exact_match` is compared with the
recomputed `exact_match_original`, and both parsers' values are stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.run.local import PER_TASK_KEYS, PROCESS_RESULTS  # the source's whole results file is kept beside, as a shared process's
from evalsuite.schema import ExperimentRecord, JobRecord, ModelRef
from evalsuite.store import Store, file_sha256
from evalsuite.suite import Benchmark, Suite, load_suite

DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{DATE})\.jsonl$")
RESULTS_NAME = re.compile(rf"^results_(?P<date>{DATE})\.json$")
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+?)(?:@(?P<rev>[\w./-]+))?$")
# lm-eval's leaderboard group names (older layouts write them as plain `results` entries)
LM_EVAL_GROUPS = {"leaderboard", "leaderboard_bbh", "leaderboard_gpqa", "leaderboard_math_hard", "leaderboard_musr",
                  "leaderboard_instruction_following"}
MATH_OLD_NOTE = "exact_match (original parser, task version <= 2) compared with recomputed exact_match_original"


class TaskAgreement(BaseModel):
    """How the recorded per-sample metric values of one task compare with the recomputed ones."""

    task: str
    records: int = 0
    compared: int = 0  # recorded metric values compared
    agree: int = 0
    filled: list[str] = Field(default_factory=list)  # metrics the records lacked (computed now)
    notes: list[str] = Field(default_factory=list)
    mismatches: list[str] = Field(default_factory=list)  # the first few, "doc 3 acc_norm: 1.0 -> 0.0"

    @property
    def rate(self) -> Optional[float]:
        return self.agree / self.compared if self.compared else None


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
# selecting and validating one run


@dataclass
class Selection:
    root: Path
    run: str
    results_files: list[Path]
    samples: dict[str, Path]  # leaf task -> samples file
    raw: dict  # merged results JSON of the run
    task_file: dict[str, Path]  # leaf task -> results file that holds it
    benchmarks: list[Benchmark]
    file_sha: dict[Path, str] = field(default_factory=dict)


def _runs_in(names: list[str]) -> list[str]:
    return sorted({m["date"] for n in names if (m := RESULTS_NAME.match(Path(n).name))})


def select_run(folder: Path, run: Optional[str], suite: Suite) -> Selection:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (and not a hub details repo id)")
    results_all = sorted(p for p in folder.rglob("results_*.json") if p.is_file() and RESULTS_NAME.match(p.name))
    samples_all = sorted(p for p in folder.rglob("samples_*.jsonl") if p.is_file())
    if not results_all:
        raise UserError(f"{folder}: no lm-eval results_<date>.json in this folder")
    runs = _runs_in([p.name for p in results_all])
    for p in samples_all:
        m = SAMPLES_NAME.match(p.name)
        if m is None:
            raise UserError(f"{p}: not a samples_<task>_<date>.jsonl name")
        if m["date"] not in runs:
            raise UserError(f"{p}: samples of run {m['date']}, but no results_{m['date']}.json beside it "
                            f"(runs of different dates mixed in one folder?)")
    if run is None:
        run = runs[-1]
    elif run not in runs:
        raise UserError(f"{folder}: no run {run!r} (runs here: {', '.join(runs)})")
    results_files = [p for p in results_all if RESULTS_NAME.match(p.name)["date"] == run]
    samples: dict[str, Path] = {}
    others: dict[str, Path] = {}
    for p in samples_all:
        m = SAMPLES_NAME.match(p.name)
        if m["date"] != run:
            others.setdefault(m["task"], p)
            continue
        if m["task"] in samples:
            raise UserError(f"{p}: a second samples file of task {m['task']} in run {run} (also {samples[m['task']]})")
        samples[m["task"]] = p

    from evalsuite.score import read_results_file

    leaves = {t: b for b in suite.benchmarks for t in b.leaf_tasks}
    groups = {b.group for b in suite.benchmarks} | LM_EVAL_GROUPS
    raw: dict[str, Any] = {}
    task_file: dict[str, Path] = {}
    for p in results_files:
        parsed = read_results_file(p)  # also refuses a file that is not lm-eval's
        data = json.loads(p.read_text(encoding="utf-8"))
        for task in parsed.metrics:
            if task in groups and task not in leaves:
                continue  # a group entry of a layout without `groups` (lm-eval 0.4.5)
            if task not in leaves:
                raise UserError(f"{p}: unknown task {task!r} (not a leaf task of {suite.name})")
            if task in task_file:
                raise UserError(f"{p}: task {task} also in {task_file[task]}")
            task_file[task] = p
            if parsed.n_samples.get(task) is None:
                raise UserError(f"{p}: n-samples.{task}.effective missing (needed to check the samples are complete)")
        if not raw:
            raw = {k: (dict(v) if k in PER_TASK_KEYS and isinstance(v, dict) else v) for k, v in data.items()}
        else:
            for k in PER_TASK_KEYS:
                if isinstance(data.get(k), dict):
                    raw.setdefault(k, {}).update(data[k])
    for task, p in samples.items():
        if task not in leaves:
            raise UserError(f"{p}: unknown task {task!r} (not a leaf task of {suite.name})")
        if task not in task_file:
            raise UserError(f"{p}: task {task} is not in results_{run}.json (runs of different dates mixed?)")
    for task, p in task_file.items():
        if task not in samples:
            extra = f"; {others[task].name} is of another run (runs of different dates mixed?)" if task in others else ""
            raise UserError(f"{p}: no samples_{task}_{run}.jsonl for task {task}{extra}")
    benches = []
    for b in suite.benchmarks:
        present = [t for t in b.leaf_tasks if t in task_file]
        if not present:
            continue
        missing = [t for t in b.leaf_tasks if t not in task_file]
        if missing:
            raise UserError(f"{task_file[present[0]]}: {b.display} incomplete: task {missing[0]} missing "
                            f"({len(missing)} of {len(b.leaf_tasks)} absent)")
        benches.append(b)
    if not benches:
        raise UserError(f"{results_files[0]}: none of the {suite.name} benchmarks' tasks in run {run}")
    return Selection(root=folder, run=run, results_files=results_files, samples=samples, raw=raw,
                     task_file=task_file, benchmarks=benches)


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) of a samples file; a line that is not one JSON object is refused."""
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise UserError(f"{path}: line {lineno}: truncated or unparsable record ({str(exc).splitlines()[0]})") from None
            if not isinstance(rec, dict):
                raise UserError(f"{path}: line {lineno}: not a samples record (a JSON object)")
            yield lineno, rec


def validate(sel: Selection) -> None:
    """Every samples file of the run: parsable records of the lm-eval shape, documents complete."""
    for task, path in sorted(sel.samples.items()):
        n = sel.raw["n-samples"][task]["effective"]
        seen: dict[str, set[int]] = defaultdict(set)
        for lineno, rec in _records(path):
            doc_id = rec.get("doc_id")
            if isinstance(doc_id, bool) or not isinstance(doc_id, int):
                raise UserError(f"{path}: line {lineno}: doc_id missing or not an integer")
            for key, kind in (("doc", dict), ("filtered_resps", list), ("resps", list)):
                if not isinstance(rec.get(key), kind):
                    raise UserError(f"{path}: line {lineno}: field {key!r} missing or not a {kind.__name__}")
            if "arguments" not in rec:
                raise UserError(f"{path}: line {lineno}: field 'arguments' missing")
            ids = seen[str(rec.get("filter", "none"))]
            if doc_id in ids:
                raise UserError(f"{path}: line {lineno}: doc_id {doc_id} appears twice")
            if not 0 <= doc_id < n:
                raise UserError(f"{path}: line {lineno}: doc_id {doc_id} outside 0..{n - 1} "
                                f"(n-samples.{task}.effective = {n} in {sel.task_file[task].name})")
            ids.add(doc_id)
        if not seen:
            raise UserError(f"{path}: no records (n-samples.{task}.effective = {n})")
        for filt, ids in seen.items():
            if len(ids) != n:
                missing = sorted(set(range(n)) - ids)
                raise UserError(f"{path}: {len(missing)} of {n} documents missing (first: doc_id {missing[0]}, "
                                f"filter {filt}; n-samples.{task}.effective in {sel.task_file[task].name})")


def files_identity(sel: Selection) -> str:
    """`sha256:` of the selected files (name + content), independent of where the folder is."""
    h = hashlib.sha256()
    files = [*sel.results_files, *sel.samples.values()]
    for name, digest in sorted((p.name, file_sha256(p)) for p in files):
        h.update(f"{name}\0{digest}\n".encode())
    return f"sha256:{h.hexdigest()}"


# ---------------------------------------------------------------------------------------------
# the hub


def parse_hub_id(source: str) -> Optional[tuple[str, Optional[str]]]:
    m = HUB_ID.match(source)
    return (m["repo"], m["rev"]) if m else None


def fetch_hub(repo: str, revision: Optional[str], run: Optional[str]) -> tuple[Path, str, str]:
    """Download one run of a details repo -> (snapshot folder, commit, run date id)."""
    try:
        from huggingface_hub import HfApi, constants, snapshot_download
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:  # pragma: no cover - a dependency of transformers/datasets
        raise UserError(f"huggingface_hub is needed to read {repo} ({exc})") from None
    where = f"{repo}{'@' + revision if revision else ''}"
    try:
        if constants.HF_HUB_OFFLINE:
            path = Path(snapshot_download(repo, repo_type="dataset", revision=revision))
            names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
            commit = path.name
        else:
            info = HfApi().dataset_info(repo, revision=revision)
            commit = info.sha
            names = [s.rfilename for s in (info.siblings or [])]
        runs = _runs_in(names)
        if not runs:
            raise UserError(f"{where}: no results_<date>.json in this dataset repo (not a details repo?)")
        chosen = run or runs[-1]
        if chosen not in runs:
            raise UserError(f"{where}: no run {chosen!r} (runs here: {', '.join(runs)})")
        wanted = [n for n in names if (m := RESULTS_NAME.match(Path(n).name) or SAMPLES_NAME.match(Path(n).name)) and m["date"] == chosen]
        if not constants.HF_HUB_OFFLINE:
            path = Path(snapshot_download(repo, repo_type="dataset", revision=commit, allow_patterns=wanted))
    except UserError:
        raise
    except hf_errors.GatedRepoError:
        raise UserError(f"{where}: gated dataset repo: accept its terms on huggingface.co and log in "
                        f"(`huggingface-cli login` or HF_TOKEN)") from None
    except hf_errors.RepositoryNotFoundError:
        raise UserError(f"{where}: no such local folder, and no such dataset repo on the hub (or private: log in)") from None
    except hf_errors.RevisionNotFoundError:
        raise UserError(f"{where}: no such revision") from None
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
        raise UserError(f"{where}: not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1)") from None
    except hf_errors.HfHubHTTPError as exc:
        raise UserError(f"{where}: hub error: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # network failures come as requests/httpx errors, whichever hub client is installed
        raise UserError(f"{where}: cannot reach the hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return path, commit, chosen


# ---------------------------------------------------------------------------------------------
# lm-eval's tasks, built without their datasets


class _AnySplit(dict):
    """A dataset dict that serves the recorded documents under whatever split the config names."""

    def __init__(self, ds):
        super().__init__()
        self._ds = ds

    def __missing__(self, key):
        return self._ds


@contextmanager
def _quiet_lm_eval():
    log = logging.getLogger("lm_eval")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def _no_progress_bars():
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


def task_manager():
    """lm-eval's TaskManager over its leaderboard folder only (as evalsuite.run.lm_eval_main)."""
    from lm_eval.tasks import TaskManager

    from evalsuite.run.lm_eval_main import leaderboard_dir

    return TaskManager(include_path=[leaderboard_dir()], include_defaults=False)


def build_task(tm, name: str, first_doc: dict):
    """The installed lm-eval task `name`, built by lm-eval's TaskFactory from its YAML, with the
    dataset replaced by the recorded documents (module docstring)."""
    import datasets
    from lm_eval.tasks._factory import TaskFactory
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = tm.task_index.get(name)
    if entry is None or entry.yaml_path is None:
        raise UserError(f"the installed lm-eval has no task {name!r}")
    original = load_yaml(entry.yaml_path, resolve_func=True).get("process_docs")
    ds = datasets.Dataset.from_list([first_doc])
    overrides = {"custom_dataset": lambda **_: _AnySplit(ds), "process_docs": None, "dataset_kwargs": None}
    with _quiet_lm_eval(), _no_progress_bars():
        task = TaskFactory(meta=None).build(entry, overrides=overrides, registry=tm.task_index)
    task.config.custom_dataset = None  # dump_config() then shows the task as installed
    task.config.process_docs = original
    task.config.metadata.pop("config_source", None)
    task.config.metadata["config_source"] = str(entry.yaml_path)
    return task


def build_group(tm, name: str, tasks: dict):
    """lm-eval's Group for a benchmark group (for its aggregate_metric_list), children attached."""
    from lm_eval.api.group import Group
    from lm_eval.tasks._yaml_loader import load_yaml

    entry = tm.task_index.get(name)
    if entry is None or entry.yaml_path is None:
        return None
    cfg = load_yaml(entry.yaml_path, resolve_func=True)
    group = Group.from_config({k: v for k, v in cfg.items() if k in ("group", "group_alias", "task", "aggregate_metric_list", "metadata")})
    for child in cfg.get("task", []):
        if isinstance(child, str) and child in tasks:
            group.add(tasks[child])
    return group


@contextmanager
def _nltk_for_ifeval(store: Store, needed: bool):
    """punkt_tab for IFEval, offline: NLTK_DATA (and nltk's search path, if nltk is loaded) point at
    it while re-scoring, and are put back afterwards (the caller's process keeps its own setup)."""
    if not needed:
        yield
        return
    from evalsuite.nltk_data import ensure_punkt_tab

    folder = store.root / "nltk_data"
    status = ensure_punkt_tab(folder, offline=True)
    if status.kind == "missing":
        raise UserError(f"NLTK punkt_tab is needed to re-score IFEval and is not available offline: {status.detail}")
    path = str(status.path.parent.parent.parent) if status.path else str(folder)
    saved_env = os.environ.get("NLTK_DATA")
    os.environ["NLTK_DATA"] = os.pathsep.join([path, *[p for p in (saved_env or "").split(os.pathsep) if p and p != path]])
    saved_path = None
    if "nltk" in sys.modules:
        import nltk

        saved_path = list(nltk.data.path)
        if path not in nltk.data.path:
            nltk.data.path.insert(0, path)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("NLTK_DATA", None)
        else:
            os.environ["NLTK_DATA"] = saved_env
        if saved_path is not None:
            import nltk

            nltk.data.path[:] = saved_path


# ---------------------------------------------------------------------------------------------
# re-scoring


def _bool(v: Any) -> Any:
    if isinstance(v, str):
        if v == "True":
            return True
        if v == "False":
            return False
    return v


def results_from_record(rec: dict, output_type: str, path: Path, lineno: int) -> list:
    """What lm-eval passed to process_results, from the record's `filtered_resps` (either form)."""
    fr = rec["filtered_resps"]
    if output_type in ("multiple_choice", "loglikelihood"):
        out = []
        for item in fr:
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise UserError(f"{path}: line {lineno}: filtered_resps is not (loglikelihood, is_greedy) pairs")
            try:
                ll = float(item[0])
            except (TypeError, ValueError):
                raise UserError(f"{path}: line {lineno}: loglikelihood {item[0]!r} is not a number") from None
            greedy = _bool(item[1])
            if not isinstance(greedy, bool):
                raise UserError(f"{path}: line {lineno}: is_greedy {item[1]!r} is not a boolean")
            out.append((ll, greedy))
        return out
    if not all(isinstance(x, str) for x in fr):
        raise UserError(f"{path}: line {lineno}: filtered_resps of a generation task are not strings")
    return list(fr)


def _json_value(v: Any) -> Any:
    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(v, default=handle_non_serializable))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (bool, int, float)) and isinstance(b, (bool, int, float)):
        return float(a) == float(b)
    return a == b


def tracker_record(rec: dict, metrics: dict) -> dict:
    """The record as lm-eval's EvaluationTracker writes it, with the recomputed metric values."""
    from lm_eval.utils import hash_string, handle_non_serializable, sanitize_list

    args = rec["arguments"]
    if isinstance(args, list):  # the in-memory form: one (prompt, continuation/gen kwargs) per request
        args = {f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)} for i, arg in enumerate(args)}
    first_prompt = args.get("gen_args_0", {}).get("arg_0", "") if isinstance(args, dict) else ""
    target = rec.get("target", "")
    out = {
        "doc_id": rec["doc_id"],
        "doc": rec["doc"],
        "target": str(target),
        "arguments": args,
        "resps": sanitize_list(rec["resps"]),
        "filtered_resps": sanitize_list(rec["filtered_resps"]),
        "filter": rec.get("filter", "none"),
        "metrics": list(metrics),
        "doc_hash": rec.get("doc_hash") or hash_string(json.dumps(rec["doc"], indent=2, default=handle_non_serializable, ensure_ascii=False)),
        "prompt_hash": rec.get("prompt_hash") or hash_string(first_prompt),
        "target_hash": rec.get("target_hash") or hash_string(str(target)),
    }
    out.update(metrics)
    return out


def _first_doc(path: Path) -> dict:
    for _, rec in _records(path):
        return rec["doc"]
    raise UserError(f"{path}: no records")  # excluded by validate


def recorded_math_verify(sel: "Selection", task: str) -> bool:
    """Did the source's own task code score `exact_match` with Math-Verify? lm-eval keeps the
    source text of `process_results` in `configs.<task>`: the HF fork's `main` (task version 2.0,
    the leaderboard's Feb 2025 re-scoring) calls `verify(`, the original parser `is_equiv(`."""
    cfg = (sel.raw.get("configs") or {}).get(task) if isinstance(sel.raw.get("configs"), dict) else None
    return isinstance(cfg, dict) and "verify(" in str(cfg.get("process_results", ""))


def rescore_task(task, name: str, path: Path, out_path: Path, math_verify_recorded: bool = False) -> tuple[dict, TaskAgreement]:
    """Re-score one samples file with the task's process_results; write the re-scored records
    (EvaluationTracker form) to out_path. Returns lm-eval's raw_metrics and the agreement.
    `math_verify_recorded`: a MATH file without `exact_match_original` whose `exact_match` is
    Math-Verify's (the fork's main), not the original parser's."""
    from lm_eval.utils import handle_non_serializable

    raw: dict[tuple[str, str], list] = defaultdict(list)
    agr = TaskAgreement(task=name)
    filled: set[str] = set()
    old_math = False
    with out_path.open("w", encoding="utf-8") as out:
        for lineno, rec in _records(path):
            results = results_from_record(rec, task.OUTPUT_TYPE, path, lineno)
            try:
                metrics = task.process_results(rec["doc"], results)
            except Exception as exc:  # the records do not fit the installed task (another dataset?)
                raise UserError(f"{path}: line {lineno}: lm-eval's {name}.process_results failed on this record "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
            filt = str(rec.get("filter", "none"))
            agr.records += 1
            for metric, value in metrics.items():
                raw[(metric, filt)].append(value)
                recorded_key = metric
                if metric == "exact_match_original" and metric not in rec and "exact_match" in rec and not math_verify_recorded:
                    recorded_key, old_math = "exact_match", True  # the original parser's value (version <= 2)
                elif metric == "exact_match" and "exact_match_original" not in rec and "exact_match_original" in metrics and not math_verify_recorded:
                    filled.add(metric)  # Math-Verify's verdict did not exist yet
                    continue
                if recorded_key not in rec:
                    filled.add(metric)
                    continue
                agr.compared += 1
                new = _json_value(value)
                if _same(rec[recorded_key], new):
                    agr.agree += 1
                elif len(agr.mismatches) < 5:
                    agr.mismatches.append(f"doc {rec['doc_id']} {metric}: recorded {rec[recorded_key]!r}, recomputed {new!r}")
            out.write(json.dumps(tracker_record(rec, metrics), default=handle_non_serializable, ensure_ascii=False) + "\n")
    agr.filled = sorted(filled)
    if old_math:
        agr.notes.append(MATH_OLD_NOTE)
    return raw, agr


def sanitize_model_name(name: str) -> str:
    """lm-eval's EvaluationTracker folder name for a model."""
    return re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name)


def benchmark_results(sel: Selection, bench: Benchmark, tm, tasks: dict, raw_metrics: dict, name: str, meta: dict) -> dict:
    """lm-eval's results JSON for one benchmark, aggregated by lm-eval from the recomputed values."""
    from lm_eval.evaluator_utils import _process_results

    acc = {t: {"task": tasks[t], "raw_metrics": raw_metrics[t], "logged_samples": []} for t in bench.leaf_tasks}
    groups = {}
    if bench.group not in bench.leaf_tasks:
        g = build_group(tm, bench.group, tasks)
        if g is not None:
            groups[g.name] = g
    with _quiet_lm_eval():
        res = _process_results(acc, groups, bootstrap_iters=100000)._to_eval_results()
    src = sel.raw
    for t in bench.leaf_tasks:  # the dataset's size is the source's: lm-eval saw only one document here
        original = (src.get("n-samples", {}).get(t) or {}).get("original")
        if original is not None:
            res["n-samples"][t]["original"] = original
    mine = {bench.group, *bench.leaf_tasks}
    out: dict[str, Any] = {k: res[k] for k in ("results", "groups", "group_subtasks", "configs", "versions") if k in res}
    shots = src.get("n-shot") if isinstance(src.get("n-shot"), dict) else {}
    out["n-shot"] = {t: shots.get(t, res["n-shot"].get(t)) for t in sorted(res["n-shot"]) if t in mine}
    out["higher_is_better"] = res["higher_is_better"]
    out["n-samples"] = res["n-samples"]
    for k, v in src.items():
        if k in out or k == "samples":
            continue
        out[k] = {t: x for t, x in v.items() if t in mine} if k in PER_TASK_KEYS and isinstance(v, dict) else v
    out["model_name"] = name
    out["model_name_sanitized"] = sanitize_model_name(name)
    out["evalsuite_import"] = meta
    return out


# ---------------------------------------------------------------------------------------------
# the import


def job_identity(model_identity: str, bench: Benchmark, run: str) -> dict:
    from evalsuite.run.jobs import lm_eval_version, package_version, task_files_hash

    return {
        "model": model_identity,
        "task": bench.group,
        "source": "published",
        "run": run,
        "lm_eval": lm_eval_version(),
        "task_files": task_files_hash(),  # the installed task code that re-scored it
        **({"math_verify": package_version("math-verify")} if bench.id == "math_hard" else {}),
    }


def job_id_for(name: str, bench: Benchmark, identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True).encode()
    return f"{name}--{bench.id}--{hashlib.sha256(blob).hexdigest()[:16]}"


def _check_experiment_slot(store: Store, name: str) -> None:
    path = store.experiment_file(name)
    if not path.exists():
        return
    try:
        rec = ExperimentRecord.model_validate_json(path.read_text())
    except (OSError, ValueError):
        raise UserError(f"{path}: an experiment record that cannot be read is in the way; choose another --name") from None
    if not (len(rec.models) == 1 and rec.models[0].published is True):
        raise UserError(f"{path}: experiment {name!r} is an evalsuite run, not an import; choose another --name")


def import_details(source: str, name: str, store: Store, run: Optional[str] = None,
                   revision: Optional[str] = None, suite: Optional[Suite] = None, record: bool = True) -> ImportResult:
    """Import one run of published details as jobs of model `name` (module docstring). `record`:
    also write the experiment record `experiments/<name>.json` (`evalsuite import`; an experiment
    with a `published:` model records it in its own record instead)."""
    from evalsuite.run.jobs import lm_eval_version

    suite = suite or load_suite()
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise UserError(f"--name {name!r} must be a plain name (no '/', not starting with '.')")
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
    store.experiment_file(name)  # refuses a name that is not one plain file name
    if record:
        _check_experiment_slot(store, name)

    identities = {b.id: job_identity(model_identity, b, sel.run) for b in sel.benchmarks}
    ids = {b.id: job_id_for(name, b, identities[b.id]) for b in sel.benchmarks}
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
            with _nltk_for_ifeval(store, any(b.id == "ifeval" for b in todo)):
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
    from evalsuite.run.jobs import lm_eval_version

    started = time.time()
    tmp = store.new_job_dir(job_id)
    try:
        folder = Path("output") / name
        (tmp / folder).mkdir(parents=True)
        tasks, raw_metrics, agreement, samples = {}, {}, {}, []
        for t in bench.leaf_tasks:
            path = sel.samples[t]
            tasks[t] = build_task(tm, t, _first_doc(path))
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
