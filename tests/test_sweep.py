"""`evalsuite sweep`: config validation, the subsets, the paired test, and one end-to-end sweep
with a known answer (tiny models, real lm-eval, real mergekit).

The known answer: examples/sweep_mirror's MMLU-Pro answer key is the option the fixture
`parent_b` prefers (evalsuite/fixtures/sweep_data.py), so parent_b scores 100% and the SLERP
candidates near it (t -> 1) are the best; parent_a and the candidates near it guess.
The end-to-end runs (shared by the tests below):
  halving, killed by EVALSUITE_KILL_AT=sweep.candidate after its first candidate, then resumed;
  full, in a copy of the killed sweep's results folder (parents reused), as its own process while
  the halving sweep resumes (one core each): the finalists' jobs have the same ids as halving's
  last round;
  halving again from a deleted record (every job reused): the uninterrupted decisions.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import shutil
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from evalsuite.cli.main import main
from evalsuite.results.samples import TaskDocs
from evalsuite.score import aggregate
from evalsuite.results.store import JobRecord, Store
from evalsuite.suite import load_suite
from evalsuite.sweep import subsets
from evalsuite.sweep.record import SweepRecord
from evalsuite.sweep.select import _Paired, objective, paired_test
from test_report import chromium  # noqa: F401  (the headless-Chromium fixture)

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo-sweep.yaml"


def sweep_config(dest: Path, **changes) -> Path:
    """examples/demo-sweep.yaml with absolute paths, its own results and reports, and `changes`."""
    data = yaml.safe_load(DEMO.read_text())
    data["recipe"] = str(REPO / "examples" / data["recipe"])
    data["data"]["mirror"] = str(REPO / "examples" / data["data"]["mirror"])
    data["output"] = {"results": str(dest / "results"), "reports": str(dest / "reports")}
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("changes, message", [
    ({"grid": {"parameters.x": [0.5]}}, "grid.parameters.x: parameters.x is not in the base recipe"),
    ({"grid": {"parameters.t": [0.5, 1.5]}}, "t = 1.5 is outside [0, 1]"),
    ({"grid": {"parameters.t": []}}, "grid.parameters.t: no values"),
    ({"rounds": [0.5, 0.25]}, "rounds: rounds [0.5, 0.25]: shares of the documents, increasing"),
    ({"limit": 5}, "limit: not a sweep key"),
    ({"objective": "bbh"}, "objective: 'bbh' is neither 'average' nor one of the sweep's benchmarks"),
    ({"strategey": "full"}, "strategey: unknown key"),
    ({"grid": None}, "no candidates"),
    ({"candidates": [{"name": "x", "set": {"parameters.t": 0.5}, "recipe": "a.yml"}]}, "give set (changes to the base recipe) or recipe"),
    ({"candidates": [{"name": "demo-sweep-1", "set": {"parameters.t": 0.5}}]}, "candidate names repeated: demo-sweep-1"),
    ({"candidates": [{"name": "bad/name"}]}, "candidate name 'bad/name' must be letters"),
    ({"parents": [{"fixture": "parent_a"}, {"recipe": str(REPO / "examples" / "demo.mergekit.yml")}]}, "a parent cannot be a recipe"),
    ({"parents": [{"fixture": "parent_a"}, {"hub": "not a hub id"}]}, "hub id 'not a hub id' is not of the form org/name"),
])
def test_bad_sweep_config_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, changes, message):
    config = sweep_config(tmp_path, **changes)
    assert main(["sweep", "--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {config}"), err
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


def test_bad_value_names_its_line(tmp_path, capsys):
    config = sweep_config(tmp_path, grid={"parameters.t": [0.5, 2]})
    lines = config.read_text().splitlines()
    grid = next(i for i, text in enumerate(lines) if text.startswith("grid:"))
    line = next(i for i, text in enumerate(lines[grid:], grid + 1) if text.strip().startswith("parameters.t:"))
    assert main(["sweep", "--config", str(config)]) == 2
    assert f"error: {config}:{line}: grid.parameters.t (demo-sweep-2: parameters.t=2): " in capsys.readouterr().err


def test_bad_options_exit_2(tmp_path, capsys):
    config = sweep_config(tmp_path)
    assert main(["sweep", "--config", str(config), "--strategy", "random"]) == 2
    assert main(["sweep", "--config", str(config), "--format", "xml"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: --strategy 'random': halving or full", "error: --format 'xml': table, json or csv"]


# ---------------------------------------------------------------------------------- subsets


def test_subsets_are_seeded_stratified_and_incremental():
    n_docs = {"task_a": 96, "task_b": 10, "task_c": 2}
    shares = [0.125, 0.25, 0.5]
    rounds = [subsets.round_samples(n_docs, shares, 0, r) for r in range(len(shares))]
    assert subsets.round_samples(n_docs, shares, 0, len(shares)) is None  # the last round: every document
    for task, n in n_docs.items():
        counts = subsets.cumulative_counts(n, shares)
        assert counts[-1] == n and all(b >= a for a, b in zip(counts, counts[1:]))
        picked = [ix for r in rounds for ix in r[task]]
        assert all(r[task] == sorted(r[task]) and r[task] for r in rounds)  # sorted, never empty
        if n >= len(shares):
            assert len(picked) == len(set(picked)) == counts[len(shares) - 1]  # each document once
            assert set(picked) == set(subsets.order(task, n, 0)[:counts[len(shares) - 1]])
        else:  # fewer documents than rounds: a round with nothing new repeats the first
            assert set(picked) == set(subsets.order(task, n, 0)[:n])
    assert [len(r["task_a"]) for r in rounds] == [12, 12, 24]
    assert rounds == [subsets.round_samples(n_docs, shares, 0, r) for r in range(3)]  # deterministic
    assert rounds[0]["task_a"] != subsets.round_samples(n_docs, shares, 1, 0)["task_a"]  # the seed matters
    assert rounds[0]["task_a"] != list(range(12))  # a random sample, not the first documents


# ---------------------------------------------------------------------------------- the test


def _docs(bench, rng, n_per_task, p):
    out = {}
    for t in bench.leaf_tasks:
        out[t] = TaskDocs.from_values(t, {m: list(rng.random(n_per_task) < p) for m in bench.metrics})
    return out


@pytest.mark.parametrize("bench_id", ["musr", "gpqa"])
def test_paired_test_is_the_exact_sign_flip_test_of_the_objective(bench_id):
    """With few documents scipy enumerates every swap: p must equal a brute-force enumeration
    that scores each swapped pair through score.aggregate (the leaderboard's aggregation)."""
    bench = load_suite().get(bench_id)
    rng = np.random.default_rng(3)
    a = {bench.id: _docs(bench, rng, 4, 0.8)}
    b = {bench.id: _docs(bench, rng, 4, 0.4)}
    pairs = _Paired([bench], a, b)
    observed = objective([bench], a) - objective([bench], b)
    assert pairs.statistic(np.arange(pairs.n), np.arange(pairs.n) + pairs.n) == pytest.approx(observed, abs=1e-12)

    metric = bench.metrics[0]
    tasks = list(bench.leaf_tasks)
    va = np.concatenate([a[bench.id][t].values[metric][0] for t in tasks])
    vb = np.concatenate([b[bench.id][t].values[metric][0] for t in tasks])
    seg = np.repeat(np.arange(len(tasks)), 4)

    def score(v):
        raw = {t: float(v[seg == i].mean()) for i, t in enumerate(tasks)}
        n = {t: 4 for t in tasks} if bench.combine == "weighted_then_normalize" else None
        return aggregate(bench, raw, n)

    at_least = total = 0
    for flips in itertools.product([False, True], repeat=pairs.n):
        f = np.array(flips)
        x, y = np.where(f, vb, va), np.where(f, va, vb)
        total += 1
        at_least += score(x) - score(y) >= observed - 1e-9
    p, n = paired_test([bench], a, b, n_resamples=99999, seed=0, label="t")
    assert n == pairs.n == 4 * len(tasks)
    assert p == pytest.approx(at_least / total)


def test_identical_models_are_never_dropped():
    bench = load_suite().get("mmlu_pro")
    a = {"mmlu_pro": _docs(bench, np.random.default_rng(0), 30, 0.5)}
    p, _ = paired_test([bench], a, a, n_resamples=999, seed=0, label="same")
    assert p == 1.0


# ---------------------------------------------------------------------------------- end to end


def _killed_sweep(config: Path, point: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "sweep", "--config", str(config), "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "EVALSUITE_KILL_AT": point}, timeout=1800)


def _sweep(config: Path, *args: str) -> dict:
    """`evalsuite sweep ... --format json` in this process (lm-eval still runs in its children)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["sweep", "--config", str(config), "--quiet", "--format", "json", *args])
    assert code == 0, out.getvalue()[-2000:]
    return json.loads(out.getvalue())


def _record(results: Path, strategy: str) -> SweepRecord:
    return SweepRecord.model_validate_json((results / "sweeps" / "demo-sweep" / f"{strategy}.json").read_text())


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    dest = tmp_path_factory.mktemp("sweep")
    config = sweep_config(dest)
    results = dest / "results"
    killed = _killed_sweep(config, "sweep.candidate")
    assert killed.returncode == -9, killed.stderr[-2000:]
    after_kill = {p.name: JobRecord.model_validate_json((p / "job.json").read_text()).finished
                  for p in (results / "jobs").iterdir() if (p / "job.json").is_file()}
    # the full strategy in a copy of this folder (the parents' jobs reused), as its own process, while
    # the killed halving sweep resumes here (the machine has two cores; each sweep uses one)
    full_dest = tmp_path_factory.mktemp("sweep-full")
    shutil.copytree(results, full_dest / "results", symlinks=True, ignore=shutil.ignore_patterns("sweeps", ".lock"))
    shutil.copytree(dest / ".cache", full_dest / ".cache", symlinks=True)
    full_config = sweep_config(full_dest)
    full_proc = subprocess.Popen([sys.executable, "-m", "evalsuite.cli.main", "sweep", "--config", str(full_config), "--quiet",
                                  "--format", "json", "--strategy", "full"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        resumed = _sweep(config)
    finally:
        out, err = full_proc.communicate(timeout=1800)
    assert full_proc.returncode == 0, err[-2000:]
    full = json.loads(out)
    halving = _record(results, "halving")
    (results / "sweeps" / "demo-sweep" / "halving.json").rename(dest / "halving-resumed.json")
    jobs_before = sorted(p.name for p in (results / "jobs").iterdir())
    again = _sweep(config, "--no-report")  # the record lost: decided from scratch, every job reused, nothing merged
    assert sorted(p.name for p in (results / "jobs").iterdir()) == jobs_before
    return dict(dest=dest, config=config, results=results, after_kill=after_kill, halving=halving,
                halving_json=resumed, full_json=full, full=_record(full_dest / "results", "full"),
                full_results=full_dest / "results", again=_record(results, "halving"), again_json=again)


@pytest.mark.slow
def test_known_answer_halving_finds_full_winner_for_a_fraction_of_the_requests(sweeps):
    h, f = sweeps["halving"], sweeps["full"]
    store = Store(sweeps["results"])
    # the known answer: parent_b answers every question by the key; the parent_b end wins
    rec_b = store.finished_job(h.parents["tiny-parent_b"]["mmlu_pro"])
    acc = json.loads(store.results_path(rec_b).read_text())["results"]["leaderboard_mmlu_pro"]["acc,none"]
    assert acc == 1.0
    t_of = {c.name: c.params["parameters.t"] for c in h.candidates}
    assert len(t_of) >= 8 and min(t_of.values()) == 0.0 and max(t_of.values()) == 1.0
    assert f.winner == h.winner and t_of[h.winner] >= 0.75, (f.winner, h.winner)
    assert f.ranking[0].objective == max(r.objective for r in f.ranking) > 50
    assert max(r.objective for r in f.ranking if t_of[r.name] <= 0.3) < f.ranking[0].objective - 20
    # honest elimination: every drop has its numbers, Holm-adjusted p below alpha, in a subset round
    drops = [d for rr in h.rounds for d in rr.decisions if d.dropped]
    assert drops and all(d.p_holm < h.alpha and d.p_holm >= d.p_value and d.score < d.best_score for d in drops)
    dropped = {r.name: r.dropped_in_round for r in h.ranking if r.dropped_in_round is not None}
    assert h.winner not in dropped and all(1 <= rnd < len(h.shares) for rnd in dropped.values())
    assert [r.rank for r in h.ranking] == list(range(1, len(h.ranking) + 1))
    # finalists' last job is the full strategy's own job (the same job id, computed by each sweep in
    # its own results folder): identical scores
    finals = [r for r in h.ranking if r.dropped_in_round is None]
    full_by = {r.name: r for r in f.ranking}
    assert all(r.scores == full_by[r.name].scores and r.documents == 96 for r in finals)
    h_cands, f_cands = {c.name: c for c in h.candidates}, {c.name: c for c in f.candidates}
    for r in finals:
        assert h_cands[r.name].rounds[-1].jobs == f_cands[r.name].rounds[-1].jobs, r.name
    for c in h.candidates:
        if c.name in dropped:
            assert max(r.round for r in c.rounds) == dropped[c.name]
    # requests: counted from the samples files; halving needs at most 40% of full's
    assert f.requests == 8 * 96 * 10
    assert h.requests <= 0.40 * f.requests, (h.requests, f.requests)
    # every candidate's recipe and merge plan kept; no merged model left behind (keep: false)
    folder = sweeps["results"] / "sweeps" / "demo-sweep"
    for c in h.candidates:
        assert yaml.safe_load((folder / c.recipe_file).read_text())["parameters"]["t"] == t_of[c.name]
        assert c.fingerprint and (folder / c.plan_file).is_file()
    assert not [p for p in (sweeps["results"] / "merged").iterdir() if not p.name.startswith(".")]


@pytest.mark.slow
def test_plan_counts_equal_the_requests_lm_eval_ran_in_each_round(sweeps, capsys, monkeypatch):
    """`evalsuite plan` on the sweep file, before it ran, says each round's requests per candidate:
    the requests in every candidate round's samples files and in its lm-eval process's own progress
    bar; the full strategy's total exactly, the halving sweep's within the plan's range and equal to
    the rounds' requests times the candidates that ran them."""
    import re

    from evalsuite.sweep import load_sweep
    from evalsuite.sweep.plan import make_sweep_plan

    sw = load_sweep(sweeps["config"])
    h, f, again = sweeps["halving"], sweeps["full"], sweeps["again"]
    hp, fp = make_sweep_plan(sw, "halving"), make_sweep_plan(sw, "full")
    assert [r.share for r in hp.rounds] == [*h.shares[:-1], 1.0] and len(fp.rounds) == 1
    store = Store(sweeps["results"])
    checked = 0
    for c in h.candidates:
        for cr in c.rounds:
            rp = hp.rounds[cr.round - 1]
            assert (cr.documents, cr.requests) == (rp.documents, rp.loglikelihood + rp.generation), (c.name, cr.round)
            log = (store.job_dir(cr.jobs["mmlu_pro"]) / "lm_eval.log").read_text(encoding="utf-8", errors="replace")
            bars = re.findall(r"Running loglikelihood requests:\s*100%\|[^|]*\|\s*\d+/(\d+)", log.replace("\r", "\n"))
            assert bars and int(bars[-1]) == rp.loglikelihood, (c.name, cr.round, bars)
            checked += 1
    assert checked > len(h.candidates)  # later rounds too, not only round 1
    ran = {rr.round: len(rr.alive) for rr in h.rounds}
    assert h.requests == sum((rp.loglikelihood + rp.generation) * ran.get(rp.round, 0) for rp in hp.rounds)
    assert hp.requests_at_least["loglikelihood"] <= h.requests <= hp.requests_at_most["loglikelihood"]
    assert hp.requests_at_least["loglikelihood"] < hp.requests_at_most["loglikelihood"]
    assert fp.requests_at_least == fp.requests_at_most and fp.requests_at_most["loglikelihood"] == f.requests == 8 * 960
    assert fp.processes_at_least == fp.processes_at_most == 8
    # the parents: finished, nothing to run; the halving record's rounds are stored (reused)
    assert hp.parents.jobs_to_run == 0 and hp.parents.processes == 0
    assert hp.stored_rounds == sum(len(c.rounds) for c in again.candidates)
    assert hp.stored_requests == again.requests
    # the CLI: json with the same rounds; the table at 80 columns; --strategy only for sweeps
    assert main(["plan", "--config", str(sweeps["config"]), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["loglikelihood"] for r in out["rounds"]] == [r.loglikelihood for r in hp.rounds] and out["strategy"] == "halving"
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["plan", "--config", str(sweeps["config"]), "--strategy", "full"]) == 0
    text = capsys.readouterr().out
    assert "candidates' loglikelihood requests: 7,680" in text and "next: evalsuite sweep --config" in text
    assert max(len(line) for line in text.splitlines()) <= 80


@pytest.mark.slow
def test_subset_rounds_are_labelled_when_scored(sweeps):
    """A subset round's results, scored like any results file, say they are a subset."""
    from evalsuite.score import score_paths

    store = Store(sweeps["results"])
    dropped = next(c for c in sweeps["halving"].candidates if len(c.rounds) == 1)
    rec = store.finished_job(dropped.rounds[0].jobs["mmlu_pro"])
    (scores,) = score_paths([store.results_path(rec)])
    assert any("scored on a subset (lm-eval --samples" in n and "12 of 96 documents" in n for n in scores.notes), scores.notes
    assert rec.identity["samples"].startswith("sha256:") and "--samples" in rec.command


def test_merge_refused_when_the_disk_cannot_hold_it(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from evalsuite.errors import UserError
    from evalsuite.sweep.config import load_sweep
    from evalsuite.sweep.runner import _Driver
    import shutil as _shutil
    from rich.console import Console

    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "model.safetensors").write_bytes(b"\0" * 4096)
    sw = load_sweep(sweep_config(tmp_path))
    d = _Driver(sw, "halving", Console(quiet=True), True)
    d.parent_outcome = SimpleNamespace(models=[SimpleNamespace(local_path=parent, pretrained=str(parent))])
    (tmp_path / "results").mkdir()
    monkeypatch.setattr(_shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=10**9, free=1000))
    with pytest.raises(UserError, match=r"not enough disk to merge demo-sweep-1: .* GiB needed"):
        d.check_disk(sw.candidates[0])
    monkeypatch.setattr(_shutil, "disk_usage", lambda p: SimpleNamespace(total=10**9, used=0, free=10**9))
    d.check_disk(sw.candidates[0])


@pytest.mark.slow
def test_json_output_has_the_documented_shape(sweeps):
    for out, rec in ((sweeps["halving_json"], sweeps["halving"]), (sweeps["full_json"], sweeps["full"])):
        assert set(out) == {"winner", "strategy", "requests", "candidates"}
        assert out["winner"] == rec.winner and out["strategy"] == rec.strategy and out["requests"] == rec.requests
        assert len(out["candidates"]) >= 8
        for c in out["candidates"]:
            assert set(c) == {"name", "rank", "dropped_in_round", "scores"} and set(c["scores"]) == {"mmlu_pro"}
    assert all(c["dropped_in_round"] is None for c in sweeps["full_json"]["candidates"])


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_ranking(sweeps):
    """The resumed sweep equals a run that decides from scratch over the same jobs, and the jobs
    stored before the kill were reused, not recomputed."""
    h, again = sweeps["halving"], sweeps["again"]
    assert [(r.name, r.rank, r.dropped_in_round, r.objective) for r in h.ranking] == \
           [(r.name, r.rank, r.dropped_in_round, r.objective) for r in again.ranking]
    assert [rr.model_dump() for rr in h.rounds] == [rr.model_dump() for rr in again.rounds]
    assert h.requests == again.requests and sweeps["halving_json"] == sweeps["again_json"]
    killed_jobs = sweeps["after_kill"]
    assert any(name.startswith("demo-sweep-") for name in killed_jobs)  # the killed run stored a candidate
    for name, finished in killed_jobs.items():
        assert JobRecord.model_validate_json((sweeps["results"] / "jobs" / name / "job.json").read_text()).finished == finished


@pytest.mark.slow
def test_sweep_report_renders_in_chromium(sweeps, chromium):
    html = sweeps["dest"] / "reports" / "sweeps" / "demo-sweep-halving.html"
    chromium.call("Page.navigate", url=html.as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=60)
    dom = chromium.eval("""(() => ({
        winner: document.querySelector('#winner').textContent,
        rows: [...document.querySelectorAll('#ranking-table tbody tr')].map(r => r.dataset.name),
        images: [...document.images].map(i => [i.complete, i.naturalWidth > 0]),
        verdicts: document.querySelectorAll('#verdicts-table tbody tr').length,
        scripts: document.scripts.length,
    }))()""")
    h = sweeps["halving"]
    assert dom["winner"] == h.winner and dom["rows"] == [r.name for r in h.ranking]
    assert dom["images"] and all(ok and wide for ok, wide in dom["images"])
    assert dom["verdicts"] == 3  # the winner vs two parents and the runner-up, one benchmark
    assert dom["scripts"] == 0 and chromium.problems() == []


def test_report_escapes_what_it_shows(tmp_path):
    """A candidate's recipe values (strings from the config) are shown escaped."""
    from evalsuite.report.sweep import render
    from evalsuite.sweep.config import load_sweep
    from evalsuite.sweep.record import Ranked, RoundRecord

    config = sweep_config(tmp_path, grid=None, candidates=[{"name": "x", "set": {"merge_method": "slerp", "parameters.t": 0.5}},
                                                           {"name": "y", "set": {"parameters.t": 0.25}}])
    sw = load_sweep(config)
    sw.candidates[0].params["note"] = "<script>alert(1)</script>"
    rec = SweepRecord(sweep=sw.name, strategy="halving", plan="p", benchmarks=["mmlu_pro"], objective="average",
                      shares=[0.5, 1.0], alpha=0.05, winner="x", runner_up="y", finished=1.0,
                      rounds=[RoundRecord(round=1, share=1.0, alive=["x", "y"], best="x")],
                      ranking=[Ranked(name="x", rank=1, objective=1.0, scores={"mmlu_pro": 1.0}, documents=1, label=sw.candidates[0].label()),
                               Ranked(name="y", rank=2, objective=0.5, scores={"mmlu_pro": 0.5}, documents=1, label="<b>y</b>")])
    from evalsuite.sweep.record import CandidateRecord

    rec.candidates = [CandidateRecord(name=c.name, params=c.params, label=c.label(), recipe_file="r") for c in sw.candidates]
    html = render(sw, rec)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>y</b>" not in html and "&lt;b&gt;y&lt;/b&gt;" in html


def test_sweep_mirror_in_repo_is_up_to_date(tmp_path):
    from evalsuite.fixtures import sweep_data

    sweep_data.write_mirror(tmp_path)
    fresh = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    shipped = REPO / "examples" / "sweep_mirror"
    committed = {p.relative_to(shipped).as_posix(): p.read_bytes() for p in shipped.rglob("*") if p.is_file()}
    assert fresh == committed, "run: python -m evalsuite.fixtures.sweep_data"
    rows = sweep_data.test_rows()
    assert len(rows) == 96 and [r["answer_index"] for r in rows] == sweep_data.KEY
