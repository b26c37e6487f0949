"""Paired comparison of the candidate with each parent, document by document.

Per benchmark score (each main benchmark and each extra score, e.g. MATH's original parser), on the
documents both models answered (same task, doc_id and doc_hash):

- a paired bootstrap of the difference of the *leaderboard-normalized* score: documents are
  resampled with replacement within each subtask (same draw for both models), and every resample
  goes through `evalsuite.score.aggregate`, the leaderboard's own aggregation;
- McNemar's exact test on per-document correctness of the benchmark's primary metric (its first
  metric key: IFEval prompt-level strict, BBH/GPQA/MuSR acc_norm, MATH exact_match, MMLU-PRO acc);
  two-sided binomial on the discordant pairs, documents of all subtasks pooled;
- Holm's correction across all scores compared with one parent;
- verdict `better` / `worse` when the Holm-adjusted p < alpha *and* the bootstrap interval of the
  delta lies on that side of 0, else `indistinguishable`.

The statistics are pure functions of numpy arrays, seeded per (parent, score) so any subset of
benchmarks gives the same numbers. Reading samples files is the only I/O (section at the end).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.score import _baselines, _keys, _weights, aggregate, normalize
from evalsuite.suite import Benchmark, Suite, load_suite

Verdict = Literal["better", "worse", "indistinguishable"]
DEFAULT_BOOT = 2000
DEFAULT_SEED = 0
DEFAULT_ALPHA = 0.05

# ---------------------------------------------------------------------------------------------
# per-document data


@dataclass
class TaskDocs:
    """One model's per-document metric values for one lm-eval leaf task.

    `values[metric] = (numerator, denominator)` per document: a scalar metric v is (v, 1); a list
    metric (IFEval's `inst_level_strict_acc`, one entry per instruction) is (sum, len), so the raw
    task value of any subset is sum(num) / sum(den) — lm-eval's mean, and its flattened
    instruction-level mean for IFEval.
    """

    task: str
    doc_ids: np.ndarray  # int64, ascending
    doc_hash: np.ndarray  # str, aligned with doc_ids
    values: dict[str, tuple[np.ndarray, np.ndarray]]
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # byte offset of each line
    path: Optional[Path] = None

    def __len__(self) -> int:
        return len(self.doc_ids)

    def raw(self, metric: str) -> float:
        num, den = self.values[metric]
        total = float(den.sum())
        return float(num.sum()) / total if total else 0.0

    def correct(self, metric: str) -> np.ndarray:
        """Per-document correctness (bool) of a 0/1 metric."""
        num, den = self.values[metric]
        return num >= 0.5 * den

    @classmethod
    def from_values(cls, task: str, values: Mapping[str, Sequence], doc_ids: Optional[Sequence[int]] = None,
                    doc_hash: Optional[Sequence[str]] = None) -> "TaskDocs":
        """Build from plain per-document values (numbers, bools, or lists for list metrics)."""
        first = next(iter(values.values()))
        n = len(first)
        ids = np.arange(n, dtype=np.int64) if doc_ids is None else np.asarray(doc_ids, dtype=np.int64)
        hashes = np.array([f"{task}:{i}" for i in ids] if doc_hash is None else list(doc_hash), dtype=str)
        vals = {m: _num_den(list(v)) for m, v in values.items()}
        order = np.argsort(ids, kind="stable")
        return cls(task, ids[order], hashes[order], {m: (a[order], b[order]) for m, (a, b) in vals.items()})


def _num_den(column: list) -> tuple[np.ndarray, np.ndarray]:
    num = np.empty(len(column), dtype=np.float64)
    den = np.ones(len(column), dtype=np.float64)
    for i, v in enumerate(column):
        if isinstance(v, (list, tuple)):
            num[i] = float(sum(bool(x) if isinstance(x, bool) else float(x) for x in v))
            den[i] = float(len(v))
        else:
            num[i] = float(v)
    return num, den


def pair_docs(a: TaskDocs, b: TaskDocs) -> tuple[np.ndarray, np.ndarray, int]:
    """Indices (into a, into b) of documents both answered, and how many ids had other content."""
    _, ia, ib = np.intersect1d(a.doc_ids, b.doc_ids, assume_unique=True, return_indices=True)
    same = a.doc_hash[ia] == b.doc_hash[ib]
    return ia[same], ib[same], int((~same).sum())


# ---------------------------------------------------------------------------------------------
# statistics (pure)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial(b + c, 1/2) on the discordant pairs (exact ints)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    term = total = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        total += term
    return min(1.0, total / (1 << (n - 1)))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def verdict(p_adjusted: float, ci_low: float, ci_high: float, alpha: float = DEFAULT_ALPHA) -> Verdict:
    if p_adjusted < alpha and ci_low > 0:
        return "better"
    if p_adjusted < alpha and ci_high < 0:
        return "worse"
    return "indistinguishable"


def _resample_raw(sides: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Raw values of `n_boot` resamples of one task's documents: shape (n_boot, len(sides)).

    Each side is (num, den) over the same documents; one resample serves every side, so paired
    columns stay paired. Resampling n documents with replacement only matters through how often
    each distinct row of values is drawn, so the draw is a multinomial over the distinct rows —
    the same distribution as drawing document indices, at a cost independent of n for 0/1 metrics."""
    table = np.column_stack([x for side in sides for x in side])
    n = len(table)
    uniq, counts = np.unique(table, axis=0, return_counts=True)
    draws = rng.multinomial(n, counts / n, size=n_boot)  # (n_boot, distinct rows)
    sums = draws @ uniq  # (n_boot, 2 * sides)
    top, bottom = sums[:, 0::2], sums[:, 1::2]
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def _keys_for(bench: Benchmark, metrics: Sequence[str]) -> list[tuple[str, str]]:
    """(task, metric) per aggregation key, in the key order `aggregate` expects."""
    if bench.combine == "mean_of_metrics":
        return [(bench.leaf_tasks[0], m) for m in metrics]
    (m,) = metrics
    return [(t, m) for t in bench.leaf_tasks]


def bootstrap_score(bench: Benchmark, metrics: Sequence[str], models: Sequence[Mapping[str, TaskDocs]],
                    n_boot: int, rng: np.random.Generator,
                    index: Optional[Mapping[str, Sequence[np.ndarray]]] = None) -> tuple[list[float], np.ndarray]:
    """Point scores and (n_boot, len(models)) bootstrap scores of several models, jointly resampled.

    `models[j][task]` are the documents of model j; `index[task][j]` (optional) picks and aligns
    them (paired documents). Every draw goes through `score.aggregate`."""
    keys = _keys_for(bench, metrics)
    names = [m if bench.combine == "mean_of_metrics" else t for t, m in keys]
    tasks = list(dict.fromkeys(t for t, _ in keys))
    sel = {t: [np.arange(len(models[j][t])) if index is None else index[t][j] for j in range(len(models))] for t in tasks}
    n_by_task = {t: int(len(sel[t][0])) for t in tasks}
    if any(n == 0 for n in n_by_task.values()):
        raise ValueError(f"{bench.id}: a subtask has no documents to compare")
    per_key: dict[tuple[str, str], np.ndarray] = {}
    points: list[dict[str, float]] = [{} for _ in models]
    for t in tasks:
        task_metrics = [m for tt, m in keys if tt == t]
        sides = []
        for j, model in enumerate(models):
            docs = model[t]
            for m in task_metrics:
                num, den = docs.values[m]
                sides.append((num[sel[t][j]], den[sel[t][j]]))
        draws = _resample_raw(sides, n_boot, rng)
        for j in range(len(models)):
            for q, m in enumerate(task_metrics):
                col = j * len(task_metrics) + q
                per_key[(t, m)] = per_key.get((t, m), np.empty((n_boot, len(models))))
                per_key[(t, m)][:, j] = draws[:, col]
                num, den = sides[col]
                total = float(den.sum())
                points[j][names[keys.index((t, m))]] = float(num.sum()) / total if total else 0.0
    n_arg = n_by_task if bench.combine == "weighted_then_normalize" else None
    scores = np.empty((n_boot, len(models)))
    for j in range(len(models)):
        scores[:, j] = aggregate_draws(bench, names, np.stack([per_key[k][:, j] for k in keys], axis=1), n_arg)
    point = [aggregate(bench, points[j], n_arg) for j in range(len(models))]
    return point, scores


def _fsum_rows(terms: np.ndarray) -> np.ndarray:
    """`math.fsum` of each row of `terms` (rows x columns), vectorized over rows: the same
    correctly rounded sum, bit for bit (Shewchuk's exact partials, then fsum's final rounding)."""
    rows, m = terms.shape
    partials: list[np.ndarray] = []  # per row: non-overlapping, increasing magnitude; zeros are no-ops
    for col in range(m):
        x = terms[:, col]
        for j, y in enumerate(partials):
            hi = x + y  # Knuth's TwoSum: lo is the exact rounding error, whatever the magnitudes
            yv = hi - x
            partials[j] = (x - (hi - yv)) + (y - yv)
            x = hi
        partials.append(x)
    if not partials:
        return np.zeros(rows)
    p = np.stack(partials, axis=1)
    p = np.take_along_axis(p, np.argsort(p == 0.0, axis=1, kind="stable"), axis=1)  # drop zeros (as fsum does)
    n = np.count_nonzero(p, axis=1)
    at = np.arange(rows)
    n = n - 1
    hi = np.where(n >= 0, p[at, np.maximum(n, 0)], 0.0)
    lo = np.zeros(rows)
    going = n > 0  # fsum: add partials from the top while the sum stays exact
    while going.any():
        n = np.where(going, n - 1, n)
        y = p[at, np.maximum(n, 0)]
        new_hi = np.where(going, hi + y, hi)
        lo = np.where(going, y - (new_hi - hi), lo)
        hi = new_hi
        going &= (lo == 0.0) & (n > 0)
    below = p[at, np.maximum(n - 1, 0)]
    fix = (n > 0) & (((lo < 0.0) & (below < 0.0)) | ((lo > 0.0) & (below > 0.0)))  # half-way case: round to even
    y = lo * 2.0
    x = hi + y
    return np.where(fix & (y == x - hi), x, hi)


def aggregate_draws(bench: Benchmark, names: Sequence[str], raw: np.ndarray, n_by_task: Optional[Mapping[str, int]]) -> np.ndarray:
    """`score.aggregate` of each row of `raw` (draws x keys), on whole columns at once.

    The same operations as `aggregate`, elementwise in IEEE double, and `math.fsum`'s correctly
    rounded sums, so every value equals the scalar call on that row exactly."""
    raw = np.asarray(raw, dtype=np.float64)
    columns = {k: raw[:, i] for i, k in enumerate(names)}
    keys = _keys(bench, columns)
    w = _weights(bench, keys, n_by_task)
    b = _baselines(bench, keys)
    vals = np.stack([columns[k] for k in keys], axis=1)  # (draws, keys) in aggregate's key order
    if bench.combine == "weighted_then_normalize":
        raw_agg = _fsum_rows(vals * np.asarray(w))
        return np.maximum(raw_agg - b[0], 0.0) / (1.0 - b[0]) * 100.0  # score.normalize; validator: one baseline
    base = np.asarray(b)
    per_key = np.maximum(vals - base, 0.0) / (1.0 - base) * 100.0  # score.normalize, per key
    return _fsum_rows(per_key * np.asarray(w))


def interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(x.encode()) for x in labels)])


# ---------------------------------------------------------------------------------------------
# results


class ScoreComparison(BaseModel):
    """Candidate vs one parent on one score (a benchmark, or an extra score like MATH original)."""

    score_id: str
    display: str
    benchmark: str
    parent: str
    in_holm_family: bool = True
    n_docs: int  # paired documents
    unpaired: int = 0  # documents only one model answered, or with other content
    candidate: float  # normalized, on the paired documents
    parent_value: float
    delta: float
    ci_low: float
    ci_high: float
    hash_differs: int = 0  # doc_ids both answered whose doc_hash differs (other content: not paired)
    only_candidate: int  # discordant: candidate right, parent wrong (primary metric)
    only_parent: int
    p_value: float
    p_holm: float = 1.0
    verdict: Verdict = "indistinguishable"
    primary_metric: str
    subtask_delta: dict[str, float] = Field(default_factory=dict)  # leaf task -> normalized delta


class AverageComparison(BaseModel):
    parent: str
    delta: float
    ci_low: float
    ci_high: float


class ModelInterval(BaseModel):
    low: float
    high: float


class Comparison(BaseModel):
    candidate: str
    parents: list[str]
    seed: int
    n_boot: int
    alpha: float
    level: float = 0.95
    rows: list[ScoreComparison]
    averages: list[AverageComparison] = Field(default_factory=list)
    intervals: dict[str, dict[str, ModelInterval]] = Field(default_factory=dict)
    """model -> score display -> 95% bootstrap interval of that model's own score"""

    def for_parent(self, parent: str) -> list[ScoreComparison]:
        return [r for r in self.rows if r.parent == parent]


def _score_list(suite: Suite, benchmarks: Sequence[str]) -> list[tuple[Benchmark, str, str, list[str], bool]]:
    """(benchmark, score id, display, metrics, is a main score) for each compared score."""
    out = []
    for bench in suite.benchmarks:
        if bench.id not in benchmarks:
            continue
        out.append((bench, bench.id, bench.display, list(bench.metrics), True))
        out.extend((bench, e.id, e.display, list(e.metrics), False) for e in bench.extra_scores)
    return out


def compare_models(
    docs: Mapping[str, Mapping[str, Mapping[str, TaskDocs]]],
    candidate: str,
    parents: Sequence[str],
    *,
    suite: Optional[Suite] = None,
    n_boot: int = DEFAULT_BOOT,
    seed: int = DEFAULT_SEED,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
) -> Comparison:
    """Compare `candidate` with each parent. `docs[model][benchmark][task]` = TaskDocs.

    Benchmarks are those the candidate has; a parent lacking one is skipped for it."""
    suite = suite or load_suite()
    rows: list[ScoreComparison] = []
    averages: list[AverageComparison] = []
    cand = docs[candidate]
    scores = _score_list(suite, [b for b in suite.ids if b in cand])
    own: dict[str, dict[str, np.ndarray]] = {m: {} for m in [candidate, *parents]}  # model -> score -> draws
    for parent in parents:
        par = docs[parent]
        main_draws: list[np.ndarray] = []
        family: list[ScoreComparison] = []
        for bench, sid, display, metrics, is_main in scores:
            if bench.id not in par:
                continue
            index: dict[str, list[np.ndarray]] = {}
            unpaired = hash_differs = 0
            for t in bench.leaf_tasks:
                a, b = cand[bench.id].get(t), par[bench.id].get(t)
                if a is None or b is None:
                    raise UserError(f"{bench.display}: no samples for task {t} of {candidate if a is None else parent}")
                ia, ib, other = pair_docs(a, b)
                unpaired += len(a) + len(b) - 2 * len(ia)
                hash_differs += other
                index[t] = [ia, ib]
            if any(len(ix[0]) == 0 for ix in index.values()):
                continue  # nothing to pair in some subtask: no comparison possible
            pair = [cand[bench.id], par[bench.id]]
            point, draws = bootstrap_score(bench, metrics, pair, n_boot, _rng(seed, "pair", parent, sid), index)
            delta_draws = draws[:, 0] - draws[:, 1]
            # each model's own interval comes from its column of the joint draws (its paired docs)
            own[candidate].setdefault(display, draws[:, 0])
            own[parent][display] = draws[:, 1]
            lo, hi = interval(delta_draws, level)
            primary = metrics[0]
            only_c = only_p = 0
            sub: dict[str, float] = {}
            for t, (ia, ib) in index.items():
                ca = cand[bench.id][t].correct(primary)[ia]
                pb = par[bench.id][t].correct(primary)[ib]
                only_c += int((ca & ~pb).sum())
                only_p += int((~ca & pb).sum())
                if bench.combine != "mean_of_metrics" and len(bench.leaf_tasks) > 1:
                    base = bench.baseline_for(t)
                    ra = _raw_of(cand[bench.id][t], primary, ia)
                    rb = _raw_of(par[bench.id][t], primary, ib)
                    sub[t] = normalize(ra, base) - normalize(rb, base)
            row = ScoreComparison(
                score_id=sid, display=display, benchmark=bench.id, parent=parent, n_docs=sum(len(ix[0]) for ix in index.values()),
                unpaired=unpaired, hash_differs=hash_differs, candidate=point[0], parent_value=point[1], delta=point[0] - point[1], ci_low=lo, ci_high=hi,
                only_candidate=only_c, only_parent=only_p, p_value=mcnemar_exact(only_c, only_p), primary_metric=primary,
                subtask_delta=sub,
            )
            family.append(row)
            if is_main:
                main_draws.append(delta_draws)
        adjusted = holm([r.p_value for r in family])
        for r, p in zip(family, adjusted):
            r.p_holm = p
            r.verdict = verdict(p, r.ci_low, r.ci_high, alpha)
        rows.extend(family)
        mains = [r for r in family if r.score_id in suite.ids]
        if len(mains) == len(suite.benchmarks):
            avg_draws = np.mean(np.stack(main_draws), axis=0)
            lo, hi = interval(avg_draws, level)
            averages.append(AverageComparison(parent=parent, delta=float(np.mean([r.delta for r in mains])), ci_low=lo, ci_high=hi))
    intervals: dict[str, dict[str, ModelInterval]] = {}
    for model in [candidate, *parents]:  # scores no comparison covered get a bootstrap of their own
        for bench, sid, display, metrics, _ in scores:
            if bench.id in docs[model] and display not in own[model]:
                _, draws = bootstrap_score(bench, metrics, [docs[model][bench.id]], n_boot, _rng(seed, "model", model, sid))
                own[model][display] = draws[:, 0]
        intervals[model] = {d: ModelInterval(low=lo, high=hi) for d, (lo, hi) in ((d, interval(x, level)) for d, x in own[model].items())}
        mains = [own[model].get(b.display) for b in suite.benchmarks]
        if all(x is not None for x in mains):
            lo, hi = interval(np.mean(np.stack(mains), axis=0), level)
            intervals[model][suite.average] = ModelInterval(low=lo, high=hi)
    return Comparison(candidate=candidate, parents=list(parents), seed=seed, n_boot=n_boot, alpha=alpha, level=level,
                      rows=rows, averages=averages, intervals=intervals)


def _raw_of(docs: TaskDocs, metric: str, idx: np.ndarray) -> float:
    num, den = docs.values[metric]
    total = float(den[idx].sum())
    return float(num[idx].sum()) / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# reading lm-eval samples files (the only I/O here)

SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-.]+)\.jsonl$")
_HEAD = re.compile(rb'\{"doc_id": (-?\d+),')  # used with match(buf, start): anchored at the line
_TAIL = b'"filter": '


def task_of_samples_file(path: Path) -> Optional[str]:
    m = SAMPLES_NAME.match(Path(path).name)
    return m.group("task") if m else None


def _parse_line(buf: bytes, start: int, end: int) -> tuple[int, dict]:
    """(doc_id, the small trailing fields) of the line buf[start:end], without decoding prompts
    and outputs.

    lm-eval writes `doc_id` first and `filter, metrics, doc_hash, ..., <metric values>` last; the
    last `"filter": ` is the top-level key (JSON strings escape quotes, and nothing after it holds
    objects). Anything unexpected falls back to a full parse."""
    head = _HEAD.match(buf, start, end)
    cut = buf.rfind(_TAIL, start, end)
    if head is not None and cut > start:
        try:
            tail = json.loads(b"{" + buf[cut:end])
            if isinstance(tail, dict) and "doc_hash" in tail:
                return int(head.group(1)), tail
        except ValueError:
            pass
    rec = json.loads(buf[start:end])
    return int(rec["doc_id"]), rec


def _lines(fh, digest=None, window: int = 1 << 26):
    """(file offset, buffer, start, end) of each non-empty line. The file is mapped a window at a
    time (no copies of long prompts; resident memory bounded by the window and longest line).
    `digest` (a hashlib object), if given, is fed every byte of the file once, in order."""
    size = os.fstat(fh.fileno()).st_size
    gran = mmap.ALLOCATIONGRANULARITY
    start = 0  # file offset of the next line
    while start < size:
        base = start - start % gran
        length = min(size - base, window)
        with mmap.mmap(fh.fileno(), length, access=mmap.ACCESS_READ, offset=base) as mm:
            first = start - base
            pos = first
            while True:
                nl = mm.find(b"\n", pos)
                if nl < 0:
                    if base + length >= size:  # last line, no final newline
                        if mm[pos:length].strip():
                            yield base + pos, mm, pos, length
                        pos = length
                    elif pos == first:  # a line longer than the window
                        window *= 2
                    break
                if nl - pos > 1 or mm[pos:nl].strip():
                    yield base + pos, mm, pos, nl
                pos = nl + 1
            if digest is not None and pos > first:
                with memoryview(mm) as view, view[first:pos] as part:  # no copy of the window
                    digest.update(part)
            start = base + pos


def read_samples(path: Path, metrics: Sequence[str], task: Optional[str] = None, sha256: Optional[str] = None) -> TaskDocs:
    """One `samples_<task>_<date>.jsonl` -> TaskDocs for the given metric keys (`name,filter`).

    `sha256`: the digest the run recorded for the file; checked in the same pass (UserError if the
    file changed since)."""
    path = Path(path)
    task = task or task_of_samples_file(path) or path.stem
    wanted = [(m, *m.split(",", 1)) if "," in m else (m, m, "none") for m in metrics]
    ids: list[int] = []
    hashes: list[str] = []
    offsets: list[int] = []
    cols: dict[str, list] = {m: [] for m in metrics}
    seen: set[int] = set()
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read samples file ({exc.strerror})") from exc
    digest = hashlib.sha256() if sha256 else None
    with fh:
        for lineno, (start, buf, a, b) in enumerate(_lines(fh, digest), 1):
            try:
                doc_id, rec = _parse_line(buf, a, b)
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{path}: record {lineno}: not an lm-eval samples record ({str(exc).splitlines()[0]})") from exc
            filt = rec.get("filter", "none")
            row = {}
            for key, name, want_filter in wanted:
                if want_filter == filt:
                    if name not in rec:
                        raise UserError(f"{path}: record {lineno}: metric {name!r} missing from the sample")
                    row[key] = rec[name]
            if not row:
                continue  # a record of another filter
            if len(row) != len(wanted):
                raise UserError(f"{path}: record {lineno}: metrics {list(metrics)} come from different filters")
            if doc_id in seen:
                raise UserError(f"{path}: record {lineno}: doc_id {doc_id} appears twice")
            seen.add(doc_id)
            ids.append(doc_id)
            hashes.append(str(rec.get("doc_hash", "")))
            offsets.append(start)
            for key in metrics:
                cols[key].append(row[key])
    if digest is not None and digest.hexdigest() != sha256:
        raise UserError(f"{path}: changed since the run recorded it (sha256 differs); rerun `evalsuite run`")
    docs = TaskDocs.from_values(task, cols, ids, hashes) if ids else TaskDocs(
        task, np.zeros(0, np.int64), np.zeros(0, str), {m: (np.zeros(0), np.zeros(0)) for m in metrics})
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    docs.offsets = np.asarray(offsets, dtype=np.int64)[order] if ids else np.zeros(0, np.int64)
    docs.path = path
    return docs


def read_record(docs: TaskDocs, doc_id: int) -> dict:
    """The full samples record of one document (re-read from its line)."""
    if docs.path is None:
        raise KeyError(doc_id)
    i = int(np.searchsorted(docs.doc_ids, doc_id))
    if i >= len(docs.doc_ids) or docs.doc_ids[i] != doc_id:
        raise KeyError(doc_id)
    with docs.path.open("rb") as fh:
        fh.seek(int(docs.offsets[i]))
        return json.loads(fh.readline())


def metrics_needed(bench: Benchmark) -> list[str]:
    """Every metric key a benchmark's scores use (main first, then extra scores)."""
    keys = list(bench.metrics)
    for e in bench.extra_scores:
        keys += [m for m in e.metrics if m not in keys]
    return keys


def read_benchmark_samples(bench: Benchmark, files: Sequence[Path], sha256: Optional[Mapping[Path, str]] = None) -> dict[str, TaskDocs]:
    """Samples files of one job -> leaf task -> TaskDocs (files of other tasks are ignored).
    `sha256` maps files to the digests the run recorded (checked while reading)."""
    by_task: dict[str, Path] = {}
    for f in files:
        t = task_of_samples_file(Path(f))
        if t in bench.leaf_tasks:
            if t in by_task:
                raise UserError(f"{f}: a second samples file for task {t} (also {by_task[t]})")
            by_task[t] = Path(f)
    missing = [t for t in bench.leaf_tasks if t not in by_task]
    if missing:
        where = Path(files[0]).parent if files else "the job folder"
        raise UserError(f"{where}: no samples file for task {missing[0]} ({bench.display}); rerun with sample logging")
    metrics = metrics_needed(bench)
    sha256 = sha256 or {}
    return {t: read_samples(by_task[t], metrics, t, sha256.get(by_task[t])) for t in bench.leaf_tasks}
