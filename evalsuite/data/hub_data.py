"""Hub datasets read exactly at their commit: the commit each benchmark's dataset repo is read at
(`hub_commits`, the `hub:REPO@COMMIT` data identity) and the snapshot of that commit in the HF hub
cache as the folder lm-eval reads (as a mirror's folder), online and offline alike. `datasets`
offline never reads hub-cache snapshots itself and, given a revision, may serve another cached
commit's rows ("Found the latest cached dataset configuration"); a local folder named by its commit
cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from huggingface_hub import HfApi

from evalsuite.data.tasks import HUB_DATASETS, repo_problems
from evalsuite.errors import UserError
from evalsuite.hub import cached_commits, cached_snapshot, hub_error, snapshot

def hub_commits(benchmarks: Iterable[str], pinned: dict[str, str], offline: bool) -> dict[str, str]:
    """Benchmark -> the commit sha of its hub dataset repo that lm-eval will read: the pinned one
    (`data.revisions`), else what the repo's main branch points at now (online) or what the Hugging
    Face cache holds (offline). A dataset revised on the hub thus gets a new data identity."""
    out = {}
    for bench in benchmarks:
        if bench in pinned:
            out[bench] = pinned[bench]
            continue
        repo = HUB_DATASETS[bench]
        if not offline:
            try:
                out[bench] = HfApi().dataset_info(repo).sha
            except Exception as exc:  # network, gated (GPQA), not found: all user-fixable
                raise UserError(f"dataset {repo} ({bench}): cannot resolve its commit on the hub: {str(exc).splitlines()[0]}") from exc
            continue
        snap = cached_snapshot(repo, repo_type="dataset")  # the cache's refs/main -> snapshots/<sha>
        if snap is None:
            raise UserError(
                f"dataset {repo} ({bench}): cannot tell its commit offline (not in the Hugging Face hub cache); "
                f"pin it with data: {{revisions: {{{bench}: SHA}}}}")
        out[bench] = snap.name
    return out


def hub_identity(bench: str, sha: str) -> str:
    return f"hub:{HUB_DATASETS[bench]}@{sha}"


def _pin_hint(bench: str, commits: list[str]) -> str:
    return "; ".join(f"data: {{revisions: {{{bench}: {c}}}}}" for c in commits)


def hub_snapshot(bench: str, pinned: Optional[str], offline: bool) -> Path:
    """The hub-cache snapshot folder (named by its commit) of benchmark `bench`'s dataset at the
    commit to read, downloaded first when online and not cached:

    - pinned: that commit (offline: it must be in the cache);
    - not pinned, online: the commit the repo's `main` points at now;
    - not pinned, offline: the one commit the cache holds (with or without `refs/main`); with
      several the run stops, naming the pins to choose from.

    Every failure is a `UserError` of one line with its fix, raised before any model loads."""
    repo = HUB_DATASETS[bench]
    what = f"dataset {repo} ({bench})"
    if pinned:
        found = cached_snapshot(repo, pinned, "dataset")
        if found is not None:
            return found
        if offline:
            raise UserError(
                f"{what}: commit {pinned} is not in the Hugging Face hub cache and the run is offline: "
                f"run once online or `hf download --repo-type dataset {repo} --revision {pinned}`")
        try:
            return snapshot(repo, pinned, repo_type="dataset", local_only=False)
        except Exception as exc:  # gated, not found, network: all user-fixable
            raise hub_error(exc, what, repo, "dataset", pinned) from exc
    if offline:
        commits = cached_commits(repo, "dataset")
        if not commits:
            raise UserError(
                f"{what}: not in the Hugging Face hub cache and the run is offline: run once online, "
                f"or `hf download --repo-type dataset {repo}`, or use a mirror (data: {{source: mirror}})")
        if len(commits) > 1:
            raise UserError(
                f"{what}: the Hugging Face hub cache holds {len(commits)} commits of it; pin the one to read "
                f"(newest first): {_pin_hint(bench, commits)}")
        found = cached_snapshot(repo, commits[0], "dataset")
        if found is None:
            raise UserError(f"{what}: the cached snapshot {commits[0]} is incomplete: run once online or pin a complete commit")
        return found
    try:
        sha = HfApi().dataset_info(repo, timeout=30).sha
        return cached_snapshot(repo, sha, "dataset") or snapshot(repo, sha, repo_type="dataset", local_only=False)
    except UserError:
        raise
    except Exception as exc:
        raise hub_error(exc, what, repo, "dataset", None) from exc


def hub_snapshots(benchmarks: Iterable[str], pinned: dict[str, str], offline: bool) -> dict[str, Path]:
    """Benchmark -> its dataset's snapshot folder at the commit to read (`hub_snapshot`), each
    checked as lm-eval will read it (`repo_problems`); the first problem stops the run."""
    out: dict[str, Path] = {}
    for bench in benchmarks:
        folder = hub_snapshot(bench, pinned.get(bench), offline)
        problems = repo_problems(folder, bench)
        if problems:
            more = f" (+{len(problems) - 1} more; run `evalsuite doctor`)" if len(problems) > 1 else ""
            raise UserError(f"dataset {HUB_DATASETS[bench]}@{folder.name}: {problems[0]}{more}")
        out[bench] = folder
    return out


def identity_folders(data_ids: dict[str, str]) -> dict[str, Path]:
    """Benchmark -> the hub-cache snapshot folder its data identity `hub:REPO@COMMIT` names (the
    cache only; `hub_snapshots` put it there)."""
    out = {}
    for bench, ident in data_ids.items():
        repo, sha = ident.removeprefix("hub:").rsplit("@", 1)
        folder = cached_snapshot(repo, sha, "dataset")
        if folder is None:
            raise UserError(f"dataset {repo} ({bench}): commit {sha} left the Hugging Face hub cache during the run")
        out[bench] = folder
    return out