"""The document-level checks of `evalsuite verify`: one benchmark of a local run against its
published details (`check_benchmark`, per leaf task `check_task`).

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
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, Field, computed_field

from evalsuite.config import StatsSettings
from evalsuite.errors import UserError
from evalsuite.published.sides import Side
from evalsuite.results.samples import TaskDocs, metrics_needed, prompt_of, read_records, record_args
from evalsuite.stats import bootstrap_score, interval, seeded_rng
from evalsuite.suite import Benchmark

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
