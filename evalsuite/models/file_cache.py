"""evalsuite's per-file caches (content hashes of model files, the NaN/inf verdicts of
`models.check`): small JSON maps under `$EVALSUITE_CACHE` (default `~/.cache/evalsuite`), keyed
by path, size and mtime, so a changed file is looked at again. Written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evalsuite import fsio  # fsio.file_sha256 looked up per call (tests count the reads through it)


def cache_dir() -> Path:
    return Path(os.environ.get("EVALSUITE_CACHE", Path.home() / ".cache" / "evalsuite"))


def file_key(path: Path, prefix: str = "") -> str:
    st = path.stat()
    return f"{prefix}{path}:{st.st_size}:{st.st_mtime_ns}"


def read_cache(name: str) -> dict:
    """The cache file `name` as a dict ({} when absent, unreadable or not a JSON object)."""
    try:
        cache = json.loads((cache_dir() / name).read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def write_cache(name: str, cache: dict) -> None:
    path = cache_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fsio.atomic_write_text(path, json.dumps(cache, indent=0, sort_keys=True))


def cached_sha256(paths: list[Path], name: str = "merged_hashes.json") -> dict[Path, str]:
    """sha256 of each file, hashed once and then trusted while its size, mtime and ctime stay the
    same (any write moves the ctime; `os.utime` cannot set it back). A merged model's shards are
    checked this way on every `run` instead of re-reading ~18.5 GB (docs/performance.md)."""
    cache = read_cache(name)
    out, dirty = {}, False
    for p in paths:
        key = f"{file_key(p)}:{p.stat().st_ctime_ns}"
        digest = cache.get(key)
        if digest is None:
            digest = cache[key] = fsio.file_sha256(p)
            dirty = True
        out[p] = digest
    if dirty:
        write_cache(name, cache)
    return out
