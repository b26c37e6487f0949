"""The benchmark suite as data: `tasks/leaderboard_v2.yaml` loaded into typed objects.

The runner uses it for task names; the scorer for metric keys, baselines and how subtasks combine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field

from evalsuite.errors import UserError

TASKS_DIR = Path(__file__).resolve().parent.parent / "tasks"
DEFAULT_SUITE = TASKS_DIR / "leaderboard_v2.yaml"


class ExtraScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display: str
    metrics: list[str]


class Benchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    display: str
    group: str
    metrics: list[str]
    baseline: Union[float, Literal["1/k"]]
    combine: Literal["mean_of_metrics", "normalize_then_mean", "weighted_then_normalize", "single"]
    tasks: list[str] = Field(default_factory=list)
    task_prefix: str = ""
    subtasks: list[str] = Field(default_factory=list)
    choices: dict[str, int] = Field(default_factory=dict)
    extra_scores: list[ExtraScore] = Field(default_factory=list)

    @property
    def leaf_tasks(self) -> list[str]:
        """The lm-eval leaf task names, in a fixed order."""
        if self.tasks:
            return list(self.tasks)
        names = self.subtasks or list(self.choices)
        return [self.task_prefix + s for s in names]


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    lm_eval_version: str
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


@lru_cache(maxsize=8)
def load_suite(path: Path = DEFAULT_SUITE) -> Suite:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read suite file: {exc}".splitlines()[0]) from exc
    return Suite.model_validate(data)
