"""The real study's data path end to end against the simulated hub (tests/hub_server.py): a tiny
model and MMLU-Pro served under their hub names, `evalsuite run` online, then offline with no pins,
then offline pinned to the older of two cached commits; each job reads exactly the rows of the
commit its identity names (checked in lm-eval's own samples), and every failure comes before any
model loads. One tiny model, one benchmark, 2 documents: 2 lm-eval processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub_server import client_env, folder_files, use_in_process
from test_hub_data import MMLU, mmlu_commit

pytestmark = pytest.mark.slow
MODEL = "evalsuite-test/tiny-gemma2"


def _config(path: Path, revision: str, results: Path, **extra) -> Path:
    cfg = {"name": "hub-study", "candidate": {"hub": MODEL, "revision": revision}, "benchmarks": ["mmlu_pro"],
           "batch_size": 8, "device": "cpu", "threads": 1, "limit": 2,
           "output": {"results": str(results), "reports": str(results.parent / "reports")}, **extra}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(config: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "--quiet", "-c", str(config)],
                          env=env, capture_output=True, text=True, timeout=600)


def _read(results: Path) -> tuple[str, list[str]]:
    """(the job's data identity, the questions lm-eval's samples hold) of the one mmlu_pro job."""
    (job,) = [d for d in (results / "jobs").iterdir() if not d.name.startswith(".")]
    record = json.loads((job / "job.json").read_text())
    (samples,) = job.rglob("samples_leaderboard_mmlu_pro_*.jsonl")
    docs = [json.loads(line) for line in samples.read_text().splitlines()]
    return record["identity"]["data"], [d["doc"]["question"] for d in sorted(docs, key=lambda d: d["doc_id"])]


def test_online_then_offline_then_pinned_older(sim_hub, tiny_models, tmp_path, monkeypatch):
    model_sha = sim_hub.repo(MODEL).add_commit(folder_files(tiny_models["candidate"]))
    dataset = sim_hub.repo(MMLU, "dataset")
    old = dataset.add_commit(mmlu_commit())
    home = tmp_path / "hf"
    online, offline = client_env(sim_hub, home, offline=False), client_env(sim_hub, home, offline=True)

    # 1. online: main's commit is fetched by commit (no refs/main in the cache) and read
    first = _config(tmp_path / "a.yaml", model_sha, tmp_path / "r1")
    p = _run(first, online)
    assert p.returncode == 0, p.stderr
    ident, rows = _read(tmp_path / "r1")
    assert ident == f"hub:{MMLU}@{old}"
    assert rows and not any(r.startswith("REVISED") for r in rows)
    assert not (home / "hub" / "datasets--TIGER-Lab--MMLU-Pro" / "refs" / "main").exists()

    # 2. offline, no pins, the one cached commit: the same identity, so the job is reused
    asked = len(sim_hub.requests)
    p = _run(first, offline)
    assert p.returncode == 0, p.stderr
    assert len(sim_hub.requests) == asked  # offline: nothing asked of the hub
    assert _read(tmp_path / "r1")[0] == f"hub:{MMLU}@{old}"

    # the dataset is revised on the hub, and a download puts its new commit in the cache beside the old
    new = dataset.add_commit(mmlu_commit("REVISED"))
    use_in_process(monkeypatch, sim_hub, home, offline=False)
    from evalsuite.data.hub_data import hub_snapshot

    assert hub_snapshot("mmlu_pro", None, offline=False).name == new
    asked = len(sim_hub.requests)

    # 3. offline, no pins, two commits cached: stops before any model loads, naming the pins
    p = _run(_config(tmp_path / "b.yaml", model_sha, tmp_path / "r2"), offline)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"error: dataset {MMLU} (mmlu_pro): the Hugging Face hub cache holds 2 commits of it; pin the one to read "
        f"(newest first): data: {{revisions: {{mmlu_pro: {new}}}}}; data: {{revisions: {{mmlu_pro: {old}}}}}"]
    assert not (tmp_path / "r2" / "jobs").exists()

    # 4. offline, pinned to the older commit, in a fresh results folder: lm-eval reads the old rows
    pinned = _config(tmp_path / "c.yaml", model_sha, tmp_path / "r3", data={"revisions": {"mmlu_pro": old}})
    p = _run(pinned, offline)
    assert p.returncode == 0, p.stderr
    assert _read(tmp_path / "r3") == (f"hub:{MMLU}@{old}", rows)
    assert len(sim_hub.requests) == asked  # runs 3 and 4 asked the hub nothing
