"""The source of an import of published details: one run of a details repo (hub) or folder,
selected and validated whole before anything is re-scored or written.

- `select_run`: the newest date id (or `run`); every results file lm-eval's, only leaf tasks of
  the suite, one samples file per task, each benchmark complete;
- `validate`: every line of every samples file a JSON record of lm-eval's shape, doc_ids exactly
  0..n-1 per filter (n = `n-samples.<task>.effective`);
- `files_identity`: `sha256:` of the selected files; `fetch_hub`: only the chosen run's files are
  downloaded (huggingface_hub), offline from the local hub cache.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from evalsuite.errors import UserError
from evalsuite.fsio import file_sha256
from evalsuite.hub import HUB_ID_AT, env_offline, offline_snapshot, snapshot
from evalsuite.lm_eval_api import PER_TASK_KEYS, RESULTS_NAME, SAMPLES_NAME
from evalsuite.results.files import read_results_file
from evalsuite.suite import Benchmark, Suite
from evalsuite.textio import NotUtf8, loads, read_json

# lm-eval's leaderboard group names (older layouts write them as plain `results` entries)
LM_EVAL_GROUPS = {"leaderboard", "leaderboard_bbh", "leaderboard_gpqa", "leaderboard_math_hard", "leaderboard_musr",
                  "leaderboard_instruction_following"}


@dataclass
class Selection:
    root: Path
    run: str
    results_files: list[Path]
    samples: dict[str, Path]  # leaf task -> samples file
    raw: dict  # merged results JSON of the run
    task_file: dict[str, Path]  # leaf task -> results file that holds it
    benchmarks: list[Benchmark]
    file_sha: dict[Path, str] = field(default_factory=dict)


def runs_in(names: list[str]) -> list[str]:
    return sorted({m["date"] for n in names if (m := RESULTS_NAME.match(Path(n).name))})


def select_run(folder: Path, run: Optional[str], suite: Suite) -> Selection:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (and not a hub details repo id)")
    results_all = sorted(p for p in folder.rglob("results_*.json") if p.is_file() and RESULTS_NAME.match(p.name))
    samples_all = sorted(p for p in folder.rglob("samples_*.jsonl") if p.is_file())
    if not results_all:
        raise UserError(f"{folder}: no lm-eval results_<date>.json in this folder")
    models = sorted({p.parent.name for p in results_all + samples_all})
    if len(models) > 1:  # `<org>__<model>/` side by side: never one of them picked silently (#19)
        raise UserError(f"{folder}: details of several models ({', '.join(models[:4])}); pass the folder of one")
    runs = runs_in([p.name for p in results_all])
    for p in samples_all:
        m = SAMPLES_NAME.match(p.name)
        if m is None:
            raise UserError(f"{p}: not a samples_<task>_<date>.jsonl name")
        if m["date"] not in runs:
            raise UserError(f"{p}: samples of run {m['date']}, but no results_{m['date']}.json beside it "
                            f"(runs of different dates mixed in one folder?)")
    if run is None:
        run = runs[-1]
    elif run not in runs:
        raise UserError(f"{folder}: no run {run!r} (runs here: {', '.join(runs)})")
    results_files = [p for p in results_all if RESULTS_NAME.match(p.name)["date"] == run]
    samples: dict[str, Path] = {}
    others: dict[str, Path] = {}
    for p in samples_all:
        m = SAMPLES_NAME.match(p.name)
        if m["date"] != run:
            others.setdefault(m["task"], p)
            continue
        if m["task"] in samples:
            raise UserError(f"{p}: a second samples file of task {m['task']} in run {run} (also {samples[m['task']]})")
        samples[m["task"]] = p

    leaves = {t: b for b in suite.benchmarks for t in b.leaf_tasks}
    groups = {b.group for b in suite.benchmarks} | LM_EVAL_GROUPS
    raw: dict[str, Any] = {}
    task_file: dict[str, Path] = {}
    for p in results_files:
        parsed = read_results_file(p)  # also refuses a file that is not lm-eval's
        data = read_json(p)
        for task in parsed.metrics:
            if task in groups and task not in leaves:
                continue  # a group entry of a layout without `groups` (lm-eval 0.4.5)
            if task not in leaves:
                raise UserError(f"{p}: unknown task {task!r} (not a leaf task of {suite.name})")
            if task in task_file:
                raise UserError(f"{p}: task {task} also in {task_file[task]}")
            task_file[task] = p
            if parsed.n_samples.get(task) is None:
                raise UserError(f"{p}: n-samples.{task}.effective missing (needed to check the samples are complete)")
        if not raw:
            raw = {k: (dict(v) if k in PER_TASK_KEYS and isinstance(v, dict) else v) for k, v in data.items()}
        else:
            for k in PER_TASK_KEYS:
                if isinstance(data.get(k), dict):
                    raw.setdefault(k, {}).update(data[k])
    for task, p in samples.items():
        if task not in leaves:
            raise UserError(f"{p}: unknown task {task!r} (not a leaf task of {suite.name})")
        if task not in task_file:
            raise UserError(f"{p}: task {task} is not in results_{run}.json (runs of different dates mixed?)")
    for task, p in task_file.items():
        if task not in samples:
            extra = f"; {others[task].name} is of another run (runs of different dates mixed?)" if task in others else ""
            raise UserError(f"{p}: no samples_{task}_{run}.jsonl for task {task}{extra}")
    benches = []
    for b in suite.benchmarks:
        present = [t for t in b.leaf_tasks if t in task_file]
        if not present:
            continue
        missing = [t for t in b.leaf_tasks if t not in task_file]
        if missing:
            raise UserError(f"{task_file[present[0]]}: {b.display} incomplete: task {missing[0]} missing "
                            f"({len(missing)} of {len(b.leaf_tasks)} absent)")
        benches.append(b)
    if not benches:
        raise UserError(f"{results_files[0]}: none of the {suite.name} benchmarks' tasks in run {run}")
    return Selection(root=folder, run=run, results_files=results_files, samples=samples, raw=raw,
                     task_file=task_file, benchmarks=benches)


def records(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, record) of a samples file; a line that is not one JSON object is refused."""
    with path.open("rb") as fh:
        offset = 0
        for lineno, line in enumerate(fh, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                rec = loads(line, path, offset=start, line=lineno)
            except NotUtf8:
                raise
            except ValueError as exc:
                raise UserError(f"{path}: line {lineno}: truncated or unparsable record ({str(exc).splitlines()[0]})") from None
            if not isinstance(rec, dict):
                raise UserError(f"{path}: line {lineno}: not a samples record (a JSON object)")
            yield lineno, rec


def validate(sel: Selection) -> None:
    """Every samples file of the run: parsable records of the lm-eval shape, documents complete."""
    for task, path in sorted(sel.samples.items()):
        n = sel.raw["n-samples"][task]["effective"]
        seen: dict[str, set[int]] = defaultdict(set)
        for lineno, rec in records(path):
            doc_id = rec.get("doc_id")
            if isinstance(doc_id, bool) or not isinstance(doc_id, int):
                raise UserError(f"{path}: line {lineno}: doc_id missing or not an integer")
            for key, kind in (("doc", dict), ("filtered_resps", list), ("resps", list)):
                if not isinstance(rec.get(key), kind):
                    raise UserError(f"{path}: line {lineno}: field {key!r} missing or not a {kind.__name__}")
            if "arguments" not in rec:
                raise UserError(f"{path}: line {lineno}: field 'arguments' missing")
            ids = seen[str(rec.get("filter", "none"))]
            if doc_id in ids:
                raise UserError(f"{path}: line {lineno}: doc_id {doc_id} appears twice")
            if not 0 <= doc_id < n:
                raise UserError(f"{path}: line {lineno}: doc_id {doc_id} outside 0..{n - 1} "
                                f"(n-samples.{task}.effective = {n} in {sel.task_file[task].name})")
            ids.add(doc_id)
        if not seen:
            raise UserError(f"{path}: no records (n-samples.{task}.effective = {n})")
        for filt, ids in seen.items():
            if len(ids) != n:
                missing = sorted(set(range(n)) - ids)
                raise UserError(f"{path}: {len(missing)} of {n} documents missing (first: doc_id {missing[0]}, "
                                f"filter {filt}; n-samples.{task}.effective in {sel.task_file[task].name})")


def files_identity(sel: Selection) -> str:
    """`sha256:` of the selected files (name + content), independent of where the folder is."""
    h = hashlib.sha256()
    files = [*sel.results_files, *sel.samples.values()]
    for name, digest in sorted((p.name, file_sha256(p)) for p in files):
        h.update(f"{name}\0{digest}\n".encode())
    return f"sha256:{h.hexdigest()}"


def parse_hub_id(source: str) -> Optional[tuple[str, Optional[str]]]:
    m = HUB_ID_AT.match(source)
    return (m["repo"], m["rev"]) if m else None


def fetch_hub(repo: str, revision: Optional[str], run: Optional[str]) -> tuple[Path, str, str]:
    """Download one run of a details repo -> (snapshot folder, commit, run date id)."""
    try:
        from huggingface_hub import HfApi
        from huggingface_hub import errors as hf_errors
    except ImportError as exc:  # pragma: no cover - a dependency of transformers/datasets
        raise UserError(f"huggingface_hub is needed to read {repo} ({exc})") from None
    where = f"{repo}{'@' + revision if revision else ''}"
    offline = env_offline()
    try:
        if offline:
            path = offline_snapshot(repo, revision, "dataset")
            if path is None:
                raise UserError(f"{where}: not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1)")
            names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
            commit = path.name
        else:
            info = HfApi().dataset_info(repo, revision=revision)
            commit = info.sha
            names = [s.rfilename for s in (info.siblings or [])]
        runs = runs_in(names)
        if not runs:
            raise UserError(f"{where}: no results_<date>.json in this dataset repo (not a details repo?)")
        chosen = run or runs[-1]
        if chosen not in runs:
            raise UserError(f"{where}: no run {chosen!r} (runs here: {', '.join(runs)})")
        wanted = [n for n in names if (m := RESULTS_NAME.match(Path(n).name) or SAMPLES_NAME.match(Path(n).name)) and m["date"] == chosen]
        if not offline:
            path = snapshot(repo, commit, repo_type="dataset", local_only=False, allow_patterns=wanted)
    except UserError:
        raise
    except hf_errors.GatedRepoError:
        raise UserError(f"{where}: gated dataset repo: accept its terms on huggingface.co and log in "
                        f"(`huggingface-cli login` or HF_TOKEN)") from None
    except hf_errors.RepositoryNotFoundError:
        raise UserError(f"{where}: no such local folder, and no such dataset repo on the hub (or private: log in)") from None
    except hf_errors.RevisionNotFoundError:
        raise UserError(f"{where}: no such revision") from None
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
        raise UserError(f"{where}: not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1)") from None
    except hf_errors.HfHubHTTPError as exc:
        raise UserError(f"{where}: hub error: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # network failures come as requests/httpx errors, whichever hub client is installed
        raise UserError(f"{where}: cannot reach the hub ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return path, commit, chosen
