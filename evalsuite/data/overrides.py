"""lm-eval task overrides (`--include_path`): `write_task_overrides` turns a mirror, hub-cache
snapshot folders or pinned hub commits into lm-eval task YAMLs. Each one `include:`s the installed
leaderboard task YAML and only swaps `dataset_path` for the local folder (or adds the dataset
revision), keeping the task name so it replaces the built-in (lm-eval resolves `!function` hooks
relative to the file that holds them, so the included YAML's `utils.*` still load). With `harness:
leaderboard` GPQA's overrides point at the fork's choice order (`evalsuite.data.gpqa_order`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from evalsuite.data import gpqa_order
from evalsuite.data.repo_files import data_rows
from evalsuite.data.tasks import (
    HUB_DATASETS,
    OVERRIDE_MARKER,
    TaskData,
    check_mirror,
    installed_task_index,
    repo_config_splits,
    repo_dir,
    task_data,
)
from evalsuite.errors import UserError
from evalsuite.fsio import write_folder
from evalsuite.suite import load_suite


# ------------------------------------------------------------------------------------------
# lm-eval task overrides (`--include_path`) and the data identity.
# ------------------------------------------------------------------------------------------


def override_yamls(mirror: Optional[Path], benchmarks: list[str], revisions: Optional[dict[str, str]] = None,
                   harness: str = "upstream", folders: Optional[dict[str, Path]] = None) -> dict[str, str]:
    """File name -> text of the override for every leaf task of `benchmarks`: read from the local
    `mirror`, from the hub-cache snapshot folder `folders[benchmark]` of the dataset at its commit
    (`hub_snapshots`; online and offline alike), or from the hub at the dataset commit
    `revisions[benchmark]`. With `harness:
    leaderboard` GPQA's choices are shuffled as the leaderboard's run shuffled them
    (evalsuite/data/gpqa_order.py; its generated helper module comes with the YAMLs)."""
    mirror = Path(mirror).resolve() if mirror is not None else None
    out: dict[str, str] = {}
    if harness == "leaderboard" and "gpqa" in benchmarks:
        sizes = gpqa_sizes(mirror, (folders or {}).get("gpqa"))
        out[f"{gpqa_order.HELPER_MODULE}.py"] = gpqa_order.helper_source(sizes)
    for bench_id in benchmarks:
        if bench_id not in HUB_DATASETS:
            raise UserError(f"unknown benchmark {bench_id!r} (known: {', '.join(HUB_DATASETS)})")
        for td in task_data(bench_id):
            body: dict[str, Any] = {"include": str(td.yaml_path), "task": td.task}
            if mirror is not None:
                body["dataset_path"] = str(repo_dir(mirror, bench_id))
                what = "from a local mirror"
            elif folders is not None:
                body["dataset_path"] = str(folders[bench_id])
                what = f"at commit {Path(folders[bench_id]).name} from its snapshot in the Hugging Face hub cache"
            else:
                sha = (revisions or {})[bench_id]
                body["dataset_kwargs"] = {**(td.dataset_kwargs or {}), "revision": sha}
                what = f"from the hub at commit {sha}"
            text = (f"{OVERRIDE_MARKER}: lm-eval task {td.task} reading {HUB_DATASETS[bench_id]} {what}.\n"
                    + yaml.safe_dump(body, sort_keys=False, width=1000))
            if harness == "leaderboard" and td.task in FORK_DESCRIPTIONS:
                text += yaml.safe_dump({"description": FORK_DESCRIPTIONS[td.task](td)}, width=1000)
            if harness == "leaderboard" and bench_id == "gpqa":
                sub = td.task.rsplit("_", 1)[1]
                text += f"process_docs: !function {gpqa_order.HELPER_MODULE}.process_docs_{sub}\n"
            out[f"{td.task}.yaml"] = text
    return out


def _snarks_description(td: TaskData) -> str:
    """BBH snarks: the fork's YAML ends the description in a blank line and its Jinja environment
    strips one trailing newline, so its prompts read `...witty remarks.\nQ: ...`; lm-eval 0.4.13's
    description has no newline (`...witty remarks.Q: ...`). The only BBH prompt that differs
    (docs/fidelity.md)."""
    description = str((installed_task_index()[td.task].cfg or {}).get("description", ""))
    return description if description.endswith("\n") else description + "\n"


# harness leaderboard: task -> the description the fork's prompts carry, from the installed one
FORK_DESCRIPTIONS = {"leaderboard_bbh_snarks": _snarks_description}


def gpqa_sizes(mirror: Optional[Path], folder: Optional[Path] = None) -> dict[str, int]:
    """Rows of each GPQA subset's split (process_docs maps all of them): counted in a mirror (or
    the repo `folder`, a hub-cache snapshot), the published sizes (tasks/leaderboard_v2.yaml) on
    the hub."""
    bench = load_suite().get("gpqa")
    if mirror is None and folder is None:
        return dict(bench.sizes)
    root = Path(folder) if folder is not None else repo_dir(mirror, "gpqa")
    out = {}
    for td in task_data("gpqa"):
        splits = repo_config_splits(root, "gpqa", td.dataset_name, []) or {}
        out[td.task.rsplit("_", 1)[1]] = sum(len(data_rows(f)) for split in td.splits for f in splits.get(split, []))
    return out


def write_task_overrides(mirror: Optional[Path], benchmarks: list[str], out_dir: Path, revisions: Optional[dict[str, str]] = None,
                         harness: str = "upstream", folders: Optional[dict[str, Path]] = None) -> Path:
    """Write the override YAMLs into `out_dir` (pass it as `--include_path`) and return it.

    A mirror is checked first. `out_dir` is replaced as a whole: built next to it, then swapped
    in; it may only contain files written here before."""
    if mirror is not None:
        check_mirror(mirror, benchmarks)
    files = override_yamls(mirror, benchmarks, revisions, harness, folders)
    out_dir = Path(out_dir)
    if out_dir.exists():
        foreign = [p for p in out_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not (
            p.suffix in (".yaml", ".py") and p.read_text(encoding="utf-8").startswith(OVERRIDE_MARKER))]
        if foreign:
            raise UserError(f"{out_dir}: holds files evalsuite did not write ({foreign[0].name}); "
                            "pick an empty folder for the task overrides")
    write_folder(out_dir, files)
    return out_dir
