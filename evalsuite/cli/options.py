"""Command-line options generated from a settings model, as mergekit generates its options from
`MergeOptions`: one option per field, with the field's description, default and bounds.

`stats_options("n_boot", "seed")` on a typer command that takes `stats: StatsSettings` replaces
that parameter by `--boot` and `--seed`; the command receives a `StatsSettings` whose
`model_fields_set` holds only what was given on the command line (click's parameter source), so
`stats.over(exp.stats)` puts it over the experiment file's settings.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any, Callable, Optional

import annotated_types
import typer
from pydantic import BaseModel, ValidationError

from evalsuite.config import StatsSettings
from evalsuite.errors import UserError


_CTX = "options_context"


def option_name(model: type[BaseModel], field: str) -> str:
    extra = model.model_fields[field].json_schema_extra
    name = extra.get("option") if isinstance(extra, dict) else None
    return str(name) if name else "--" + field.replace("_", "-")


def _bounds(model: type[BaseModel], field: str) -> dict[str, Any]:
    """click's inclusive bounds (min/max) from the field's ge/le; open bounds are left to pydantic."""
    out: dict[str, Any] = {}
    for m in model.model_fields[field].metadata:
        if isinstance(m, annotated_types.Ge):
            out["min"] = m.ge
        elif isinstance(m, annotated_types.Le):
            out["max"] = m.le
    return out


def model_options(model: type[BaseModel], param: str, fields: tuple[str, ...], overrides: dict[str, dict[str, Any]]) -> Callable:
    """Decorator: replace the command's parameter `param` (a `model`) by one option per field."""
    names = fields or tuple(model.model_fields)

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        generated = []
        for name in names:
            info = model.model_fields[name]
            kwargs: dict[str, Any] = {"help": info.description, **_bounds(model, name), **overrides.get(name, {})}
            generated.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=info.annotation,
                                               default=typer.Option(info.default, option_name(model, name), **kwargs)))
        params = [inspect.Parameter(_CTX, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]  # where each value came from
        for p in sig.parameters.values():
            params += generated if p.name == param else [p]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx: typer.Context = kwargs.pop(_CTX)
            values = {n: kwargs.pop(n) for n in names}
            given = {n: v for n, v in values.items() if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"}
            try:
                kwargs[param] = model(**given)
            except ValidationError as exc:
                err = exc.errors()[0]
                field = str(err["loc"][0]) if err["loc"] else names[0]
                raise UserError(f"{option_name(model, field)} {given.get(field)}: {err['msg'][0].lower()}{err['msg'][1:]}") from None
            return func(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not inspect.Parameter.empty}
        return wrapper

    return decorate


def stats_options(*fields: str, **overrides: dict[str, Any]) -> Callable:
    """Options for the `StatsSettings` fields named (all by default); `overrides[field]` adds or
    changes keyword arguments of that field's `typer.Option` (a narrower range, say)."""
    return model_options(StatsSettings, "stats", fields, overrides)


RESULTS_HELP = "Results folder (default: output.results of --config, else ./results)."


def experiment_for(results: Optional[Path], config: Optional[Path]):
    """The experiment file, when the results folder comes from it (no --results; the file exists)."""
    if results is not None or config is None or not config.is_file():
        return None
    from evalsuite.config import load_experiment

    return load_experiment(config)


def results_root(results: Optional[Path], config: Optional[Path], exp=None) -> Path:
    """The results folder of every command that reads or writes one: --results, else the
    experiment's (`exp`, else the --config file's) output.results, else ./results."""
    if results is not None:
        return results
    exp = exp or experiment_for(results, config)
    return Path(exp.output.results) if exp is not None else Path("results")
