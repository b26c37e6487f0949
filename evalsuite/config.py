"""The experiment config: one pydantic model, loaded from YAML, the single source of truth.

Errors name the key and the file line (`evalsuite.yaml:12: parents.0.revison: unknown key`).
Relative paths in the file are resolved against the file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from collections.abc import Sequence
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalsuite.errors import UserError
from evalsuite.hub import HUB_ID
from evalsuite.schema import Harness, StartMode, TaskIndex
from evalsuite.suite import load_suite
from evalsuite.textio import decode

from evalsuite.names import ExperimentName, name_problem  # noqa: E402  the one name rule (names become file names)

Dtype = Literal["auto", "bfloat16", "float16", "float32"]
GIT_SHA = re.compile(r"^[0-9a-f]{40}\Z")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Strict):
    """One model of the experiment: exactly one of `hub`, `path`, `recipe`, `fixture`, `published`.

    `fixture` names a tiny test model that evalsuite builds itself (`evalsuite fixtures build`).
    `published` takes the model's results from the leaderboard's published details (a details
    dataset repo id such as `open-llm-leaderboard/sam-paech__Delirium-v1-details`, or a local
    folder in that layout; `revision:` pins the repo's commit): no model is loaded for it."""

    name: Optional[str] = None
    hub: Optional[str] = None
    revision: Optional[str] = None
    path: Optional[Path] = None
    recipe: Optional[Path] = None
    fixture: Optional[Literal["parent_a", "parent_b", "candidate"]] = None
    published: Optional[str] = None
    dtype: Dtype = "auto"
    chat_template: bool = False
    fewshot_as_multiturn: Optional[bool] = None  # default: same as chat_template
    trust_remote_code: bool = False
    allow_pickle: bool = False  # load *.bin checkpoints (pickle) — off: safetensors only

    @model_validator(mode="after")
    def _one_source(self) -> "ModelSpec":
        given = [k for k in ("hub", "path", "recipe", "fixture", "published") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hub, path, recipe, fixture, published")
        if self.hub is not None and not HUB_ID.match(self.hub):
            raise ValueError(f"hub id {self.hub!r} is not of the form org/name")
        if self.revision is not None and self.hub is None and self.published is None:
            raise ValueError("revision only applies to a hub model or published details")
        if self.name is not None and (problem := name_problem(self.name, "name")):
            raise ValueError(problem)
        if self.display_name.startswith("."):  # derived from a hub id or folder: '..', '.', hidden
            raise ValueError(f"model name {self.display_name!r} (derived from the model's source) starts with '.'; set name:")
        if self.name is None and (problem := name_problem(self.display_name, "model name")):  # the one name rule
            raise ValueError(f"{problem} (derived from the model's source); set name:")
        if self.fewshot_as_multiturn and not self.chat_template:
            raise ValueError("fewshot_as_multiturn needs chat_template: true")
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.hub:
            return self.hub.split("/")[-1]
        if self.fixture:
            return f"tiny-{self.fixture}"
        if self.published:  # open-llm-leaderboard/<org>__<model>-details, or a folder of it
            base = re.split(r"[/\\]", self.published.rstrip("/\\"))[-1].removesuffix("-details")
            return re.sub(r"[^\w.\-]", "_", base.split("__")[-1]) or "published"
        src = self.path if self.path is not None else self.recipe
        return re.sub(r"[^\w.\-]", "_", Path(str(src)).stem) or "model"

    @property
    def multiturn(self) -> bool:
        return self.chat_template if self.fewshot_as_multiturn is None else self.fewshot_as_multiturn


class DataSource(_Strict):
    """Where the six datasets come from: the hub (default) or a local mirror folder laid out like
    `hf download --repo-type dataset ORG/NAME --local-dir MIRROR/ORG/NAME`."""

    source: Literal["hub", "mirror"] = "hub"
    mirror: Optional[Path] = None
    # hub: benchmark id (ifeval, bbh, ...) -> dataset commit sha to read; the others are resolved
    # to the commit their repo's main branch points at (online) or the HF cache holds (offline)
    revisions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mirror_given(self) -> "DataSource":
        if self.source == "mirror" and self.mirror is None:
            raise ValueError("source: mirror needs a mirror folder")
        if self.source == "hub" and self.mirror is not None:
            raise ValueError("mirror is only used with source: mirror")
        if self.revisions and self.source != "hub":
            raise ValueError("revisions pin hub datasets (source: hub); a mirror is identified by its content")
        known = load_suite().ids
        for bench, sha in self.revisions.items():
            if bench not in known:
                raise ValueError(f"revisions: unknown benchmark {bench!r} (known: {', '.join(known)})")
            if not GIT_SHA.match(sha):
                raise ValueError(f"revisions.{bench}: {sha!r} is not a 40-hex-digit commit sha")
        return self


class Backend(_Strict):
    """How lm-eval runs the model. `hf` (default): transformers; `vllm`: lm-eval's vllm model
    (CUDA only, its own environment: `pip install -e '.[vllm]'` on a GPU machine)."""

    name: Literal["hf", "vllm"] = "hf"
    # hf: data parallel over N GPUs with `accelerate launch` (one process per GPU), or one process
    # sharding a model too big for one GPU over all visible GPUs (parallelize=True).
    num_processes: int = Field(default=1, ge=1)
    parallelize: bool = False
    # vllm
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    max_model_len: Optional[int] = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> "Backend":
        if self.name == "hf" and (self.tensor_parallel_size > 1 or self.data_parallel_size > 1):
            raise ValueError("tensor_parallel_size / data_parallel_size are vllm settings (hf: num_processes, parallelize)")
        if self.name == "vllm" and (self.num_processes > 1 or self.parallelize):
            raise ValueError("num_processes / parallelize are hf settings (vllm: tensor_parallel_size, data_parallel_size)")
        if self.num_processes > 1 and self.parallelize:
            raise ValueError("choose data parallel (num_processes) or model sharding (parallelize), not both")
        return self


class ExecutorConfig(_Strict):
    """Where jobs run; cannot change a number, so it is not part of a job's identity."""

    name: Literal["local", "ray"] = "local"
    workers: int = Field(default=1, ge=1)  # local: jobs run at once (one per GPU or CPU core)
    ray_address: Optional[str] = None  # None: start a local Ray cluster; "auto" or HOST:PORT: join one
    num_gpus: Optional[float] = Field(default=None, ge=0)  # GPUs each Ray task asks for (None: 1 per job on CUDA, 0 on CPU)
    max_retries: int = Field(default=1, ge=0)
    # Which task files each lm_eval process indexes at start: "leaderboard" = lm-eval's leaderboard
    # folder (+ mirror overrides), "full" = the stock CLI's whole tree (~7 s more per job). Same
    # task files either way, so the same numbers.
    task_index: TaskIndex = "leaderboard"
    # How each local lm_eval process starts: "warm" = forked from a zygote that has torch and
    # transformers imported (evalsuite/run/warm.py; ~4 s less per process on the CI machine), falling
    # back to a fresh process where that is not safe; "fresh" = a new interpreter. Same program,
    # same arguments, same numbers.
    start: StartMode = "warm"


class Output(_Strict):
    results: Path = Path("results")
    reports: Path = Path("reports")


class StatsSettings(_Strict):
    """The paired statistics' settings (compare, report, regress, verify). The commands' options
    are generated from these fields (`evalsuite.cli.options.stats_options`); a value given on the
    command line wins over the experiment file's."""

    n_boot: int = Field(default=2000, ge=100, description="Bootstrap resamples.", json_schema_extra={"option": "--boot"})
    seed: int = Field(default=0, description="Bootstrap seed (same seed, same intervals).")
    alpha: float = Field(default=0.05, gt=0, le=1, description="Significance level of the paired test (after Holm's correction).")
    level: float = Field(default=0.95, gt=0, lt=1, description="Confidence level of the bootstrap intervals.")

    def over(self, base: "StatsSettings") -> "StatsSettings":
        """`base` with the values set explicitly here (e.g. on the command line) put over it."""
        return base.model_copy(update={k: getattr(self, k) for k in self.model_fields_set})


class Experiment(_Strict):
    name: ExperimentName
    candidate: ModelSpec
    parents: list[ModelSpec] = Field(default_factory=list)
    benchmarks: list[str] = Field(default_factory=lambda: list(load_suite().ids))
    harness: Harness = "leaderboard"
    batch_size: Union[int, Literal["auto"]] = "auto"
    limit: Optional[int] = None
    device: str = "auto"
    threads: Optional[int] = Field(default=None, ge=1)  # OMP_NUM_THREADS for each lm_eval job (CPU)
    offline: bool = False  # set HF_HUB_OFFLINE / HF_DATASETS_OFFLINE for every job
    backend: Backend = Backend()
    executor: ExecutorConfig = ExecutorConfig()
    data: DataSource = DataSource()
    output: Output = Output()
    stats: StatsSettings = StatsSettings()
    local_models: dict[str, Path] = Field(default_factory=dict)  # hub id -> local folder
    # set by `evalsuite sweep`, not in files: benchmark -> leaf task -> document indices (lm-eval's
    # `--samples`) the candidate is evaluated on, a seeded stratified subset of each task (the
    # parents always on every document); exclusive with `limit`
    samples: Optional[dict[str, dict[str, list[int]]]] = Field(default=None, exclude=True)
    source_file: Optional[Path] = Field(default=None, exclude=True)

    @field_validator("benchmarks")
    @classmethod
    def _benchmarks(cls, v: list[str]) -> list[str]:
        known = load_suite().ids
        for b in v:
            if b not in known:
                raise ValueError(f"unknown benchmark {b!r} (known: {', '.join(known)})")
        if not v:
            raise ValueError("at least one benchmark")
        if len(set(v)) != len(v):
            raise ValueError("benchmarks listed twice")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: Optional[int]) -> Optional[int]:
        if v is not None and v <= 0:
            raise ValueError("limit must be a positive number of documents per task")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v: Union[int, str]) -> Union[int, str]:
        if isinstance(v, int) and v <= 0:
            raise ValueError("batch_size must be positive or 'auto'")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> "Experiment":
        names = [m.display_name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"model names must be unique, {sorted(dup)} repeated (set name:)")
        for m in self.parents:
            if m.recipe is not None:
                raise ValueError("only the candidate may be a mergekit recipe")
        if self.samples is not None and self.limit is not None:
            raise ValueError("samples and limit exclude each other (lm-eval's --samples / --limit)")
        if self.harness == "leaderboard" and self.backend.name != "hf":
            raise ValueError("harness: leaderboard reproduces the fork's hf model; with backend vllm use harness: upstream")
        return self

    @property
    def models(self) -> list[ModelSpec]:
        return [self.candidate, *self.parents]

    def derive(self, **changes) -> "Experiment":
        """This experiment with `changes`, validated again as a whole (`model_copy(update=...)`
        would skip every validator: names, benchmarks, samples vs limit). A change that breaks a
        rule is a UserError naming it."""
        data = {**self.model_dump(), "samples": self.samples, "source_file": self.source_file, **changes}
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "experiment"
            raise UserError(f"{self.name}: {where}: {err['msg']}") from None

    @property
    def use_mirror(self) -> bool:
        return self.data.source == "mirror"


# --- loading ------------------------------------------------------------------------------------


def _line_map(node: yaml.Node, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path (as pydantic writes `loc`) to its 1-based line in the YAML file."""
    lines: dict[tuple, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = prefix + (key.value,)
            lines[path] = key.start_mark.line + 1
            lines.update({k: v for k, v in _line_map(value, path).items() if k != path})
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_map(item, prefix + (i,)))
    return lines


def resolve_paths(data: dict, base: Path) -> dict:
    """Make relative paths relative to the config file's folder."""

    def fix(p):
        if isinstance(p, str) and not Path(p).expanduser().is_absolute():
            return str((base / p).resolve())
        return str(Path(p).expanduser()) if isinstance(p, str) else p

    for m in [data.get("candidate"), *(data.get("parents") or [])]:
        if isinstance(m, dict):
            for k in ("path", "recipe"):
                if k in m:
                    m[k] = fix(m[k])
            pub = m.get("published")  # a folder (relative to the config) or a details repo id
            if isinstance(pub, str) and ((base / pub).expanduser().exists() or not HUB_ID.match(pub)):
                m["published"] = fix(pub)
    if isinstance(data.get("data"), dict) and "mirror" in data["data"]:
        data["data"]["mirror"] = fix(data["data"]["mirror"])
    if isinstance(data.get("output"), dict):
        for k in ("results", "reports"):
            if k in data["output"]:
                data["output"][k] = fix(data["output"][k])
    else:
        data["output"] = {"results": str(base / "results"), "reports": str(base / "reports")}
    if isinstance(data.get("local_models"), dict):
        data["local_models"] = {k: fix(v) for k, v in data["local_models"].items()}
    return data


def read_yaml_file(path: Path, what: str = "config") -> tuple[dict, dict[tuple, int]]:
    """A YAML mapping and the line of each key path; a UserError naming the line if it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    text = decode(raw, path)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = (str(getattr(exc, "problem", None) or exc).strip().splitlines() or ["?"])[0]  # one line, always
        raise UserError(f"{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: the {what} must be a mapping of keys")
    return data, (_line_map(node) if node is not None else {})


def validate_file_data(model: type[BaseModel], data: dict, lines: dict[tuple, int], path: Path,
                       from_cli: Sequence[tuple] = ()):
    """`model.model_validate(data)`, its first error as one UserError line naming key and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
        key = ".".join(str(x) for x in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        if any(loc[: len(c)] == c for c in from_cli):
            where = f"command line (with {path})"
        else:
            where = f"{path}:{line}" if line else str(path)
        raise UserError(f"{where}: {key}: {msg}") from None


def load_experiment(path: Union[str, Path], overrides: Optional[dict] = None) -> Experiment:
    """Read, validate and check an experiment file. Raises UserError naming key and line."""
    path = Path(path)
    data, lines = read_yaml_file(path)
    if "samples" in data:  # set by `evalsuite sweep` only
        raise UserError(f"{path}:{lines.get(('samples',), '?')}: samples: unknown key")
    data = resolve_paths(dict(data), path.resolve().parent)
    # CLI overrides; mappings merge one level deep. An error in one names the command line.
    from_cli = [(k, *([sub] if isinstance(v, dict) else [])) for k, v in (overrides or {}).items() for sub in (v if isinstance(v, dict) else [None])]
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    exp = validate_file_data(Experiment, {**data, "source_file": str(path.resolve())}, lines, path, from_cli)
    check_files(exp, lines, path)
    return exp


def check_files(exp: Experiment, lines: dict[tuple, int], path: Path) -> None:
    """Files named in the config must exist (hub models are checked when they are resolved)."""

    def where(*loc) -> str:
        return f"{path}:{lines[loc]}" if loc in lines else str(path)

    for role, i, m in [("candidate", None, exp.candidate), *[("parents", i, p) for i, p in enumerate(exp.parents)]]:
        loc = (role,) if i is None else (role, i)
        if m.path is not None and not Path(m.path).is_dir():
            raise UserError(f"{where(*loc, 'path')}: {'.'.join(map(str, loc))}.path: model folder {m.path} does not exist")
        if m.recipe is not None and not Path(m.recipe).is_file():
            raise UserError(f"{where(*loc, 'recipe')}: {'.'.join(map(str, loc))}.recipe: recipe file {m.recipe} does not exist")
        if m.published is not None and not HUB_ID.match(m.published) and not Path(m.published).is_dir():
            raise UserError(f"{where(*loc, 'published')}: {'.'.join(map(str, loc))}.published: details folder {m.published} does not exist")
    if exp.data.mirror is not None and not Path(exp.data.mirror).is_dir():
        raise UserError(f"{where('data', 'mirror')}: data.mirror: folder {exp.data.mirror} does not exist")
    for hub_id, folder in exp.local_models.items():
        if not Path(folder).is_dir():
            raise UserError(f"{where('local_models', hub_id)}: local_models.{hub_id}: folder {folder} does not exist")
