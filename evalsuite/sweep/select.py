"""Scores and honest elimination: the sweep's objective, and the paired test that drops candidates.

The objective is the leaderboard average of the sweep's benchmarks (or one benchmark), each
computed by `evalsuite.score.aggregate` from the per-document values lm-eval logged, on the
documents the candidate has answered so far.

After each round the candidate with the best objective is compared with every other survivor on
the documents both answered, by a paired permutation test (`scipy.stats.permutation_test`,
`permutation_type="samples"`: under the null the two models' answers to a document are
exchangeable, so each document's pair is swapped at random). The test statistic is the
objective difference itself, recomputed through the leaderboard's aggregation for every swap, so
the test sees the normalization, the subtask weights and IFEval's instruction-level mean exactly.
p-values are one-sided (the best is better), Holm-corrected over the round's comparisons; a
candidate is dropped when its adjusted p < alpha. The best is chosen on the same data, so a drop
is slightly easier than the nominal level says (as in every racing procedure); finalists are
ranked on the full set, where no test is involved.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
from pydantic import BaseModel

from evalsuite.results.samples import TaskDocs, pair_docs
from evalsuite.stats import keys_for, aggregate_draws, holm
from evalsuite.score import aggregate
from evalsuite.suite import Benchmark

Docs = Mapping[str, Mapping[str, TaskDocs]]  # benchmark -> leaf task -> documents


class Decision(BaseModel):
    candidate: str
    best: str
    score: float
    best_score: float
    n_docs: int  # documents both answered
    p_value: float
    p_holm: float = 1.0
    dropped: bool = False


def _names(bench: Benchmark, keys: Sequence[tuple[str, str]]) -> list[str]:
    return [m if bench.combine == "mean_of_metrics" else t for t, m in keys]


def benchmark_score(bench: Benchmark, docs: Mapping[str, TaskDocs]) -> float:
    """The benchmark's leaderboard-normalized score on these documents."""
    keys = keys_for(bench, list(bench.metrics))
    raw = {name: docs[t].raw(m) for (t, m), name in zip(keys, _names(bench, keys))}
    n_arg = {t: len(docs[t]) for t in bench.leaf_tasks} if bench.combine == "weighted_then_normalize" else None
    return aggregate(bench, raw, n_arg)


def objective(benches: Sequence[Benchmark], docs: Docs) -> float:
    return float(np.mean([benchmark_score(b, docs[b.id]) for b in benches]))


class _Paired:
    """The documents two models both answered, as (documents x keys) numerator tables."""

    def __init__(self, benches: Sequence[Benchmark], a: Docs, b: Docs):
        cols: list[tuple[Benchmark, list[int], list[str], Optional[dict[str, int]]]] = []
        n_keys = 0
        rows = 0
        layout = []  # (task, benchmark, key column, numerators a, numerators b, denominators)
        for bench in benches:
            keys = keys_for(bench, list(bench.metrics))
            idx = {}
            for t in dict.fromkeys(t for t, _ in keys):
                ia, ib, _ = pair_docs(a[bench.id][t], b[bench.id][t])
                idx[t] = (ia, ib)
            key_cols = list(range(n_keys, n_keys + len(keys)))
            n_keys += len(keys)
            for col, (t, m) in zip(key_cols, keys):
                ia, ib = idx[t]
                num_a, den_a = a[bench.id][t].values[m]
                num_b, _ = b[bench.id][t].values[m]
                layout.append((t, bench.id, col, num_a[ia], num_b[ib], den_a[ia]))
            n_arg = {t: len(ix[0]) for t, ix in idx.items()} if bench.combine == "weighted_then_normalize" else None
            cols.append((bench, key_cols, _names(bench, keys), n_arg))
        # one row per (benchmark, task, document); a task's keys (IFEval's two metrics) share rows
        row_of: dict[tuple[str, str], int] = {}
        for t, bid, _, num_a, _, _ in layout:
            if (bid, t) not in row_of:
                row_of[(bid, t)] = rows
                rows += len(num_a)
        self.A = np.zeros((rows, n_keys))
        self.B = np.zeros((rows, n_keys))
        self.den = np.zeros(n_keys)
        for t, bid, col, num_a, num_b, den in layout:
            start = row_of[(bid, t)]
            self.A[start:start + len(num_a), col] = num_a
            self.B[start:start + len(num_b), col] = num_b
            self.den[col] = den.sum()
        self.cols = cols
        self.n = rows

    def objective(self, sums: np.ndarray) -> np.ndarray:
        """Objective of each row of per-key numerator sums (draws x keys)."""
        raw = np.divide(sums, self.den, out=np.zeros_like(sums), where=self.den > 0)
        per = [aggregate_draws(bench, names, raw[:, key_cols], n_arg) for bench, key_cols, names, n_arg in self.cols]
        return np.mean(np.stack(per), axis=0)

    def statistic(self, x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        """objective(first) - objective(second) for document ids x (row i: i = A's answer, i + n =
        B's): scipy hands over the ids with some pairs swapped."""
        flips = np.atleast_2d(x >= self.n).astype(np.float64)  # (draws, n)
        moved = flips @ (self.A - self.B)
        first = self.A.sum(axis=0) - moved
        second = self.B.sum(axis=0) + moved
        out = self.objective(first) - self.objective(second)
        return out if x.ndim > 1 else out[0]


def paired_test(benches: Sequence[Benchmark], best: Docs, other: Docs, *, n_resamples: int, seed: int, label: str) -> tuple[float, int]:
    """One-sided p-value that `best`'s objective beats `other`'s on the documents both answered,
    and how many documents that is."""
    from scipy.stats import permutation_test

    pairs = _Paired(benches, best, other)
    if pairs.n == 0:
        return 1.0, 0
    ids = np.arange(pairs.n)
    rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
    res = permutation_test((ids, ids + pairs.n), pairs.statistic, permutation_type="samples", vectorized=True,
                           n_resamples=n_resamples, alternative="greater", random_state=rng, batch=256)
    return float(res.pvalue), pairs.n


def decide(benches: Sequence[Benchmark], alive: Sequence[str], docs: Mapping[str, Docs], *, alpha: float,
           n_resamples: int, seed: int, round_index: int) -> tuple[str, dict[str, float], list[Decision]]:
    """The round's best candidate, every survivor's objective, and the verdict on each other one."""
    scores = {c: objective(benches, docs[c]) for c in alive}
    best = max(alive, key=lambda c: (scores[c], -list(alive).index(c)))  # ties: the earlier candidate
    rows: list[Decision] = []
    for c in alive:
        if c == best:
            continue
        p, n = paired_test(benches, docs[best], docs[c], n_resamples=n_resamples, seed=seed, label=f"round{round_index}:{best}>{c}")
        rows.append(Decision(candidate=c, best=best, score=scores[c], best_score=scores[best], n_docs=n, p_value=p))
    for row, p in zip(rows, holm([r.p_value for r in rows])):
        row.p_holm = p
        row.dropped = p < alpha
    return best, scores, rows
