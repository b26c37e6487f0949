"""Names never escape their folders; trust_remote_code only on request and loudly; pickle parents
refused; the viewer listens on localhost.

Already covered elsewhere (not repeated here): `name: ../../etc` and `candidate.name: ../up` in a
config (test_config BAD), a baseline name with a space (test_history), trust_remote_code off by
default in the config (test_config) and absent from the lm_eval command (test_jobs), pickle-only
model folders refused unless allow_pickle (test_jobs), report HTML with planted markup rendering
no script in Chromium and `/../../etc/passwd` answered 404 by the viewer (test_report).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from conftest import REPO, demo_config
from evalsuite.cli.main import main
from evalsuite.errors import UserError
from evalsuite.paths import inside
from evalsuite.schema import ExperimentRecord
from evalsuite.results.store import Store


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (links not followed) with its content: proves nothing was written."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = ("-> " + os.readlink(p)).encode()
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


# --- the helper -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "/etc/passwd", "x\0y"])
def test_inside_refuses_names_that_are_not_one_plain_entry(tmp_path, name):
    with pytest.raises(UserError) as exc:
        inside(tmp_path, name)
    assert "\n" not in str(exc.value) and repr(name) in str(exc.value)


def test_inside_accepts_plain_names_and_links_that_stay_inside(tmp_path):
    assert inside(tmp_path, "a..b") == tmp_path / "a..b"  # dots inside a name are not a traversal
    assert inside(tmp_path, ".tmp-x-1") == tmp_path / ".tmp-x-1"
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    assert inside(tmp_path, "alias") == tmp_path / "alias"


def test_inside_refuses_symlinks_out_of_the_folder(tmp_path):
    parent, outside = tmp_path / "results", tmp_path / "elsewhere"
    parent.mkdir()
    outside.mkdir()
    (parent / "out").symlink_to(outside)
    (parent / "dangling").symlink_to(tmp_path / "not-yet" / "x.json")  # a write would land outside
    (parent / "self").symlink_to(".")
    (parent / "loop").symlink_to("loop")
    for name, expected in [("out", "outside"), ("dangling", "outside"), ("self", "outside"), ("loop", "")]:
        with pytest.raises(UserError) as exc:
            inside(parent, name)
        assert expected in str(exc.value) and "\n" not in str(exc.value), name
    # chained: an owned sub-folder that is itself a link out is refused, whatever the file name
    (parent / "experiments").symlink_to(outside)
    assert (outside.resolve() / "x.json") == inside(parent / "experiments", "x.json").resolve()  # alone: fooled
    with pytest.raises(UserError, match="outside"):
        inside(inside(parent, "experiments"), "x.json")


# --- config and CLI names -------------------------------------------------------------------------


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


def test_derived_model_names_cannot_be_dot_names(tmp_path, capsys):
    """A model without `name:` is named after its hub id or folder; `org/..`, `/x/..` or a recipe
    file `...yml` would name it `..` (results/merged/.. is the results folder itself)."""
    (tmp_path / "m").mkdir()
    (tmp_path / "...yml").write_text("merge_method: slerp\n")
    cases = {
        "hub": ("name: x\ncandidate:\n  hub: org/..\n", ":2: candidate: model name '..'"),
        "folder": (f"name: x\ncandidate:\n  path: {tmp_path / 'm'}/..\n", ":2: candidate: model name '..'"),
        "recipe": (f"name: x\ncandidate:\n  recipe: {tmp_path / '...yml'}\n", ":2: candidate: model name '..'"),
        "hidden": ("name: x\ncandidate:\n  hub: org/.hidden\n", "model name '.hidden'"),
    }
    before = _tree(tmp_path)
    for case, (text, expected) in cases.items():
        cfg = _cfg(tmp_path, text)
        assert main(["run", "--all", "--config", str(cfg)]) == 2, case
        err = _one_line_error(capsys)
        assert expected in err and "set name:" in err, (case, err)
        assert _tree(tmp_path) == {**before, "exp.yaml": text.encode()}, case


def test_names_with_a_trailing_newline_are_refused(tmp_path, capsys):
    """`$` in a regex also matches before a final newline: `name: "x\\n"` used to pass."""
    for text, expected in [('name: "x\\n"\ncandidate:\n  hub: a/b\n', ":1: name: experiment name 'x\\n'"),
                           ('name: x\ncandidate:\n  hub: a/b\n  name: "m\\n"\n', "candidate: name 'm\\n'"),
                           ('name: x\ncandidate:\n  hub: "a/b\\n"\n', "candidate: hub id 'a/b\\n'")]:
        cfg = _cfg(tmp_path, text)
        assert main(["run", "--all", "--config", str(cfg)]) == 2
        assert expected in _one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/b", "..", "x\n"])
def test_baseline_names_are_plain(tmp_path, capsys, name):
    root = tmp_path / "results"
    root.mkdir()
    assert main(["baseline", "set", name, "--results", str(root)]) == 2
    assert f"baseline name {name!r} must be" in _one_line_error(capsys)
    assert list(root.iterdir()) == []


# --- the results folder ---------------------------------------------------------------------------


def _record(name: str) -> ExperimentRecord:
    return ExperimentRecord(experiment=name, finished=0.0, models=[])


def test_store_refuses_escaping_names(tmp_path):
    store = Store(tmp_path / "results")
    for bad in ("../x", "/etc/x", "a/b"):
        with pytest.raises(UserError):
            store.experiment_file(bad)
        with pytest.raises(UserError):
            store.write_experiment(_record(bad))
        with pytest.raises(UserError):
            store.read_experiment(bad)
        for call in (store.job_dir, store.new_job_dir, store.cache_prefix):
            with pytest.raises(UserError):
                call(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even results/ was created


def test_store_refuses_owned_folders_linked_out(tmp_path):
    root, outside = tmp_path / "results", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("theirs")
    store = Store(root)
    (root / "experiments").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        store.write_experiment(_record("demo"))
    (root / "experiments").unlink()
    (root / "jobs").mkdir()
    (root / "jobs" / "m--bbh--0123").symlink_to(outside)  # a finished job elsewhere: not trusted
    with pytest.raises(UserError, match="outside"):
        store.finished_job("m--bbh--0123")
    (root / "jobs" / "m--bbh--0123").unlink()
    (root / "jobs").rmdir()
    (root / "jobs").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        store.new_job_dir("m--bbh--0123")
    assert _tree(outside) == {"keep.txt": b"theirs"}


def test_fixture_model_linked_out_of_the_cache_is_refused(tmp_path):
    from evalsuite.fixtures.tiny import build_demo_models

    root, outside = tmp_path / "fixtures", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (root / "parent_a").symlink_to(outside)
    with pytest.raises(UserError, match="outside"):
        build_demo_models(root)
    assert _tree(outside) == {"config.json": b"{}"}
    assert sorted(p.name for p in root.iterdir()) == ["parent_a"]


@pytest.mark.parametrize("link", ["merged/tiny-merge", "experiments", "jobs", "cache"])
def test_run_refuses_results_subfolders_linked_out_before_any_work(tmp_path, capsys, monkeypatch, link):
    """results/merged/<candidate> (or experiments/, jobs/, cache/) is a symlink to a folder outside
    the results folder. The run refuses at once rather than merge through the link, reuse what lies
    behind it, or replace it: the link may be the user's on purpose (a bigger disk), and only they
    can say whether it should go; `output.results` on that disk is the supported way."""
    results, outside = tmp_path / "results", tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.txt").write_text("theirs")
    target = results / link
    target.parent.mkdir(parents=True)
    target.symlink_to(outside)
    cfg = demo_config(tmp_path / "cfg", results=results)
    from evalsuite.run import runner

    monkeypatch.setattr(runner, "make_executor", lambda exp: _StubExecutor())  # a regression fails fast, runs no lm_eval
    before = _tree(tmp_path)
    assert main(["run", "--all", "--config", str(cfg), "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert str(target) in err and "outside" in err
    assert _tree(tmp_path) == before  # no merge, no fixture models, no lock file, nothing outside
    assert not (tmp_path / ".cache").exists()  # fixture models live beside results/


# --- trust_remote_code ----------------------------------------------------------------------------


class _StubExecutor:
    """Records the lm_eval command of each pending job instead of running it."""

    name = "stub"

    def __init__(self):
        self.argv: dict[str, list[str]] = {}

    def run(self, processes, store, events) -> None:
        self.argv.update({p.first.model.name: p.lm_eval_args("/out") for p in processes})


def test_trust_remote_code_only_from_the_config_and_warned_even_when_quiet(tiny_models, tmp_path, monkeypatch, capsys):
    from evalsuite.config import load_experiment
    from evalsuite.run import runner

    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    # hub data offline: the named commit must be in the HF hub cache (its snapshot is checked, not read)
    import shutil

    import huggingface_hub.constants as hc

    snap = tmp_path / "hub" / "datasets--Idavidrein--gpqa" / "snapshots" / ("0" * 40)
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "demo_mirror" / "Idavidrein" / "gpqa", snap)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    cfg = _cfg(tmp_path, yaml.safe_dump({
        "name": "trc", "benchmarks": ["gpqa"], "device": "cpu", "offline": True,
        "data": {"revisions": {"gpqa": "0" * 40}},  # hub data offline: its commit must be named (nothing is read here)
        "candidate": {"name": "remote", "path": str(tiny_models["parent_a"]), "trust_remote_code": True},
        "parents": [{"name": "plain", "path": str(tiny_models["parent_b"])}],
    }))
    stub = _StubExecutor()
    monkeypatch.setattr(runner, "make_executor", lambda exp: stub)
    capsys.readouterr()
    runner.run_experiment(load_experiment(cfg), console=Console(stderr=True, quiet=True), quiet=True)
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: remote: trust_remote_code is on — the model's own Python code will run" in err
    assert "plain:" not in err  # only the model whose config says so
    model_args = {m: argv[argv.index("--model_args") + 1] for m, argv in stub.argv.items()}
    assert model_args["remote"].split(",")[-1] == "trust_remote_code=True"
    assert "trust_remote_code" not in model_args["plain"]


# --- pickle ---------------------------------------------------------------------------------------


def test_merge_parent_with_only_pickle_weights_is_refused(tmp_path, capsys):
    """Merge parents are read by mergekit, which has no allow_pickle: safetensors only, always."""
    for name in ("a", "b"):
        m = tmp_path / name
        m.mkdir()
        (m / "config.json").write_text(json.dumps({"architectures": ["Gemma2ForCausalLM"], "num_hidden_layers": 2}))
        (m / "pytorch_model.bin").write_bytes(b"pickle")
    recipe = tmp_path / "r.yml"
    recipe.write_text(f"models:\n  - model: {tmp_path / 'a'}\n  - model: {tmp_path / 'b'}\nmerge_method: slerp\n"
                      f"base_model: {tmp_path / 'a'}\ndtype: float32\nparameters:\n  t: 0.5\n")
    before = _tree(tmp_path)
    assert main(["merge", str(recipe), str(tmp_path / "out")]) == 2
    assert "has no model.safetensors" in _one_line_error(capsys)
    assert _tree(tmp_path) == before


# --- the viewer -----------------------------------------------------------------------------------


def _listening(port: int) -> list[str]:
    """Local addresses of TCP sockets listening on `port` (Linux /proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, _, hexport = local.partition(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the kernel's socket table")
def test_view_binds_to_localhost_by_default(tmp_path):
    (tmp_path / "reports").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "evalsuite.cli.main", "view", "--dir", str(tmp_path / "reports"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "evalsuite view did not start"
            time.sleep(0.1)
        assert _listening(port) == ["127.0.0.1"]  # not 0.0.0.0 / ::
    finally:
        proc.terminate()
        proc.wait(timeout=10)



def test_report_index_links_only_its_own_html_files(tmp_path):
    """A sidecar can only list the HTML file beside it: no `javascript:` or other-folder link."""
    from evalsuite.report.index import SIDECAR_SCHEMA, read_sidecars

    for name, html in [("good", "good.html"), ("evil", "javascript:alert(1)"), ("other", "good.html")]:
        (tmp_path / f"{name}.json").write_text(json.dumps({"schema_version": SIDECAR_SCHEMA, "html": html, "generated": 1}))
    (tmp_path / "good.html").write_text("<p>ok</p>")
    (tmp_path / "javascript:alert(1)").write_text("x")
    (tmp_path / "other.html").write_text("<p>other</p>")
    assert [r["html"] for r in read_sidecars(tmp_path)] == ["good.html"]


def test_files_a_ray_worker_sends_back_stay_in_the_job_folder(tmp_path):
    from evalsuite.run.ray_executor import write_payload

    work = tmp_path / "jobs" / ".tmp-j-1"
    work.mkdir(parents=True)
    write_payload(work, {"output/m/results_1.json": b"{}", "lm_eval.log": b"ok"})
    assert (work / "output/m/results_1.json").read_bytes() == b"{}"
    for rel in ["../../escaped", "/etc/evalsuite-escaped", "output/../../escaped"]:
        with pytest.raises(UserError):
            write_payload(work, {rel: b"x"})
    assert not (tmp_path / "escaped").exists() and not Path("/etc/evalsuite-escaped").exists()
