"""A model's stored run in the leaderboard's details layout (`evalsuite export`).

The Open LLM Leaderboard published each model's run as a details dataset repo holding
`<org>__<model>/results_<timestamp>.json` and one `samples_<task>_<timestamp>.jsonl` per leaf task
(lm-eval's EvaluationTracker names). `export` writes that folder from the jobs of the experiment's
last run, files as lm-eval wrote them (checked against their recorded sha256 first):

- `harness: leaderboard`: the model's benchmarks came from one lm-eval process, whose whole results
  file is stored beside each job (`process_files`): it is the results file, as the leaderboard's
  was (one `simple_evaluate` over the `leaderboard` group).
- `harness: upstream` (one process per benchmark), or jobs of several processes: the jobs' results
  files merged task by task (lm-eval's per-task keys), the other keys from the newest.

The timestamp is the newest of the jobs' runs; every file is named with it, so the folder holds
one run, which `evalsuite import` and `evalsuite verify --against` read.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from evalsuite.errors import UserError
from evalsuite.hub import HUB_ID
from evalsuite.lm_eval_api import PER_TASK_KEYS
from evalsuite.published.sides import sanitize_model
from evalsuite.results.samples import SAMPLES_NAME

DATE = re.compile(r"_(?P<date>\d{4}-\d{2}-\d{2}T[\d\-\.]+)\.jsonl?$")


@dataclass
class Exported:
    folder: Path
    run: str
    results: str
    samples: list[str]
    benchmarks: list[str]
    whole_process_file: bool


def _date(name: str) -> str:
    m = DATE.search(name)
    if m is None:
        raise UserError(f"{name}: no lm-eval timestamp in the file name")
    return m.group("date")


def export_run(study, model: str, out: Path, hub_id: str) -> Exported:
    """Write `model`'s jobs of `study` (evalsuite.study.Study) as `out/<org>__<model>/`."""
    runs = study.runs[model]
    if not runs:
        raise UserError(f"no stored jobs of {model}")
    folder = Path(out) / sanitize_model(hub_id)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder}: already exists and is not empty; choose another --out (nothing written)")
    records = [r.record for r in runs.values()]
    wholes = {r.process_files[0] for r in records if r.process_files}
    processes = {r.process for r in records}
    one_process = len(processes) == 1 and None not in processes and len(wholes) == 1
    if one_process:
        (rel,) = wholes
        src = next(r for r in runs.values() if r.record.process_files)
        results = json.loads((src.folder / rel).read_text(encoding="utf-8"))
        run = _date(rel)
    else:
        ordered = sorted(runs.values(), key=lambda r: _date(r.record.results_file))
        run = _date(ordered[-1].record.results_file)
        results: dict[str, Any] = {}
        for r in ordered:
            data = json.loads((r.folder / r.record.results_file).read_text(encoding="utf-8"))
            for k, v in data.items():
                if k in PER_TASK_KEYS and isinstance(v, dict):
                    results.setdefault(k, {}).update(v)
                elif k not in PER_TASK_KEYS:
                    results[k] = v
    files: dict[str, Path] = {}
    for r in runs.values():
        for rel in r.record.samples_files:
            m = SAMPLES_NAME.match(Path(rel).name)
            if m is None:
                raise UserError(f"{r.folder / rel}: not a samples_<task>_<date>.jsonl name")
            files[f"samples_{m.group('task')}_{run}.jsonl"] = r.folder / rel
    results_name = f"results_{run}.json"
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        (tmp / results_name).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        for name, src_path in sorted(files.items()):
            shutil.copyfile(src_path, tmp / name)
        if folder.exists():
            folder.rmdir()  # empty (checked above)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(folder=folder, run=run, results=results_name, samples=sorted(files), benchmarks=list(runs),
                    whole_process_file=one_process)


def default_hub_id(spec) -> str:
    """The model's hub id, else `evalsuite/<name>` (folder `evalsuite__<name>`)."""
    return spec.hub or f"evalsuite/{spec.display_name}"


def check_hub_id(hub_id: Optional[str]) -> None:
    if hub_id is not None and not HUB_ID.match(hub_id):
        raise UserError(f"--hub-id {hub_id!r}: give ORG/NAME, as on the hub")
