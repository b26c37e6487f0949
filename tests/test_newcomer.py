"""Small things a new user meets (issue 23): command.sh's interpreter and temp folder, `score`
naming a model as its run did, the next step after a run, a sweep file given to `run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from evalsuite.run.jobs import JobSettings, Process

from test_jobs import job

REPO = Path(__file__).resolve().parent.parent


def test_command_sh_uses_this_interpreter_and_removes_its_temp_cache(tmp_path):
    j = job(settings=JobSettings(batch_size=8, harness="leaderboard"))
    p = Process(jobs=[j], datasets_cache=tmp_path / "cache")
    script = p.shell_script()
    assert sys.executable in script and "\npython " not in script and " python -m" not in script
    assert "trap 'rm -rf \"$HF_DATASETS_CACHE\"' EXIT" in script and "exec " not in script
    # the trap really removes the folder: the script's preamble run with a command that fails fast
    preamble = script.split("\n" + script.strip().splitlines()[-1])[0] + '\necho "$HF_DATASETS_CACHE"\nexit 3\n'
    out = subprocess.run(["sh", "-c", preamble], capture_output=True, text=True)
    made = Path(out.stdout.strip())
    assert out.returncode == 3 and str(made).startswith("/") and not made.exists()
    assert "exec " in Process(jobs=[j]).shell_script()  # no temp folder: lm-eval replaces the shell


def test_sweep_file_given_to_run_points_to_sweep(capsys):
    from evalsuite.cli.main import main

    assert main(["run", "--all", "--config", str(REPO / "examples" / "demo-sweep.yaml")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "evalsuite sweep --config" in line


def test_missing_run_names_the_finished_ones(demo_run, tmp_path, capsys):
    from evalsuite.cli.main import main

    cfg = tmp_path / "other.yaml"
    import re

    cfg.write_text(re.sub(r"(?m)^name: .*$", "name: never-run", demo_run.config.read_text(), count=1))
    assert main(["compare", "--config", str(cfg)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "no finished run of experiment 'never-run'" in line
    # the config file the run was made with, as its record holds it (a pytest-xdist worker's copy
    # of the shared demo keeps the original's path)
    import json

    record = json.loads((demo_run.exp.output.results / "experiments" / f"{demo_run.exp.name}.json").read_text())
    assert Path(record["config_file"]).name == demo_run.config.name
    assert f"{demo_run.exp.name} (--config {record['config_file']})" in line


def test_score_names_models_as_the_run_did(demo_run, capsys):
    import json

    from evalsuite.cli.main import main

    assert main(["score", str(demo_run.store.root / "jobs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["model"] for r in rows) == sorted(m.display_name for m in demo_run.exp.models)


def test_run_ends_with_next_steps_with_its_config():
    from evalsuite.cli.run import next_steps

    lines = next_steps(Path("examples/my demo.yaml"))
    assert lines[0].startswith("next") and all("--config 'examples/my demo.yaml'" in line for line in lines[1:])
    assert any("evalsuite compare" in line for line in lines)


def test_sweep_report_shows_parents_and_says_when_one_beats_the_best(demo_run, tmp_path):
    """The sweep report's parents come from their stored jobs (here: the demo's parents' BBH jobs);
    a parent whose objective beats the winner's is said so on the page."""
    from test_sweep import sweep_config

    from evalsuite.report.sweep import parent_scores, render
    from evalsuite.score import score_paths
    from evalsuite.sweep.config import load_sweep
    from evalsuite.sweep.record import CandidateRecord, Ranked, RoundRecord, SweepRecord

    import yaml

    config = sweep_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["output"]["results"] = str(demo_run.store.root)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    sw = load_sweep(config)
    jobs = demo_run.store.read_experiment(demo_run.exp.name).jobs
    parents = [m.display_name for m in demo_run.exp.parents]
    truth = {p: score_paths([demo_run.store.results_path(demo_run.store.finished_job(jobs[p]["bbh"]))])[0].value("BBH") for p in parents}
    best_parent = max(truth, key=truth.get)
    winner = truth[best_parent] - 5.0
    rec = SweepRecord(sweep=sw.name, strategy="full", plan="p", benchmarks=["bbh"], objective="average", shares=[1.0], alpha=0.05,
                      winner="x", runner_up="y", finished=1.0, rounds=[RoundRecord(round=1, share=1.0, alive=["x", "y"], best="x")],
                      parents={p: {"bbh": jobs[p]["bbh"]} for p in parents},
                      ranking=[Ranked(name="x", rank=1, objective=winner, scores={"bbh": winner}, documents=48, label="t=0.5"),
                               Ranked(name="y", rank=2, objective=winner - 1, scores={"bbh": winner - 1}, documents=48, label="t=0.25")])
    rec.candidates = [CandidateRecord(name=n, params={}, label=n, recipe_file="r") for n in ("x", "y")]
    sw = sw.model_copy(update={"candidates": sw.candidates[:2]})
    rec.candidates = [CandidateRecord(name=c.name, params=c.params, label=c.label(), recipe_file="r") for c in sw.candidates]
    for r, c in zip(rec.ranking, sw.candidates):
        r.name = c.name
    rec.winner, rec.runner_up = sw.candidates[0].name, sw.candidates[1].name
    got = parent_scores(sw, rec)
    assert {p: v["objective"] for p, v in got.items()} == truth
    html = render(sw, rec)
    assert 'id="parent-beats"' in html and f"{best_parent} ({truth[best_parent]:.2f})" in html
    assert f"{rec.winner} ({winner:.2f})" in html and all(p in html for p in parents)
