"""The results store: atomic job commits, damaged results recomputed, one writer at a time."""

from __future__ import annotations

import json
import os
import time

import pytest

from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.schema import JobRecord
from evalsuite.fsio import atomic_write_text
from evalsuite.results.store import Store


def fake_job(store: Store, job_id: str = "m--bbh--0123") -> JobRecord:
    tmp = store.new_job_dir(job_id)
    (tmp / "output" / "m").mkdir(parents=True)
    (tmp / "output" / "m" / "results_1.json").write_text(json.dumps({"results": {"t": {"acc,none": 0.5}}}))
    (tmp / "output" / "m" / "samples_t_1.jsonl").write_text('{"doc_id": 0}\n')
    rec = JobRecord(
        job_id=job_id, model="m", role="parent", benchmark="bbh", task="leaderboard_bbh", identity={}, command=["lm_eval"],
        env={}, results_file="output/m/results_1.json", samples_files=["output/m/samples_t_1.jsonl"], started=time.time(), finished=time.time(),
    )
    store.commit_job(tmp, rec)
    return rec


def test_commit_is_atomic_and_verified(tmp_path):
    store = Store(tmp_path / "results")
    rec = fake_job(store)
    assert not list(store.jobs_dir.glob(".tmp-*"))
    again = store.finished_job(rec.job_id)
    assert again is not None and set(again.sha256) == {"output/m/results_1.json", "output/m/samples_t_1.jsonl"}


@pytest.mark.parametrize("damage", ["results", "samples", "record", "missing"])
def test_damaged_job_is_not_trusted(tmp_path, damage):
    store = Store(tmp_path / "results")
    rec = fake_job(store)
    folder = store.job_dir(rec.job_id)
    if damage == "results":
        p = folder / rec.results_file
        p.write_text(p.read_text().replace("0.5", "0.6"))
    elif damage == "samples":
        with open(folder / rec.samples_files[0], "a") as fh:
            fh.write('{"doc_id": 1}\n')
    elif damage == "record":
        (folder / "job.json").write_text("{not json")
    else:
        (folder / rec.samples_files[0]).unlink()
    assert store.finished_job(rec.job_id) is None


def test_stale_temp_folder_of_a_dead_run_is_cleared(tmp_path):
    store = Store(tmp_path / "results")
    store.jobs_dir.mkdir(parents=True)
    dead = store.jobs_dir / ".tmp-m--bbh--0123-999999999"
    dead.mkdir()
    (dead / "half.json").write_text("{")
    store.new_job_dir("m--bbh--0123")
    assert not dead.exists()


def test_atomic_write_leaves_old_content_on_failure(tmp_path):
    target = tmp_path / "f.json"
    atomic_write_text(target, "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_second_writer_is_refused_with_a_clear_message(tmp_path):
    store = Store(tmp_path / "results")
    with store.lock():
        with pytest.raises(UserError, match=f"in use by another evalsuite run \\(pid {os.getpid()}\\)"):
            with Store(tmp_path / "results").lock():
                pass
    with store.lock():  # released
        pass


def test_run_refuses_while_another_run_holds_the_folder(tmp_path, capsys):
    from conftest import demo_config

    cfg = demo_config(
        tmp_path,
        name="locked",
        **{"candidate:\n  name: tiny-merge\n": "candidate:\n  fixture: candidate\n", "[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": "[musr]"},
    )
    cfg.write_text("\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("  recipe:")) + "\n")
    with Store(tmp_path / "results").lock():
        code = main(["run", "--all", "--config", str(cfg), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "is in use by another evalsuite run" in err
    assert not (tmp_path / "results" / "jobs").exists()


def test_swap_folder_over_a_link_replaces_the_link_and_keeps_what_it_pointed_to(tmp_path):
    from evalsuite.fsio import swap_folder

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("user data")
    (tmp_path / "t").symlink_to(tmp_path / "real")
    new = tmp_path / "new"
    new.mkdir()
    (new / "g").write_text("new")
    swap_folder(new, tmp_path / "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "t"]  # no `.t.old-PID` link left
    assert (tmp_path / "real" / "f").read_text() == "user data"
    assert not (tmp_path / "t").is_symlink() and (tmp_path / "t" / "g").read_text() == "new"
