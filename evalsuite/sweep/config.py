"""The sweep config: parents, a base mergekit recipe, the candidates (a grid over recipe values
and/or an explicit list), how to evaluate them, and the run settings shared with `evalsuite run`.

    name: demo-sweep
    parents: [{fixture: parent_a}, {fixture: parent_b}]
    recipe: demo.mergekit.yml            # the base recipe every candidate changes
    grid:                                # every combination of these values is a candidate
      parameters.t: [[0, 0.5, 1, 0.5, 0], [0, 0.25, 0.5, 0.25, 0]]
    candidates:                          # and/or explicit ones
      - {name: flat, set: {parameters.t: 0.5}}
      - {name: other, recipe: other.mergekit.yml}
    strategy: halving                    # or full
    benchmarks: [mmlu_pro]               # ... and any other key of an experiment file

A recipe path is dotted keys and list indices into the recipe (`parameters.t`,
`slices.0.sources.1.parameters.weight`, `parameters.t.0.value`); it must exist in the base recipe.
Everything is validated — every candidate's recipe through mergekit's own schema — before any
merge, and each mistake is one line naming the key and the file line.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalsuite.config import Dtype, Experiment, ModelSpec, check_files, read_yaml_file, validate_file_data
from evalsuite.config import resolve_paths as _resolve_paths
from evalsuite.errors import UserError
from evalsuite.models.merge_recipe import load_recipe
from evalsuite.names import safe_name
from evalsuite.textio import read_text

Strategy = Literal["halving", "full"]
DEFAULT_ROUNDS = (0.125, 0.25, 0.5)  # share of each task's documents seen after each round; then all

CandidateName = safe_name("candidate name")
SweepName = safe_name("sweep name")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidateSpec(_Strict):
    """One explicit candidate: the base recipe with some values `set`, or a whole `recipe`."""

    name: CandidateName
    set: dict[str, Any] = Field(default_factory=dict)
    recipe: Optional[Path] = None

    @model_validator(mode="after")
    def _one(self) -> "CandidateSpec":
        if self.recipe is not None and self.set:
            raise ValueError("give set (changes to the base recipe) or recipe (a whole one), not both")
        return self


class MergedSettings(_Strict):
    """How each merged candidate is loaded by lm-eval (as a candidate's keys in an experiment)."""

    dtype: Dtype = "auto"
    chat_template: bool = False
    fewshot_as_multiturn: Optional[bool] = None


class SweepSettings(_Strict):
    name: SweepName
    parents: list[dict[str, Any]] = Field(min_length=1)  # validated as ModelSpecs by the experiment
    recipe: Optional[Path] = None
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    candidates: list[CandidateSpec] = Field(default_factory=list)
    merged: MergedSettings = MergedSettings()
    strategy: Strategy = "halving"
    rounds: list[float] = Field(default_factory=lambda: list(DEFAULT_ROUNDS))
    objective: str = "average"  # the leaderboard average of the sweep's benchmarks, or one benchmark id
    alpha: float = Field(default=0.05, gt=0, lt=1)
    seed: int = 0
    n_resamples: int = Field(default=9999, ge=99)  # the paired permutation test's random sign flips
    keep: bool = False  # keep every merged candidate (else each is deleted after its jobs)

    @field_validator("rounds")
    @classmethod
    def _rounds(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("at least one round before the full set (e.g. [0.125, 0.25, 0.5])")
        if any(not 0 < f < 1 for f in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"rounds {v}: shares of the documents, increasing, each between 0 and 1 (the full set comes last by itself)")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"grid.{key}: no values")
        return v

    @model_validator(mode="after")
    def _something(self) -> "SweepSettings":
        if not self.grid and not self.candidates:
            raise ValueError("no candidates: give grid (values of the base recipe to sweep) and/or candidates")
        if (self.grid or any(c.recipe is None for c in self.candidates)) and self.recipe is None:
            raise ValueError("recipe: missing (the base mergekit recipe that grid and set change)")
        return self


class Candidate(BaseModel):
    """One expanded candidate: its name, what it changes, and its whole recipe (as mergekit reads it)."""

    name: str
    params: dict[str, Any]  # recipe path -> value (empty for a whole recipe)
    recipe: dict[str, Any]
    source: Optional[str] = None  # the recipe file of an explicit whole-recipe candidate

    def label(self) -> str:
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in self.params.items()) or (self.source or self.name)

    def recipe_text(self) -> str:
        return yaml.safe_dump(self.recipe, sort_keys=False)


class Sweep(BaseModel):
    """The whole validated sweep: its settings, the run settings (an experiment of the parents,
    whose first parent stands as its candidate) and the expanded candidates."""

    settings: SweepSettings
    base: Experiment
    candidates: list[Candidate]
    source_file: Optional[Path] = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def parents(self) -> list[ModelSpec]:
        return [self.base.candidate, *self.base.parents]


def _path_parts(path: str) -> list[Union[str, int]]:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def set_value(recipe: dict, path: str, value: Any) -> dict:
    """A copy of `recipe` with `path` set to `value`; the path must exist in the recipe."""
    out = copy.deepcopy(recipe)
    node: Any = out
    parts = _path_parts(path)
    for i, part in enumerate(parts):
        here = ".".join(map(str, parts[: i + 1]))
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            pass
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            pass
        else:
            raise ValueError(f"{here} is not in the base recipe")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]
    return out


def expand(settings: SweepSettings, base_recipe: Optional[dict], base_dir: Path) -> list[tuple[str, Candidate, tuple]]:
    """Every candidate, with the config location that made it (for error lines)."""
    out: list[tuple[str, Candidate, tuple]] = []
    keys = list(settings.grid)
    width = len(str(max(1, len(list(itertools.product(*settings.grid.values()))))))
    for i, combo in enumerate(itertools.product(*(settings.grid[k] for k in keys)) if keys else []):
        recipe = base_recipe
        params = dict(zip(keys, combo))
        for k, v in params.items():
            try:
                recipe = set_value(recipe, k, v)
            except ValueError as exc:
                raise _Located(("grid", k), f"grid.{k}: {exc}") from None
        out.append((f"grid.{keys[0]}", Candidate(name=f"{settings.name}-{i + 1:0{width}d}", params=params, recipe=recipe), ("grid", keys[0])))
    for j, spec in enumerate(settings.candidates):
        if spec.recipe is not None:
            path = spec.recipe if spec.recipe.is_absolute() else (base_dir / spec.recipe).resolve()
            try:
                recipe = yaml.safe_load(read_text(path))
            except (OSError, yaml.YAMLError) as exc:
                raise _Located(("candidates", j, "recipe"), f"candidates.{j}.recipe: cannot read {path} ({str(exc).splitlines()[0]})") from None
            out.append((f"candidates.{j}", Candidate(name=spec.name, params={}, recipe=recipe, source=str(path)), ("candidates", j, "recipe")))
            continue
        recipe = base_recipe
        for k, v in spec.set.items():
            try:
                recipe = set_value(recipe, k, v)
            except ValueError as exc:
                raise _Located(("candidates", j, "set", k), f"candidates.{j}.set.{k}: {exc}") from None
        out.append((f"candidates.{j}", Candidate(name=spec.name, params=dict(spec.set), recipe=recipe), ("candidates", j)))
    return out


class _Located(Exception):
    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


def check_recipe(recipe: dict, where: str) -> None:
    """The candidate's recipe through mergekit's own schema and evalsuite's recipe checks (method,
    base model, t in [0, 1]); reads no model."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="evalsuite-sweep-check-") as tmp:
        path = Path(tmp) / "recipe.yml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        try:
            load_recipe(path)
        except UserError as exc:
            raise UserError(f"{where}: {str(exc).split(': ', 1)[1] if str(exc).startswith('recipe ') else exc}") from None


SWEEP_KEYS = set(SweepSettings.model_fields)
NOT_IN_A_SWEEP = {"candidate": "the candidates are the recipes (grid, candidates)", "limit": "a sweep chooses its own documents (rounds)"}


def load_sweep(path: Union[str, Path]) -> Sweep:
    """Read and validate a sweep file whole: settings, run settings, every candidate's recipe."""
    path = Path(path)
    data, lines = read_yaml_file(path, "sweep config")

    def where(loc: tuple) -> str:
        line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
        return f"{path}:{line}" if line else str(path)

    for key, why in NOT_IN_A_SWEEP.items():
        if key in data:
            raise UserError(f"{where((key,))}: {key}: not a sweep key ({why})")
    base_dir = path.resolve().parent
    own = {k: v for k, v in data.items() if k in SWEEP_KEYS}
    settings = validate_file_data(SweepSettings, own, lines, path)
    if settings.recipe is not None and not settings.recipe.is_absolute():
        settings = settings.model_copy(update={"recipe": (base_dir / settings.recipe).resolve()})
    # the run settings, validated as an experiment whose parents are the sweep's (as listed in the
    # file, so errors name the file's keys) and whose candidate is a stand-in; the parents' own
    # experiment then has the first parent as its candidate
    for i, p in enumerate(settings.parents):
        if "recipe" in p:
            raise UserError(f"{where(('parents', i, 'recipe'))}: parents.{i}.recipe: a parent cannot be a recipe (the candidates are)")
    run = {k: v for k, v in data.items() if k not in SWEEP_KEYS}
    run = _resolve_paths({**run, "parents": [dict(p) for p in settings.parents]}, base_dir)
    run["candidate"] = {"name": f"{settings.name}-candidate", "fixture": "candidate"}
    run["name"] = settings.name
    shaped = validate_file_data(Experiment, {**run, "source_file": str(path.resolve())}, lines, path)
    check_files(shaped, lines, path)
    base = shaped.derive(candidate=shaped.parents[0], parents=shaped.parents[1:], name=settings.name)
    if settings.objective != "average" and settings.objective not in base.benchmarks:
        raise UserError(f"{where(('objective',))}: objective: {settings.objective!r} is neither 'average' nor one of the sweep's benchmarks ({', '.join(base.benchmarks)})")
    base_recipe = None
    if settings.recipe is not None:
        if not settings.recipe.is_file():
            raise UserError(f"{where(('recipe',))}: recipe: file {settings.recipe} does not exist")
        try:
            base_recipe = yaml.safe_load(read_text(settings.recipe))
        except yaml.YAMLError as exc:
            raise UserError(f"{where(('recipe',))}: recipe {settings.recipe}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(base_recipe, dict):
            raise UserError(f"{where(('recipe',))}: recipe {settings.recipe}: expected a mergekit recipe (a mapping)")
    try:
        expanded = expand(settings, base_recipe, base_dir)
    except _Located as exc:
        raise UserError(f"{where(exc.loc)}: {exc}") from None
    names = [c.name for _, c, _ in expanded]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{path}: candidate names repeated: {', '.join(dup)}")
    parent_names = {m.display_name for m in [base.candidate, *base.parents]}
    if parent_names & set(names):
        raise UserError(f"{path}: candidate names {sorted(parent_names & set(names))} are also parent names")
    for label, cand, loc in expanded:
        check_recipe(cand.recipe, f"{where(loc)}: {label} ({cand.name}: {cand.label()})")
    return Sweep(settings=settings, base=base, candidates=[c for _, c, _ in expanded], source_file=path.resolve())
