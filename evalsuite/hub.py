"""The Hugging Face hub in one place: what a repo id looks like, whether the run is offline, and a
repo's snapshot in the local HF cache (through `huggingface_hub.snapshot_download`; evalsuite
never reads the cache layout itself).

Light on purpose: `huggingface_hub` is imported only inside the functions that call it, so the
config can take `HUB_ID` from here without loading the hub client.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Optional

from evalsuite.errors import UserError

_REPO = r"[A-Za-z0-9][\w.\-]*/[\w.\-]+"
HUB_ID = re.compile(rf"^{_REPO}\Z")  # \Z, not $: "$" also matches before a final newline
# `org/name[@revision]`, as `evalsuite import` and `published:` sources take it
HUB_ID_AT = re.compile(rf"^(?P<repo>{_REPO})(?:@(?P<rev>[\w./-]+))?$")

RepoType = Literal["model", "dataset"]
# What a merge and lm-eval read of a model repo (weights as safetensors, configs, tokenizer, chat
# template): a parent is downloaded with these patterns, not a repo's extra .bin/GGUF/ONNX copies.
MODEL_FILES = ["*.safetensors", "*.json", "tokenizer.model", "*.tiktoken", "*.txt", "*.jinja"]
_TRUE = {"1", "true", "yes", "on"}


def env_true(*names: str) -> bool:
    """Is any of these environment variables set to 1/true/yes/on (any case)?"""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in names)


def env_offline() -> bool:
    """`HF_HUB_OFFLINE` as the environment holds it now."""
    return env_true("HF_HUB_OFFLINE")


def snapshot(repo_id: str, revision: Optional[str] = None, *, repo_type: RepoType = "model",
             local_only: bool = True, allow_patterns: Optional[list[str]] = None) -> Path:
    """The HF-cache snapshot folder of a repo at `revision` (downloaded unless `local_only`); the
    hub client's own errors pass through."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_files_only=local_only,
                                  allow_patterns=allow_patterns))


def cached_snapshot(repo_id: str, revision: Optional[str] = None, repo_type: RepoType = "model") -> Optional[Path]:
    """The snapshot folder the local HF cache holds (its folder name is the commit sha), or None."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot(repo_id, revision, repo_type=repo_type, local_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def model_snapshot(repo_id: str, revision: Optional[str], offline: bool) -> tuple[Optional[Path], Optional[str]]:
    """(snapshot folder in the HF cache or None, commit sha or None) of a model repo: the cache
    first; online, the hub names the commit (lm-eval downloads the files)."""
    path = cached_snapshot(repo_id, revision)
    if path is not None:
        return path, path.name
    if offline:
        rev = f"@{revision}" if revision else ""
        raise UserError(
            f"model {repo_id}{rev} is not in the Hugging Face cache ({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}) "
            "and the run is offline: download it first or map it with local_models:"
        )
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(repo_id, revision=revision)
    except Exception as exc:  # network, auth, not found: all user-fixable
        raise UserError(f"model {repo_id}: cannot resolve on the hub: {str(exc).splitlines()[0]}") from exc
    return None, info.sha


def cached_commits(repo_id: str, repo_type: RepoType = "model") -> list[str]:
    """The commits of a repo whose snapshots the local HF hub cache holds (huggingface_hub's
    `scan_cache_dir`), newest first; refs such as `main` play no part: a repo fetched by commit
    has none."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:  # the cache folder named now: scan_cache_dir's default is the one its module saw when imported
        info = scan_cache_dir(constants.HF_HUB_CACHE)
    except (CacheNotFound, OSError):
        return []
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == repo_type:
            revs = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
            return [r.commit_hash for r in revs]
    return []


def offline_snapshot(repo_id: str, revision: Optional[str], repo_type: RepoType = "model") -> Optional[Path]:
    """Offline: the snapshot the HF cache holds at `revision`; unpinned, the one the cache names
    `main`, else its only commit (a repo fetched by commit has no `refs/main`). None when there is
    none; a UserError naming the pins when several commits are cached and none is named `main`."""
    found = cached_snapshot(repo_id, revision, repo_type)
    if found is not None or revision:
        return found
    commits = cached_commits(repo_id, repo_type)
    if len(commits) > 1:
        raise UserError(f"{repo_id}: the Hugging Face hub cache holds {len(commits)} commits of it; name the one to "
                        f"read (newest first): {', '.join(f'{repo_id}@{c}' for c in commits)}")
    return cached_snapshot(repo_id, commits[0], repo_type) if commits else None


def hub_problem(exc: BaseException, repo_id: str, repo_type: RepoType, revision: Optional[str]) -> tuple[str, str]:
    """(what is wrong, its fix) for a hub client error: gated, not found, no such commit, unreachable."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    page = f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
    if isinstance(exc, GatedRepoError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        why = "no Hugging Face token is set" if status == 401 else "this token has not been granted access"
        return f"{repo_id} is gated and {why}", f"accept its terms at {page} and log in (`hf auth login` or HF_TOKEN)"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r} on the hub", "fix the pin"
    if isinstance(exc, RepositoryNotFoundError):
        return f"{repo_id} not found on the hub (or private)", "check the name and your token"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{repo_id}: cannot reach the hub ({first})", "check the network or HF_ENDPOINT, or run offline from the cache"


def hub_error(exc: BaseException, what: str, repo_id: str, repo_type: RepoType, revision: Optional[str]) -> UserError:
    """A hub client error as one line with its fix (`hub_problem`)."""
    detail, fix = hub_problem(exc, repo_id, repo_type, revision)
    return UserError(f"{what}: {detail}: {fix}")
