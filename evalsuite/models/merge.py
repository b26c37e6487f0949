"""The merge stage: a verbatim mergekit recipe -> a merged model folder, built at most once.

mergekit 0.1.5 does the merge (`run_merge`, streaming one tensor at a time). This module adds what
evalsuite needs around it: a preflight that fails fast with one line, the per-tensor plan
(`merge_plan.json`), a provenance fingerprint (`evalsuite_merge.json`), reuse of a verified folder,
and an atomic build (temp folder beside the output, renamed into place when complete).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from evalsuite.faults import checkpoint
from evalsuite.errors import UserError
from evalsuite.models.file_cache import cached_sha256
from evalsuite.models.load import folder_identity
from evalsuite.models.merge_plan import MergePlan, build_plan, mergekit_dtype_notice_dropped, release_loaders
from evalsuite.models.merge_recipe import Recipe, check_parents, load_recipe, resolve_parents
from evalsuite.fsio import disk_full, file_sha256, normal_modes, swap_folder, sweep_stale, temp_prefix

MARKER = "evalsuite_merge.json"
PLAN_FILE = "merge_plan.json"
SCHEMA_VERSION = 1
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class MergeResult(BaseModel):
    path: Path
    fingerprint: str
    reused: bool
    plan: MergePlan


def parse_size(text: str | int) -> int:
    """'5GB', '500MB', '2GiB' or a plain byte count -> bytes (the largest output shard)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"shard size {text!r}: expected bytes like 5GB, 500MB or 2GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower() if m.group(2) else None])


def _prepare(recipe_path: Path, local_models: dict[str, Path], revisions: dict[str, str]) -> tuple[Recipe, MergePlan]:
    recipe = load_recipe(recipe_path)
    resolve_parents(recipe, {k: Path(v) for k, v in local_models.items()}, dict(revisions))
    headers = check_parents(recipe)
    return recipe, build_plan(recipe, headers)


def merge_fingerprint(recipe: Path, *, local_models: dict[str, Path] = {}, revisions: dict[str, str] = {}) -> str:
    """The fingerprint `build_merge` would give the merge, without merging (headers and parent
    identities only): what a merged candidate's job ids depend on."""
    return _fingerprint(fingerprint_inputs(_prepare(Path(recipe), local_models, revisions)[0]))


def plan_merge(recipe: Path, *, local_models: dict[str, Path] = {}, revisions: dict[str, str] = {}) -> MergePlan:
    """Preflight the recipe and its parents and return the per-tensor plan. Reads headers only."""
    return _prepare(Path(recipe), local_models, revisions)[1]


def fingerprint_inputs(recipe: Recipe) -> dict[str, Any]:
    """What the merged weights depend on: normalized recipe, parent identities, engine, dtypes."""
    from importlib.metadata import version

    import torch

    parents = {}
    for p in recipe.parents:
        parents[p.ref] = f"hub:{p.ref}@{p.revision}" if p.source == "hub" else folder_identity(p.path)
    return {
        "recipe": recipe.config.model_dump(mode="json", exclude_defaults=True),
        "parents": parents,
        "mergekit": version("mergekit"),
        "torch": torch.__version__.split("+")[0],
        "dtype": recipe.config.dtype,
        "out_dtype": recipe.config.out_dtype,
        # a GPU merge may round differently from a CPU one: its own fingerprint (CPU ones unchanged)
        **({"merge_device": "cuda"} if merge_device() == "cuda" else {}),
    }


def merge_device() -> str:
    """Where mergekit computes the merge: the GPU when torch sees one (mergekit's `cuda` option,
    minutes instead of the CPU's much longer for a 9B SLERP), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def merge_options(max_shard: int, progress: bool):
    """mergekit's options for evalsuite's merges."""
    from mergekit.options import MergeOptions

    return MergeOptions(out_shard_size=max_shard, quiet=not progress, copy_tokenizer=True, write_model_card=True,
                        cuda=merge_device() == "cuda")


def _fingerprint(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _output_files(folder: Path) -> dict[str, dict[str, Any]]:
    """size + sha256 of every file the merge wrote (the marker itself excluded)."""
    return {
        p.name: {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MARKER
    }


def _trusted_sha256(files: list[Path]) -> dict[Path, str]:
    """The files' sha256, from evalsuite's hash cache while size, mtime and ctime are unchanged."""
    return cached_sha256(files)


def verify_output(folder: Path, fingerprint: str) -> Optional[str]:
    """None when `folder` is a complete merge with this fingerprint; else why it is not."""
    marker = folder / MARKER
    if not marker.is_file():
        return f"no {MARKER}"
    try:
        record = json.loads(marker.read_text())
        files = record["files"]
    except (ValueError, KeyError, TypeError):
        return f"unreadable {MARKER}"
    if record.get("fingerprint") != fingerprint:
        return "fingerprint changed"
    for name, want in files.items():
        f = folder / name
        if not f.is_file():
            return f"{name} missing"
        if f.stat().st_size != want["size"]:
            return f"{name} has the wrong size"
    hashes = _trusted_sha256([folder / name for name in files])  # read once, then size+mtime+ctime
    for name, want in files.items():
        if hashes[folder / name] != want["sha256"]:
            return f"{name} hash mismatch"
    return None


def _is_replaceable(folder: Path) -> bool:
    """An existing OUT_DIR we may overwrite: empty, or something a merge wrote."""
    names = {p.name for p in folder.iterdir()}
    return not names or bool(names & {MARKER, PLAN_FILE, "mergekit_config.yml"})


def build_merge(
    recipe: Path,
    out_dir: Path,
    *,
    local_models: dict[str, Path] = {},
    revisions: dict[str, str] = {},
    force: bool = False,
    shard_size: str = "5GB",
    progress: bool = True,
    log=None,
) -> MergeResult:
    """Merge `recipe` into `out_dir` with mergekit, or reuse `out_dir` if it already holds it.

    Preflight failures raise `UserError` before anything is written. The folder appears only
    when complete; a corrupted or stale one is rebuilt; `force` rebuilds unconditionally.
    """
    say = log or (lambda msg: None)
    out_dir = Path(out_dir).absolute()
    max_shard = parse_size(shard_size)
    rec, plan = _prepare(Path(recipe), local_models, revisions)
    inputs = None
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserError(f"output {out_dir}: exists and is not a folder")
        if not force and (out_dir / MARKER).is_file():
            inputs = fingerprint_inputs(rec)
            why = verify_output(out_dir, _fingerprint(inputs))
            if why is None:
                return MergeResult(path=out_dir, fingerprint=_fingerprint(inputs), reused=True, plan=plan)
            say(f"rebuilding {out_dir}: {why}")
        elif not force and not _is_replaceable(out_dir):
            raise UserError(f"output {out_dir}: folder exists and is not a merge output; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    sweep_stale(out_dir.parent, only=out_dir.name)  # OUT's parent may be the user's: our temps only
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out_dir.name), dir=out_dir.parent))
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        # Nothing to reuse: hash the parents (first run of a local folder) while mergekit works.
        pending = pool.submit(fingerprint_inputs, rec) if inputs is None else None
        _run_mergekit(rec, tmp, max_shard, progress)
        checkpoint("merge.shards")
        inputs = pending.result() if pending is not None else inputs
        fingerprint = _fingerprint(inputs)
        (tmp / PLAN_FILE).write_text(plan.model_dump_json(indent=1) + "\n")
        normal_modes(tmp)
        record = {
            "schema_version": SCHEMA_VERSION,
            "fingerprint": fingerprint,
            "inputs": inputs,
            "parents": [p.model_dump(mode="json") for p in rec.parents],
            "shard_size": max_shard,
            "files": _output_files(tmp),
        }
        (tmp / MARKER).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        swap_folder(tmp, out_dir)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(exc):  # one OSError naming OUT_DIR, whoever raised it (safetensors does not)
            code = exc.errno if isinstance(exc, OSError) else errno.ENOSPC
            raise OSError(code, os.strerror(code), str(out_dir)) from exc
        raise
    finally:
        pool.shutdown(wait=True)
    return MergeResult(path=out_dir, fingerprint=fingerprint, reused=False, plan=plan)


def _run_mergekit(rec: Recipe, out: Path, max_shard: int, progress: bool) -> None:
    from mergekit.merge import run_merge

    options = merge_options(max_shard, progress)
    try:
        with mergekit_dtype_notice_dropped():
            run_merge(rec.local_config.model_copy(deep=True), str(out), options=options, config_source=rec.text)
    finally:
        release_loaders(rec)
    # mergekit writes the recipe only as mergekit_config.yml (verbatim text, since we pass it).
    if not (out / "mergekit_config.yml").is_file():
        (out / "mergekit_config.yml").write_text(rec.text)
