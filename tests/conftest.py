"""Shared pytest fixtures (keep small)."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The demo's tiny Gemma-2 models (parent_a, parent_b, candidate), built once per session."""
    from evalsuite.fixtures.tiny import build_demo_models

    return build_demo_models(tmp_path_factory.mktemp("tiny_models"))


REPO = Path(__file__).resolve().parent.parent


class DemoRun:
    """A finished run of the demo experiment (examples/demo.yaml) in a session temp folder."""

    def __init__(self, config: Path, reads=None):
        from evalsuite.config import load_experiment
        from evalsuite.results.store import Store

        self.config = config
        self.reads = reads  # tests/read_counter.py's counts of the first run (None: a reused demo)
        self.exp = load_experiment(config)
        self.store = Store(Path(self.exp.output.results))


def demo_config(dest: Path, *, name: str = "demo-test", results: Path | None = None, **replace: str) -> Path:
    """examples/demo.yaml copied to `dest`, with absolute paths and its own results folder."""
    text = (REPO / "examples" / "demo.yaml").read_text()
    results = results or dest / "results"
    text = text.replace("name: demo\n", f"name: {name}\n")
    text = text.replace("recipe: demo.mergekit.yml", f"recipe: {REPO / 'examples' / 'demo.mergekit.yml'}")
    text = text.replace("mirror: demo_mirror", f"mirror: {REPO / 'examples' / 'demo_mirror'}")
    text = text.replace("results: ../results", f"results: {results}")
    text = text.replace("reports: ../reports", f"reports: {dest / 'reports'}")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}.yaml"
    path.write_text(text)
    return path


def shared_once(tmp_path_factory, name: str, build) -> tuple[Path, object]:
    """`build(folder)` run once per test session, also when pytest-xdist spreads the session over
    several worker processes: the first worker to ask builds under a file lock in the session's
    base folder, the others wait and reuse it. Returns (folder, what `build` returned, stored as
    JSON). The folder is shared: tests take their own copy (`copy_shared`), never write into it."""
    import json

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            if folder.exists():  # a worker's build failed: build again (and fail again, visibly)
                import shutil

                shutil.rmtree(folder)
            folder.mkdir()
            done_text = json.dumps(build(folder))
            done.write_text(done_text)
    return folder, json.loads(done.read_text())


def copy_shared(folder: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(folder, dest, symlinks=True, ignore=shutil.ignore_patterns(".lock"), dirs_exist_ok=True)
    return dest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """The whole demo (merge + 3 models x 6 benchmarks through real lm-eval), run once per session
    (`shared_once`); each pytest-xdist worker gets its own copy, whose re-runs reuse every job."""
    from read_counter import ReadCounts

    reuse = os.environ.get("EVALSUITE_TEST_DEMO_CONFIG")  # dev loop: a demo run you already have
    if reuse:
        return DemoRun(Path(reuse))

    def build(folder: Path) -> list:
        from evalsuite.cli.main import main
        from read_counter import count_reads

        config = demo_config(folder)
        with count_reads() as reads:  # tests/test_study.py: what the first run read, and how often
            assert main(["run", "--all", "--config", str(config), "--quiet"]) == 0
        return [[*key, n] for key, n in reads.opens.items()]

    folder, opens = shared_once(tmp_path_factory, "demo", build)
    copy = copy_shared(folder, tmp_path_factory.mktemp("demo"))
    reads = ReadCounts()
    reads.opens.update({tuple(row[:3]): row[3] for row in opens})
    return DemoRun(demo_config(copy), reads)


SMALL_BENCHMARKS = ["gpqa", "ifeval"]  # one loglikelihood benchmark, one generation benchmark


def small_config(dest: Path, *, name: str = "small", results: Path | None = None, **replace: str) -> Path:
    """`demo_config` cut to the smallest run that still has every kind of job: the demo's three
    models (the merge, a plain parent, the chat-template parent) on GPQA + IFEval, one document
    per task. Tests that start lm-eval themselves (kills, resume, the bare command) run it; their
    jobs have the ids of `small_run`'s, which they copy in or compare with."""
    return demo_config(dest, name=name, results=results, **{
        "[ifeval, bbh, math_hard, gpqa, musr, mmlu_pro]": f"[{', '.join(SMALL_BENCHMARKS)}]",
        "limit: 2 ": "limit: 1 ",
        **replace,
    })


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> DemoRun:
    """`small_config`'s run (merge + 3 models x GPQA, IFEval through real lm-eval), once per
    session (`shared_once`); each pytest-xdist worker gets its own copy. Its store is the
    reference the kill-and-rerun tests compare with and copy finished jobs from."""

    def build(folder: Path) -> None:
        from evalsuite.cli.main import main

        assert main(["run", "--all", "--config", str(small_config(folder)), "--quiet", "--no-report"]) == 0

    folder, _ = shared_once(tmp_path_factory, "small", build)
    copy = copy_shared(folder, tmp_path_factory.mktemp("small"))
    return DemoRun(small_config(copy))


NIGHTLY_BENCHMARKS = ["bbh", "gpqa"]


@pytest.fixture(scope="session")
def nightly_demo(tmp_path_factory):
    """The nightly test config's run (`nightly_config`: the demo's candidate alone, bbh + gpqa, 2
    documents per task), once per session (`shared_once`; a copy per pytest-xdist worker): (its
    folder, its experiment record). The folder's `results/` is shared by the worker's tests:
    tests/test_history.py copies its jobs, tests/test_regress.py adds its own runs of other
    candidates to it (every job of this run is then reused)."""
    from evalsuite.results.store import Store

    def build(folder: Path) -> None:
        from evalsuite.cli.main import main

        assert main(["run", "--all", "--config", str(nightly_config(folder / "a.yaml", folder / "results")), "--quiet"]) == 0

    folder, _ = shared_once(tmp_path_factory, "nightly-demo", build)
    shared = copy_shared(folder, tmp_path_factory.mktemp("nightly-demo"))
    nightly_config(shared / "a.yaml", shared / "results")  # its paths: the copy's
    return shared, Store(shared / "results").read_experiment("nightly-demo")


def nightly_config(dest: Path, results: Path, *, candidate: dict | None = None) -> Path:
    """examples/demo.yaml for the tests: the demo's fixture candidate (or `candidate`) alone, two
    benchmarks, 2 documents per task, output into `results`. Relative paths of the demo (mirror,
    recipe, model folders) resolve against examples/, as they would there."""
    import yaml

    demo = REPO / "examples" / "demo.yaml"
    data = yaml.safe_load(demo.read_text())

    def absolute(p: str) -> str:
        return str((demo.parent / p).resolve())

    data["data"]["mirror"] = absolute(data["data"]["mirror"])
    data["local_models"] = {k: absolute(v) for k, v in (data.get("local_models") or {}).items()}
    data.update(name="nightly-demo", benchmarks=NIGHTLY_BENCHMARKS, limit=2, parents=[])
    data["candidate"] = candidate or {"fixture": "candidate"}
    for key in ("path", "recipe"):
        if key in data["candidate"]:
            data["candidate"][key] = absolute(data["candidate"][key])
    data["output"] = {"results": str(results), "reports": str(results.parent / "reports")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


# ------------------------------------------------------------------------------------------------
# The count of lm-eval processes the suite starts (printed at the end of the run).
# Every Python interpreter started under the test session records its command line (a
# sitecustomize on PYTHONPATH); `evalsuite.run.local.execute` records each lm-eval process it
# forks from a warm zygote (EVALSUITE_CHILD_LOG). lm-eval processes = interpreters running lm-eval's
# CLI (`lm_eval`, `evalsuite.run.lm_eval_main`, `evalsuite.run.lm_eval_cli`) + warm forks.
# EVALSUITE_TEST_COUNTS=<file> also writes the counts there as JSON (bench/suite.py), with the
# processes per test (pytest's PYTEST_CURRENT_TEST, inherited by every child).

_SITECUSTOMIZE = '''
import json, os, sys
_log = os.environ.get("EVALSUITE_TEST_STARTS")
if _log:
    with open(_log, "a") as _fh:
        _fh.write(json.dumps([getattr(sys, "orig_argv", sys.argv), os.environ.get("PYTEST_CURRENT_TEST", "")]) + "\\n")
'''

LM_EVAL_PROGRAMS = ("evalsuite.run.lm_eval_main", "evalsuite.run.lm_eval_cli", "lm_eval")


def pytest_configure(config):
    import tempfile

    # pytest-xdist hands its workers COLUMNS=80; the tests expect what the session itself had (the
    # CLI lays tables out for $COLUMNS, else 160 columns when not on a terminal)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        columns = os.environ.get("EVALSUITE_TEST_COLUMNS")
        if columns:
            os.environ["COLUMNS"] = columns
        elif columns is not None:
            os.environ.pop("COLUMNS", None)
    else:
        os.environ.setdefault("EVALSUITE_TEST_COLUMNS", os.environ.get("COLUMNS", ""))
    if os.environ.get("EVALSUITE_TEST_STARTS"):  # a nested pytest: the outer session counts
        return
    folder = Path(tempfile.mkdtemp(prefix="evalsuite-test-starts-"))
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    os.environ["EVALSUITE_TEST_STARTS"] = str(folder / "starts.jsonl")
    os.environ["EVALSUITE_CHILD_LOG"] = str(folder / "warm.tsv")
    config._evalsuite_counts = folder


def lm_eval_program(argv: list[str]) -> str | None:
    """The lm-eval program an interpreter's command line runs, if any."""
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1] if argv[i + 1] in LM_EVAL_PROGRAMS else None
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:] if arg[2:] in LM_EVAL_PROGRAMS else None
        if not arg.startswith("-"):
            return "lm_eval" if Path(arg).name == "lm_eval" else None
    return None


def child_counts(folder: Path) -> dict:
    import collections
    import json

    def lines(name):
        path = folder / name
        return path.read_text().splitlines() if path.exists() else []

    starts = [json.loads(line) for line in lines("starts.jsonl")]  # [argv, the test that started it]
    programs = collections.Counter(lm_eval_program(argv) for argv, _ in starts)
    programs.pop(None, None)
    zygotes = sum(1 for argv, _ in starts if "evalsuite.run.warm" in argv)
    warm = [line.split("\t") for line in lines("warm.tsv")]  # pid, "warm", test, command
    by_test = collections.Counter(test.rsplit(" (", 1)[0] for argv, test in starts if lm_eval_program(argv))
    by_test.update(row[2].rsplit(" (", 1)[0] for row in warm if len(row) > 2)
    return {"lm_eval_processes": sum(programs.values()) + len(warm), "fresh": dict(programs), "warm": len(warm),
            "zygotes": zygotes, "python_starts": len(starts), "by_test": dict(by_test.most_common())}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    import json

    folder = getattr(config, "_evalsuite_counts", None)
    if folder is None:
        return
    counts = child_counts(folder)
    fresh = ", ".join(f"{k} {v}" for k, v in sorted(counts["fresh"].items())) or "none"
    terminalreporter.write_line(
        f"lm-eval processes: {counts['lm_eval_processes']} (fresh: {fresh}; forked warm: {counts['warm']}; "
        f"zygotes: {counts['zygotes']}; Python starts in all: {counts['python_starts']})"
    )
    if os.environ.get("EVALSUITE_TEST_COUNTS"):
        counts["seconds_by_file"] = {f: round(t, 1) for f, t in _FILE_SECONDS.most_common()}
        counts["slowest"] = [[round(t, 1), *key] for key, t in _TEST_SECONDS.most_common(30)]  # as --durations=30
        Path(os.environ["EVALSUITE_TEST_COUNTS"]).write_text(json.dumps(counts, indent=1))


_FILE_SECONDS: "collections.Counter[str]" = collections.Counter()
_TEST_SECONDS: "collections.Counter[tuple[str, str]]" = collections.Counter()


def pytest_runtest_logreport(report):
    """Each test file's time (setup, call and teardown of its tests, module fixtures included):
    EVALSUITE_TEST_COUNTS's `seconds_by_file`, from which FILE_SECONDS below is taken; and each
    phase of each test, its `slowest` (what `--durations=30` prints)."""
    _FILE_SECONDS[report.nodeid.split("::")[0].rsplit("/", 1)[-1]] += report.duration
    _TEST_SECONDS[report.when, report.nodeid] += report.duration


# Tests that start lm-eval (directly or through the session's shared runs) are `slow`: the fast tier
# is `pytest -m "not slow"`. A test is marked here when it uses a fixture that runs lm-eval; tests
# that start lm-eval themselves carry the mark in their module.
E2E_FIXTURES = {"demo_run", "nightly_demo", "small_run"}
# fixtures that reach a shared run through request.getfixturevalue (invisible to `fixturenames`)
E2E_DYNAMIC = {("test_report.py", "demo")}


# Each module's time on one pytest-xdist worker (`seconds_by_file` of a whole run, rounded; a file
# not listed counts 0). pytest-xdist (`--dist loadfile --no-loadscope-reorder`, pyproject.toml)
# hands files to the two workers in this order, the longest first, so that no long file starts
# last while the other worker has nothing left (and a worker builds the shared demo while the
# other runs the sweep, which does not need it).
FILE_SECONDS: dict[str, float] = {
    "test_sweep.py": 270, "test_faults.py": 260, "test_run_e2e.py": 250, "test_regress.py": 150,
    "test_harness.py": 90, "test_ray.py": 70, "test_hub_study.py": 60, "test_disk_full.py": 50,
    "test_history.py": 50, "test_card.py": 45, "test_verify.py": 45, "test_import.py": 40,
    "test_report.py": 40, "test_published_run.py": 30, "test_study.py": 30,
}


def pytest_collection_modifyitems(config, items):
    first = {name: i for i, name in enumerate(sorted(FILE_SECONDS, key=lambda n: -FILE_SECONDS[n]))}
    items.sort(key=lambda item: first.get(item.path.name, len(first)))  # stable: each file's own order kept
    slow = pytest.mark.slow
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        dynamic = {f for module, f in E2E_DYNAMIC if item.path.name == module}
        if (E2E_FIXTURES | dynamic) & names and item.get_closest_marker("slow") is None:
            item.add_marker(slow)


@pytest.fixture
def sim_hub():
    """A simulated Hugging Face hub on a local port (tests/hub_server.py), empty: the test adds
    its repos. Point clients at it with `hub_server.client_env` (a subprocess) or
    `hub_server.use_in_process` (this process)."""
    from hub_server import SimHub

    hub = SimHub().start()
    yield hub
    hub.stop()
