"""`evalsuite import` on genuine lm-eval 0.4.13 output of the tiny fixture model.

One real run (the session demo's candidate: `evalsuite run`, harness leaderboard, all six
benchmarks in one lm-eval process, limit 2) laid out as the leaderboard's details repos are (`<org>__<model>/samples_<task>_<date>.jsonl` +
`results_<date>.json`, the whole results file of the process), and one `lm_eval.simple_evaluate`
run whose in-memory samples are written as JSON lines. Every damaged folder below is made from
those genuine files, and what is changed is stated where it is changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

BENCHMARKS = ["ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"]  # the demo's candidate's six
ORG_MODEL = "tiny-org__tiny-model"


# ---------------------------------------------------------------------------------------------
# fixtures: one genuine run, laid out as a details repo


class Run:
    def __init__(self, base: Path):
        self.base = base
        self.results = base / "results"
        self.job_dirs = sorted(p for p in (self.results / "jobs").iterdir() if not p.name.startswith("."))
        self.date = next(self.results.rglob("process_results_*.json")).name[len("process_results_"):-len(".json")]
        self.experiment = next((self.results / "experiments").glob("*.json")).stem

    def job_dir(self, bench: str) -> Path:
        return next(p for p in self.job_dirs if f"--{bench}--" in p.name)


@pytest.fixture(scope="module")
def real_run(demo_run, tmp_path_factory) -> Run:
    """The session demo's candidate (one lm-eval process over all six benchmarks, limit 2): its job
    folders, experiment record, task overrides, datasets cache and NLTK data, copied (no lm-eval)."""
    base = tmp_path_factory.mktemp("import_run")
    src, dest = demo_run.store.root, base / "results"
    record = demo_run.store.read_experiment(demo_run.exp.name)
    for job_id in record.jobs[record.candidate.name].values():
        shutil.copytree(src / "jobs" / job_id, dest / "jobs" / job_id)
    for sub in ("experiments", "tasks", "datasets", "nltk_data"):
        shutil.copytree(src / sub, dest / sub, symlinks=True)
    for other in (dest / "experiments").glob("*.json"):
        if other.stem != demo_run.exp.name:
            other.unlink()
    return Run(base)


def details_layout(run: Run, dest: Path) -> Path:
    """The run's files as a details repo holds them: `<org>__<model>/samples_*` + `results_<date>.json`
    (= the process's whole results file, `process_results_<date>.json` in each job folder)."""
    folder = dest / ORG_MODEL
    folder.mkdir(parents=True)
    for job in run.job_dirs:
        for f in job.rglob("samples_*.jsonl"):
            shutil.copyfile(f, folder / f.name)
    whole = next(run.job_dirs[0].rglob("process_results_*.json"))
    shutil.copyfile(whole, folder / whole.name.removeprefix("process_"))
    return dest


@pytest.fixture(scope="module")
def details(real_run, tmp_path_factory) -> Path:
    return details_layout(real_run, tmp_path_factory.mktemp("details"))


def _import(source: Path | str, results: Path, name: str = "pub", *extra: str, capsys=None) -> tuple[int, str, str]:
    from evalsuite.cli.main import main

    cwd = os.getcwd()
    results.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(results.parent)  # no --config: ./results
    try:
        assert results.name == "results"
        rc = main(["import", str(source), "--name", name, *extra])
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr() if capsys else ("", "")
    return rc, out, err


def _row(scores) -> dict:
    (s,) = scores
    d = s.to_json_dict()
    return {k: v for k, v in d.items() if k not in ("model", "sources")}


def _listing(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


# ---------------------------------------------------------------------------------------------
# genuine details: same numbers, full agreement, stored as ordinary jobs


@pytest.fixture(scope="module")
def imported(details, tmp_path_factory):
    from evalsuite.published.importer import import_details
    from evalsuite.results.store import Store

    store = Store(tmp_path_factory.mktemp("imp") / "results")
    return store, import_details(str(details), "pub", store)


def test_import_gives_the_run_s_numbers_and_full_agreement(real_run, imported):
    from evalsuite.score import score_paths

    store, result = imported
    assert sorted(result.jobs) == sorted(BENCHMARKS)
    assert result.identity.startswith("sha256:") and not result.reused and result.run == real_run.date
    direct = score_paths(real_run.job_dirs)
    stored = score_paths([store.job_dir(r.job_id) for r in result.jobs.values()])
    assert _row(stored) == _row(direct)
    assert stored[0].model == "pub"
    assert len(result.agreement) == 24 + 3 + 7 + 1 + 3 + 1
    for task, a in result.agreement.items():
        assert a.records == 2 and a.compared > 0 and a.agree == a.compared, (task, a)
        assert not a.filled and not a.notes


def test_stored_jobs_are_ordinary_jobs(real_run, imported):
    from evalsuite.study import read_study
    from evalsuite.results.store import Store

    store, result = imported
    for bench, rec in result.jobs.items():
        assert Store(store.root).finished_job(rec.job_id) == rec
        assert rec.identity["source"] == "published" and rec.identity["model"] == result.identity
        assert rec.identity["lm_eval"] == "0.4.13"
        data = json.loads(store.results_path(rec).read_text())
        assert data["model_name"] == "pub" and data["config"]["limit"] == 2
        genuine = json.loads(next(real_run.job_dir(bench).rglob(f"results_{real_run.date}.json")).read_text())
        for key in ("results", "groups", "group_subtasks", "versions", "n-samples", "higher_is_better"):
            assert data.get(key) == genuine.get(key), (bench, key)
        line = json.loads((store.job_dir(rec.job_id) / rec.samples_files[0]).open().readline())
        assert list(line)[:11] == ["doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter",
                                   "metrics", "doc_hash", "prompt_hash", "target_hash"]
        assert set(line["arguments"]) == {"gen_args_0"} or all(k.startswith("gen_args_") for k in line["arguments"])
    study = read_study(store.root, "pub")
    assert study.candidate == "pub" and sorted(study.docs["pub"]) == sorted(BENCHMARKS)
    exp = json.loads(store.experiment_file("pub").read_text())
    assert exp["models"][0]["published"] is True and exp["models"][0]["identity"] == result.identity


def test_reimport_reuses_the_jobs(details, imported):
    from evalsuite.published.importer import import_details

    store, first = imported
    again = import_details(str(details), "pub", store)
    assert again.reused and {b: r.job_id for b, r in again.jobs.items()} == {b: r.job_id for b, r in first.jobs.items()}
    assert {t: a.agree for t, a in again.agreement.items()} == {t: a.agree for t, a in first.agreement.items()}


def test_json_row_equals_evalsuite_score(details, tmp_path, capsys):
    from evalsuite.cli.main import main
    from evalsuite.results.store import Store

    results = tmp_path / "results"
    rc, out, err = _import(details, results, "pub", "--format", "json", capsys=capsys)
    assert rc == 0, err
    exp = Store(results).read_experiment("pub")
    folders = [f"results/jobs/{exp.jobs['pub'][b]}" for b in exp.jobs["pub"]]  # as the import names them (cwd-relative)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["score", *folders, "--format", "json"]) == 0
    finally:
        os.chdir(cwd)
    scored, _ = capsys.readouterr()
    assert json.loads(out) == json.loads(scored) and out == scored
    assert "limit" in json.loads(out)[0] and json.loads(out)[0]["limit"] == 2
    assert "agreement: leaderboard_ifeval: 8/8" in err


def test_table_output(details, tmp_path, capsys):
    rc, out, err = _import(details, tmp_path / "results", "pub", capsys=capsys)
    assert rc == 0, err
    assert "BBH" in out and "Per-sample agreement" in out and "leaderboard_gpqa_main" in out


def test_run_option_picks_an_older_run(details, tmp_path, real_run):
    """Two runs side by side: the genuine files, and the same files under an older date id."""
    from evalsuite.published.importer import import_details
    from evalsuite.results.store import Store

    two = tmp_path / "two"
    shutil.copytree(details, two)
    older = "2020-01-01T00-00-00.000001"
    for f in list((two / ORG_MODEL).iterdir()):
        shutil.copyfile(f, f.with_name(f.name.replace(real_run.date, older)))
    store = Store(tmp_path / "results")
    newest = import_details(str(two), "pub", store)
    assert newest.run == real_run.date
    old = import_details(str(two), "pub", store, run=older)
    assert old.run == older and old.identity != newest.identity
    assert all(store.results_path(r).name == f"results_{older}.json" for r in old.jobs.values())


# ---------------------------------------------------------------------------------------------
# a MATH run of the older parser, and HTML in outputs


def _rewrite(path: Path, edit) -> None:
    lines = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    path.write_text("".join(json.dumps(edit(r), ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")


def test_old_math_parser_rescored_to_both(details, tmp_path, real_run):
    """A MATH file without `exact_match_original` and without task versions. Removed, and only
    these: every record's `exact_match_original` field (and its name in the record's `metrics`
    list), the results file's `exact_match_original,none` / `exact_match_original_stderr,none`
    values, and the MATH tasks' version (`versions.<task>`, `configs.<task>.metadata.version`).
    Its stored `process_results` is still 0.4.13's (it calls Math-Verify's `verify(`), so its
    `exact_match` is compared with the recomputed Math-Verify verdict (as for the HF fork's main)
    and the original parser is filled in, equal to what the real run computed. GENUINE files of an
    original-parser lm-eval (0.4.8 / 0.4.5): `test_genuine_old_math_*` below."""
    from evalsuite.published.importer import MATH_OLD_NOTE, import_details
    from evalsuite.score import score_paths
    from evalsuite.results.store import Store

    old = tmp_path / "old"
    shutil.copytree(details, old)
    folder = old / ORG_MODEL
    genuine = {}
    for f in folder.glob("samples_leaderboard_math_*.jsonl"):
        genuine[f.name] = [json.loads(l)["exact_match_original"] for l in f.read_text().splitlines()]

        def strip(r):
            r.pop("exact_match_original")
            r["metrics"] = [m for m in r["metrics"] if m != "exact_match_original"]
            return r
        _rewrite(f, strip)
    res = next(folder.glob("results_*.json"))
    data = json.loads(res.read_text())
    for task in list(data["results"]):
        if task.startswith("leaderboard_math_") and task != "leaderboard_math_hard":
            data["results"][task].pop("exact_match_original,none")
            data["results"][task].pop("exact_match_original_stderr,none")
            data["versions"].pop(task)
            data["configs"][task]["metadata"].pop("version")
    res.write_text(json.dumps(data, indent=2))

    store = Store(tmp_path / "results")
    result = import_details(str(old), "old", store)
    rec = result.jobs["math_hard"]
    for rel in rec.samples_files:
        path = store.job_dir(rec.job_id) / rel
        lines = [json.loads(l) for l in path.read_text().splitlines()]
        assert [l["exact_match_original"] for l in lines] == genuine[path.name]
        assert all("exact_match" in l for l in lines)
    for task, a in result.agreement.items():
        if task.startswith("leaderboard_math_"):
            assert MATH_OLD_NOTE not in a.notes and a.filled == ["exact_match_original"] and a.agree == a.compared == 2
    mine = score_paths([store.job_dir(rec.job_id)])[0]
    direct = score_paths([real_run.job_dir("math_hard")])[0]
    assert {k: s.value for k, s in mine.scores.items()} == {k: s.value for k, s in direct.scores.items()}
    assert set(mine.scores) == {"MATH Lvl 5", "MATH Lvl 5 (original parser)"}


def test_html_in_outputs_is_data(details, tmp_path):
    """One MATH response and one IFEval response get a `<script>` prefix (resps and filtered_resps)."""
    from evalsuite.published.importer import import_details
    from evalsuite.results.store import Store

    src = tmp_path / "html"
    shutil.copytree(details, src)
    payload = "<script>alert('x')</script>&lt;b&gt;"
    for pattern in ("samples_leaderboard_math_algebra_hard_*.jsonl", "samples_leaderboard_ifeval_*.jsonl"):
        f = next((src / ORG_MODEL).glob(pattern))

        def inject(r):
            if r["doc_id"] == 0:
                r["resps"] = [[payload + r["resps"][0][0]]]
                r["filtered_resps"] = [payload + r["filtered_resps"][0]]
            return r
        _rewrite(f, inject)
    store = Store(tmp_path / "results")
    result = import_details(str(src), "html", store)
    for bench in ("math_hard", "ifeval"):
        rec = result.jobs[bench]
        text = "".join((store.job_dir(rec.job_id) / f).read_text() for f in rec.samples_files)
        lines = [json.loads(l) for l in text.splitlines()]
        assert any(l["filtered_resps"][0].startswith(payload) and l["resps"][0][0].startswith(payload) for l in lines)
    assert result.agreement["leaderboard_math_algebra_hard"].agree == 4


# ---------------------------------------------------------------------------------------------
# the in-memory record form (simple_evaluate(...)["samples"])


@pytest.fixture(scope="module")
def in_memory(real_run, tmp_path_factory) -> Path:
    """lm-eval's Python API on the same tiny model and fixture data (GPQA + IFEval, limit 2); its
    samples written as JSON lines as they are in memory (lists and numbers), its results dict as
    the results file."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    exp = json.loads(next((real_run.results / "experiments").glob("*.json")).read_text())
    model = exp["models"][0]["pretrained"]
    overrides = next(p for p in (real_run.results / "tasks").iterdir() if p.is_dir())
    datasets_cache = next(p for p in (real_run.results / "datasets").iterdir() if p.is_dir())
    os.environ["NLTK_DATA"] = str(real_run.results / "nltk_data")
    os.environ["HF_DATASETS_CACHE"] = str(datasets_cache)
    import datasets.config as ds_config

    old_cache = ds_config.HF_DATASETS_CACHE
    ds_config.HF_DATASETS_CACHE = Path(datasets_cache)
    try:
        out = lm_eval.simple_evaluate(
            model="hf", model_args=f"pretrained={model},dtype=float32", tasks=["leaderboard_gpqa", "leaderboard_ifeval"],
            limit=2, log_samples=True, batch_size=8, device="cpu", task_manager=TaskManager(include_path=str(overrides)))
    finally:
        ds_config.HF_DATASETS_CACHE = old_cache
    samples = out.pop("samples")
    date = dt.datetime.now().isoformat().replace(":", "-")
    folder = tmp_path_factory.mktemp("in_memory") / ORG_MODEL
    folder.mkdir()
    for task, recs in samples.items():
        with (folder / f"samples_{task}_{date}.jsonl").open("w", encoding="utf-8") as fh:
            for r in recs:
                fh.write(json.dumps(r, default=handle_non_serializable, ensure_ascii=False) + "\n")
    (folder / f"results_{date}.json").write_text(json.dumps(out, default=handle_non_serializable, indent=2))
    return folder.parent


def test_in_memory_form(in_memory, tmp_path):
    from evalsuite.published.importer import import_details
    from evalsuite.score import score_paths
    from evalsuite.results.store import Store

    first = json.loads(next(in_memory.rglob("samples_leaderboard_gpqa_main_*.jsonl")).open().readline())
    assert isinstance(first["arguments"], list) and isinstance(first["filtered_resps"][0][0], float)  # the in-memory form
    store = Store(tmp_path / "results")
    result = import_details(str(in_memory), "mem", store)
    assert sorted(result.jobs) == ["gpqa", "ifeval"]
    for task, a in result.agreement.items():
        assert a.compared > 0 and a.agree == a.compared, (task, a)
    stored = score_paths([store.job_dir(r.job_id) for r in result.jobs.values()])
    assert _row(stored) == _row(score_paths([in_memory]))
    rec = result.jobs["gpqa"]
    line = json.loads((store.job_dir(rec.job_id) / rec.samples_files[0]).open().readline())
    assert set(line["arguments"]) == {"gen_args_0", "gen_args_1", "gen_args_2", "gen_args_3"}
    assert all(isinstance(x, str) for pair in line["filtered_resps"] for x in pair)  # EvaluationTracker form


# ---------------------------------------------------------------------------------------------
# bad input: one line, exit 2, the results folder unchanged


def _cut_last_line(folder: Path) -> None:
    f = next(folder.glob("samples_leaderboard_gpqa_main_*.jsonl"))
    data = f.read_bytes().rstrip(b"\n")
    f.write_bytes(data[: len(data) - 40])


def _drop_a_document(folder: Path) -> None:
    f = next(folder.glob("samples_leaderboard_bbh_snarks_*.jsonl"))
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join(lines[:-1]))


def _mix_dates(folder: Path) -> None:
    f = next(folder.glob("samples_leaderboard_bbh_snarks_*.jsonl"))
    f.rename(f.with_name("samples_leaderboard_bbh_snarks_2020-01-01T00-00-00.000001.jsonl"))


def _unknown_task(folder: Path) -> None:
    f = next(folder.glob("samples_leaderboard_gpqa_main_*.jsonl"))
    shutil.copyfile(f, f.with_name(f.name.replace("leaderboard_gpqa_main", "arc_easy")))


@pytest.mark.parametrize("damage, words", [
    (_cut_last_line, "truncated or unparsable record"),
    (_drop_a_document, "documents missing"),
    (_mix_dates, "runs of different dates mixed"),
    (_unknown_task, "unknown task 'arc_easy'"),
])
def test_damaged_folder_is_refused_and_nothing_stored(details, tmp_path, capsys, damage, words, imported):
    src = tmp_path / "bad"
    shutil.copytree(details, src)
    damage(src / ORG_MODEL)
    results = tmp_path / "results"
    shutil.copytree(imported[0].root, results)  # a results folder that already holds an import
    before = _listing(results)
    rc, out, err = _import(src, results, "other", capsys=capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert str(src / ORG_MODEL) in lines[0]  # names the file
    assert _listing(results) == before


def test_hub_unreachable_is_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "import",
                           "open-llm-leaderboard/nobody__nothing-details", "--name", "x"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: open-llm-leaderboard/nobody__nothing-details: not in the local hub cache and the hub is offline (HF_HUB_OFFLINE=1)"]
    assert not (tmp_path / "results").exists()


def test_name_of_an_evalsuite_run_is_refused(real_run, details, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(real_run.results / "experiments", results / "experiments")
    before = _listing(results)
    rc, _, err = _import(details, results, real_run.experiment, capsys=capsys)
    assert rc == 2 and "is an evalsuite run, not an import" in err and len(err.strip().splitlines()) == 1
    assert _listing(results) == before


# ---------------------------------------------------------------------------------------------
# GENUINE MATH output of older lm-eval releases (task version 2.0 / 1.0: the original parser's
# `exact_match` only): tests/fixtures_import/lm_eval-<version>-math/, kept unmodified (README.md
# there says how they were made)

FIXTURES_IMPORT = REPO / "tests" / "fixtures_import"
OLD_MATH = {"0.4.8": 2.0, "0.4.5": 1.0}  # lm-eval release -> its MATH task version
MV, ORIG = "MATH Lvl 5", "MATH Lvl 5 (original parser)"
MATH_LEAVES = [f"leaderboard_math_{s}_hard" for s in ("algebra", "counting_and_prob", "geometry", "intermediate_algebra",
                                                      "num_theory", "prealgebra", "precalculus")]


def _old_math_folder(version: str) -> Path:
    return FIXTURES_IMPORT / f"lm_eval-{version}-math"


def _old_math_results_file(version: str) -> Path:
    (path,) = sorted(_old_math_folder(version).glob("*/results_*.json"))
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


@pytest.fixture(scope="module", params=sorted(OLD_MATH))
def old_math(request, tmp_path_factory):
    """(version, store, import result) of the genuine folder, imported into a fresh results folder."""
    from evalsuite.published.importer import import_details
    from evalsuite.results.store import Store

    store = Store(tmp_path_factory.mktemp(f"old_math_{request.param}") / "results")
    return request.param, store, import_details(str(_old_math_folder(request.param)), f"old-{request.param}", store)


def test_genuine_old_math_fixture_is_what_it_claims(old_math):
    """The files are an old release's: MATH task version <= 2, original parser, exact_match only
    (0.4.5's records have no `metrics` and no `filter` field at all)."""
    version = old_math[0]
    data = json.loads(_old_math_results_file(version).read_text())
    assert "lm_eval_version" not in data and "groups" not in data  # both appear only from 0.4.9.1
    assert sorted(t for t in data["results"] if t != "leaderboard_math_hard") == MATH_LEAVES
    for t in MATH_LEAVES:
        assert data["versions"][t] == OLD_MATH[version]
        assert "is_equiv(" in data["configs"][t]["process_results"] and "verify(" not in data["configs"][t]["process_results"]
        assert "exact_match,none" in data["results"][t] and "exact_match_original,none" not in data["results"][t]
        assert data["n-samples"][t]["effective"] == 2
    samples = sorted(_old_math_folder(version).glob("*/samples_leaderboard_math_*.jsonl"))
    assert len(samples) == 7
    for f in samples:
        for r in _jsonl(f):
            assert "exact_match" in r and "exact_match_original" not in r
            assert r.get("metrics", "absent") == (["exact_match"] if version == "0.4.8" else "absent")


def test_genuine_old_math_rescored_with_full_agreement(old_math):
    """Every record re-scored by 0.4.13's MATH code: the recorded exact_match (original parser)
    equals the recomputed exact_match_original on every record; Math-Verify's is filled in."""
    from evalsuite.published.importer import MATH_OLD_NOTE
    from evalsuite.results.store import Store

    version, store, result = old_math
    assert sorted(result.jobs) == ["math_hard"] and not result.reused and result.lm_eval == "0.4.13"
    assert list(result.agreement) == MATH_LEAVES
    for task, a in result.agreement.items():
        assert (a.records, a.compared, a.agree) == (2, 2, 2), (task, a)
        assert a.notes == [MATH_OLD_NOTE] and a.filled == ["exact_match"] and not a.mismatches, (task, a)
    rec = result.jobs["math_hard"]
    assert Store(store.root).finished_job(rec.job_id) == rec
    assert rec.identity["lm_eval"] == "0.4.13" and rec.identity["source"] == "published"
    # the stored samples: exact_match_original == the genuine exact_match, record by record
    genuine = {}
    for f in _old_math_folder(version).glob("*/samples_leaderboard_math_*.jsonl"):
        task = f.name[len("samples_"):].rsplit("_", 1)[0]
        genuine[task] = {r["doc_id"]: r for r in _jsonl(f)}
    assert sorted(genuine) == MATH_LEAVES
    stored_tasks = []
    for rel in rec.samples_files:
        path = store.job_dir(rec.job_id) / rel
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        stored_tasks.append(task)
        lines = _jsonl(path)
        assert sorted(l["doc_id"] for l in lines) == sorted(genuine[task])
        for l in lines:
            old = genuine[task][l["doc_id"]]
            assert l["exact_match_original"] == old["exact_match"], (task, l["doc_id"])
            assert l["exact_match"] in (0, 1) and l["metrics"] == ["exact_match", "exact_match_original"]
            assert l["doc"] == old["doc"] and l["filtered_resps"] == old["filtered_resps"] and l["resps"] == old["resps"]
    assert sorted(stored_tasks) == MATH_LEAVES
    # the stored results: both parsers' metrics per subtask, of the task code that re-scored them
    data = json.loads(store.results_path(rec).read_text())
    for t in MATH_LEAVES:
        assert {"exact_match,none", "exact_match_original,none"} <= set(data["results"][t]), t
        assert data["versions"][t] == 3.0 and data["n-samples"][t]["effective"] == 2
        assert data["results"][t]["exact_match_original,none"] == pytest.approx(
            sum(r["exact_match"] for r in genuine[t].values()) / 2)


def test_genuine_old_math_scores_both_and_matches_the_direct_file(old_math, tmp_path, capsys):
    """`evalsuite score` on the stored job gives both MATH numbers; the genuine results file
    scored directly gives the same original-parser number and no Math-Verify one. (0.4.5's parser
    predates lm-eval PR #2475's fix: equal here because these records agree, see the agreement test.)"""
    from evalsuite.cli.main import main
    from evalsuite.score import score_paths

    version, store, result = old_math
    rec = result.jobs["math_hard"]
    capsys.readouterr()
    assert main(["score", str(store.job_dir(rec.job_id)), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row[MV] is not None and row[ORIG] is not None
    assert row["labels"] == {MV: "Math-Verify", ORIG: "original parser"}
    stored = []
    for rel in rec.samples_files:
        stored += _jsonl(store.job_dir(rec.job_id) / rel)
    assert len(stored) == 14  # 7 subtasks x 2: equal sizes, so the weighted mean is the plain mean
    assert row[MV] == pytest.approx(100 * sum(l["exact_match"] for l in stored) / 14, abs=1e-9)
    assert row[ORIG] == pytest.approx(100 * sum(l["exact_match_original"] for l in stored) / 14, abs=1e-9)

    (direct,) = score_paths([_old_math_results_file(version)])
    assert MV not in direct.scores and direct.value(MV) is None
    assert direct.scores[ORIG].task_version == OLD_MATH[version]
    assert direct.value(ORIG) == pytest.approx(row[ORIG], abs=1e-9)
    (mine,) = score_paths([store.job_dir(rec.job_id)])
    assert mine.value(ORIG) == pytest.approx(direct.value(ORIG), abs=1e-9) and mine.value(MV) == pytest.approx(row[MV], abs=1e-9)


def test_genuine_old_math_via_the_cli(tmp_path, capsys):
    """`evalsuite import FOLDER --name ...` on the genuine 0.4.8 folder: the agreement it reports."""
    rc, out, err = _import(_old_math_folder("0.4.8"), tmp_path / "results", "old-cli", "--format", "json", capsys=capsys)
    assert rc == 0, err
    (row,) = json.loads(out)
    assert row[MV] is not None and row[ORIG] is not None
    for t in MATH_LEAVES:
        assert f"agreement: {t}: 2/2 recorded values agree (2 records); filled in: exact_match; " in err, err


# --- the fork's main (the leaderboard's Feb 2025 re-scoring): MATH version 2.0 *is* Math-Verify ----

FORK_MAIN = REPO / "tests" / "fixtures_import" / "hf-fork-main-math" / "tiny-org__candidate"


def test_fork_main_details_rescore_with_full_agreement_and_math_verify_as_recorded(tmp_path):
    """A whole `--tasks leaderboard` run of the HF fork's `main` (math-verify 0.5.2), as it wrote
    it (tests/fixtures_import/README.md): every task's recorded per-sample values equal lm-eval
    0.4.13's recomputed ones. Its MATH files are task version 2.0 with Math-Verify's `exact_match`
    (its `process_results` calls `verify(`): compared with the recomputed Math-Verify verdict, not
    with the original parser, which is filled in."""
    from evalsuite.published.importer import MATH_OLD_NOTE, import_details
    from evalsuite.score import score_paths
    from evalsuite.results.store import Store

    (results,) = FORK_MAIN.glob("results_*.json")
    data = json.loads(results.read_text())
    assert {data["versions"][t] for t in data["versions"] if t.startswith("leaderboard_math_") and t.endswith("_hard")} == {2.0}
    assert all("verify(" in data["configs"][t]["process_results"] for t in data["configs"] if t.startswith("leaderboard_math_"))
    res = import_details(str(FORK_MAIN), "fork-main", Store(tmp_path / "results"))
    assert len(res.agreement) == 39
    for task, agr in res.agreement.items():
        assert agr.records == 2 and agr.compared == agr.agree >= agr.records and not agr.mismatches, (task, agr)
        if task.startswith("leaderboard_math_"):
            assert agr.filled == ["exact_match_original"] and MATH_OLD_NOTE not in agr.notes
    store = Store(tmp_path / "results")
    (ours,) = score_paths([store.results_path(r) for r in res.jobs.values()])
    (theirs,) = score_paths([results])  # the fork's own file: Math-Verify only, labelled
    assert ours.scores["MATH Lvl 5"].value == pytest.approx(theirs.scores["MATH Lvl 5"].value, abs=1e-12)
    assert "MATH Lvl 5 (original parser)" not in theirs.scores and "MATH Lvl 5 (original parser)" in ours.scores
    for display in ("IFEval", "BBH", "GPQA", "MuSR", "MMLU-PRO"):
        assert ours.scores[display].value == pytest.approx(theirs.scores[display].value, abs=1e-9), display
