"""Shared pytest fixtures (keep small)."""

from __future__ import annotations

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

    def __init__(self, config: Path):
        from evalsuite.config import load_experiment
        from evalsuite.store import Store

        self.config = config
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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """The whole demo (merge + 3 models x 6 benchmarks through real lm-eval), run once per session."""
    from evalsuite.cli.main import main

    reuse = os.environ.get("EVALSUITE_TEST_DEMO_CONFIG")  # dev loop: a demo run you already have
    if reuse:
        return DemoRun(Path(reuse))
    config = demo_config(tmp_path_factory.mktemp("demo"))
    assert main(["run", "--all", "--config", str(config), "--quiet"]) == 0
    return DemoRun(config)


NIGHTLY_BENCHMARKS = ["bbh", "gpqa"]


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
