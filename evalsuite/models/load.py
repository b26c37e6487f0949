"""Turn a `ModelSpec` into a `ModelRef`: what lm-eval is given (`pretrained=`, `revision=`) plus a
content identity. Nothing downstream knows how a model was obtained, only its identity.

- hub id: resolved through the Hugging Face cache (or `local_models` mapping); the revision is
  pinned to a commit sha; identity `hub:ORG/NAME@SHA`.
- local folder: identity `sha256:...` over the files that change numbers (weights, config,
  tokenizer); hashes are cached per (path, size, mtime) so a 9B folder is hashed once.
- fixture: a tiny model evalsuite builds itself (offline demo, tests).
- recipe: built by the merge stage; identity `merge:<fingerprint>`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

from evalsuite.config import Experiment, ModelSpec
from evalsuite.errors import UserError
from evalsuite.fixtures.tiny import build_demo_models
from evalsuite.hub import env_offline, model_snapshot  # noqa: F401  (env_offline: the runner takes it from here)
from evalsuite.models.check import check_model_folder
from evalsuite.models.file_cache import file_key, read_cache, write_cache
from evalsuite.fsio import file_sha256
from evalsuite.schema import ModelRef

IGNORED_FILES = {"README.md", ".gitattributes", "merge_plan.json", "evalsuite_merge.json", "fixture.json"}


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype != "auto":
        return dtype
    return "bfloat16" if device.startswith("cuda") else "float32"


def check_weights(folder: Path, allow_pickle: bool, what: str) -> None:
    """Only safetensors load by default; pickle checkpoints (*.bin, *.pt) need allow_pickle.
    Safetensors folders also pass `models.check` (missing shards, damaged headers, NaN/inf,
    integer weights, mismatched vocab), so a broken folder fails here in one line, not in a job."""
    names = {p.name for p in folder.iterdir()}
    if not (folder / "config.json").is_file():
        raise UserError(f"{what}: {folder} has no config.json (not a transformers model folder)")
    if any(n.endswith(".safetensors") for n in names):
        check_model_folder(folder, what)
        return
    if any(n.endswith((".bin", ".pt", ".pth")) for n in names):
        if allow_pickle:
            return
        raise UserError(f"{what}: {folder} has only pickle weights (*.bin); set allow_pickle: true to load them")
    raise UserError(f"{what}: {folder} has no *.safetensors weight files")


CACHE_FILE = "content_hashes.json"


def folder_identity(folder: Path) -> str:
    """sha256 over (relative name, file hash) of every file that can change a number."""
    folder = folder.resolve()
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.name not in IGNORED_FILES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        raise UserError(f"{folder}: no model files to identify")
    cache = read_cache(CACHE_FILE)
    outer = hashlib.sha256()
    dirty = False
    for p in files:
        key = file_key(p)
        digest = cache.get(key)
        if digest is None:
            digest = cache[key] = file_sha256(p)
            dirty = True
        outer.update(f"{p.relative_to(folder).as_posix()}\0{digest}\n".encode())
    if dirty:
        write_cache(CACHE_FILE, cache)
    return "sha256:" + outer.hexdigest()


def resolve_model(spec: ModelSpec, exp: Experiment, role: str, *, merged: Optional[tuple[Path, str]] = None) -> ModelRef:
    """Resolve one model of the experiment. `merged` = (folder, fingerprint) for a recipe candidate."""
    device = resolve_device(exp.device)
    common = dict(
        name=spec.display_name,
        role=role,
        dtype=resolve_dtype(spec.dtype, device),
        device=device,
        chat_template=spec.chat_template,
        multiturn=spec.multiturn,
        trust_remote_code=spec.trust_remote_code,
    )
    what = f"{role} {spec.display_name}"
    if spec.published is not None:  # identity set when the details are imported (evalsuite.published.importer)
        return ModelRef(pretrained=spec.published, revision=spec.revision, identity=f"published:{spec.published}",
                        published=spec.published, **common)
    if spec.recipe is not None:
        if merged is None:
            raise UserError(f"{what}: recipe {spec.recipe} has not been merged")
        folder, fingerprint = merged
        return ModelRef(pretrained=str(folder), identity=f"merge:{fingerprint}", local_path=folder, **common)
    if spec.fixture is not None:
        folder = build_demo_models(fixtures_root(exp))[spec.fixture]
        return ModelRef(pretrained=str(folder), identity=folder_identity(folder), local_path=folder, **common)
    if spec.path is not None or (spec.hub and spec.hub in exp.local_models):
        folder = Path(spec.path if spec.path is not None else exp.local_models[spec.hub]).resolve()
        check_weights(folder, spec.allow_pickle, what)
        return ModelRef(pretrained=str(folder), identity=folder_identity(folder), local_path=folder, **common)
    snapshot, sha = model_snapshot(spec.hub, spec.revision, offline=exp.offline or env_offline())
    if snapshot is not None:
        check_weights(snapshot, spec.allow_pickle, what)
    return ModelRef(pretrained=spec.hub, revision=sha, identity=f"hub:{spec.hub}@{sha}", local_path=snapshot, **common)


def fixtures_root(exp: Experiment) -> Path:
    """Tiny fixture models live in a cache beside the results folder (rebuilt if missing)."""
    return Path(exp.output.results).resolve().parent / ".cache" / "evalsuite" / "fixtures"

