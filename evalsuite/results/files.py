"""lm-eval results files -> `ModelResults`: the one reader of results JSON.

Reads the layouts of lm-eval 0.4.5 ... 0.4.13 and of the Hugging Face fork (see
tests/fixtures_score/lm_eval_versions/README.md): leaf tasks' metric values, documents scored,
task versions, `--limit`, `--samples` subsets; lm-eval's group values are kept aside (never used
for scores). Files of one model merge into one record."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, Field

from evalsuite.errors import UserError
from evalsuite.textio import NotUtf8, loads, read_json

PathLike = Union[str, Path]


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
    n_shot: dict[str, int] = Field(default_factory=dict)
    """task -> few-shot examples per prompt (lm-eval's `n-shot[task]`)"""
    n_original: dict[str, int] = Field(default_factory=dict)
    """task -> documents in the task (lm-eval's `n-samples[task].original`)"""
    configs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """task -> the task config the file records (lm-eval's `configs[task]`)"""


class ResultsMeta(BaseModel):
    """What one lm-eval results file says about its run as a whole (not per task), as it says it."""

    lm_eval_version: Any = None
    transformers_version: Any = None
    task_hashes: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    """lm-eval's `config` (model, model_args, batch sizes, device, limit)"""
    pretty_env_info: str = ""
    total_evaluation_time_seconds: Any = None
    fewshot_as_multiturn: Any = None
    chat_template_sha: Any = None
    dtype: Optional[str] = None
    """`torch.bfloat16` / `dtype=bfloat16` of the config -> "bfloat16" (None: not given, or auto)"""


def meta_of(data: Any) -> ResultsMeta:
    """A parsed results JSON's run-level fields (`ResultsMeta`); anything of the wrong type is left out."""
    if not isinstance(data, dict):
        return ResultsMeta()
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    hashes = data.get("task_hashes") if isinstance(data.get("task_hashes"), dict) else {}
    return ResultsMeta(
        lm_eval_version=data.get("lm_eval_version"), transformers_version=data.get("transformers_version"),
        task_hashes=hashes, config=config, pretty_env_info=str(data.get("pretty_env_info") or ""),
        total_evaluation_time_seconds=data.get("total_evaluation_time_seconds"),
        fewshot_as_multiturn=data.get("fewshot_as_multiturn"), chat_template_sha=data.get("chat_template_sha"),
        dtype=_config_dtype(config),
    )


def _config_dtype(cfg: dict[str, Any]) -> Optional[str]:
    value = cfg.get("model_dtype")
    if not value:
        args = cfg.get("model_args")
        if isinstance(args, dict):
            value = args.get("dtype")
        elif isinstance(args, str):
            m = re.search(r"(?:^|,)dtype=([\w.]+)", args)
            value = m.group(1) if m else None
    if not value or str(value).lower() == "auto":
        return None
    return str(value).lower().removeprefix("torch.")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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
    return results_of(read_raw_results(path), path)


def read_raw_results(path: PathLike) -> Any:
    """A results file's JSON as it is (no check of its layout); one line for an unreadable file."""
    try:
        return read_json(path)
    except NotUtf8:
        raise
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read results JSON: {exc}".splitlines()[0]) from exc


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
    n_shot = data.get("n-shot") if isinstance(data.get("n-shot"), dict) else {}
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
        if isinstance(ns, dict) and _is_int(ns.get("original")):
            out.n_original[task] = ns["original"]
        if _is_int(n_shot.get(task)):
            out.n_shot[task] = n_shot[task]
        cfg = configs.get(task)
        if isinstance(cfg, dict):
            out.configs[task] = cfg
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
        for field in ("n_samples", "subsets", "choices", "task_versions", "process_results", "n_shot", "n_original", "configs"):
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


def read_results_json(path: Path, sha256: Optional[str]) -> dict:
    """A results file, hashed (when `sha256` is given) and parsed from the same bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read results file ({exc.strerror})") from exc
    if sha256 and hashlib.sha256(raw).hexdigest() != sha256:
        raise UserError(f"{path}: changed since the run recorded it (sha256 differs); rerun `evalsuite run`")
    try:
        return loads(raw, path)
    except NotUtf8:
        raise
    except ValueError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from exc
