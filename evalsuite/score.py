"""Leaderboard scoring: a model's lm-eval results (`ModelResults`, read by `evalsuite.results.files`)
-> the Open LLM Leaderboard v2 numbers (`Score`, `ModelScores` in `evalsuite.schema`).

Generic over the suite file (`tasks/leaderboard_v2.yaml`): metric keys, baselines and the way
subtasks combine all come from there. Pure; `score_paths` reads the files through
`results.files.load_results` first. The table, CSV and JSON renderings are `report/scores.py`'s.

normalized(raw, b) = max(raw - b, 0) / (1 - b) * 100, clipped per subtask (see `aggregate`).

Standard errors propagate lm-eval's `<metric>_stderr,<filter>` through the same linear map,
ignoring the clip at 0 (c_i = weight of subtask i in the mean, b_i its baseline):
  normalize_then_mean / weighted_then_normalize / single (distinct documents, independent):
      SE = sqrt(sum_i (c_i * 100 * se_i / (1 - b_i))^2)
      with c_i = 1/m (unweighted) or n_i / sum(n) (size-weighted), c = 1 for a single task
  mean_of_metrics (several metrics of the same documents, positively correlated; upper bound):
      SE = sum_i c_i * 100 * se_i / (1 - b_i)
A stderr lm-eval reports as "N/A" (e.g. IFEval's inst-level metrics) makes the benchmark's SE None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Optional, Union

from evalsuite.errors import UserError
from evalsuite.results.files import ModelResults, PathLike, load_results
from evalsuite.schema import Incomplete, ModelScores, Score
from evalsuite.suite import Benchmark, Suite, TaskVersionRule, load_suite

# ---------------------------------------------------------------------------------------------
# normalization and aggregation (pure arithmetic; reused by bootstrap / compare / report)


def normalize(raw: float, baseline: float) -> float:
    """Leaderboard normalization of one raw accuracy in [0, 1]: 0-100, clipped at 0."""
    return max(raw - baseline, 0.0) / (1.0 - baseline) * 100.0


def normalize_stderr(se: Optional[float], baseline: float) -> Optional[float]:
    """A subtask's standard error through normalize()'s linear map; None when lm-eval gave none."""
    if se is None or not math.isfinite(se):
        return None
    return 100.0 * se / (1.0 - baseline)


def stderr_key(metric: str) -> str:
    """`acc_norm,none` -> `acc_norm_stderr,none` (lm-eval's naming)."""
    name, _, filt = metric.partition(",")
    return f"{name}_stderr,{filt}" if filt else f"{name}_stderr"


def key_weights(bench: Benchmark, keys: Sequence[str], n_by_task: Optional[Mapping[str, int]]) -> list[float]:
    if bench.combine == "weighted_then_normalize":
        if n_by_task is None:
            raise ValueError(f"{bench.id}: sizes are needed for combine weighted_then_normalize")
        n = [float(n_by_task[k]) for k in keys]
        total = sum(n)
        if total <= 0:
            raise ValueError(f"{bench.id}: subtask sizes sum to 0")
        return [x / total for x in n]
    return [1.0 / len(keys)] * len(keys)


def key_baselines(bench: Benchmark, keys: Sequence[str]) -> list[float]:
    if bench.combine == "mean_of_metrics":  # keys are metric keys of the one task
        return [bench.baseline_for(bench.leaf_tasks[0])] * len(keys)
    return [bench.baseline_for(k) for k in keys]


def present_keys(bench: Benchmark, raw: Mapping[str, float]) -> list[str]:
    if bench.combine == "mean_of_metrics":
        return list(raw)
    missing = [t for t in bench.leaf_tasks if t not in raw]
    if missing:
        raise ValueError(f"{bench.id}: no value for {missing[0]}")
    return bench.leaf_tasks


def aggregate_detail(
    bench: Benchmark, raw_by_task: Mapping[str, float], n_by_task: Optional[Mapping[str, int]] = None
) -> tuple[float, float, dict[str, float]]:
    """(normalized score, raw aggregate, normalized value per key). See `aggregate`."""
    keys = present_keys(bench, raw_by_task)
    w = key_weights(bench, keys, n_by_task)
    b = key_baselines(bench, keys)
    raws = [float(raw_by_task[k]) for k in keys]
    per_key = {k: normalize(r, bi) for k, r, bi in zip(keys, raws, b)}
    raw_agg = math.fsum(wi * r for wi, r in zip(w, raws))
    if bench.combine == "weighted_then_normalize":
        return normalize(raw_agg, b[0]), raw_agg, per_key  # validator: one baseline
    # normalize_then_mean, mean_of_metrics, single: clip per subtask, then (unweighted) mean
    return math.fsum(wi * per_key[k] for wi, k in zip(w, keys)), raw_agg, per_key


def aggregate(
    bench: Benchmark, raw_by_task: Mapping[str, float], n_by_task: Optional[Mapping[str, int]] = None
) -> float:
    """A benchmark's normalized score (0-100) from raw per-subtask values in [0, 1].

    `raw_by_task` maps each leaf task name to its raw metric value, except for combine
    `mean_of_metrics` (IFEval) where it maps metric keys to values. `n_by_task` (documents per
    task) is needed only for `weighted_then_normalize`. Safe to call on bootstrap resamples.
    """
    return aggregate_detail(bench, raw_by_task, n_by_task)[0]


def aggregate_stderr(
    bench: Benchmark,
    se_by_task: Mapping[str, Optional[float]],
    n_by_task: Optional[Mapping[str, int]] = None,
) -> Optional[float]:
    """Normalized standard error through the same linear map (formula in the module docstring)."""
    keys = present_keys(bench, se_by_task)
    if any(se_by_task[k] is None for k in keys):
        return None
    w = key_weights(bench, keys, n_by_task)
    b = key_baselines(bench, keys)
    terms = [wi * 100.0 * float(se_by_task[k]) / (1.0 - bi) for wi, k, bi in zip(w, keys, b)]  # type: ignore[arg-type]
    if bench.combine == "mean_of_metrics":
        return math.fsum(terms)
    return math.sqrt(math.fsum(t * t for t in terms))


# ---------------------------------------------------------------------------------------------
# scoring


def _fmt_num(v: float) -> str:
    """2.0 -> "2.0" for versions; limits use `_int_if_whole`."""
    return repr(float(v))


def _int_if_whole(v: float) -> Union[int, float]:
    return int(v) if float(v).is_integer() else v


def _metric_value(results: ModelResults, task: str, metric: str, required: bool = True) -> Optional[float]:
    values = results.metrics[task]
    v = values.get(metric)
    if not required:  # a stderr: "N/A" or NaN (one document) only means "unknown"
        return v if v is not None and math.isfinite(v) else None
    if v is None:
        version = results.task_versions.get(task)
        known = f" (task version {_fmt_num(version)})" if version is not None else " (task version not in the file)"
        raise UserError(f"{results.task_source[task]}: results.{task}: metric key {metric!r} missing{known}")
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise UserError(f"{results.task_source[task]}: results.{task}.{metric} = {v} is outside [0, 1]")
    return v


def _rule_for(results: ModelResults, bench: Benchmark, task: str) -> Optional[TaskVersionRule]:
    """The suite's reading of an older task version for this leaf task, None for the current one."""
    if not bench.task_versions:
        return None
    values = results.metrics[task]
    wanted = [*bench.metrics, *(m for e in bench.extra_scores for m in e.metrics)]
    if all(m in values for m in wanted):
        return None  # the current layout, whatever version number the file gives
    version = results.task_versions.get(task)
    if version is None:
        return None  # unknown: the missing key is reported as such
    source = results.process_results.get(task)
    undecided = False
    for rule in bench.task_versions:
        if version > rule.max_version:
            continue
        checks = [(rule.process_results_contains, True), (rule.process_results_lacks, False)]
        if any(text is not None for text, _ in checks) and source is None:
            undecided = True
            continue
        if all(text is None or ((text in source) == present) for text, present in checks):  # type: ignore[operator]
            return rule
    if undecided:
        raise UserError(
            f"{results.task_source[task]}: results.{task} (task version {_fmt_num(version)}) lacks "
            f"{next(m for m in wanted if m not in values)!r}, and without configs.{task}.process_results "
            f"the file does not say which code wrote its metrics")
    return None


def _benchmark_rule(results: ModelResults, bench: Benchmark) -> tuple[Optional[TaskVersionRule], Optional[float]]:
    """The one reading of all the benchmark's leaf tasks, and their common task version."""
    tasks = bench.leaf_tasks
    rules = {t: _rule_for(results, bench, t) for t in tasks}
    distinct = {id(r): (t, r) for t, r in rules.items()}
    if len(distinct) > 1:
        (t1, _), (t2, _) = list(distinct.values())[:2]
        def where(t: str) -> str:
            v = results.task_versions.get(t)
            return f"{t} (task version {_fmt_num(v) if v is not None else 'unknown'}, {results.task_source[t]})"
        raise UserError(f"{results.task_source[t1]}: {bench.display} mixes results of different task code: "
                        f"{where(t1)} and {where(t2)} carry different metrics")
    versions = {results.task_versions.get(t) for t in tasks}
    version = versions.pop() if len(versions) == 1 else None
    return rules[tasks[0]], version


def _score_one(
    results: ModelResults, bench: Benchmark, sid: str, display: str, metrics: list[str], in_average: bool,
    label: Optional[str] = None, task_version: Optional[float] = None,
) -> Score:
    tasks = bench.leaf_tasks
    n_by_task: Optional[dict[str, int]] = None
    if bench.combine == "weighted_then_normalize":
        n_by_task = {}
        for t in tasks:
            n = results.n_samples.get(t)
            if n is None:
                raise UserError(f"{results.task_source[t]}: n-samples.{t}.effective missing (needed to weight {display})")
            n_by_task[t] = n
        if sum(n_by_task.values()) <= 0:
            raise UserError(f"{results.task_source[tasks[0]]}: n-samples of {display} tasks are all 0")
    if bench.combine == "mean_of_metrics":
        t = tasks[0]
        raw = {m: _metric_value(results, t, m) for m in metrics}
        se = {m: _metric_value(results, t, stderr_key(m), required=False) for m in metrics}
    else:
        (m,) = metrics
        raw = {t: _metric_value(results, t, m) for t in tasks}
        se = {t: _metric_value(results, t, stderr_key(m), required=False) for t in tasks}
    value, raw_agg, per_key = aggregate_detail(bench, raw, n_by_task)  # type: ignore[arg-type]
    baselines = dict(zip(per_key, key_baselines(bench, list(per_key))))
    return Score(
        id=sid,
        display=display,
        benchmark=bench.id,
        value=value,
        raw=raw_agg,
        stderr=aggregate_stderr(bench, se, n_by_task),
        subtasks=per_key,
        subtask_raw={k: raw[k] for k in per_key},  # type: ignore[misc]
        subtask_stderr={k: normalize_stderr(se[k], baselines[k]) for k in per_key},
        in_average=in_average,
        label=label,
        task_version=task_version,
        metrics=list(metrics),
    )


def _incomplete(results: ModelResults, bench: Benchmark, present: list[str], missing: list[str]) -> Incomplete:
    subtasks: dict[str, float] = {}
    if bench.combine != "mean_of_metrics" and len(bench.metrics) == 1 and _benchmark_rule(results, bench)[0] is None:
        (m,) = bench.metrics
        for t in present:
            raw = _metric_value(results, t, m, required=False)
            if raw is not None:
                (base,) = key_baselines(bench, [t])
                subtasks[t] = normalize(raw, base)
    return Incomplete(benchmark=bench.id, present=len(present), tasks=len(bench.leaf_tasks), missing=missing, subtasks=subtasks)


def score_model(results: ModelResults, suite: Optional[Suite] = None, partial: bool = False) -> ModelScores:
    """Leaderboard numbers of one model; benchmarks with none of their tasks present are left out.
    A benchmark with only some of its tasks is a UserError, or with `partial` (`evalsuite score`)
    an `Incomplete` entry: no number for it and no Average, the complete ones scored.

    Raises UserError when none of the suite's benchmarks is in the results (never an empty row)."""
    suite = suite or load_suite()
    scores: dict[str, Score] = {}
    incomplete: dict[str, Incomplete] = {}
    notes: list[str] = []
    unavailable: list[str] = []  # main scores of present benchmarks that their files do not hold
    for bench in suite.benchmarks:
        tasks = bench.leaf_tasks
        present = [t for t in tasks if t in results.metrics]
        if not present:
            continue
        missing = [t for t in tasks if t not in results.metrics]
        if missing and partial:
            incomplete[bench.display] = _incomplete(results, bench, present, missing)
            notes.append(f"{bench.display} incomplete: {len(present)} of {len(tasks)} subtasks in these results "
                         f"(first missing: {missing[0]}); no {bench.display} number, no {suite.average}")
            continue
        if missing:
            raise UserError(
                f"{results.task_source[present[0]]}: {bench.display} incomplete for model {results.model}: "
                f"task {missing[0]} missing ({len(missing)} of {len(tasks)} absent)"
            )
        for t in tasks:
            k_file, k_suite = results.choices.get(t), bench.choice_count(t)
            if k_file is not None and k_suite is not None and k_file != k_suite:
                raise UserError(
                    f"{results.task_source[t]}: configs.{t}.doc_to_choice has {k_file} choices, "
                    f"the suite file says {k_suite}"
                )
        rule, version = _benchmark_rule(results, bench)
        specs = [(bench.id, bench.display, bench.metrics, True, bench.label)]
        specs += [(e.id, e.display, e.metrics, False, e.label) for e in bench.extra_scores]
        labelled: list[str] = []
        for sid, display, metrics, in_average, label in specs:
            if rule is not None:
                reading = rule.scores.get(sid)
                if reading is None:
                    if in_average:
                        unavailable.append(display)
                    continue
                metrics, label = reading.metrics, reading.label
            scores[display] = _score_one(results, bench, sid, display, metrics, in_average, label, version)
            if label is not None:
                labelled.append(f"{display} = {label}")
        if rule is not None:
            notes.append(rule.note.format(version=_fmt_num(version) if version is not None else "unknown"))
        elif labelled:
            notes.append("; ".join(labelled))
    if not scores and not incomplete:
        tasks_seen = sorted(results.metrics)
        shown = ", ".join(tasks_seen[:3]) + (f" and {len(tasks_seen) - 3} more" if len(tasks_seen) > 3 else "")
        raise UserError(
            f"{results.sources[0] if results.sources else results.model}: none of the {suite.name} benchmarks' "
            f"tasks found (the results hold {shown or 'no tasks'})"
        )
    main = [scores[b.display].value for b in suite.benchmarks if b.display in scores]
    average = math.fsum(main) / len(main) if len(main) == len(suite.benchmarks) else None
    if unavailable and not incomplete and len(main) + len(unavailable) == len(suite.benchmarks):
        notes.append(f"{suite.average} not available: no {', '.join(unavailable)} in these results "
                     f"(not filled from another score)")
    limits = [v for v in results.limits.values() if v is not None]
    limit = _int_if_whole(max(limits)) if limits else None
    if limits:
        shown_limits = sorted({_int_if_whole(v) for v in limits})
        part = "" if len(limits) == len(results.limits) else f" ({len(limits)} of {len(results.limits)} results files)"
        notes.append(f"scored from a --limit {'/'.join(map(str, shown_limits))} run{part}: "
                     f"not every document was scored, not comparable with full runs")
    if results.subsets:
        seen = sum(e for e, _ in results.subsets.values())
        total = sum(o for _, o in results.subsets.values())
        notes.append(f"scored on a subset (lm-eval --samples, e.g. a sweep round): {seen} of {total} documents in "
                     f"{len(results.subsets)} task(s): not comparable with full runs")
    return ModelScores(
        model=results.model, scores=scores, average=average, average_label=suite.average,
        sources=list(results.sources), limit=limit, notes=notes, incomplete=incomplete,
    )


def score_paths(paths: Iterable[PathLike], suite: Optional[Suite] = None, partial: bool = False) -> list[ModelScores]:
    suite = suite or load_suite()
    return [score_model(r, suite, partial=partial) for r in load_results(paths)]
