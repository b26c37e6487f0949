"""The benchmark suite as data: `tasks/leaderboard_v2.yaml` loaded into typed objects.

The runner uses it for task names; the scorer (`evalsuite.score`) for metric keys, baselines and
how subtasks combine. Another suite is another YAML file, not new code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalsuite.errors import UserError
from evalsuite.textio import read_text

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
DEFAULT_SUITE = TASKS_DIR / "leaderboard_v2.yaml"

Combine = Literal["mean_of_metrics", "normalize_then_mean", "weighted_then_normalize", "single"]


class ExtraScore(BaseModel):
    """A second, separately labelled score of a benchmark (same tasks and rule, other metrics)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    display: str
    metrics: list[str]
    label: Optional[str] = None
    """what produced the number (e.g. the parser), shown beside it; None: nothing to say"""


class ScoreReading(BaseModel):
    """Where one score's numbers are in results written by older task code, and their label."""

    model_config = ConfigDict(extra="forbid")
    metrics: list[str]
    label: str


class TaskVersionRule(BaseModel):
    """Results of an older version of a benchmark's lm-eval task code (`versions.<task>` or
    `configs.<task>.metadata.version`), whose metric keys differ from the current code's.

    Used for a leaf task only when its file lacks one of the current metric keys, its version is
    at most `max_version`, and its `configs.<task>.process_results` (lm-eval stores the function's
    source text) contains / lacks the given text; the first matching rule wins. Scores not listed
    in `scores` are absent from such files (never filled from another metric)."""

    model_config = ConfigDict(extra="forbid")
    max_version: float
    process_results_contains: Optional[str] = None
    process_results_lacks: Optional[str] = None
    scores: dict[str, ScoreReading]
    note: str
    """shown under the table; `{version}` is replaced by the file's task version"""


class Benchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    display: str
    group: str
    metrics: list[str]
    baseline: Union[float, Literal["1/k"]]
    combine: Combine
    tasks: list[str] = Field(default_factory=list)
    task_prefix: str = ""
    subtasks: list[str] = Field(default_factory=list)
    choices: dict[str, int] = Field(default_factory=dict)
    sizes: dict[str, int] = Field(default_factory=dict)
    extra_scores: list[ExtraScore] = Field(default_factory=list)
    label: Optional[str] = None
    """what produced the main score (e.g. the parser); None: nothing to say"""
    task_versions: list[TaskVersionRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> "Benchmark":
        ids = [self.id] + [e.id for e in self.extra_scores]
        for rule in self.task_versions:
            unknown = [k for k in rule.scores if k not in ids]
            if unknown:
                raise ValueError(f"{self.id}: task_versions names an unknown score {unknown[0]!r}")
            if not rule.scores:
                raise ValueError(f"{self.id}: a task_versions rule with no scores")
            if self.combine != "mean_of_metrics" and any(len(r.metrics) != 1 for r in rule.scores.values()):
                raise ValueError(f"{self.id}: combine {self.combine} needs exactly one metric")
        n_tasks = len(self.leaf_tasks)
        if n_tasks == 0:
            raise ValueError(f"{self.id}: no tasks (give tasks, subtasks or choices)")
        if self.combine in ("mean_of_metrics", "single") and n_tasks != 1:
            raise ValueError(f"{self.id}: combine {self.combine} needs exactly one task")
        if self.combine != "mean_of_metrics" and len(self.metrics) != 1:
            raise ValueError(f"{self.id}: combine {self.combine} needs exactly one metric")
        if self.baseline == "1/k":
            missing = [s for s in self._short_names() if s not in self.choices]
            if missing:
                raise ValueError(f"{self.id}: baseline 1/k but no choices for {missing[0]}")
            if self.combine != "normalize_then_mean" and len(set(self.choices.values())) > 1:
                raise ValueError(f"{self.id}: one baseline is needed for combine {self.combine}")
        elif not 0 <= self.baseline < 1:
            raise ValueError(f"{self.id}: baseline must be in [0, 1)")
        if any(k < 2 for k in self.choices.values()):
            raise ValueError(f"{self.id}: a choice count below 2")
        return self

    def _short_names(self) -> list[str]:
        if self.tasks:
            return list(self.tasks)
        return list(self.subtasks or self.choices)

    @property
    def leaf_tasks(self) -> list[str]:
        """The lm-eval leaf task names, in a fixed order."""
        if self.tasks:
            return list(self.tasks)
        return [self.task_prefix + s for s in self._short_names()]

    def short_name(self, task: str) -> str:
        """`leaderboard_bbh_snarks` -> `snarks` (the key used by `choices` and `sizes`)."""
        if not self.tasks and task.startswith(self.task_prefix):
            return task[len(self.task_prefix):]
        return task

    def choice_count(self, task: str) -> Optional[int]:
        return self.choices.get(self.short_name(task))

    def baseline_for(self, task: str) -> float:
        """Random-guess baseline of one leaf task: the constant, or 1/k."""
        if self.baseline == "1/k":
            k = self.choice_count(task)
            if k is None:  # excluded by the validator
                raise KeyError(task)
            return 1.0 / k
        return float(self.baseline)

    def full_size(self, task: str) -> Optional[int]:
        return self.sizes.get(self.short_name(task))


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    lm_eval_version: str
    average: str = "Average"
    benchmarks: list[Benchmark]

    def get(self, bench_id: str) -> Benchmark:
        for b in self.benchmarks:
            if b.id == bench_id:
                return b
        known = ", ".join(b.id for b in self.benchmarks)
        raise UserError(f"unknown benchmark {bench_id!r} (known: {known})")

    @property
    def ids(self) -> list[str]:
        return [b.id for b in self.benchmarks]

    @property
    def columns(self) -> list[str]:
        """Display names of every score, in table order: each benchmark, then its extra scores."""
        cols: list[str] = []
        for b in self.benchmarks:
            cols.append(b.display)
            cols.extend(e.display for e in b.extra_scores)
        return cols


@lru_cache(maxsize=8)
def load_suite(path: Path = DEFAULT_SUITE) -> Suite:
    try:
        data = yaml.safe_load(read_text(path))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read suite file: {exc}".splitlines()[0]) from exc
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise UserError(f"{path}: {loc}: {err['msg']}".replace("\n", " ")) from exc


def lm_eval_choice_counts(bench: Benchmark, task_manager: Any = None) -> dict[str, Optional[int]]:
    """k per leaf task as the installed lm-eval defines it: len(doc_to_choice) when that is a list.

    None where the choices come from each document (MuSR's `doc_to_choice: "{{choices}}"`,
    MMLU-PRO's function): there the suite file's `choices` is the only source. Slow (~7 s: builds
    lm-eval's task index); used by tests and `doctor`, never by the scorer.
    """
    if task_manager is None:
        from lm_eval.tasks import TaskManager

        task_manager = TaskManager()
    out: dict[str, Optional[int]] = {}
    for task in bench.leaf_tasks:
        entry = task_manager.task_index.get(task)
        if entry is None:
            raise UserError(f"lm-eval has no task {task!r} (suite benchmark {bench.id})")
        choice = (entry.cfg or {}).get("doc_to_choice")
        out[task] = len(choice) if isinstance(choice, list) else None
    return out
