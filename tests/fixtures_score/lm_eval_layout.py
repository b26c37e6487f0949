"""Build lm-eval 0.4.13-shaped results JSON (the `results_<date>.json` a run writes) for tests.

The key sets mirror a real `lm_eval run --model dummy` output; tests/test_score_lm_eval.py checks
them against a real run so this builder cannot drift from the real layout unnoticed.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Optional

from evalsuite.suite import Suite, load_suite

LETTERS = [f"({chr(65 + i)})" for i in range(26)]
NUMERIC = {"leaderboard_bbh_object_counting": [str(i) for i in range(19)]}


def mean_stderr(p: float, n: int) -> Any:
    """lm-eval's `mean_stderr` of n 0/1 outcomes with mean p: sample stdev / sqrt(n)."""
    return math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else "N/A"  # lm-eval: "N/A" for one item


def _config(task: str, bench_id: str, metrics: list[str], k: Optional[int]) -> dict[str, Any]:
    cfg: dict[str, Any] = {"task": task, "dataset_path": "stub", "test_split": "test"}
    if bench_id == "bbh":
        cfg["doc_to_choice"] = NUMERIC.get(task, LETTERS[: k or 2])
        cfg["output_type"] = "multiple_choice"
    elif bench_id == "gpqa":
        cfg["doc_to_choice"] = LETTERS[:4]
        cfg["output_type"] = "multiple_choice"
    elif bench_id == "musr":
        cfg["doc_to_choice"] = "{{choices}}"
        cfg["output_type"] = "multiple_choice"
    elif bench_id == "mmlu_pro":
        cfg["doc_to_choice"] = "def doc_to_choice(doc):\n    return ..."
        cfg["output_type"] = "multiple_choice"
    else:
        cfg["output_type"] = "generate_until"
    cfg["metric_list"] = [{"metric": m.split(",")[0], "aggregation": "mean", "higher_is_better": True} for m in metrics]
    cfg["metadata"] = {"version": 1.0}
    return cfg


def build_results(
    model: str,
    values: dict[str, dict[str, float]],
    n: dict[str, int],
    *,
    suite: Optional[Suite] = None,
    model_args: Any = None,
    model_name: Optional[str] = "default",
    groups: bool = True,
) -> dict[str, Any]:
    """values: leaf task -> {"acc_norm,none": 0.6, ...}; n: leaf task -> documents.

    Stderr entries are added as lm-eval computes them for a mean of 0/1 outcomes, except for
    IFEval's inst-level metrics whose custom aggregation gets "N/A" (as in lm-eval).
    """
    suite = suite or load_suite()
    bench_of = {t: b for b in suite.benchmarks for t in b.leaf_tasks}
    results: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    group_subtasks: dict[str, list[str]] = {}
    for task, vals in values.items():
        b = bench_of[task]
        in_group = groups and b.group != task
        entry: dict[str, Any] = {"name": task, "alias": task, "sample_len": n[task]}
        for key, v in vals.items():
            entry[key] = v
            name, _, filt = key.partition(",")
            se = "N/A" if name.startswith("inst_level") else mean_stderr(v, n[task])
            entry[f"{name}_stderr,{filt}"] = se
        results[task] = entry
        configs[task] = _config(task, b.id, [k for k in vals], b.choice_count(task))
        if in_group:
            group_subtasks.setdefault(b.group, []).append(task)
    group_entries: dict[str, Any] = {}
    for g, tasks in group_subtasks.items():  # lm-eval: size-weighted mean of the group's metric
        b = next(b for b in suite.benchmarks if b.group == g)
        metric = b.metrics[0]
        total = sum(n[t] for t in tasks)
        v = sum(values[t][metric] * n[t] for t in tasks) / total
        name, _, filt = metric.partition(",")
        group_entries[g] = {
            "alias": g,
            "name": g,
            "sample_len": total,
            metric: v,
            f"{name}_stderr,{filt}": mean_stderr(v, total),
            "sample_count": {metric: total},
        }
    results.update(group_entries)
    if model_args is None:
        model_args = f"pretrained={model},dtype=bfloat16"
    tasks_all = list(values) + list(group_entries)
    return {
        "results": results,
        "groups": group_entries,
        "group_subtasks": group_subtasks,
        "configs": configs,
        "versions": {t: 1.0 for t in values} | {g: "N/A" for g in group_entries},
        "n-shot": {t: 0 for t in tasks_all},
        "higher_is_better": {t: {k.split(",")[0]: True for k in values.get(t, {})} for t in tasks_all},
        "n-samples": {t: {"original": n[t], "effective": n[t]} for t in values},
        "config": {
            "model": "hf",
            "model_args": model_args,
            "batch_size": "auto",
            "batch_sizes": [],
            "device": "cuda:0",
            "use_cache": None,
            "limit": None,
            "bootstrap_iters": 100000,
            "gen_kwargs": {},
            "random_seed": 0,
            "numpy_seed": 1234,
            "torch_seed": 1234,
            "fewshot_seed": 1234,
        },
        "git_hash": None,
        "date": 1735689600.0,
        "pretty_env_info": "stub",
        "transformers_version": "5.24.0",
        "lm_eval_version": "0.4.13",
        "upper_git_hash": None,
        "task_hashes": {t: "0" * 64 for t in values},
        "model_source": "hf",
        "model_name": model if model_name == "default" else model_name,
        "model_name_sanitized": (model or "").replace("/", "__"),
        "system_instruction": None,
        "system_instruction_sha": None,
        "fewshot_as_multiturn": False,
        "chat_template": None,
        "chat_template_sha": None,
        "total_evaluation_time_seconds": "1.0",
    }


def write_results(folder: Path, data: dict[str, Any], stamp: str = "2025-01-01T00-00-00.000000") -> Path:
    """Write like lm-eval: <folder>/<model_name_sanitized>/results_<stamp>.json."""
    sub = folder / (data.get("model_name_sanitized") or "model")
    sub.mkdir(parents=True, exist_ok=True)
    path = sub / f"results_{stamp}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def counts_to_inputs(counts: dict[str, dict[str, int]], sizes: dict[str, dict[str, int]], suite: Optional[Suite] = None):
    """published_counts.json model entry -> (values, n) for build_results, all 39 leaf tasks."""
    suite = suite or load_suite()
    values: dict[str, dict[str, float]] = {}
    n: dict[str, int] = {}
    ife = suite.get("ifeval")
    t = ife.leaf_tasks[0]
    values[t] = {
        "prompt_level_strict_acc,none": counts["ifeval"]["prompt_level_strict_acc"] / 541,
        "inst_level_strict_acc,none": counts["ifeval"]["inst_level_strict_acc"] / 834,
    }
    n[t] = 541
    for bid in ("bbh", "math_hard", "gpqa", "musr"):
        b = suite.get(bid)
        for short, c in counts[bid].items():
            task = b.task_prefix + short
            values[task] = {b.metrics[0]: c / sizes[bid][short]}
            n[task] = sizes[bid][short]
    math_b = suite.get("math_hard")
    for short, c in counts["math_hard_original"].items():
        values[math_b.task_prefix + short]["exact_match_original,none"] = c / sizes["math_hard"][short]
    values["leaderboard_mmlu_pro"] = {"acc,none": counts["mmlu_pro"]["leaderboard_mmlu_pro"] / 12032}
    n["leaderboard_mmlu_pro"] = 12032
    return values, n


def per_benchmark_files(data: dict, folder: Path) -> list[Path]:
    """Split a combined results file into one file per benchmark, shaped like separate lm-eval runs."""
    paths = []
    for i, b in enumerate(load_suite().benchmarks):
        tasks = set(b.leaf_tasks) | {b.group}
        part = copy.deepcopy(data)
        for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes"):
            part[key] = {t: v for t, v in data[key].items() if t in tasks}
        part["groups"] = {g: v for g, v in data["groups"].items() if g in tasks}
        part["group_subtasks"] = {g: v for g, v in data["group_subtasks"].items() if g in tasks}
        paths.append(write_results(folder / b.id, part, stamp=f"2025-01-0{i + 1}T00-00-00.000000"))
    return paths
