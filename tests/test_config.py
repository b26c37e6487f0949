"""Experiment config: validation errors name key and line, exit 2, and nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite.cli.main import main
from evalsuite.config import load_experiment
from evalsuite.errors import UserError

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    return p


BAD = {
    "unknown key": ("name: x\ncandidate:\n  hub: a/b\n  revison: abc\n", ":4: candidate.revison: unknown key"),
    "missing model path": ("name: x\ncandidate:\n  path: does-not-exist\n", ":3: candidate.path: model folder"),
    "unknown benchmark": ("name: x\ncandidate:\n  hub: a/b\nbenchmarks: [bbh, arc]\n", ":4: benchmarks: unknown benchmark 'arc'"),
    "limit zero": ("name: x\ncandidate:\n  hub: a/b\nlimit: 0\n", ":4: limit: limit must be a positive"),
    "limit negative": ("name: x\ncandidate:\n  hub: a/b\nlimit: -3\n", ":4: limit: limit must be a positive"),
    "wrong type": ("name: x\ncandidate:\n  hub: a/b\nbatch_size: big\n", ":4: batch_size"),
    "two sources": ("name: x\ncandidate:\n  hub: a/b\n  path: .\n", ":2: candidate: give exactly one of"),
    "bad hub id": ("name: x\ncandidate:\n  hub: not-a-hub-id\n", ":2: candidate: hub id 'not-a-hub-id'"),
    "parent recipe": ("name: x\ncandidate:\n  hub: a/b\nparents:\n  - recipe: r.yml\n", "only the candidate may be a mergekit recipe"),
    "name escapes": ("name: ../../etc\ncandidate:\n  hub: a/b\n", ":1: name: experiment name"),
    "model name escapes": ("name: x\ncandidate:\n  hub: a/b\n  name: ../up\n", ":2: candidate: name '../up'"),
    "mirror missing": ("name: x\ncandidate:\n  hub: a/b\ndata:\n  source: mirror\n  mirror: nowhere\n", ":6: data.mirror: folder"),
    "not yaml": ("name: x\ncandidate: [\n", "invalid YAML"),
    "duplicate names": ("name: x\ncandidate:\n  hub: a/b\nparents:\n  - hub: c/b\n", "model names must be unique"),
    "stats alpha": ("name: x\ncandidate:\n  hub: a/b\nstats:\n  alpha: 2\n", ":5: stats.alpha: Input should be less than or equal to 1"),
    "stats few resamples": ("name: x\ncandidate:\n  hub: a/b\nstats:\n  n_boot: 10\n", ":5: stats.n_boot: Input should be greater than or equal to 100"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    text, expected = BAD[case]
    cfg = write(tmp_path, text)
    code = main(["run", "--all", "--config", str(cfg)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and expected in err, err
    assert not (tmp_path / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.yaml"]


def test_cli_subprocess_exit_code(tmp_path):
    cfg = write(tmp_path, BAD["unknown key"][0])
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "run", "--all", "-c", str(cfg)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("candidate.revison: unknown key")


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", "--all", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_run_needs_all_or_benchmark(tmp_path, capsys):
    cfg = write(tmp_path, "name: x\ncandidate:\n  hub: a/b\n")
    assert main(["run", "--config", str(cfg)]) == 2
    assert "--all" in capsys.readouterr().err


def test_paths_relative_to_config_and_defaults(tmp_path):
    (tmp_path / "m").mkdir()
    cfg = write(tmp_path, "name: x\ncandidate:\n  path: m\n  chat_template: true\n")
    exp = load_experiment(cfg)
    assert exp.candidate.path == (tmp_path / "m").resolve()
    assert exp.benchmarks == ["ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"]
    assert exp.batch_size == "auto" and exp.limit is None
    assert exp.candidate.multiturn is True  # few-shot as multiturn goes with the chat template
    assert exp.candidate.trust_remote_code is False
    assert Path(exp.output.results) == (tmp_path / "results").resolve()


def test_repo_configs_are_valid():
    exp = load_experiment(REPO / "examples" / "demo.yaml")
    assert exp.use_mirror and exp.offline and len(exp.models) == 3
    real = load_experiment(REPO / "evalsuite.yaml")
    assert real.candidate.recipe is not None and real.candidate.chat_template is False
    revs = {p.hub: (p.revision, p.chat_template) for p in real.parents}
    assert revs == {
        "sam-paech/Delirium-v1": ("98dc2dad47af405013c0584d752504ca448bd8eb", False),
        "DreadPoor/Emu_Eggs-9B-Model_Stock": ("3fb1b2da72f3618f6943aedfd1600df27886792a", True),
    }


def test_user_error_is_raised_not_printed(tmp_path):
    cfg = write(tmp_path, BAD["limit zero"][0])
    with pytest.raises(UserError):
        load_experiment(cfg)


def test_stats_settings_defaults_and_the_options_generated_from_them(tmp_path):
    """One StatsSettings in the config; the commands' --boot/--seed/--alpha come from its fields
    and only what the command line gives goes over the experiment file's values."""
    import typer
    from typer.testing import CliRunner

    from evalsuite.cli.options import stats_options
    from evalsuite.config import StatsSettings

    assert StatsSettings().model_dump() == {"n_boot": 2000, "seed": 0, "alpha": 0.05, "level": 0.95}
    exp = load_experiment(write(tmp_path, "name: x\ncandidate:\n  hub: a/b\nstats:\n  n_boot: 500\n  seed: 3\n"))
    assert (exp.stats.n_boot, exp.stats.seed, exp.stats.alpha) == (500, 3, 0.05)
    assert load_experiment(write(tmp_path, "name: x\ncandidate:\n  hub: a/b\n")).stats == StatsSettings()

    got: list[StatsSettings] = []
    app = typer.Typer()

    @app.command()
    @stats_options("n_boot", "seed", "alpha", alpha={"max": 0.5})
    def cmd(name: str = typer.Option("n", "--name"), stats: StatsSettings = StatsSettings()) -> None:
        got.append(stats.over(exp.stats))

    runner = CliRunner()
    help_text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    for option in ("--boot", "--seed", "--alpha", "Bootstrap resamples.", "2000"):
        assert option in help_text
    assert "--n-boot" not in help_text and "--level" not in help_text
    assert runner.invoke(app, ["--seed", "7"]).exit_code == 0
    assert got[-1] == StatsSettings(n_boot=500, seed=7)  # the file's n_boot, the command line's seed
    assert runner.invoke(app, ["--boot", "2000"]).exit_code == 0
    assert got[-1] == StatsSettings(n_boot=2000, seed=3)  # given, though equal to the default
    assert runner.invoke(app, ["--boot", "99"]).exit_code == 2  # the field's bound, checked by click
    assert runner.invoke(app, ["--alpha", "0.6"]).exit_code == 2  # the command's narrower range
    bad = runner.invoke(app, ["--alpha", "0"])
    assert isinstance(bad.exception, UserError) and str(bad.exception) == "--alpha 0.0: input should be greater than 0"


def test_a_derived_experiment_is_validated_again(tmp_path):
    """What the sweep changes in an experiment (name, candidate, parents, samples) goes through the
    Experiment's validators, as a file would: a broken change is a UserError naming the rule."""
    from conftest import demo_config

    exp = load_experiment(demo_config(tmp_path))
    same = exp.derive()
    assert same == exp and same.source_file == exp.source_file
    subset = {"mmlu_pro": {"leaderboard_mmlu_pro": [0, 3]}}
    assert exp.limit is not None  # the demo's
    assert exp.derive(samples=subset, limit=None, name="demo-test.x.r1").samples == subset
    with pytest.raises(UserError, match="model names must be unique"):
        exp.derive(parents=[exp.candidate, *exp.parents])
    with pytest.raises(UserError, match="samples and limit exclude each other"):
        exp.derive(samples=subset)
    with pytest.raises(UserError, match="benchmarks: .*unknown benchmark 'mmlu'"):
        exp.derive(benchmarks=["mmlu"])
