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

The statistics are `evalsuite.stats` (pure, seeded per (parent, score), so any subset of benchmarks
gives the same numbers), the documents `evalsuite.results.samples.TaskDocs`, the settings one
`config.StatsSettings`. This module holds the comparison's schema and `compare_models`, and (for
now) the loader of an experiment's stored results (section at the end).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np
from pydantic import BaseModel, Field

from evalsuite.config import StatsSettings
from evalsuite.errors import UserError
from evalsuite.results.samples import TaskDocs, pair_docs
from evalsuite.score import normalize
from evalsuite.stats import Verdict, seeded_rng, bootstrap_score, holm, interval, mcnemar_exact, verdict
from evalsuite.suite import Benchmark, Suite, load_suite


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
    level: float
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
    stats: StatsSettings = StatsSettings(),
) -> Comparison:
    """Compare `candidate` with each parent. `docs[model][benchmark][task]` = TaskDocs.

    Benchmarks are those the candidate has; a parent lacking one is skipped for it."""
    suite = suite or load_suite()
    n_boot, seed, alpha, level = stats.n_boot, stats.seed, stats.alpha, stats.level
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
            point, draws = bootstrap_score(bench, metrics, pair, n_boot, seeded_rng(seed, "pair", parent, sid), index)
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
                    sub[t] = normalize(cand[bench.id][t].raw(primary, ia), base) - normalize(par[bench.id][t].raw(primary, ib), base)
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
                _, draws = bootstrap_score(bench, metrics, [docs[model][bench.id]], n_boot, seeded_rng(seed, "model", model, sid))
                own[model][display] = draws[:, 0]
        intervals[model] = {d: ModelInterval(low=lo, high=hi) for d, (lo, hi) in ((d, interval(x, level)) for d, x in own[model].items())}
        mains = [own[model].get(b.display) for b in suite.benchmarks]
        if all(x is not None for x in mains):
            lo, hi = interval(np.mean(np.stack(mains), axis=0), level)
            intervals[model][suite.average] = ModelInterval(low=lo, high=hi)
    return Comparison(candidate=candidate, parents=list(parents), seed=seed, n_boot=n_boot, alpha=alpha, level=level,
                      rows=rows, averages=averages, intervals=intervals)


