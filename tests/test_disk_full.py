"""A full disk (issue #8) on a real, small tmpfs: `evalsuite merge` and `evalsuite run` stop with
one line `error: no space left on device: PATH` (exit 2), leave no temp files or folders behind,
and what was there before — a previous merge, finished jobs, the experiment record, the run
history — is intact. Mounting needs root; elsewhere the tests are skipped, saying why."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from evalsuite.cli.main import main
from evalsuite.history.runs import list_runs
from evalsuite.results.store import Store

from conftest import nightly_config

pytestmark = pytest.mark.slow

EXPERIMENT = "nightly-demo"  # nightly_config's experiment name
TEMP_NAMES = re.compile(r"^\.tmp-|\.tmp$|\.tmp-|\.old-|^\.stale-")  # store/merge temp names


@contextmanager
def tmpfs(point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `point` for the block; unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("disk-full tests mount a small tmpfs, which needs root")
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {point}: {(done.stderr.strip() or f'mount exited with {done.returncode}').splitlines()[0]}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """small_disk(size, name="disk") -> a fresh tmpfs of that size under tmp_path (unmounted at
    teardown), or skip when it cannot be mounted."""
    with ExitStack() as mounted:
        yield lambda size, name="disk", point=None: mounted.enter_context(tmpfs(point or tmp_path / name, size))


def fill(disk: Path, leave: int) -> None:
    """Take all the disk's free space but `leave` bytes (tmpfs counts whole 4 KiB pages)."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * (free - leave))
    assert shutil.disk_usage(disk).free == leave


def files(root: Path) -> dict[str, str]:
    """Every file under root (the filler and the lock file aside) -> sha256 of its bytes."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in {"filler", ".lock"}
    }


def temp_leftovers(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if TEMP_NAMES.search(p.name)]


def error_line(capsys) -> str:
    """The single line a failed command printed on stderr (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- merge --------------------------------------------------------------------------------------


@pytest.fixture
def recipe(tiny_models, tmp_path, monkeypatch):
    """recipe(t) -> the demo's SLERP recipe over the tiny parents, with its t curve."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    a, b = tiny_models["parent_a"], tiny_models["parent_b"]

    def write(t: str = "[0, 0.5, 1, 0.5, 0]") -> Path:
        path = tmp_path / f"recipe-{hashlib.sha256(t.encode()).hexdigest()[:8]}.yml"
        path.write_text(f"models:\n  - model: {a}\n  - model: {b}\nmerge_method: slerp\nbase_model: {a}\n"
                        f"dtype: bfloat16\nparameters:\n  t: {t}\n")
        return path

    return write


def test_merge_onto_a_disk_too_small_says_so_and_leaves_nothing(recipe, small_disk, capsys):
    disk = small_disk("256k")  # the merged tiny model is ~0.7 MB
    out = disk / "merged"
    capsys.readouterr()
    assert main(["merge", str(recipe()), str(out), "--no-progress"]) == 2
    assert error_line(capsys) == f"error: no space left on device: {out}"
    assert sorted(os.listdir(disk)) == []  # no OUT_DIR, no temp folder


@pytest.mark.parametrize("how", ["--force", "changed recipe"])
def test_rebuild_on_a_full_disk_keeps_the_previous_merge(recipe, small_disk, capsys, how):
    disk = small_disk("4m")
    out = disk / "merged"
    assert main(["merge", str(recipe()), str(out), "--no-progress"]) == 0
    before = files(out)
    assert "model.safetensors" in before and "evalsuite_merge.json" in before
    fill(disk, 64 * 1024)  # room for the small files, not for a second model
    capsys.readouterr()
    argv = [str(recipe()), str(out), "--force"] if how == "--force" else [str(recipe("[0, 0.3, 1, 0.3, 0]")), str(out)]
    assert main(["merge", *argv, "--no-progress"]) == 2
    assert error_line(capsys) == f"error: no space left on device: {out}"
    assert files(out) == before  # byte-identical
    assert sorted(os.listdir(disk)) == ["filler", "merged"]
    # and once there is room again, the same command works
    (disk / "filler").unlink()
    assert main(["merge", *argv, "--no-progress"]) == 0
    assert files(out) != before


# --- run ----------------------------------------------------------------------------------------


class FirstRun:
    """A finished `evalsuite run -b gpqa --limit 1` whose results folder was a tmpfs at `results`;
    `golden` holds a copy of that folder as it was."""

    def __init__(self, config: Path, results: Path, golden: Path):
        self.config, self.results, self.golden = config, results, golden
        self.files = files(golden)
        self.jobs = Store(golden).read_experiment(EXPERIMENT).jobs
        self.runs = [r.run_id for r in list_runs(golden)]


@pytest.fixture(scope="module")
def first_run(tiny_models, tmp_path_factory) -> FirstRun:
    base = tmp_path_factory.mktemp("disk-full-run")
    results, golden = base / "results", base / "golden"
    candidate = {"name": "tiny-candidate", "path": str(tiny_models["candidate"])}
    config = nightly_config(base / "exp.yaml", results, candidate=candidate)
    with tmpfs(results, "16m"):
        assert main(["run", "-b", "gpqa", "--limit", "1", "--config", str(config), "--quiet", "--no-report"]) == 0
        shutil.copytree(results, golden)
    return FirstRun(config, results, golden)


@pytest.fixture
def full_results(first_run, small_disk):
    """full_results(leave) -> the first run's results folder on a fresh tmpfs (same path),
    filled up but `leave` bytes."""

    def make(leave: int) -> Path:
        root = small_disk("16m", point=first_run.results)
        shutil.copytree(first_run.golden, root, dirs_exist_ok=True)
        fill(root, leave)
        return root

    return make


def run(first_run: FirstRun, *args: str) -> int:
    return main(["run", *args, "--config", str(first_run.config), "--quiet", "--no-report"])


def assert_previous_state(first_run: FirstRun, root: Path, *, allowed_new: str, experiment_rewritten: bool = False) -> None:
    """The first run's files are byte-identical, nothing but `allowed_new` (a regex) was added, no
    temp file or folder is left; with room again (SQLite needs some even to read), its jobs
    verify and its experiment record and history read back."""
    now = files(root)
    changed = {rel for rel, digest in first_run.files.items() if now.get(rel) != digest}
    record = f"experiments/{EXPERIMENT}.json"
    assert changed == ({record} if experiment_rewritten else set())
    assert [rel for rel in now if rel not in first_run.files and not re.match(allowed_new, rel)] == []
    assert temp_leftovers(root) == []
    (root / "filler").unlink()
    store = Store(root)
    for per in first_run.jobs.values():
        for job_id in per.values():
            assert store.finished_job(job_id) is not None, job_id
    assert store.read_experiment(EXPERIMENT).jobs == first_run.jobs
    assert [r.run_id for r in list_runs(root)] == first_run.runs


def test_run_needing_new_task_files_on_a_full_disk(first_run, full_results, capsys):
    """Adding musr needs new task overrides under results/tasks/: that write fails first."""
    root = full_results(8 * 1024)
    capsys.readouterr()
    assert run(first_run, "-b", "gpqa", "-b", "musr", "--limit", "1") == 2
    assert re.fullmatch(rf"error: no space left on device: {re.escape(str(root))}/tasks/sha256-[0-9a-f]+", error_line(capsys))
    assert_previous_state(first_run, root, allowed_new=r"$^")


def test_run_whose_lm_eval_job_cannot_write_stops_with_one_line(first_run, full_results, capsys):
    """A new job (--limit 2): lm-eval itself runs out of room (its request cache, its output);
    the run stops at once, the job's log is kept under failed/, its work folder is gone."""
    root = full_results(16 * 1024)
    capsys.readouterr()
    assert run(first_run, "-b", "gpqa", "--limit", "2") == 2
    line = error_line(capsys)
    m = re.fullmatch(rf"error: no space left on device: {re.escape(str(root))}/jobs/(tiny-candidate--gpqa--[0-9a-f]+)", line)
    assert m and m.group(1) not in first_run.jobs["tiny-candidate"].values(), line
    assert (root / "failed" / f"{m.group(1)}.log").is_file()
    assert not (root / "jobs" / m.group(1)).exists()
    assert_previous_state(first_run, root, allowed_new=rf"failed/{m.group(1)}\.log$|cache/{m.group(1)}/")


@pytest.mark.parametrize("leave", [16 * 1024, 40 * 1024])  # SQLite fails opening its WAL index / inserting
def test_rerun_on_a_full_disk_cannot_record_history(first_run, full_results, capsys, leave):
    """Nothing new to run, but the run history (SQLite) has no room: one line, history intact."""
    root = full_results(leave)
    capsys.readouterr()
    assert run(first_run, "-b", "gpqa", "--limit", "1") == 2
    line = error_line(capsys)
    assert line.startswith("error: no space left on device: ") and "history.sqlite" in line, line
    # the experiment record is rewritten (same jobs, new time) before the history is written
    assert_previous_state(first_run, root, allowed_new=r"history\.sqlite-(wal|shm)$", experiment_rewritten=True)
