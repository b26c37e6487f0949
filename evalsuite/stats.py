"""The paired statistics (pure functions of numpy arrays): McNemar's exact test, Holm's
correction, verdicts, and the bootstrap of leaderboard scores, every resample going through the
leaderboard's own aggregation (`evalsuite.score`), bit for bit. Generators are seeded per label
(`seeded_rng`), so any subset of comparisons gives the same numbers."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Literal, Optional

import numpy as np

from evalsuite.results.samples import TaskDocs
from evalsuite.score import aggregate, key_baselines, key_weights, present_keys
from evalsuite.suite import Benchmark

Verdict = Literal["better", "worse", "indistinguishable"]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial(b + c, 1/2) on the discordant pairs (exact ints).
    Equals `scipy.stats.binomtest(b, b + c, 0.5).pvalue` to 1e-12 wherever p > ~1e-266; kept
    because below that scipy's float cdf loses digits and flushes to 0, while this sum stays
    exact (tests/test_compare.py checks both)."""
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


def verdict(p_adjusted: float, ci_low: float, ci_high: float, alpha: float) -> Verdict:
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


def keys_for(bench: Benchmark, metrics: Sequence[str]) -> list[tuple[str, str]]:
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
    keys = keys_for(bench, metrics)
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
    keys = present_keys(bench, columns)
    w = key_weights(bench, keys, n_by_task)
    b = key_baselines(bench, keys)
    vals = np.stack([columns[k] for k in keys], axis=1)  # (draws, keys) in aggregate's key order
    if bench.combine == "weighted_then_normalize":
        raw_agg = _fsum_rows(vals * np.asarray(w))
        return np.maximum(raw_agg - b[0], 0.0) / (1.0 - b[0]) * 100.0  # score.normalize; validator: one baseline
    base = np.asarray(b)
    per_key = np.maximum(vals - base, 0.0) / (1.0 - base) * 100.0  # score.normalize, per key
    return _fsum_rows(per_key * np.asarray(w))


def interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def seeded_rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(x.encode()) for x in labels)])

