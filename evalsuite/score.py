"""Leaderboard scoring: raw lm-eval results JSON -> the Open LLM Leaderboard v2 numbers.

Generic over the suite file (`tasks/leaderboard_v2.yaml`): metric keys, baselines and the way
subtasks combine all come from there. Pure apart from reading result files.

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

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.textio import NotUtf8, read_json
from evalsuite.suite import Benchmark, Suite, TaskVersionRule, load_suite

PathLike = Union[str, Path]

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
# reading lm-eval results files


class ModelResults(BaseModel):
    """Everything one model's lm-eval results files say about its leaf tasks."""

    model: str
    metrics: dict[str, dict[str, Optional[float]]] = Field(default_factory=dict)
    """task -> metric key (`acc_norm,none`, `acc_norm_stderr,none`, ...) -> value; "N/A" -> None"""
    n_samples: dict[str, int] = Field(default_factory=dict)
    """task -> documents scored (lm-eval's `n-samples[task].effective`)"""
    choices: dict[str, int] = Field(default_factory=dict)
    """task -> len(doc_to_choice) from the file's task config, where that is a list"""
    groups: dict[str, dict[str, Optional[float]]] = Field(default_factory=dict)
    """lm-eval's group values (size-weighted raw; informational, never used for scores)"""
    task_source: dict[str, str] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)
    task_versions: dict[str, float] = Field(default_factory=dict)
    """task -> version of its lm-eval task code (`versions.<task>`, else `configs.<task>.metadata.version`)"""
    process_results: dict[str, str] = Field(default_factory=dict)
    """task -> `configs.<task>.process_results` where the file holds it as source text"""
    subsets: dict[str, tuple[int, int]] = Field(default_factory=dict)
    """task -> (documents scored, documents in the task) where lm-eval's `--samples` chose fewer
    than all (n-samples effective < original without a limit: a sweep's subset round)"""
    limits: dict[str, Optional[float]] = Field(default_factory=dict)
    """source file -> its `config.limit` (lm-eval's --limit; None: every document was scored)"""


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _model_key(data: dict[str, Any], path: Path) -> str:
    name = data.get("model_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    config = data.get("config")
    args = config.get("model_args") if isinstance(config, dict) else None
    if isinstance(args, dict) and args.get("pretrained"):
        return str(args["pretrained"])
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "pretrained" and value.strip():
                return value.strip()
    raise UserError(f"{path}: no model name (neither model_name nor config.model_args pretrained=)")


def _version(v: Any) -> Optional[float]:
    """A task version as lm-eval writes it (1.0, "2.0", 3); groups' "N/A" and the like -> None."""
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    f = _num(v)
    return f if f is not None and math.isfinite(f) else None


def _group_names(data: dict[str, Any], path: Path) -> set[str]:
    """Keys of `groups`, and keys of `group_subtasks` with a non-empty list.

    lm-eval 0.4.8+ also lists every leaf task in `group_subtasks`, with an empty list; 0.4.5 writes
    no `groups` at all (its group entries in `results` carry only an alias)."""
    groups = data.get("groups")
    subtasks = data.get("group_subtasks")
    if groups is not None and not isinstance(groups, dict):
        raise UserError(f"{path}: 'groups' is not an object")
    if subtasks is not None and not (isinstance(subtasks, dict) and all(isinstance(v, list) for v in subtasks.values())):
        raise UserError(f"{path}: 'group_subtasks' is not an object of lists")
    return set(groups or {}) | {g for g, members in (subtasks or {}).items() if members}


def _limit(data: dict[str, Any], path: Path) -> Optional[float]:
    config = data.get("config")
    limit = config.get("limit") if isinstance(config, dict) else None
    if limit is None:
        return None
    value = _num(limit)
    if value is None or not math.isfinite(value) or value <= 0:
        raise UserError(f"{path}: config.limit = {limit!r} is not a positive number")
    return value


def read_results_file(path: PathLike) -> ModelResults:
    """One lm-eval 0.4.x results JSON -> ModelResults (leaf tasks only; groups kept aside).

    Reads the layouts of lm-eval 0.4.5 ... 0.4.13 and of the Hugging Face fork (see
    tests/fixtures_score/lm_eval_versions/README.md)."""
    path = Path(path)
    try:
        data = read_json(path)
    except NotUtf8:
        raise
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read results JSON: {exc}".splitlines()[0]) from exc
    return results_of(data, path)


def results_of(data: Any, path: PathLike) -> ModelResults:
    """A parsed lm-eval results JSON (read from `path`) -> ModelResults (`read_results_file`)."""
    path = Path(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise UserError(f"{path}: not an lm-eval results file (no 'results' object)")
    results: dict[str, Any] = data["results"]
    group_names = _group_names(data, path)
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    configs = data.get("configs") if isinstance(data.get("configs"), dict) else {}
    versions = data.get("versions") if isinstance(data.get("versions"), dict) else {}
    out = ModelResults(model=_model_key(data, path), sources=[str(path)], limits={str(path): _limit(data, path)})
    for task, entry in results.items():
        if not isinstance(entry, dict):
            raise UserError(f"{path}: results.{task} is not an object")
        values = {k: _num(v) for k, v in entry.items() if "," in k}
        if task in group_names:
            out.groups[task] = values
            continue
        out.metrics[task] = values
        out.task_source[task] = str(path)
        ns = n_samples.get(task)
        if isinstance(ns, dict) and isinstance(ns.get("effective"), int):
            out.n_samples[task] = ns["effective"]
            original = ns.get("original")
            if isinstance(original, int) and ns["effective"] < original and out.limits[str(path)] is None:
                out.subsets[task] = (ns["effective"], original)
        cfg = configs.get(task)
        if isinstance(cfg, dict) and isinstance(cfg.get("doc_to_choice"), list):
            out.choices[task] = len(cfg["doc_to_choice"])
        meta = cfg.get("metadata") if isinstance(cfg, dict) else None
        version = _version(versions.get(task))
        if version is None and isinstance(meta, dict):
            version = _version(meta.get("version"))
        if version is not None:
            out.task_versions[task] = version
        if isinstance(cfg, dict) and isinstance(cfg.get("process_results"), str):
            out.process_results[task] = cfg["process_results"]
    return out


def find_results_files(paths: Iterable[PathLike]) -> list[Path]:
    """Files as given; folders searched recursively for `results_*.json`. Duplicates dropped."""
    found: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("results_*.json") if f.is_file())
            if not files:
                raise UserError(f"{p}: no lm-eval results_*.json files in this folder")
        elif p.is_file():
            files = [p]
        else:
            raise UserError(f"{p}: no such file or folder")
        for f in files:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def _merge(into: ModelResults, other: ModelResults) -> None:
    for task, values in other.metrics.items():
        if task in into.metrics:
            same = into.metrics[task] == values and into.n_samples.get(task) == other.n_samples.get(task)
            if not same:
                raise UserError(
                    f"{other.task_source[task]}: task {task} of model {into.model} differs from "
                    f"the one in {into.task_source[task]}"
                )
            continue
        into.metrics[task] = values
        into.task_source[task] = other.task_source[task]
        for field in ("n_samples", "subsets", "choices", "task_versions", "process_results"):
            theirs = getattr(other, field)
            if task in theirs:
                getattr(into, field)[task] = theirs[task]
    for group, values in other.groups.items():
        into.groups.setdefault(group, values)
    into.sources.extend(s for s in other.sources if s not in into.sources)
    for source, limit in other.limits.items():
        into.limits.setdefault(source, limit)


def load_results(paths: Iterable[PathLike]) -> list[ModelResults]:
    """Read result files / folders; files of the same model key merge into one record."""
    by_model: dict[str, ModelResults] = {}
    for f in find_results_files(paths):
        r = read_results_file(f)
        if r.model in by_model:
            _merge(by_model[r.model], r)
        else:
            by_model[r.model] = r
    return list(by_model.values())


def load_results_as(paths: Iterable[PathLike], model: str) -> ModelResults:
    """Result files known to be one model's (a run's jobs), merged under `model` whatever model
    path lm-eval wrote in each: a job reused from another results folder, or from before the
    folder was moved, names the model by the path it had then."""
    return merge_as((read_results_file(f) for f in find_results_files(paths)), model)


def merge_as(results: Iterable[ModelResults], model: str) -> ModelResults:
    """Results known to be one model's, merged under `model` (`load_results_as`; the first one is
    merged into)."""
    found: Optional[ModelResults] = None
    for r in results:
        r.model = model
        if found is None:
            found = r
        else:
            _merge(found, r)
    if found is None:
        raise UserError(f"no results files of {model}")
    return found


# ---------------------------------------------------------------------------------------------
# scoring


class Score(BaseModel):
    """One leaderboard number (a benchmark's main score or one of its extra scores)."""

    id: str
    display: str
    benchmark: str
    value: float
    """normalized, 0-100, unrounded"""
    raw: float
    """raw aggregate in [0, 1]: unweighted mean for normalize_then_mean, else as combined"""
    stderr: Optional[float]
    """normalized standard error (module docstring), None when lm-eval gave none"""
    subtasks: dict[str, float]
    """normalized value per leaf task (per metric key for mean_of_metrics)"""
    subtask_raw: dict[str, float] = Field(default_factory=dict)
    """raw value per key of `subtasks`, as the results file gives it"""
    subtask_stderr: dict[str, Optional[float]] = Field(default_factory=dict)
    """normalized standard error per key of `subtasks` (`normalize_stderr`)"""
    in_average: bool
    label: Optional[str] = None
    """what produced the number (MATH: which parser), from the suite file; None: nothing to say"""
    task_version: Optional[float] = None
    """version of the lm-eval task code that wrote the values (None: unknown or mixed)"""
    metrics: list[str] = Field(default_factory=list)
    """the metric keys read from the results file (a version rule may differ from the suite's)"""


class Incomplete(BaseModel):
    """A benchmark of which the results hold only some subtasks: no benchmark number."""

    benchmark: str
    present: int
    tasks: int
    missing: list[str]
    subtasks: dict[str, float] = Field(default_factory=dict)
    """normalized value per present subtask (its own random baseline), where that is well defined
    (one metric per subtask); empty otherwise"""


class ModelScores(BaseModel):
    model: str
    scores: dict[str, Score]
    """display name -> Score, in the suite's column order; absent benchmarks left out"""
    average: Optional[float]
    """plain mean of the benchmarks' main scores, only when all are present"""
    average_label: str = "Average"
    sources: list[str] = Field(default_factory=list)
    limit: Optional[Union[int, float]] = None
    """lm-eval's --limit of the results (the largest, if files differ); None: complete runs"""
    notes: list[str] = Field(default_factory=list)
    """one-line remarks to show under a table (parser versions, --limit, a missing Average)"""
    incomplete: dict[str, "Incomplete"] = Field(default_factory=dict)
    """display name -> a benchmark with only some of its subtasks in the results (`partial` scoring):
    no number, no Average"""

    def value(self, display: str) -> Optional[float]:
        if display == self.average_label:
            return self.average
        s = self.scores.get(display)
        return s.value if s else None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        out.update({d: s.value for d, s in self.scores.items()})
        if self.average is not None:
            out[self.average_label] = self.average
        out["raw"] = {d: s.raw for d, s in self.scores.items()}
        out["stderr"] = {d: s.stderr for d, s in self.scores.items()}
        out["subtasks"] = {d: s.subtasks for d, s in self.scores.items()}
        out["sources"] = list(self.sources)
        out["limit"] = self.limit
        out["labels"] = {d: s.label for d, s in self.scores.items() if s.label is not None}
        out["task_versions"] = {d: s.task_version for d, s in self.scores.items()}
        out["notes"] = list(self.notes)
        if self.incomplete:
            out["incomplete"] = {d: i.model_dump() for d, i in self.incomplete.items()}
        return out


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


# ---------------------------------------------------------------------------------------------
# rendering


def table_columns(suite: Optional[Suite] = None) -> list[str]:
    """Leaderboard column order: Average, then each benchmark (extra scores after their own)."""
    suite = suite or load_suite()
    return [suite.average, *suite.columns]


def render_table(scores: Sequence[ModelScores], suite: Optional[Suite] = None, title: Optional[str] = None):
    """A rich Table, two decimals; '—' where a benchmark was not run."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("Model", overflow="fold")
    cols = table_columns(suite)
    for c in cols:
        table.add_column(c, justify="right")
    for s in scores:
        cells = [s.model]
        for c in cols:
            v = s.value(c)
            inc = s.incomplete.get(c)
            cells.append(f"{inc.present}/{inc.tasks} tasks" if inc is not None else "—" if v is None else f"{v:.2f}")
        table.add_row(*cells)
    return table


def score_grid(scores: Sequence[ModelScores], suite: Optional[Suite] = None, title: Optional[str] = None):
    """`render_table`'s content as an `evalsuite.cli.tables.Grid`: laid out to fit the terminal
    (model names never cut) or written as json/csv (unrounded values)."""
    from evalsuite.report.tables import Grid

    cols = table_columns(suite)
    grid = Grid(title=title or "Open LLM Leaderboard v2 (normalized)", key="Model", columns=cols)
    for s in scores:
        vals = [s.value(c) for c in cols]
        cells = [f"{s.incomplete[c].present}/{s.incomplete[c].tasks} tasks" if c in s.incomplete
                 else "—" if v is None else f"{v:.2f}" for c, v in zip(cols, vals)]
        grid.add(s.model, cells, {"model": s.model, **dict(zip(cols, vals))})
    return grid


def note_lines(scores: Sequence[ModelScores]) -> list[str]:
    """The notes to print under a table: `note: <model>: <note>`, one line each."""
    return [f"note: {s.model}: {n}" for s in scores for n in s.notes]


def table_text(scores: Sequence[ModelScores], suite: Optional[Suite] = None, width: int = 200) -> str:
    """`render_table` as plain text (for logs and reports), its notes below it."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(render_table(scores, suite))
    for line in note_lines(scores):
        console.print(line, markup=False, highlight=False, overflow="fold")
    return console.export_text()


def to_json(scores: Sequence[ModelScores]) -> str:
    return json.dumps([s.to_json_dict() for s in scores], indent=2)


def to_csv(scores: Sequence[ModelScores], suite: Optional[Suite] = None) -> str:
    """Same columns as the table, unrounded values, empty cell where absent."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = table_columns(suite)
    writer.writerow(["Model", *cols])
    for s in scores:
        writer.writerow([s.model, *("" if (v := s.value(c)) is None else repr(v) for c in cols)])
    return buf.getvalue()
