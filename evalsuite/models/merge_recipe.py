"""Read a mergekit recipe, resolve its model references to local folders, and preflight it.

Everything here is cheap: YAML, config.json files and safetensors *headers* (never tensor data).
Every problem a user can fix becomes a one-line `UserError` naming the key, folder or tensor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import yaml
from pydantic import BaseModel, ValidationError

from evalsuite.errors import UserError
from evalsuite.hub import HUB_ID, MODEL_FILES, env_offline, snapshot
from evalsuite.models.model_files import INDEX_FILE, SINGLE_FILE, folder_headers, tokenizer_vocab
from evalsuite.fsio import file_sha256
from evalsuite.textio import read_text

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


class Parent(BaseModel):
    """One model the recipe references, resolved to a local folder."""

    ref: str  # as written in the recipe, without any @revision
    path: Path
    source: Literal["local", "mapped", "hub"]
    revision: Optional[str] = None  # commit sha of the HF-cache snapshot (source == "hub")
    architecture: str
    num_layers: Optional[int] = None


class Recipe(BaseModel):
    """A parsed recipe: its verbatim text, mergekit's config, and the config with local paths."""

    model_config = {"arbitrary_types_allowed": True}

    path: Path
    text: str
    config: Any  # mergekit.config.MergeConfiguration, references as written
    local_config: Any = None  # same, every reference replaced by its local folder
    parents: list[Parent] = []

    @property
    def base(self) -> Optional[Parent]:
        base = self.config.base_model
        return next((p for p in self.parents if base is not None and p.ref == base.model.path), None)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()) if not str(x).startswith("function-"))
        return f"{loc}: {err.get('msg', '')}".strip(": ")
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_recipe(path: Path) -> Recipe:
    """Parse and validate the recipe itself (method, base model, t range); no model is touched."""
    from mergekit import merge_methods
    from mergekit.config import MergeConfiguration

    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe {path}: file not found")
    text = read_text(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"recipe {path}: not valid YAML: {_one_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise UserError(f"recipe {path}: expected a mapping with merge_method, models/slices, parameters")
    if "merge_method" not in raw:
        raise UserError(f"recipe {path}: merge_method: missing")
    try:
        method = merge_methods.get(str(raw["merge_method"]))
    except RuntimeError:
        from mergekit.merge_methods.registry import registered_methods

        known = ", ".join(sorted(m.spec.name for m in registered_methods()))
        raise UserError(f"recipe {path}: merge_method: unknown method {raw['merge_method']!r} (mergekit knows: {known})") from None
    try:
        config = MergeConfiguration.model_validate(raw)
    except (ValidationError, RuntimeError, ValueError) as exc:
        raise UserError(f"recipe {path}: {_one_line(exc)}") from exc

    for ref in config.referenced_models():
        if ref.lora is not None:
            raise UserError(f"recipe {path}: model {ref}: LoRA references are not supported")
    inputs = _input_models(config)
    try:
        method.validate_inputs(inputs, config.base_model, group_name="models")
    except ValueError as exc:
        if config.base_model is None and method.spec.contract.base.value == "required":
            raise UserError(f"recipe {path}: base_model: missing ({method.spec.name} needs a base model)") from exc
        raise UserError(f"recipe {path}: models: {_one_line(exc)}") from exc
    for spec in method.spec.parameters:  # every value through mergekit's own parameter validation
        for where, setting in _raw_settings(raw, spec.name):
            problem = _mergekit_refuses(spec, setting)
            if problem:
                raise UserError(f"recipe {path}: {where}: {spec.name} = {json.dumps(setting, default=str)}: {problem}")
    if "t" in {p.name for p in method.spec.parameters}:
        for where, value in _settings(raw, "t"):
            if not 0.0 <= value <= 1.0:
                raise UserError(f"recipe {path}: {where}: t = {value:g} is outside [0, 1]")
    return Recipe(path=path, text=text, config=config)


def _input_models(config: Any) -> list:
    if config.models:
        refs = [m.model for m in config.models]
        if config.base_model is not None and config.base_model not in refs:
            refs.append(config.base_model)
        return refs
    if config.slices:
        return [s.model for s in config.slices[0].sources]
    return config.referenced_models()


def _settings(node: Any, name: str, where: str = "") -> list[tuple[str, float]]:
    """Every numeric value given to parameter `name` anywhere in the raw recipe, with its key path."""
    found: list[tuple[str, float]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == name and where.endswith("parameters"):
                found += [(here, v) for v in _numbers(value)]
            else:
                found += _settings(value, name, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _settings(item, name, f"{where}[{i}]")
    return found


def _raw_settings(node: Any, name: str, where: str = "") -> list[tuple[str, Any]]:
    """Every setting of parameter `name` (as written) under a `parameters` mapping of the recipe."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == name and where.endswith("parameters"):
                found.append((here, value))
            else:
                found += _raw_settings(value, name, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _raw_settings(item, name, f"{where}[{i}]")
    return found


def _mergekit_refuses(spec: Any, setting: Any) -> Optional[str]:
    """Why mergekit would refuse this setting when it merges (its `evaluate_setting` with the
    parameter's own validator, over every element, condition and gradient point), or None."""
    from mergekit.config import evaluate_setting

    def one(value: Any) -> Optional[str]:
        if isinstance(value, dict) and "value" in value:  # a conditional parameter {filter, value}
            return one(value["value"])
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            return next((p for v in value if (p := one(v))), None)
        try:
            for t in (0.0, 0.5, 1.0):  # a gradient is interpolated; each element validated first
                evaluate_setting("", value, t, validate=spec.validate)
        except (ValidationError, ValueError, TypeError, RuntimeError) as exc:
            return f"mergekit refuses it ({_one_line(exc)})"
        return None

    return one(setting)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, str):
        try:
            return [float(value)]
        except ValueError:
            return []
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    if isinstance(value, dict):
        return _numbers(value.get("value"))
    return []


# --- model references -> local folders ------------------------------------------------------------


def hub_snapshot(repo_id: str, revision: Optional[str]) -> Path:
    """The HF-cache snapshot folder of `repo_id` at `revision` (downloads only when online)."""
    offline = env_offline()
    try:
        return snapshot(repo_id, revision, local_only=offline, allow_patterns=MODEL_FILES)
    except Exception as exc:  # not cached offline, unknown repo, auth: all user-fixable
        rev = f"@{revision}" if revision else ""
        how = "not in the Hugging Face cache and the run is offline" if offline else _one_line(exc)
        raise UserError(f"model {repo_id}{rev}: no such folder, and {how}; map it to a folder with local_models") from exc


def resolve_parents(recipe: Recipe, local_models: dict[str, Path], revisions: dict[str, str]) -> None:
    """Fill `recipe.parents` and `recipe.local_config` (every reference -> its local folder)."""
    from mergekit.common import ModelPath, ModelReference

    by_ref: dict[str, Parent] = {}
    for ref in _in_recipe_order(recipe.config):
        name, pinned = ref.model.path, ref.model.revision
        if name in by_ref:
            continue
        wanted = revisions.get(name)
        if pinned and wanted and pinned != wanted:
            raise UserError(f"recipe {recipe.path}: model {name}: recipe pins @{pinned} but the experiment pins {wanted}")
        revision = pinned or wanted
        if name in local_models:
            folder, source, sha = Path(local_models[name]).expanduser().resolve(), "mapped", None
            if not folder.is_dir():
                raise UserError(f"local_models.{name}: folder {folder} does not exist")
        elif Path(name).expanduser().is_dir():
            folder, source, sha = Path(name).expanduser().resolve(), "local", None
        elif HUB_ID.match(name) and not name.startswith("."):
            folder, source = hub_snapshot(name, revision), "hub"
            sha = folder.name
        else:
            raise UserError(f"recipe {recipe.path}: model {name}: parent folder does not exist")
        by_ref[name] = Parent(ref=name, path=folder, source=source, revision=sha, **_read_config(folder, name))

    recipe.parents = list(by_ref.values())

    def local(ref: ModelReference) -> ModelReference:
        return ModelReference(model=ModelPath(path=str(by_ref[ref.model.path].path)), override_architecture=ref.override_architecture)

    recipe.local_config = _map_refs(recipe.config, ModelReference, local)


def _in_recipe_order(config: Any) -> list:
    """Referenced models: base first, then as listed (mergekit's own list is a set)."""
    listed = [config.base_model] if config.base_model is not None else []
    listed += [m.model for m in config.models or []]
    listed += [src.model for s in config.slices or [] for src in s.sources]
    rest = sorted((r for r in config.referenced_models() if r not in listed), key=str)
    return list(dict.fromkeys(listed + rest))


def _read_config(folder: Path, name: str) -> dict[str, Any]:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise UserError(f"model {name}: {folder} has no config.json (not a transformers model folder)")
    if not (folder / SINGLE_FILE).is_file() and not (folder / INDEX_FILE).is_file():
        raise UserError(f"model {name}: {folder} has no {SINGLE_FILE} or {INDEX_FILE}")
    cfg = json.loads(cfg_file.read_text())
    arch = (cfg.get("architectures") or [cfg.get("model_type", "?")])[0]
    layers = cfg.get("num_hidden_layers", (cfg.get("text_config") or {}).get("num_hidden_layers"))
    return {"architecture": arch, "num_layers": layers}


def _map_refs(obj: Any, cls: type, fn: Callable[[Any], Any]) -> Any:
    """A copy of a pydantic tree with every `cls` instance replaced by fn(instance)."""
    if isinstance(obj, cls):
        return fn(obj)
    if isinstance(obj, BaseModel):
        update = {k: _map_refs(getattr(obj, k), cls, fn) for k in type(obj).model_fields}
        return obj.model_copy(update=update)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_refs(x, cls, fn) for x in obj)
    if isinstance(obj, dict):
        return {_map_refs(k, cls, fn): _map_refs(v, cls, fn) for k, v in obj.items()}
    return obj


# --- preflight on headers --------------------------------------------------------------------------


def weight_headers(folder: Path, what: str) -> dict[str, dict]:
    """All tensors of a model folder (sharded or not): name -> {dtype, shape}, from the headers
    `models.model_files` reads (and checks) for `models.check` too."""
    out: dict[str, dict] = {}
    for header in folder_headers(folder, what).values():
        out.update({name: {"dtype": t.dtype, "shape": list(t.shape)} for name, t in header.items()})
    return out


def check_parents(recipe: Recipe) -> dict[str, dict[str, dict]]:
    """Same architecture, same layer count, same tensor names and shapes, compatible tokenizers."""
    parents = recipe.parents
    first = recipe.base or parents[0]
    for p in parents:
        if p.architecture != first.architecture:
            raise UserError(f"architecture mismatch: {first.ref} is {first.architecture} but {p.ref} is {p.architecture}")
    headers = {p.ref: weight_headers(p.path, f"model {p.ref}") for p in parents}
    vocab_ok = recipe.config.tokenizer_source is not None or recipe.config.tokenizer is not None
    if recipe.config.models:
        for p in parents:
            if p.num_layers != first.num_layers:
                raise UserError(f"layer count mismatch: {first.ref} has {first.num_layers} layers but {p.ref} has {p.num_layers}")
        ref_h = headers[first.ref]
        for p in parents:
            h = headers[p.ref]
            for name in sorted(set(ref_h) ^ set(h)):
                has, lacks = (first.ref, p.ref) if name in ref_h else (p.ref, first.ref)
                raise UserError(f"tensor {name}: present in {has} but missing in {lacks}")
            for name in ref_h:
                a, b = ref_h[name]["shape"], h[name]["shape"]
                vocab_rows = vocab_ok and ("embed_tokens" in name or name == "lm_head.weight")
                if a != b and not (vocab_rows and a[1:] == b[1:]):
                    raise UserError(f"shape mismatch: tensor {name} is {a} in {first.ref} but {b} in {p.ref}")
    if not vocab_ok:
        _check_tokenizers(first, parents)
    return headers


def _check_tokenizers(first: Parent, parents: list[Parent]) -> None:
    """Same vocabulary (token -> id) everywhere, unless the recipe says where the tokenizer comes from."""
    def digest(p: Parent) -> Optional[tuple[str, str]]:
        for name in TOKENIZER_FILES:
            if (p.path / name).is_file():
                return name, file_sha256(p.path / name)
        return None

    ref_digest = digest(first)
    for p in parents:
        d = digest(p)
        if d == ref_digest or d is None or ref_digest is None:
            continue
        if d[0] != ref_digest[0] or d[0] != "tokenizer.json":
            raise UserError(f"tokenizer mismatch: {first.ref} and {p.ref} ship different tokenizers; set tokenizer_source in the recipe")
        a, b = (tokenizer_vocab(json.loads((q.path / "tokenizer.json").read_text(encoding="utf-8"))) for q in (first, p))
        for tok in sorted(set(a) | set(b), key=lambda t: (a.get(t, b.get(t)), t)):
            if a.get(tok) != b.get(tok):
                raise UserError(
                    f"tokenizer mismatch: token {tok!r} has id {a.get(tok)} in {first.ref} but {b.get(tok)} in {p.ref}; "
                    "set tokenizer_source in the recipe"
                )

