"""What evalsuite takes from lm-eval beyond its command line, in one place: its output file names,
its task folder, its task-YAML loader, and the internals the import of published details builds
tasks and aggregates with.

Checked against lm-eval 0.4.13 (the version evalsuite pins; docs/fidelity.md). These are private
APIs of that version, so an lm-eval upgrade is checked here first:
- `lm_eval.tasks._yaml_loader.load_yaml`: a task YAML with its `include:`s merged, `!function`
  hooks either imported (`resolve_func=True`) or left as `<folder>/<module.function>` strings;
- `lm_eval.tasks._index.TaskIndex.build([folder])`: the task index TaskManager builds (name ->
  `Entry(kind, yaml_path, cfg)`, `cfg` with includes merged and hooks unresolved);
- `lm_eval.tasks._factory.TaskFactory(meta=None).build(entry, overrides=..., registry=...)` and the
  `TaskManager(...).task_index` entries (`.yaml_path`) it builds from;
- `lm_eval.api.group.Group.from_config` / `.add`;
- `lm_eval.evaluator_utils._process_results(acc, groups, bootstrap_iters=...)._to_eval_results()`:
  the aggregation `simple_evaluate` runs after the requests (task `aggregation()`,
  `stderr_for_metric`, `Group.aggregate`).

lm-eval is imported only inside the functions (importing it costs seconds).
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from evalsuite.errors import UserError

# lm-eval's EvaluationTracker file names: results_<date>.json, samples_<task>_<date>.jsonl
DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
SAMPLES_NAME = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{DATE})\.jsonl$")
RESULTS_NAME = re.compile(rf"^results_(?P<date>{DATE})\.json$")
PROCESS_RESULTS = "process_results_"  # lm-eval's whole results file of a shared process, kept beside
# The keys of lm-eval's results file that map task names to values.
PER_TASK_KEYS = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "task_hashes")


def leaderboard_dir() -> Path:
    """The installed lm-eval `tasks/leaderboard` folder."""
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks" / "leaderboard"


def load_task_yaml(path: Path, resolve_func: bool = False) -> dict[str, Any]:
    """A task YAML as lm-eval reads it (`include:`s merged, local keys win)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(path, resolve_func=resolve_func)


def task_index(root: Path) -> dict[str, Any]:
    """lm-eval's task index of one folder: task, group and tag name -> Entry."""
    from lm_eval.tasks._index import TaskIndex

    return TaskIndex.build([root])


def is_leaf_task(entry: Any) -> bool:
    """A YAML-defined task (not a group, tag or Python class)."""
    from lm_eval.tasks._index import Kind

    return entry.kind is Kind.TASK and entry.yaml_path is not None


@contextmanager
def quiet_lm_eval() -> Iterator[None]:
    log = logging.getLogger("lm_eval")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    from datasets.utils import logging as ds_logging

    was = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            ds_logging.enable_progress_bar()


class _AnySplit(dict):
    """A dataset dict that serves the recorded documents under whatever split the config names."""

    def __init__(self, ds):
        super().__init__()
        self._ds = ds

    def __missing__(self, key):
        return self._ds


def task_manager():
    """lm-eval's TaskManager over its leaderboard folder only (as evalsuite.run.lm_eval_main)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=[leaderboard_dir()], include_defaults=False)


def yaml_path(tm, name: str):
    """The YAML file lm-eval's task index holds for task or group `name`, or None."""
    entry = tm.task_index.get(name)
    return None if entry is None else entry.yaml_path


def build_task(tm, name: str, first_doc: dict):
    """The installed lm-eval task `name`, built by lm-eval's TaskFactory from its YAML, with the
    dataset replaced by one recorded document: `custom_dataset` (a callable
    `ConfigurableTask.download` calls instead of `datasets.load_dataset`) serving it under any
    split, `process_docs: None` (the records hold processed documents). `__init__` renders one test
    prompt from it; `process_results` gets each record's own `doc`. The returned task's config reads
    as installed (`dump_config()`): `process_docs` put back, `config_source` = its YAML."""
    import datasets
    from lm_eval.tasks._factory import TaskFactory

    entry = tm.task_index.get(name)
    if entry is None or entry.yaml_path is None:
        raise UserError(f"the installed lm-eval has no task {name!r}")
    original = load_task_yaml(entry.yaml_path, resolve_func=True).get("process_docs")
    ds = datasets.Dataset.from_list([first_doc])
    overrides = {"custom_dataset": lambda **_: _AnySplit(ds), "process_docs": None, "dataset_kwargs": None}
    with quiet_lm_eval(), _no_progress_bars():
        task = TaskFactory(meta=None).build(entry, overrides=overrides, registry=tm.task_index)
    task.config.custom_dataset = None  # dump_config() then shows the task as installed
    task.config.process_docs = original
    task.config.metadata.pop("config_source", None)
    task.config.metadata["config_source"] = str(entry.yaml_path)
    return task


def build_group(tm, name: str, tasks: dict):
    """lm-eval's Group for a benchmark group (for its aggregate_metric_list), children attached."""
    from lm_eval.api.group import Group

    path = yaml_path(tm, name)
    if path is None:
        return None
    cfg = load_task_yaml(path, resolve_func=True)
    group = Group.from_config({k: v for k, v in cfg.items() if k in ("group", "group_alias", "task", "aggregate_metric_list", "metadata")})
    for child in cfg.get("task", []):
        if isinstance(child, str) and child in tasks:
            group.add(tasks[child])
    return group


def aggregate(acc: dict, groups: dict, bootstrap_iters: int = 100000) -> dict:
    """lm-eval's results layout (`results`, `groups`, `configs`, `n-samples`, ...) from per-task
    `{"task", "raw_metrics", "logged_samples"}`, aggregated as `simple_evaluate` aggregates."""
    from lm_eval.evaluator_utils import _process_results

    with quiet_lm_eval():
        return _process_results(acc, groups, bootstrap_iters=bootstrap_iters)._to_eval_results()


# ---------------------------------------------------------------------------------------------
# the installed packages' versions and the installed task code (parts of every job's identity)


@lru_cache(maxsize=1)
def lm_eval_version() -> str:
    return package_version("lm_eval")


@lru_cache(maxsize=None)
def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@lru_cache(maxsize=1)
def task_files_hash() -> str:
    """Content hash of the installed lm-eval leaderboard task files (YAML and Python hooks)."""
    root = leaderboard_dir()
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".yaml", ".py", ""} and "__pycache__" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]
