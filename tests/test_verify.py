"""`evalsuite verify`: a local run of one model against published details, on the demo's stored runs.

The "published details" here are the demo's own job files laid out as a leaderboard details repo
(`<org>__<model>/samples_<task>_<date>.jsonl` + `results_<date>.json`): lm-eval's EvaluationTracker
wrote them, so they are exactly the form the leaderboard published. No new lm-eval runs: the
`--limit` test replaces `run_experiment` and checks what it was asked to run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from evalsuite.cli.main import main

MERGE, PARENT_A, PARENT_B = "tiny-merge", "tiny-parent_a", "tiny-parent_b"


@pytest.fixture(scope="module")
def demo(demo_run, tmp_path_factory):
    """The demo's stored runs in a results folder of this module's own: `--against` a details
    folder imports it (evalsuite.published.importer) into the config's results folder, and the session's
    demo stays as the other tests expect it. Same config otherwise (paths made absolute)."""
    import yaml

    from conftest import DemoRun

    exp = demo_run.exp
    dest = tmp_path_factory.mktemp("verify")
    results = dest / "results"
    results.mkdir()
    for sub in ("jobs", "experiments", "nltk_data"):
        if (demo_run.store.root / sub).is_dir():
            shutil.copytree(demo_run.store.root / sub, results / sub, symlinks=True)
    data = yaml.safe_load(Path(demo_run.config).read_text())
    for key, spec in [("candidate", exp.candidate), *(((i, p) for i, p in enumerate(exp.parents)))]:
        entry = data["candidate"] if key == "candidate" else data["parents"][key]
        for field in ("path", "recipe"):
            if getattr(spec, field) is not None:
                entry[field] = str(getattr(spec, field))
    if exp.data.mirror is not None:
        data["data"]["mirror"] = str(exp.data.mirror)
    if exp.local_models:
        data["local_models"] = {k: str(v) for k, v in exp.local_models.items()}
    data["output"] = {"results": str(results), "reports": str(dest / "reports")}
    config = dest / "demo.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return DemoRun(config)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["verify", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _jobs(demo, model: str) -> dict:
    from evalsuite.published.sides import stored_jobs

    return stored_jobs(demo.store, demo.exp.name, model)


def details_folder(demo, model: str, dest: Path, org_model: str = "evalsuite-fixtures__tiny-merge") -> Path:
    """`model`'s stored samples and lm-eval's whole results file, laid out as a details repo:
    `dest/<org>__<model>/`. Returns `dest`."""
    folder = dest / org_model
    folder.mkdir(parents=True)
    for rec in _jobs(demo, model).values():
        job = demo.store.job_dir(rec.job_id)
        for rel in rec.samples_files:
            shutil.copy(job / rel, folder / Path(rel).name)
        whole = job / (rec.process_files[0] if rec.process_files else rec.results_file)
        date = Path(rec.results_file).name.removeprefix("results_")
        shutil.copy(whole, folder / f"results_{date}")
    return dest


def _samples_file(dest: Path, task: str) -> Path:
    (path,) = dest.glob(f"*/samples_{task}_*.jsonl")
    return path


def _edit_record(path: Path, doc_id: int, edit) -> dict:
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        if rec["doc_id"] == doc_id:
            edit(rec)
            lines[i] = json.dumps(rec, ensure_ascii=False)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return rec
    raise AssertionError(f"no doc_id {doc_id} in {path}")


def _verify_json(capsys, demo, *args) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, "--config", demo.config, "--format", "json", *args)
    return code, (json.loads(out) if out.strip() else {}), err


def _tasks(result: dict) -> dict[str, dict]:
    return {t["task"]: t for b in result["benchmarks"] for t in b["tasks"]}


# ---------------------------------------------------------------------------------------------


def test_against_its_own_results_passes(demo, capsys, tmp_path):
    ref = details_folder(demo, MERGE, tmp_path / "details")
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 0, (err, result.get("reasons"))
    assert result["passed"] and result["reasons"] == []
    assert [b["benchmark"] for b in result["benchmarks"]] == ["ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"]
    # the folder went through evalsuite.published.importer.import_details: stored as jobs, re-scored by lm-eval
    imp = result["reference_import"]
    assert imp["name"] == f"{MERGE}-published" and imp["verdicts_agree"] == imp["verdicts_compared"] > 0
    assert all(demo.store.finished_job(j) is not None for j in imp["jobs"].values())
    tasks = _tasks(result)
    assert len(tasks) == 39
    kinds = {t["kind"] for t in tasks.values()}
    assert kinds == {"multiple_choice", "generate_until"}
    for t in tasks.values():
        assert t["paired"] == t["local_docs"] == 2 and t["not_in_reference"] == 0
        assert t["docs_identical_share"] == 1.0 and t["doc_mismatch"] == []
        assert t["prompts_identical_share"] == 1.0 and t["prompt_diff"] is None
        assert t["verdicts_identical_share"] == 1.0
        if t["kind"] == "multiple_choice":
            assert t["max_abs_dll"] == 0.0 and t["picks_identical_share"] == 1.0
            assert t["pick_rule"].startswith("argmax ll/len(choice)" if "mmlu_pro" not in t["task"] else "argmax ll ")
        else:
            assert t["outputs_identical_share"] == 1.0
    for b in result["benchmarks"]:
        assert b["delta"] == 0.0 and b["ci_low"] == 0.0 and b["ci_high"] == 0.0 and b["passed"]
        assert b["local"] == b["reference"]
    # the table form says the same
    code, out, _ = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref)
    assert code == 0 and "verify: pass" in out and "leaderboard_bbh_boolean_expressions" in out


def test_without_the_importer_a_details_folder_is_read_as_it_is(demo, capsys, tmp_path, monkeypatch):
    """A checkout without evalsuite.published.importer reads a details folder directly (newest samples file
    per task); a repo id then needs a downloaded folder, said in one line."""
    import evalsuite.published.sides as vf

    monkeypatch.setattr(vf, "_importer", lambda: None)
    ref = details_folder(demo, MERGE, tmp_path / "details")
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 0, (err, result.get("reasons"))
    assert result["reference_import"] is None and result["reference"] == str(ref / "evalsuite-fixtures__tiny-merge")
    tasks = _tasks(result)
    assert len(tasks) == 39 and all(t["prompts_identical_share"] == 1.0 and t["verdicts_identical_share"] == 1.0 for t in tasks.values())
    assert all(b["delta"] == 0.0 for b in result["benchmarks"])
    code, _, err = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", "open-llm-leaderboard/x__y-details")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "needs the details importer" in err


def test_local_scores_are_the_stored_scores(demo, capsys, tmp_path):
    """The normalized local score of each benchmark is the one `evalsuite score` gives the run
    (all documents paired: the bootstrap's point estimate is the leaderboard aggregation)."""
    from evalsuite.results.files import load_results_as
    from evalsuite.score import score_model

    ref = details_folder(demo, MERGE, tmp_path / "details")
    code, result, _ = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 0
    jobs = _jobs(demo, MERGE)
    scores = score_model(load_results_as([demo.store.results_path(r) for r in jobs.values()], MERGE))
    by_id = {s.benchmark: s for s in scores.scores.values() if s.id == s.benchmark}
    for b in result["benchmarks"]:
        assert b["local"] == pytest.approx(by_id[b["benchmark"]].value, abs=1e-9)


def test_another_models_results_fail_and_name_the_benchmarks(demo, capsys, tmp_path):
    """parent_a's files presented as the merge's published details: same documents and prompts,
    other weights. With a tolerance of 0.5 points the benchmarks whose scores differ fail, by
    name. (With the default, one standard error, the demo's 2 documents per task give SEs of
    10-33 points: the scores pass, and the per-document differences are listed as notes.)"""
    ref = details_folder(demo, PARENT_A, tmp_path / "details")
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref, "--tolerance", "0.5")
    assert code == 1, err
    assert not result["passed"]
    failed = [b["benchmark"] for b in result["benchmarks"] if any(r.startswith("score difference") for r in b["reasons"])]
    assert failed == [b["benchmark"] for b in result["benchmarks"] if abs(b["delta"]) > 0.5] and failed
    # #19: per-document agreement fails too (another model), naming the benchmark and the figure
    assert not any(b["passed"] for b in result["benchmarks"] if not b["agreement_passed"])
    assert any(r.startswith("bbh: agreement: identical picks") for r in result["reasons"])
    assert all(any(r.startswith(f"{b}: score difference") and "outside ±0.50 (points)" in r for r in result["reasons"]) for b in failed)
    tasks = _tasks(result)
    assert all(t["docs_identical_share"] == 1.0 and t["prompts_identical_share"] == 1.0 for t in tasks.values())
    mc = [t for t in tasks.values() if t["kind"] == "multiple_choice"]
    assert all(t["max_abs_dll"] > 0 for t in mc)
    assert any(t["picks_identical_share"] < 1 for t in mc)
    assert all(t["outputs_identical_share"] < 1 for t in tasks.values() if t["task"].startswith("leaderboard_math"))
    assert any(n.startswith("math_hard: outputs differ on 14 of 14") for n in result["notes"])
    # the table names them too
    code, out, _ = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref, "--tolerance", "0.5")
    assert code == 1 and "verify: FAIL" in out
    for b in failed:
        assert f"{b}: score difference" in out
    assert "per-document differences" in out


def test_default_tolerance_is_the_standard_error(demo, capsys, tmp_path):
    ref = details_folder(demo, PARENT_A, tmp_path / "details")
    code, result, _ = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code in (0, 1)
    for b in result["benchmarks"]:
        assert b["tolerance_kind"] in ("SE (lm-eval)", "SE (bootstrap)")
        assert any(r.startswith("score difference") for r in b["reasons"]) == (abs(b["delta"]) > b["tolerance"] + 1e-9)
        assert b["passed"] == (not b["reasons"])
        assert (b["benchmark"] == "ifeval") == (b["tolerance_kind"] == "SE (bootstrap)")  # lm-eval gives no inst-level stderr
    assert (code == 0) == result["passed"]
    code, result, _ = _verify_json(capsys, demo, "--model", MERGE, "--against", ref, "--tolerance", "1000")
    assert all(b["tolerance"] == 1000 and b["tolerance_kind"] == "points" for b in result["benchmarks"])
    # #19: no score difference fails at 1000 points, but another model's documents do (exit 1)
    assert code == 1 and result["reasons"] and all(": agreement: " in r for r in result["reasons"])


def test_a_changed_prompt_is_shown_as_a_diff_and_fails(demo, capsys, tmp_path):
    ref = details_folder(demo, MERGE, tmp_path / "details")
    task = "leaderboard_bbh_boolean_expressions"

    # the documented minimal edit: one word of doc 1's prompt (every choice's arg_0), and its prompt_hash
    def edit(rec):
        for args in rec["arguments"].values():
            assert "Evaluate the result" in args["arg_0"]
            args["arg_0"] = args["arg_0"].replace("Evaluate the result", "Evaluate the value", 1)
        rec["prompt_hash"] = hashlib.sha256(rec["arguments"]["gen_args_0"]["arg_0"].encode("utf-8")).hexdigest()

    _edit_record(_samples_file(ref, task), 1, edit)
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 1, err
    t = _tasks(result)[task]
    assert t["prompts_identical"] == 1 and t["prompt_mismatch"] == [1] and t["prompt_diff_doc"] == 1
    assert "-Evaluate the value" in t["prompt_diff"] and "+Evaluate the result" in t["prompt_diff"]
    assert t["prompt_diff"].startswith("--- reference\n+++ local\n")
    assert t["docs_identical"] == 2  # the document itself is unchanged
    assert result["reasons"] == [f"bbh: {task}: prompts differ on 1 of 2 documents (first: doc_id 1)"]
    assert all(tt["passed"] for name, tt in _tasks(result).items() if name != task)
    code, out, _ = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref)
    assert code == 1
    assert f"{task}: first differing prompt, doc_id 1:" in out and "+Evaluate the result" in out


def test_a_doc_hash_mismatch_is_counted_and_shown(demo, capsys, tmp_path):
    ref = details_folder(demo, MERGE, tmp_path / "details")
    task = "leaderboard_musr_team_allocation"
    _edit_record(_samples_file(ref, task), 0, lambda rec: rec.update(doc_hash="0" * 64))
    code, result, _ = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    t = _tasks(result)[task]
    assert t["docs_identical"] == 1 and t["docs_identical_share"] == 0.5 and t["doc_mismatch"] == [0]
    assert t["paired"] == 2  # paired by doc_id: counted, never dropped
    # the same prompt and answers: a differing hash alone is shown, not a failure
    assert code == 0 and t["prompts_identical"] == 2
    code, out, _ = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref)
    assert code == 0 and f"{task}: doc_hash differs on 1 document(s): doc_id 0" in out


def test_reference_missing_a_benchmark_fails(demo, capsys, tmp_path):
    """Job folders without GPQA's: the benchmark fails, named, and the others are still checked."""
    ref = tmp_path / "jobs"
    ref.mkdir()
    for bench, rec in _jobs(demo, MERGE).items():
        if bench != "gpqa":
            shutil.copytree(demo.store.job_dir(rec.job_id), ref / rec.job_id)
    code, result, _ = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 1
    gpqa = next(b for b in result["benchmarks"] if b["benchmark"] == "gpqa")
    assert not gpqa["passed"] and gpqa["reasons"][0].startswith("no samples of GPQA in the reference")
    assert [r.split(":")[0] for r in result["reasons"]] == ["gpqa"]


def test_job_folders_as_the_reference(demo, capsys, tmp_path):
    """A folder of job folders (another results store's jobs) works too."""
    ref = tmp_path / "jobs"
    ref.mkdir()
    for rec in _jobs(demo, MERGE).values():
        shutil.copytree(demo.store.job_dir(rec.job_id), ref / rec.job_id)
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 0, (err, result.get("reasons"))
    assert all(t["prompts_identical_share"] == 1.0 for t in _tasks(result).values())


def test_limit_runs_only_that_model_with_the_limit(demo, capsys, tmp_path, monkeypatch):
    """--limit N re-runs the model through run_experiment (replaced here: no lm-eval run) on an
    experiment of its own, with `limit: N`, and checks the jobs that run stored."""
    import evalsuite.run.runner as runner
    from evalsuite.run.events import RunOutcome

    seen = []

    def fake_run(exp, *, console=None, quiet=False, importer=None):
        seen.append(exp)
        name = exp.candidate.display_name
        from evalsuite.published.sides import stored_runs

        return RunOutcome(experiment=exp.name, models=[], done={name: _jobs(demo, name)},
                          study=stored_runs(demo.store, demo.exp.name, name))

    monkeypatch.setattr(runner, "run_experiment", fake_run)
    ref = details_folder(demo, PARENT_A, tmp_path / "details", "evalsuite-fixtures__parent_a")
    code, result, err = _verify_json(capsys, demo, "--model", PARENT_A, "--against", ref, "--limit", "1", "--quiet")
    assert code == 0, (err, result.get("reasons"))
    (exp,) = seen
    assert exp.limit == 1 and [m.display_name for m in exp.models] == [PARENT_A] and exp.candidate.fixture == "parent_a"
    assert exp.name == f"{demo.exp.name}-verify-{PARENT_A}" and exp.output.results == demo.exp.output.results
    assert result["limit"] == 1 and result["experiment"] == exp.name


def test_limit_overrides(demo, tmp_path):
    from evalsuite.config import load_experiment
    from evalsuite.published.sides import limit_overrides

    exp = demo.exp
    # a parent with a chat template: the candidate of a one-model experiment, settings kept
    ov, how = limit_overrides(exp, PARENT_B, 3, None)
    e = load_experiment(demo.config, ov)
    assert [m.display_name for m in e.models] == [PARENT_B] and e.candidate.chat_template and e.limit == 3
    # the merged candidate: from its merged folder when built, else the whole experiment
    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    ov, how = limit_overrides(exp, MERGE, 3, merged)
    e = load_experiment(demo.config, ov)
    assert [m.display_name for m in e.models] == [MERGE] and e.candidate.path == merged and e.candidate.recipe is None
    assert e.candidate.dtype == exp.candidate.dtype
    ov, how = limit_overrides(exp, MERGE, 3, tmp_path / "not-built")
    e = load_experiment(demo.config, ov)
    assert len(e.models) == 3 and e.limit == 3 and "whole experiment" in how
    assert e.name != exp.name  # the experiment's own record is left alone


def test_details_repo_name():
    from evalsuite.published.checks import parse_tolerance
    from evalsuite.published.sides import details_repo

    assert details_repo("meta-llama/Meta-Llama-3-8B-Instruct") == "open-llm-leaderboard/meta-llama__Meta-Llama-3-8B-Instruct-details"
    assert parse_tolerance("se") == "se" and parse_tolerance("0.5") == 0.5


@pytest.mark.parametrize("args, words", [
    (["--model", "nope", "--against", "."], "model 'nope' is not in experiment"),
    (["--model", MERGE], "has no hub id"),
    (["--model", MERGE, "--against", "/nonexistent/details"], "no such folder"),
    (["--model", MERGE, "--against", ".", "--tolerance", "wide"], "--tolerance 'wide'"),
    (["--model", MERGE, "--against", ".", "--limit", "0"], "--limit 0"),
])
def test_bad_input_is_one_line_and_exit_2(demo, capsys, args, words):
    code, out, err = run_cli(capsys, "--config", demo.config, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


def test_empty_folder_is_bad_input(demo, capsys, tmp_path):
    code, _, err = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"error: {tmp_path}: no lm-eval ")


# ---------------------------------------------------------------------------------------------
# #19: agreement decides, --against first, one model's details on every path


def test_another_model_fails_on_agreement_with_the_default_tolerance(demo, capsys, tmp_path):
    """parent_a's files as the merge's details: identical documents and prompts, scores inside one
    SE (2 documents per task), but the per-document agreement fails: exit 1, naming the
    benchmark and the figure."""
    ref = details_folder(demo, PARENT_A, tmp_path / "details")
    code, result, err = _verify_json(capsys, demo, "--model", MERGE, "--against", ref)
    assert code == 1, err
    agreement = [r for r in result["reasons"] if ": agreement: " in r]
    assert agreement and all(r.split(":", 1)[0] in {b["benchmark"] for b in result["benchmarks"]} for r in agreement)
    bbh = next(b for b in result["benchmarks"] if b["benchmark"] == "bbh")
    assert not bbh["agreement_passed"] and bbh["picks_identical_share"] < 0.9
    assert any(r.startswith("bbh: agreement: identical picks") and "at most 4 may differ" in r for r in agreement)
    math = next(b for b in result["benchmarks"] if b["benchmark"] == "math_hard")
    assert math["outputs_identical_share"] == 0 and any(r.startswith("math_hard: agreement: identical outputs 0%") for r in agreement)
    code, out, _ = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref)
    assert code == 1 and "verify: FAIL" in out and "bbh: agreement: identical picks" in out


def test_against_is_checked_before_the_limit_run(demo, capsys, tmp_path, monkeypatch):
    import evalsuite.run.runner as runner

    calls = []
    monkeypatch.setattr(runner, "run_experiment", lambda *a, **k: calls.append(a))
    before = sorted(p.name for p in demo.store.root.rglob("*"))
    for against in ("/nonexistent/details", str(tmp_path / "file.txt")):
        (tmp_path / "file.txt").write_text("x")
        code, _, err = run_cli(capsys, "--config", demo.config, "--model", PARENT_A, "--against", against, "--limit", "1", "--quiet")
        assert code == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1
    assert calls == [] and sorted(p.name for p in demo.store.root.rglob("*")) == before


def test_a_folder_of_several_models_is_refused_on_every_path(demo, capsys, tmp_path, monkeypatch):
    import evalsuite.run.runner as runner
    import evalsuite.published.sides as vf

    ref = details_folder(demo, MERGE, tmp_path / "details", "someone__tiny-merge")
    details_folder(demo, PARENT_A, ref, "someone__parent_a")
    calls = []
    monkeypatch.setattr(runner, "run_experiment", lambda *a, **k: calls.append(a))
    before = sorted(p.name for p in demo.store.root.rglob("*"))
    for extra in ((), ("--limit", "1", "--quiet")):  # through verify's import, and before a --limit run
        code, _, err = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref, *extra)
        assert code == 2 and "samples of several models" in err and len(err.strip().splitlines()) == 1
    assert calls == [] and sorted(p.name for p in demo.store.root.rglob("*")) == before
    # read directly (no importer), and by `evalsuite import`
    monkeypatch.setattr(vf, "_importer", lambda: None)
    code, _, err = run_cli(capsys, "--config", demo.config, "--model", MERGE, "--against", ref)
    assert code == 2 and "samples of several models" in err
    code = main(["import", str(ref), "--name", "two-models", "--config", str(demo.config)])
    err = capsys.readouterr().err
    assert code == 2 and "details of several models" in err
    assert not demo.store.experiment_file("two-models").exists()


@pytest.mark.slow
def test_the_same_model_at_another_batch_size_passes(demo, capsys, tmp_path):
    """Noise only: parent_a run again at batch size 1 (the demo's: 8) on BBH and IFEval, in one
    lm-eval process of two benchmarks instead of six (other batch neighbours), verified against the
    demo's parent_a jobs: every agreement figure within its threshold, exit 0."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import demo_config

    config = demo_config(tmp_path / "bs1", name="verify-bs1", **{"batch_size: 8": "batch_size: 1"})
    text = config.read_text()
    head, rest = text.split("candidate:\n", 1)
    rest = rest.split("benchmarks:", 1)[1].split("\n", 1)[1]
    config.write_text(head + "candidate:\n  fixture: parent_a\nparents: []\nbenchmarks: [bbh, ifeval]\n" + rest)
    assert main(["run", "--all", "--config", str(config), "--quiet"]) == 0
    capsys.readouterr()  # the run's own table
    ref = tmp_path / "ref"
    for rec in _jobs(demo, PARENT_A).values():
        shutil.copytree(demo.store.job_dir(rec.job_id), ref / rec.job_id, symlinks=True)
    code, out, err = run_cli(capsys, "--config", config, "--model", PARENT_A, "--against", ref, "--format", "json")
    result = json.loads(out)
    assert code == 0, (err, result["reasons"])
    assert [b["benchmark"] for b in result["benchmarks"]] == ["ifeval", "bbh"]
    assert all(b["agreement_passed"] and b["outputs_judged"] for b in result["benchmarks"])
    bbh = result["benchmarks"][1]
    assert bbh["picks_identical_share"] >= 0.9 and bbh["dll_median"] <= 0.15
