"""A local run of one model checked against its published per-sample details (`evalsuite verify`).

Both sides are lm-eval samples files (EvaluationTracker form), read with `evalsuite.compare`'s
reader (`read_samples`: doc_id, doc_hash and metric values per document, plus each line's offset)
and re-read line by line at those offsets for the fields the comparison needs (arguments, resps,
prompt_hash). Per leaf task, documents are paired by doc_id; only documents the local run has are
compared (a `--limit` run checks its first N documents against the full published details).

- documents identical: `doc_hash` equal. A pair whose hash differs is counted and its doc_ids
  shown; it stays in the score comparison (paired by doc_id) — a differing hash can be harmless
  (a processed row with another field) or not, and the prompt check says which.
- prompts identical: `prompt_hash` equal (sha256 of the first prompt string); the first differing
  prompt is shown as a short unified diff.
- multiple choice: the largest |Δ log-likelihood| over every choice of every paired document, and
  the share of identical picks. The records hold only the 0/1 verdict, not the pick, so the pick is
  recomputed from the records' log-likelihoods as lm-eval's metric does it: argmax of
  ll / len(choice) for `acc_norm` tasks (the choice text without the target delimiter, as lm-eval
  measures it), argmax of ll for `acc` (MMLU-PRO).
- generation: share of identical outputs (`filtered_resps`, leaves compared as strings, the
  tracker's form) and, for every task, of identical per-sample verdicts (the metric fields).
- per benchmark: the leaderboard-normalized score of each side on the paired documents and their
  difference (local − reference) with a paired bootstrap interval (`compare.bootstrap_score`: same
  resample for both sides, every draw through `score.aggregate`).

A benchmark fails when a task's prompts differ, when a task has no paired document, or when
|Δ| exceeds the tolerance: by default the local score's standard error (lm-eval's stderr through
`score.aggregate_stderr` when the paired documents are all the local run's documents, else — and
for IFEval, whose instruction-level stderr lm-eval does not give — the bootstrap standard deviation
of the local score on the paired documents); `tolerance=FLOAT` is in normalized points.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, Field, computed_field

from evalsuite.config import StatsSettings
from evalsuite.samples import SAMPLES_NAME, TaskDocs, metrics_needed, prompt_of, read_records, read_samples, record_args
from evalsuite.stats import seeded_rng, bootstrap_score, interval
from evalsuite.errors import UserError
from evalsuite.study import Study, job_record
from evalsuite.suite import Benchmark, Suite, load_suite

DETAILS_ORG = "open-llm-leaderboard"
DIFF_LINES = 12  # lines of the first differing prompt's diff that are shown
DIFF_WIDTH = 160  # characters per diff line
SHOW_IDS = 10  # doc_ids listed per kind of mismatch
BATCH = 256  # records re-read at a time (bounded memory on MMLU-PRO-sized files)

Tolerance = Union[Literal["se"], float]

# Per-document agreement (per benchmark, its leaf tasks pooled), measured in docs/published.md:
# the same model at another batch size, in bf16 instead of fp32, or with another thread count
# stays within these; another model with identical prompts does not.
# Picks and outputs may differ on at most max(1, 10% of the paired documents): with a few documents
# one near-tie flip is noise (a 2-document MMLU-PRO in bf16 flips 1 of 2), with many it is 10%.
AGREEMENT = {
    "picks": 0.10,  # multiple choice: share of documents whose pick (lm-eval's argmax) differs, at most
    "outputs": 0.10,  # generation: share of documents whose output (filtered_resps) differs, at most
    "dll_median": 0.15,  # multiple choice: median over documents of max |Δ log-likelihood| (nats), at most
}


def sanitize_model(name: str) -> str:
    """The tracker's model-name sanitization (`org/name` -> `org__name`)."""
    return re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name)


def details_repo(hub_id: str) -> str:
    """`org/name` -> `open-llm-leaderboard/org__name-details`."""
    return f"{DETAILS_ORG}/{sanitize_model(hub_id)}-details"


def parse_tolerance(text: str) -> Tolerance:
    if text.strip().lower() == "se":
        return "se"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise UserError(f"--tolerance {text!r}: give 'se' (the benchmark's standard error) or a number of points >= 0")
    return value


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


def environment_of(record, results: dict) -> dict:
    """What a side's numbers were computed with, to show beside them: an evalsuite job's numeric
    environment and machine (job.json), else what lm-eval's results file says (transformers
    version); the dtype either way."""
    env = dict((record.identity or {}).get("numeric_env") or {}) if record is not None else {}
    machine = getattr(record, "machine", None) or {}
    env.update({k: v for k, v in machine.items() if v})
    if not env.get("transformers") and isinstance(results, dict) and results.get("transformers_version"):
        env["transformers"] = str(results["transformers_version"])
    dtype = results_dtype(results) if isinstance(results, dict) else None
    if dtype:
        env["dtype"] = dtype
    return env


def results_dtype(results: dict) -> Optional[str]:
    """`torch.bfloat16` / `dtype=bfloat16` of an lm-eval results file's config -> "bfloat16"."""
    cfg = results.get("config") if isinstance(results, dict) else None
    if not isinstance(cfg, dict):
        return None
    value = cfg.get("model_dtype")
    if not value:
        args = cfg.get("model_args")
        if isinstance(args, dict):
            value = args.get("dtype")
        elif isinstance(args, str):
            m = re.search(r"(?:^|,)dtype=([\w.]+)", args)
            value = m.group(1) if m else None
    if not value or str(value).lower() == "auto":
        return None
    return str(value).lower().removeprefix("torch.")


def side_from_jobs(store, jobs: Mapping[str, Any], label: str, suite: Suite, where: str = "", stderr: bool = True) -> Side:
    """A side from finished jobs of a results store (`benchmark -> JobRecord`): see `side_from_runs`."""
    from evalsuite.study import StudyJob, read_results_json

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
    from evalsuite.results.files import merge_as, results_of
    from evalsuite.score import score_model

    side = Side(label=label, where=where)
    for bench_id, run in runs.items():
        side.docs[bench_id] = run.samples(suite)
        side.configs.update(_configs(run.results))
        side.dtype = side.dtype or results_dtype(run.results)
        side.environment = side.environment or environment_of(run.record, run.results)
    if runs and stderr:
        if scores is None:
            scores = score_model(merge_as([results_of(r.results, r.folder / r.record.results_file) for r in runs.values()], label), suite)
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
        try:
            data = json.loads(results_file.read_text(encoding="utf-8"))
            side.configs.update(_configs(data))
            side.dtype = results_dtype(data) or side.dtype
            side.environment = environment_of(None, data) or side.environment
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"{results_file}: cannot read results JSON ({str(exc).splitlines()[0]})") from exc
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
    from evalsuite.store import Store

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

    class _Jobs(Store):  # job folders named by their id, wherever they are
        def job_dir(self, job_id: str) -> Path:
            return self.root / job_id

    return side_from_jobs(_Jobs(roots.pop()), jobs, label, suite, where=str(folder), stderr=False)


# ---------------------------------------------------------------------------------------------
# results


class TaskCheck(BaseModel):
    task: str
    subtask: str
    kind: Literal["multiple_choice", "generate_until"]
    local_docs: int
    reference_docs: int
    paired: int
    not_in_reference: int = 0  # local documents the reference lacks
    docs_identical: int = 0
    doc_mismatch: list[int] = Field(default_factory=list)  # first doc_ids whose doc_hash differs
    prompts_identical: int = 0
    prompt_mismatch: list[int] = Field(default_factory=list)
    prompt_diff_doc: Optional[int] = None
    prompt_diff: Optional[str] = None
    max_abs_dll: Optional[float] = None  # multiple choice: largest |Δ loglikelihood|
    dlls: list[float] = Field(default_factory=list, exclude=True)  # per paired document: max |Δ ll| over its choices
    max_dll_doc: Optional[int] = None
    choice_count_mismatch: int = 0
    picks_identical: Optional[int] = None
    pick_rule: Optional[str] = None
    outputs_identical: Optional[int] = None  # generation: filtered_resps equal
    verdicts_identical: int = 0  # the metric fields equal
    passed: bool = True
    reasons: list[str] = Field(default_factory=list)

    def _share(self, n: Optional[int]) -> Optional[float]:
        return None if n is None or not self.paired else n / self.paired

    @computed_field
    @property
    def docs_identical_share(self) -> Optional[float]:
        return self._share(self.docs_identical)

    @computed_field
    @property
    def prompts_identical_share(self) -> Optional[float]:
        return self._share(self.prompts_identical)

    @computed_field
    @property
    def picks_identical_share(self) -> Optional[float]:
        return self._share(self.picks_identical)

    @computed_field
    @property
    def outputs_identical_share(self) -> Optional[float]:
        return self._share(self.outputs_identical)

    @computed_field
    @property
    def verdicts_identical_share(self) -> Optional[float]:
        return self._share(self.verdicts_identical)


class BenchmarkCheck(BaseModel):
    benchmark: str
    display: str
    paired: int = 0
    local: Optional[float] = None  # normalized, on the paired documents
    reference: Optional[float] = None
    delta: Optional[float] = None  # local − reference
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    tolerance: Optional[float] = None
    tolerance_kind: str = ""  # "SE (lm-eval)", "SE (bootstrap)", "points"
    passed: bool = True
    reasons: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # per-document differences within the agreement thresholds
    # per-document agreement, the benchmark's tasks pooled (AGREEMENT): None where it does not apply
    picks_identical_share: Optional[float] = None
    outputs_identical_share: Optional[float] = None
    dll_median: Optional[float] = None
    dll_p90: Optional[float] = None
    dll_max: Optional[float] = None
    agreement_passed: bool = True
    outputs_judged: bool = True  # False: the sides ran in different dtypes (greedy outputs are not compared then)
    tasks: list[TaskCheck] = Field(default_factory=list)


class Verification(BaseModel):
    model: str
    experiment: str
    local: str  # where the local run's jobs are
    reference: str  # what the reference was read from
    reference_import: Optional[dict] = None  # import_details: identity, run, lm-eval, recorded vs re-scored verdicts
    local_environment: dict = Field(default_factory=dict)  # versions, attention, hub kernels, CUDA/cuDNN/GPU, dtype
    reference_environment: dict = Field(default_factory=dict)
    limit: Optional[int] = None
    tolerance: str
    n_boot: int
    seed: int
    level: float
    benchmarks: list[BenchmarkCheck]
    passed: bool
    reasons: list[str]  # "<benchmark>: <reason>" / "<benchmark>: <task>: <reason>", in order
    notes: list[str] = Field(default_factory=list)  # "<benchmark>: ..." differences within the tolerance


# ---------------------------------------------------------------------------------------------
# the comparison


def _records(docs: TaskDocs, positions: Sequence[int]) -> Iterator[dict]:
    """Full records at `positions` (indices into docs), in that order, BATCH lines at a time."""
    for k in range(0, len(positions), BATCH):
        part = [int(p) for p in positions[k:k + BATCH]]
        got = read_records(docs, part)
        for p in part:
            yield got[p]


def _kind(rec: dict) -> Literal["multiple_choice", "generate_until"]:
    args = record_args(rec)
    return "generate_until" if not args or (len(args[0]) > 1 and isinstance(args[0][1], dict)) else "multiple_choice"


def _loglikelihoods(rec: dict) -> Optional[list[float]]:
    """Per-choice log-likelihoods from filtered_resps (or resps), stringified or not."""
    out: list[float] = []
    for r in rec.get("filtered_resps") or rec.get("resps") or []:
        while isinstance(r, list) and r and isinstance(r[0], list):
            r = r[0]
        try:
            out.append(float(r[0] if isinstance(r, list) else r))
        except (TypeError, ValueError, IndexError):
            return None
    return out


def _pick(rec: dict, lls: list[float], norm: bool, delimiter: str) -> int:
    if not norm:
        return int(np.argmax(lls))
    conts = [str(a[1]) if len(a) > 1 else "" for a in record_args(rec)]
    lengths = [max(1, len(c) - len(delimiter) if c.startswith(delimiter) else len(c)) for c in conts]
    if len(lengths) != len(lls):
        return int(np.argmax(lls))
    return int(np.argmax(np.asarray(lls) / np.asarray(lengths, dtype=np.float64)))


def _as_text(x: Any) -> Any:
    """Leaves as strings: the tracker's `sanitize_list` form, so in-memory and file forms agree."""
    if isinstance(x, (list, tuple)):
        return [_as_text(v) for v in x]
    return str(x)


def _prompt_hash(rec: dict) -> str:
    h = rec.get("prompt_hash")
    return str(h) if h else hashlib.sha256(prompt_of(rec).encode("utf-8")).hexdigest()


def prompt_diff(local: str, reference: str, lines: int = DIFF_LINES, width: int = DIFF_WIDTH) -> str:
    """A short unified diff (one line of context) of two prompts."""
    diff = difflib.unified_diff(reference.splitlines(), local.splitlines(), "reference", "local", n=1, lineterm="")
    out = []
    for line in diff:
        out.append(line if len(line) <= width else line[:width] + " …")
        if len(out) >= lines:
            out.append("…")
            break
    return "\n".join(out)


def check_task(bench: Benchmark, task: str, local: TaskDocs, ref: TaskDocs, local_cfg: Optional[dict], ref_cfg: Optional[dict]) -> TaskCheck:
    _, ia, ib = np.intersect1d(local.doc_ids, ref.doc_ids, assume_unique=True, return_indices=True)
    metric_names = [m.split(",", 1)[0] for m in metrics_needed(bench)]
    norm = bench.metrics[0].split(",", 1)[0].startswith("acc_norm")
    delims = [str((cfg or {}).get("target_delimiter", " ")) for cfg in (local_cfg, ref_cfg)]
    check = TaskCheck(task=task, subtask=bench.short_name(task), kind="multiple_choice", local_docs=len(local),
                      reference_docs=len(ref), paired=len(ia), not_in_reference=len(local) - len(ia))
    picks = outputs = 0
    max_dll: Optional[float] = None
    kind = None
    for doc_id, ra, rb in zip(local.doc_ids[ia].tolist(), _records(local, ia), _records(ref, ib)):
        if str(ra.get("doc_hash", "")) == str(rb.get("doc_hash", "")):
            check.docs_identical += 1
        elif len(check.doc_mismatch) < SHOW_IDS:
            check.doc_mismatch.append(int(doc_id))
        if _prompt_hash(ra) == _prompt_hash(rb):
            check.prompts_identical += 1
        else:
            if check.prompt_diff is None:
                check.prompt_diff_doc = int(doc_id)
                check.prompt_diff = prompt_diff(prompt_of(ra), prompt_of(rb))
            if len(check.prompt_mismatch) < SHOW_IDS:
                check.prompt_mismatch.append(int(doc_id))
        if all(json.dumps(ra.get(m), sort_keys=True) == json.dumps(rb.get(m), sort_keys=True) for m in metric_names):
            check.verdicts_identical += 1
        kind = kind or _kind(ra)
        if kind == "multiple_choice":
            la, lb = _loglikelihoods(ra), _loglikelihoods(rb)
            if la is None or lb is None or len(la) != len(lb) or not la:
                check.choice_count_mismatch += 1
                continue
            d = float(np.max(np.abs(np.asarray(la) - np.asarray(lb))))
            check.dlls.append(d)
            if max_dll is None or d > max_dll:
                max_dll, check.max_dll_doc = d, int(doc_id)
            picks += int(_pick(ra, la, norm, delims[0]) == _pick(rb, lb, norm, delims[1]))
        else:
            outputs += int(_as_text(ra.get("filtered_resps")) == _as_text(rb.get("filtered_resps")))
    check.kind = kind or "multiple_choice"
    if check.kind == "multiple_choice":
        check.max_abs_dll, check.picks_identical = max_dll, picks
        check.pick_rule = "argmax ll/len(choice) (lm-eval acc_norm)" if norm else "argmax ll (lm-eval acc)"
    else:
        check.outputs_identical = outputs
    if not check.paired:
        check.reasons.append(f"no document of the local run ({len(local)}) is in the reference ({len(ref)} documents)")
    if check.prompts_identical < check.paired:
        check.reasons.append(f"prompts differ on {check.paired - check.prompts_identical} of {check.paired} documents "
                             f"(first: doc_id {check.prompt_diff_doc})")
    if check.choice_count_mismatch:
        check.reasons.append(f"{check.choice_count_mismatch} documents with other choices (count or log-likelihoods unreadable)")
    check.passed = not check.reasons
    return check


def _difference_notes(tasks: Sequence[TaskCheck]) -> list[str]:
    """What differs document by document though it fails nothing by itself (other hardware or
    batch sizes move log-likelihoods a little and can flip near-ties): picks, outputs, verdicts."""
    notes = []
    for what, attr in (("picks", "picks_identical"), ("outputs", "outputs_identical"), ("verdicts", "verdicts_identical")):
        counted = [t for t in tasks if getattr(t, attr) is not None]
        differ = sum(t.paired - getattr(t, attr) for t in counted)
        if differ:
            worst = max(counted, key=lambda t: t.paired - getattr(t, attr))
            notes.append(f"{what} differ on {differ} of {sum(t.paired for t in counted)} documents (most in {worst.task})")
    dll = [t for t in tasks if t.max_abs_dll is not None and t.max_abs_dll > 0]
    if dll:
        worst = max(dll, key=lambda t: t.max_abs_dll)
        notes.append(f"max |Δ loglikelihood| {worst.max_abs_dll:.3g} ({worst.task}, doc_id {worst.max_dll_doc})")
    return notes


def agreement_figures(tasks: Sequence[TaskCheck]) -> dict[str, Optional[float]]:
    """The benchmark's per-document agreement, its tasks pooled: shares of identical picks
    (multiple choice) and outputs (generation), and the median / 90th percentile / max of the
    per-document max |Δ log-likelihood|."""
    def share(attr: str) -> Optional[float]:
        counted = [t for t in tasks if getattr(t, attr) is not None and t.paired]
        n = sum(t.paired for t in counted)
        return sum(getattr(t, attr) for t in counted) / n if n else None

    dlls = [d for t in tasks for d in t.dlls]
    return {
        "picks_identical_share": share("picks_identical"),
        "outputs_identical_share": share("outputs_identical"),
        "dll_median": float(np.median(dlls)) if dlls else None,
        "dll_p90": float(np.percentile(dlls, 90)) if dlls else None,
        "dll_max": float(np.max(dlls)) if dlls else None,
    }


def allowed_differences(n: int, share: float) -> int:
    """Documents that may differ out of `n`: max(1, share of n), never all of them when n > 1."""
    return min(max(1, int(share * n)), max(n - 1, 0)) if n > 1 else 0


def _agreement(out: BenchmarkCheck, judge_outputs: bool = True) -> None:
    """Fill the agreement figures and fail the benchmark, naming the figure, where one is past its
    threshold (AGREEMENT): per-document agreement can only be broken by numerical noise for the
    same model under the same harness, and the noise runs stay within the thresholds. Outputs are
    not judged when the two sides ran in different dtypes (greedy generation of a model in bf16 and
    in fp32 can part at the first near-tie: docs/published.md)."""
    for k, v in agreement_figures(out.tasks).items():
        setattr(out, k, v)
    out.outputs_judged = judge_outputs
    failed = []
    for what, attr, share in (("picks", "picks_identical", out.picks_identical_share),
                              ("outputs", "outputs_identical", out.outputs_identical_share)):
        if share is None or (what == "outputs" and not judge_outputs):
            continue
        n = sum(t.paired for t in out.tasks if getattr(t, attr) is not None)
        differ = n - sum(getattr(t, attr) for t in out.tasks if getattr(t, attr) is not None)
        allowed = allowed_differences(n, AGREEMENT[what])
        if differ > allowed:
            failed.append(f"identical {what} {share:.0%} ({n - differ} of {n} documents; "
                          f"at most {allowed} may differ)")
    if out.dll_median is not None and out.dll_median > AGREEMENT["dll_median"]:
        failed.append(f"median |Δ log-likelihood| {out.dll_median:.3g} nats, above {AGREEMENT['dll_median']:g}")
    for f in failed:
        out.reasons.append(f"agreement: {f} (not the same model?)")
    out.agreement_passed = not failed


def check_benchmark(bench: Benchmark, local: Side, ref: Side, tolerance: Tolerance, stats: StatsSettings) -> BenchmarkCheck:
    """One benchmark: its tasks (`check_task`), per-document agreement (`_agreement`) and the
    normalized score difference against the tolerance."""
    out = BenchmarkCheck(benchmark=bench.id, display=bench.display)
    ldocs = local.docs[bench.id]
    rdocs = ref.docs.get(bench.id)
    if not rdocs:
        out.reasons.append(f"no samples of {bench.display} in the reference ({ref.where})")
        out.passed = False
        return out
    index: dict[str, list[np.ndarray]] = {}
    for t in bench.leaf_tasks:
        if t not in rdocs:
            out.reasons.append(f"{t}: no samples in the reference")
            continue
        tc = check_task(bench, t, ldocs[t], rdocs[t], local.configs.get(t), ref.configs.get(t))
        out.tasks.append(tc)
        out.reasons.extend(f"{t}: {r}" for r in tc.reasons)
        _, ia, ib = np.intersect1d(ldocs[t].doc_ids, rdocs[t].doc_ids, assume_unique=True, return_indices=True)
        index[t] = [ia, ib]
    out.paired = sum(tc.paired for tc in out.tasks)
    out.notes = _difference_notes(out.tasks)
    same_dtype = local.dtype is None or ref.dtype is None or local.dtype == ref.dtype
    _agreement(out, judge_outputs=same_dtype)
    if not same_dtype and out.outputs_identical_share is not None:
        out.notes.append(f"outputs not judged: the sides ran in different dtypes ({local.dtype} vs {ref.dtype})")
    if len(index) == len(bench.leaf_tasks) and all(len(ix[0]) for ix in index.values()):
        point, draws = bootstrap_score(bench, list(bench.metrics), [ldocs, rdocs], stats.n_boot, seeded_rng(stats.seed, "verify", bench.id), index)
        out.local, out.reference = point
        out.delta = point[0] - point[1]
        out.ci_low, out.ci_high = interval(draws[:, 0] - draws[:, 1], stats.level)
        if tolerance == "se":
            whole = all(len(index[t][0]) == len(ldocs[t]) for t in bench.leaf_tasks)
            se = local.stderr.get(bench.id) if whole else None
            if se is not None:
                out.tolerance, out.tolerance_kind = float(se), "SE (lm-eval)"
            else:
                out.tolerance, out.tolerance_kind = float(np.std(draws[:, 0])), "SE (bootstrap)"
        else:
            out.tolerance, out.tolerance_kind = float(tolerance), "points"
        if abs(out.delta) > out.tolerance + 1e-9:
            out.reasons.append(f"score difference {out.delta:+.2f} is outside ±{out.tolerance:.2f} ({out.tolerance_kind})")
    out.passed = not out.reasons
    return out


def verify_sides(model: str, experiment: str, local: Side, ref: Side, *, benchmarks: Sequence[str], suite: Optional[Suite] = None,
                 tolerance: Tolerance = "se", stats: StatsSettings = StatsSettings(),
                 limit: Optional[int] = None) -> Verification:
    suite = suite or load_suite()
    checks = [check_benchmark(b, local, ref, tolerance, stats) for b in suite.benchmarks
              if b.id in benchmarks and b.id in local.docs]
    if not any(c.tasks for c in checks):
        raise UserError(f"{ref.where}: the reference holds none of the tasks of {model}'s run ({', '.join(c.benchmark for c in checks)})")
    reasons = [f"{c.benchmark}: {r}" for c in checks for r in c.reasons]
    notes = [f"{c.benchmark}: {n}" for c in checks for n in c.notes]
    return Verification(model=model, experiment=experiment, local=local.where, reference=ref.where,
                        reference_import=ref.imported, limit=limit,
                        local_environment=local.environment, reference_environment=ref.environment,
                        tolerance="se" if tolerance == "se" else f"{float(tolerance):g} points", n_boot=stats.n_boot, seed=stats.seed,
                        level=stats.level, benchmarks=checks, passed=not reasons, reasons=reasons, notes=notes)


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
    from evalsuite.study import load_study

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
    when this checkout has it; folders of job folders are read as they are."""
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
    from evalsuite.hub import HUB_ID

    return bool(HUB_ID.match(source)) and not source.startswith((".", "~"))


def _importer():
    try:
        from evalsuite.published.importer import import_details
    except ImportError:
        return None
    return import_details
