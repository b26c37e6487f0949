"""Paired statistics: McNemar's exact test, Holm's correction, the seeded paired bootstrap through the
leaderboard's own aggregation, verdicts, and reading lm-eval samples lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from evalsuite.compare import compare_models
from evalsuite.config import StatsSettings
from evalsuite.results.samples import TaskDocs, pair_docs, read_samples
from evalsuite.stats import aggregate_draws, bootstrap_score, holm, mcnemar_exact
from evalsuite.score import aggregate
from evalsuite.suite import load_suite

SUITE = load_suite()


def mcnemar_by_hand(b: int, c: int) -> float:
    n = b + c
    k = min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def pattern(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[float], list[float]]:
    """Per-document correctness of models a and b with the given joint counts (fixed order)."""
    a = [1.0] * both + [1.0] * only_a + [0.0] * only_b + [0.0] * neither
    b = [1.0] * both + [0.0] * only_a + [1.0] * only_b + [0.0] * neither
    return a, b


def single(bench_id: str, values: dict[str, list]) -> dict[str, dict[str, TaskDocs]]:
    bench = SUITE.get(bench_id)
    (task,) = bench.leaf_tasks
    return {bench_id: {task: TaskDocs.from_values(task, values)}}


# --- McNemar and Holm ---------------------------------------------------------------------------


@pytest.mark.parametrize("b,c", [(0, 0), (1, 0), (5, 5), (60, 20), (20, 60), (3, 17), (700, 650)])
def test_mcnemar_exact_matches_the_binomial_sum(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(mcnemar_by_hand(b, c), rel=1e-12, abs=0)


def test_mcnemar_no_discordant_pairs_is_one():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(7, 7) == 1.0


MCNEMAR_CASES = [
    (0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 5), (5, 5), (7, 7), (5, 6), (6, 5), (3, 17), (17, 3),
    (60, 20), (20, 60), (31, 15), (75, 33), (10, 40), (99, 100), (100, 100), (250, 200), (400, 380), (380, 400),
    (700, 650), (0, 400), (1, 999), (1000, 1100), (2000, 2001), (3000, 3300), (20959, 24715),
]


@pytest.mark.parametrize("b,c", MCNEMAR_CASES)
def test_mcnemar_exact_equals_scipy_two_sided_binomial_test(b, c):
    """McNemar's exact test is the two-sided binomial test of b successes in b + c trials at 1/2 (the
    null is symmetric, so k = b and k = min(b, c) are the same test); no discordant pairs: p = 1."""
    p = mcnemar_exact(b, c)
    if b + c == 0:
        assert p == 1.0  # scipy's binomtest needs n >= 1
        return
    ref = binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert binomtest(min(b, c), b + c, 0.5).pvalue == ref
    assert p == pytest.approx(ref, rel=1e-12, abs=0)
    assert mcnemar_exact(c, b) == p


def test_mcnemar_exact_stays_exact_in_the_far_tail_where_scipy_underflows():
    """Exact integer sums: below ~1e-250 scipy's float cdf loses digits and then flushes to 0."""
    p = mcnemar_exact(23, 1072)
    assert p == pytest.approx(mcnemar_by_hand(23, 1072), rel=1e-12, abs=0)
    assert 0 < p < 1e-280
    assert binomtest(23, 1095, 0.5).pvalue < 1e-250


def test_holm_on_a_hand_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 1.2 capped at 1; the next can't be smaller
    assert holm([]) == []


# --- verdicts -----------------------------------------------------------------------------------


def test_identical_samples_are_indistinguishable():
    rng = np.random.default_rng(3)
    acc = (rng.random(400) < 0.4).astype(float).tolist()
    docs = {"cand": single("mmlu_pro", {"acc,none": acc}), "par": single("mmlu_pro", {"acc,none": acc})}
    cmp = compare_models(docs, "cand", ["par"], stats=StatsSettings(n_boot=500, seed=1))
    (row,) = cmp.rows
    assert row.verdict == "indistinguishable"
    assert row.delta == 0.0 and row.ci_low == 0.0 and row.ci_high == 0.0
    assert (row.only_candidate, row.only_parent, row.p_value) == (0, 0, 1.0)


def test_candidate_right_on_clearly_more_documents_is_better_with_mcnemars_exact_p():
    a, b = pattern(both=50, only_a=60, only_b=20, neither=70)
    docs = {"cand": single("mmlu_pro", {"acc,none": a}), "par": single("mmlu_pro", {"acc,none": b})}
    cmp = compare_models(docs, "cand", ["par"], stats=StatsSettings(n_boot=1000, seed=0))
    (row,) = cmp.rows
    assert (row.only_candidate, row.only_parent, row.n_docs) == (60, 20, 200)
    assert row.p_value == pytest.approx(mcnemar_by_hand(60, 20), rel=1e-12)
    assert row.p_value < 1e-4
    assert row.p_holm == row.p_value  # a family of one
    # leaderboard-normalized delta: acc 110/200 vs 70/200, baseline 0.1
    expected = aggregate(SUITE.get("mmlu_pro"), {"leaderboard_mmlu_pro": 0.55}) - aggregate(SUITE.get("mmlu_pro"), {"leaderboard_mmlu_pro": 0.35})
    assert row.delta == pytest.approx(expected)
    assert 0 < row.ci_low < row.delta < row.ci_high
    assert row.verdict == "better"
    # and the other way round
    swapped = compare_models({"cand": docs["par"], "par": docs["cand"]}, "cand", ["par"], stats=StatsSettings(n_boot=1000, seed=0))
    assert swapped.rows[0].verdict == "worse"
    assert swapped.rows[0].p_value == row.p_value


def test_holm_runs_over_all_scores_compared_with_one_parent():
    a, b = pattern(both=30, only_a=60, only_b=10, neither=100)
    docs = {"cand": single("mmlu_pro", {"acc,none": a}), "par": single("mmlu_pro", {"acc,none": b})}
    gpqa = SUITE.get("gpqa")
    ga, gb = pattern(both=20, only_a=25, only_b=11, neither=44)  # 100 docs per subtask
    docs["cand"]["gpqa"] = {t: TaskDocs.from_values(t, {"acc_norm,none": ga}) for t in gpqa.leaf_tasks}
    docs["par"]["gpqa"] = {t: TaskDocs.from_values(t, {"acc_norm,none": gb}) for t in gpqa.leaf_tasks}
    cmp = compare_models(docs, "cand", ["par"], stats=StatsSettings(n_boot=1000, seed=0))
    by = {r.score_id: r for r in cmp.rows}
    g = by["gpqa"]
    assert (g.only_candidate, g.only_parent) == (75, 33)
    assert g.p_value == pytest.approx(mcnemar_by_hand(75, 33))
    assert holm([by["mmlu_pro"].p_value, g.p_value]) == pytest.approx([by["mmlu_pro"].p_holm, g.p_holm])
    assert by["mmlu_pro"].verdict == "better"


def test_holm_adjustment_decides_the_verdict():
    a, b = pattern(both=40, only_a=31, only_b=15, neither=114)  # raw p ~ 0.026
    raw = mcnemar_by_hand(31, 15)
    assert 0.01 < raw < 0.05
    docs = {"cand": {}, "par": {}}
    for bench_id in ("mmlu_pro",):
        docs["cand"].update(single(bench_id, {"acc,none": a}))
        docs["par"].update(single(bench_id, {"acc,none": b}))
    ifeval = SUITE.get("ifeval")
    same = {"prompt_level_strict_acc,none": [True, False] * 50, "inst_level_strict_acc,none": [[True], [False, True]] * 50}
    for m in ("cand", "par"):
        docs[m]["ifeval"] = {ifeval.leaf_tasks[0]: TaskDocs.from_values(ifeval.leaf_tasks[0], same)}
    cmp = compare_models(docs, "cand", ["par"], stats=StatsSettings(n_boot=1000, seed=0))
    by = {r.score_id: r for r in cmp.rows}
    assert by["mmlu_pro"].p_value == pytest.approx(raw)
    assert by["mmlu_pro"].p_holm == pytest.approx(min(1.0, 2 * raw))  # two tests in the family
    assert by["mmlu_pro"].p_value < 0.05 < by["mmlu_pro"].p_holm
    assert by["mmlu_pro"].verdict == "indistinguishable"  # significant alone, not after Holm
    assert by["ifeval"].verdict == "indistinguishable" and by["ifeval"].p_value == 1.0


# --- the bootstrap ------------------------------------------------------------------------------


def _bbh_docs(seed: int, p: float) -> dict[str, TaskDocs]:
    rng = np.random.default_rng(seed)
    bbh = SUITE.get("bbh")
    return {t: TaskDocs.from_values(t, {"acc_norm,none": (rng.random(40) < p).astype(float).tolist()}) for t in bbh.leaf_tasks}


def test_bootstrap_is_reproducible_with_a_seed_and_uses_the_leaderboard_aggregation():
    bbh = SUITE.get("bbh")
    a, b = _bbh_docs(1, 0.6), _bbh_docs(2, 0.5)
    run = lambda seed: bootstrap_score(bbh, bbh.metrics, [a, b], 300, np.random.default_rng(seed))  # noqa: E731
    p1, d1 = run(7)
    p2, d2 = run(7)
    _, d3 = run(8)
    assert p1 == p2 and np.array_equal(d1, d2)
    assert not np.array_equal(d1, d3)
    # the point estimate is exactly the leaderboard's normalize-then-unweighted-mean of subtasks
    assert p1[0] == aggregate(bbh, {t: a[t].raw("acc_norm,none") for t in bbh.leaf_tasks})
    assert p1[1] == aggregate(bbh, {t: b[t].raw("acc_norm,none") for t in bbh.leaf_tasks})
    assert d1.shape == (300, 2)
    assert abs(d1[:, 0].mean() - p1[0]) < 1.0  # centred on the estimate (clip at 0 adds a small bias)
    # whole comparisons are reproducible too, and independent of which other benchmarks are present
    docs = {"c": {"bbh": a}, "p": {"bbh": b}}
    c1 = compare_models(docs, "c", ["p"], stats=StatsSettings(n_boot=300, seed=5))
    c2 = compare_models(docs, "c", ["p"], stats=StatsSettings(n_boot=300, seed=5))
    assert c1 == c2


@pytest.mark.parametrize("bench_id", ["bbh", "musr", "math_hard", "gpqa", "ifeval", "mmlu_pro"])
def test_aggregate_draws_equals_score_aggregate_of_every_draw(bench_id):
    """Whole-column aggregation gives bit for bit what `score.aggregate` gives draw by draw, for each
    combine rule: normalize_then_mean (BBH, MuSR), weighted_then_normalize (MATH, GPQA),
    mean_of_metrics (IFEval), single (MMLU-PRO)."""
    bench = SUITE.get(bench_id)
    names = list(bench.metrics) if bench.combine == "mean_of_metrics" else list(bench.leaf_tasks)
    rng = np.random.default_rng(11)
    n_by_task = {t: int(x) for t, x in zip(bench.leaf_tasks, rng.integers(1, 1500, len(bench.leaf_tasks)))}
    n_arg = n_by_task if bench.combine == "weighted_then_normalize" else None
    base = np.array([bench.baseline_for(bench.leaf_tasks[0] if bench.combine == "mean_of_metrics" else k) for k in names])
    raw = np.vstack([
        rng.random((500, len(names))),
        np.round(rng.random((300, len(names))) * 40) / 40,  # resample-like fractions k/n
        np.broadcast_to(base, (1, len(names))),  # exactly at the baseline
        np.clip(base + rng.normal(0, 0.05, (200, len(names))), 0, 1),  # around the clip at 0
        np.zeros((1, len(names))),
        np.ones((1, len(names))),
    ])
    got = aggregate_draws(bench, names, raw, n_arg)
    want = [aggregate(bench, dict(zip(names, row)), n_arg) for row in raw.tolist()]
    assert got.dtype == np.float64 and got.shape == (len(raw),)
    assert got.tolist() == want


def test_bootstrap_resamples_documents_within_subtasks():
    """Each draw keeps every subtask's size: a subtask where both models agree everywhere never moves."""
    gpqa = SUITE.get("gpqa")
    ones = {t: TaskDocs.from_values(t, {"acc_norm,none": [1.0] * n}) for t, n in zip(gpqa.leaf_tasks, (10, 30, 60))}
    _, draws = bootstrap_score(gpqa, gpqa.metrics, [ones], 200, np.random.default_rng(0))
    assert np.all(draws == 100.0)
    mixed = {t: TaskDocs.from_values(t, {"acc_norm,none": [1.0, 0.0] * (n // 2)}) for t, n in zip(gpqa.leaf_tasks, (10, 30, 60))}
    _, draws = bootstrap_score(gpqa, gpqa.metrics, [mixed], 4000, np.random.default_rng(0))
    # raw = (correct over 100 docs); normalized = max(raw - .25, 0) / .75 * 100, so draws sit on that grid
    raws = draws[:, 0] / 100 * 0.75 + 0.25
    assert np.allclose(raws * 100, np.round(raws * 100), atol=1e-9)
    assert draws[:, 0].std() > 1.0


def test_ifeval_bootstrap_combines_prompt_and_instruction_level_and_mcnemar_uses_prompt_level():
    ifeval = SUITE.get("ifeval")
    task = ifeval.leaf_tasks[0]
    cand = {"prompt_level_strict_acc,none": [True, True, False, True], "inst_level_strict_acc,none": [[True], [True, True], [False, True], [True]]}
    par = {"prompt_level_strict_acc,none": [False, True, False, False], "inst_level_strict_acc,none": [[False], [True, True], [True, False], [False]]}
    docs = {"c": {"ifeval": {task: TaskDocs.from_values(task, cand)}}, "p": {"ifeval": {task: TaskDocs.from_values(task, par)}}}
    cmp = compare_models(docs, "c", ["p"], stats=StatsSettings(n_boot=200, seed=0))
    (row,) = cmp.rows
    assert row.candidate == pytest.approx((3 / 4 + 5 / 6) / 2 * 100)  # inst level: 5 of 6 instructions
    assert row.parent_value == pytest.approx((1 / 4 + 3 / 6) / 2 * 100)
    assert (row.only_candidate, row.only_parent) == (2, 0)
    assert row.primary_metric == "prompt_level_strict_acc,none"


# --- pairing and reading samples ----------------------------------------------------------------


def test_pairing_uses_documents_both_answered_with_the_same_content():
    a = TaskDocs.from_values("t", {"acc,none": [1, 0, 1, 1]}, doc_ids=[0, 1, 2, 3], doc_hash=["h0", "h1", "h2", "h3"])
    b = TaskDocs.from_values("t", {"acc,none": [0, 0, 1]}, doc_ids=[3, 1, 2], doc_hash=["h3", "h1", "CHANGED"])
    ia, ib, mismatched = pair_docs(a, b)
    assert a.doc_ids[ia].tolist() == [1, 3] and b.doc_ids[ib].tolist() == [1, 3]
    assert mismatched == 1


def _line(doc_id: int, doc: dict, outputs: list, **metrics) -> str:
    rec = {
        "doc_id": doc_id, "doc": doc, "target": "x",
        "arguments": {"gen_args_0": {"arg_0": 'prompt with "filter": "none", } and {"doc_id": 9,', "arg_1": {"until": ["\n"]}}},
        "resps": [outputs], "filtered_resps": outputs, "filter": "none", "metrics": list(metrics),
        "doc_hash": f"h{doc_id}", "prompt_hash": "p", "target_hash": "t", **metrics,
    }
    return json.dumps(rec, ensure_ascii=False)


def test_read_samples_survives_hostile_text_and_matches_a_full_parse(tmp_path: Path):
    lines = [
        _line(2, {"filter": "x", "q": 'a "filter": "none"'}, ['", "filter": "none", "acc": 1.0}'], acc=0.0),
        _line(0, {"q": "ünïcödé\n"}, ["<img src=x onerror=alert(1)>"], acc=1.0),
        "",
        _line(1, {"q": "z"}, ['{"doc_hash": "evil"}'], acc=1.0),
    ]
    f = tmp_path / "samples_leaderboard_mmlu_pro_2025-01-01T00-00-00.000001.jsonl"
    f.write_text("\n".join(lines))  # no final newline
    docs = read_samples(f, ["acc,none"])
    assert docs.task == "leaderboard_mmlu_pro"
    assert docs.doc_ids.tolist() == [0, 1, 2]
    assert docs.doc_hash.tolist() == ["h0", "h1", "h2"]
    assert docs.values["acc,none"][0].tolist() == [1.0, 1.0, 0.0]
    assert docs.raw("acc,none") == pytest.approx(2 / 3)
    # offsets point at each document's own line
    with f.open("rb") as fh:
        for i, doc_id in enumerate(docs.doc_ids):
            fh.seek(int(docs.offsets[i]))
            assert json.loads(fh.readline())["doc_id"] == doc_id


def test_read_samples_rejects_duplicates_and_missing_metrics(tmp_path: Path):
    from evalsuite.errors import UserError

    f = tmp_path / "samples_leaderboard_mmlu_pro_2025-01-01T00-00-00.000001.jsonl"
    f.write_text(_line(0, {}, ["a"], acc=1.0) + "\n" + _line(0, {}, ["b"], acc=0.0) + "\n")
    with pytest.raises(UserError, match="doc_id 0 appears twice"):
        read_samples(f, ["acc,none"])
    f.write_text(_line(0, {}, ["a"], acc=1.0) + "\n")
    with pytest.raises(UserError, match="metric 'acc_norm' missing"):
        read_samples(f, ["acc_norm,none"])


def test_resampling_has_the_variance_of_drawing_documents_with_replacement():
    """The multinomial-over-distinct-rows draw is the document bootstrap: for n documents with a
    0/1 metric at rate p the raw value's spread is sqrt(p (1 - p) / n), and paired columns keep
    their correlation (identical columns give identical draws)."""
    from evalsuite.stats import _resample_raw

    n, p = 400, 0.3
    x = np.array([1.0] * int(n * p) + [0.0] * (n - int(n * p)))
    ones = np.ones(n)
    draws = _resample_raw([(x, ones), (x.copy(), ones)], 20000, np.random.default_rng(0))
    assert draws.shape == (20000, 2)
    assert np.array_equal(draws[:, 0], draws[:, 1])
    assert draws[:, 0].mean() == pytest.approx(p, abs=0.002)
    assert draws[:, 0].std() == pytest.approx(math.sqrt(p * (1 - p) / n), rel=0.03)
    # independent columns: the difference has twice the variance
    y = np.random.default_rng(1).permutation(x)
    d = _resample_raw([(x, ones), (y, ones)], 20000, np.random.default_rng(0))
    assert (d[:, 0] - d[:, 1]).std() == pytest.approx(math.sqrt(2 * p * (1 - p) / n), rel=0.05)


@pytest.mark.parametrize("window", [1 << 12, 1 << 16, 1 << 26])
def test_windowed_reader_yields_every_line_once_and_hashes_the_whole_file(tmp_path: Path, window: int):
    import hashlib

    from evalsuite.results.samples import _lines
    from evalsuite.errors import UserError

    rng = np.random.default_rng(0)
    lines = [_line(i, {"q": "x" * int(rng.integers(1, 20000))}, ["out"], acc=float(i % 2)) for i in range(60)]
    f = tmp_path / "samples_leaderboard_mmlu_pro_2025-01-01T00-00-00.000001.jsonl"
    f.write_text("\n".join(lines) + "\n\n")
    digest = hashlib.sha256()
    with f.open("rb") as fh:
        got = [(off, bytes(buf[a:b])) for off, buf, a, b in _lines(fh, digest, window=window)]
    assert [g for _, g in got] == [x.encode() for x in lines]
    data = f.read_bytes()
    assert all(data[off:off + len(g)] == g for off, g in got)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert len(read_samples(f, ["acc,none"], sha256=hashlib.sha256(data).hexdigest())) == 60
    with pytest.raises(UserError, match="changed since the run recorded it"):
        read_samples(f, ["acc,none"], sha256="0" * 64)
