"""Each leaderboard trap gets a test that a scorer falling into it would fail."""

from __future__ import annotations

import json
import math

import pytest

from evalsuite import score as sc
from evalsuite.report.scores import to_json
from evalsuite.suite import load_suite
from fixtures_score.lm_eval_layout import build_results, write_results

SUITE = load_suite()
TOL = 1e-9
BBH_SIZES = {t: 250 for t in SUITE.get("bbh").leaf_tasks} | {
    "leaderboard_bbh_causal_judgement": 187, "leaderboard_bbh_penguins_in_a_table": 146, "leaderboard_bbh_snarks": 178}


def _score(tmp_path, values, n, mutate=None, name="m"):
    data = build_results(name, values, n)
    if mutate:
        mutate(data)
    path = write_results(tmp_path, data)
    (s,) = sc.score_paths([path], SUITE)
    return s


def _bbh_inputs():
    tasks = SUITE.get("bbh").leaf_tasks
    # big subtasks high, the three small ones low: weighted and unweighted means differ
    values = {t: {"acc_norm,none": 0.3 if BBH_SIZES[t] < 250 else 0.8} for t in tasks}
    return values, dict(BBH_SIZES)


def test_bbh_is_unweighted_mean_of_normalized_subtasks_not_group_value(tmp_path):
    values, n = _bbh_inputs()
    ks = {"leaderboard_bbh_causal_judgement": 2, "leaderboard_bbh_penguins_in_a_table": 5, "leaderboard_bbh_snarks": 2}
    # by hand: 21 subtasks at 0.8 with their k, 3 at 0.3
    k_all = [2, 2, 6, 3, 2, 11, 2, 5, 7, 3, 6, 2, 19, 5, 18, 6, 6, 2, 2, 4, 5, 7, 3, 2]
    terms = []
    for t, k in zip(SUITE.get("bbh").leaf_tasks, k_all):
        raw = values[t]["acc_norm,none"]
        terms.append(max(raw - 1 / k, 0) / (1 - 1 / k) * 100)
    expected = sum(terms) / 24
    assert ks["leaderboard_bbh_snarks"] == 2
    s = _score(tmp_path / "a", values, n)
    assert s.value("BBH") == pytest.approx(expected, abs=TOL)
    # what lm-eval's size-weighted group value would give (the trap) is measurably different
    group_raw = sum(values[t]["acc_norm,none"] * n[t] for t in n) / sum(n.values())
    assert abs(s.value("BBH") - sc.normalize(group_raw, 1 / 2)) > 1
    # and the group entries in the file are ignored: corrupting them changes nothing

    def corrupt(d):
        d["groups"]["leaderboard_bbh"]["acc_norm,none"] = 0.01
        d["results"]["leaderboard_bbh"]["acc_norm,none"] = 0.01

    s2 = _score(tmp_path / "b", values, n, corrupt)
    assert s2.value("BBH") == s.value("BBH")


def test_musr_unweighted_and_clipped_per_subtask(tmp_path):
    # murder_mysteries below its 1/2 baseline: clipped to 0 on its own, before the mean
    values = {"leaderboard_musr_murder_mysteries": {"acc_norm,none": 0.3},
              "leaderboard_musr_object_placements": {"acc_norm,none": 0.6},
              "leaderboard_musr_team_allocation": {"acc_norm,none": 0.6}}
    n = {"leaderboard_musr_murder_mysteries": 250, "leaderboard_musr_object_placements": 256,
         "leaderboard_musr_team_allocation": 250}
    s = _score(tmp_path, values, n)
    expected = (0 + (0.6 - 0.2) / 0.8 * 100 + (0.6 - 1 / 3) / (2 / 3) * 100) / 3
    clip_after_mean = max(((0.3 - 0.5) / 0.5 * 100 + (0.6 - 0.2) / 0.8 * 100 + (0.6 - 1 / 3) / (2 / 3) * 100) / 3, 0)
    assert s.value("MuSR") == pytest.approx(expected, abs=TOL)
    assert abs(expected - clip_after_mean) > 10
    assert s.scores["MuSR"].subtasks["leaderboard_musr_murder_mysteries"] == 0.0
    assert s.scores["MuSR"].raw == pytest.approx(1.5 / 3, abs=1e-15)  # unweighted raw mean


def test_bbh_clips_each_subtask(tmp_path):
    tasks = SUITE.get("bbh").leaf_tasks
    values = {t: {"acc_norm,none": 0.6} for t in tasks}
    values["leaderboard_bbh_boolean_expressions"] = {"acc_norm,none": 0.1}  # far below 1/2
    s = _score(tmp_path, values, dict(BBH_SIZES))
    k_all = [2, 2, 6, 3, 2, 11, 2, 5, 7, 3, 6, 2, 19, 5, 18, 6, 6, 2, 2, 4, 5, 7, 3, 2]
    expected = (0 + sum((0.6 - 1 / k) / (1 - 1 / k) * 100 for k in k_all[1:])) / 24
    assert s.value("BBH") == pytest.approx(expected, abs=TOL)


def test_gpqa_and_math_are_size_weighted(tmp_path):
    values = {"leaderboard_gpqa_diamond": {"acc_norm,none": 99 / 198},
              "leaderboard_gpqa_extended": {"acc_norm,none": 136 / 546},
              "leaderboard_gpqa_main": {"acc_norm,none": 180 / 448}}
    n = {"leaderboard_gpqa_diamond": 198, "leaderboard_gpqa_extended": 546, "leaderboard_gpqa_main": 448}
    sizes = {"algebra_hard": 307, "counting_and_prob_hard": 123, "geometry_hard": 132, "intermediate_algebra_hard": 280,
             "num_theory_hard": 154, "prealgebra_hard": 193, "precalculus_hard": 135}
    correct = {"algebra_hard": 100, "counting_and_prob_hard": 10, "geometry_hard": 5, "intermediate_algebra_hard": 20,
               "num_theory_hard": 30, "prealgebra_hard": 90, "precalculus_hard": 3}
    original = {k: max(v - 4, 0) for k, v in correct.items()}
    for s_, size in sizes.items():
        values[f"leaderboard_math_{s_}"] = {"exact_match,none": correct[s_] / size,
                                           "exact_match_original,none": original[s_] / size}
        n[f"leaderboard_math_{s_}"] = size
    s = _score(tmp_path, values, n)
    gpqa = ((99 + 136 + 180) / 1192 - 0.25) / 0.75 * 100
    gpqa_unweighted = (sum(v["acc_norm,none"] for k, v in values.items() if "gpqa" in k) / 3 - 0.25) / 0.75 * 100
    assert s.value("GPQA") == pytest.approx(gpqa, abs=TOL)
    assert abs(gpqa - gpqa_unweighted) > 0.5
    math_w = sum(correct.values()) / 1324 * 100
    math_unweighted = sum(correct[k] / sizes[k] for k in sizes) / 7 * 100
    assert s.value("MATH Lvl 5") == pytest.approx(math_w, abs=TOL)
    assert abs(math_w - math_unweighted) > 0.5
    assert s.value("MATH Lvl 5 (original parser)") == pytest.approx(sum(original.values()) / 1324 * 100, abs=TOL)


def test_math_weights_come_from_n_samples_effective(tmp_path):
    """With --limit the effective counts are the weights, not the full sizes."""
    sizes = ["algebra_hard", "counting_and_prob_hard", "geometry_hard", "intermediate_algebra_hard",
             "num_theory_hard", "prealgebra_hard", "precalculus_hard"]
    eff = dict(zip(sizes, [10, 1, 1, 1, 1, 1, 1]))
    values = {f"leaderboard_math_{k}": {"exact_match,none": 1.0 if k == "algebra_hard" else 0.0,
                                       "exact_match_original,none": 0.0} for k in sizes}
    n = {f"leaderboard_math_{k}": v for k, v in eff.items()}
    s = _score(tmp_path, values, n)
    assert s.value("MATH Lvl 5") == pytest.approx(10 / 16 * 100, abs=TOL)


def test_mmlu_pro_reads_acc_not_acc_norm(tmp_path):
    values = {"leaderboard_mmlu_pro": {"acc,none": 0.4, "acc_norm,none": 0.3}}
    s = _score(tmp_path, values, {"leaderboard_mmlu_pro": 12032})
    assert s.value("MMLU-PRO") == pytest.approx((0.4 - 0.1) / 0.9 * 100, abs=TOL)


def test_ifeval_uses_strict_prompt_and_inst_level(tmp_path):
    values = {"leaderboard_ifeval": {"prompt_level_strict_acc,none": 0.5, "inst_level_strict_acc,none": 0.6,
                                     "prompt_level_loose_acc,none": 0.9, "inst_level_loose_acc,none": 0.95}}
    s = _score(tmp_path, values, {"leaderboard_ifeval": 541})
    assert s.value("IFEval") == pytest.approx(55.0, abs=TOL)
    assert s.scores["IFEval"].stderr is None  # lm-eval reports inst-level stderr as "N/A"


def test_stderr_propagation(tmp_path):
    values = {"leaderboard_gpqa_diamond": {"acc_norm,none": 0.5}, "leaderboard_gpqa_extended": {"acc_norm,none": 0.3},
              "leaderboard_gpqa_main": {"acc_norm,none": 0.4},
              "leaderboard_musr_murder_mysteries": {"acc_norm,none": 0.6},
              "leaderboard_musr_object_placements": {"acc_norm,none": 0.5},
              "leaderboard_musr_team_allocation": {"acc_norm,none": 0.5}}
    n = {"leaderboard_gpqa_diamond": 198, "leaderboard_gpqa_extended": 546, "leaderboard_gpqa_main": 448,
         "leaderboard_musr_murder_mysteries": 250, "leaderboard_musr_object_placements": 256,
         "leaderboard_musr_team_allocation": 250}
    data = build_results("m", values, n)
    path = write_results(tmp_path, data)
    (s,) = sc.score_paths([path], SUITE)
    se = {t: data["results"][t]["acc_norm_stderr,none"] for t in n}
    g = ["leaderboard_gpqa_diamond", "leaderboard_gpqa_extended", "leaderboard_gpqa_main"]
    exp_gpqa = math.sqrt(sum((n[t] / 1192 * se[t]) ** 2 for t in g)) * 100 / 0.75
    assert s.scores["GPQA"].stderr == pytest.approx(exp_gpqa, rel=1e-12)
    b = {"leaderboard_musr_murder_mysteries": 0.5, "leaderboard_musr_object_placements": 0.2,
         "leaderboard_musr_team_allocation": 1 / 3}
    exp_musr = math.sqrt(sum((se[t] * 100 / (1 - b[t])) ** 2 for t in b)) / 3
    assert s.scores["MuSR"].stderr == pytest.approx(exp_musr, rel=1e-12)
    out = json.loads(to_json([s]))[0]
    assert out["stderr"]["GPQA"] == pytest.approx(exp_gpqa, rel=1e-12)


def test_aggregate_matches_scorer_for_bootstrap_reuse(tmp_path):
    """`aggregate` on plain dicts gives the scorer's number (the bootstrap calls it on resamples)."""
    values, n = _bbh_inputs()
    s = _score(tmp_path, values, n)
    raw = {t: v["acc_norm,none"] for t, v in values.items()}
    assert sc.aggregate(SUITE.get("bbh"), raw, n) == s.value("BBH")
    gpqa = SUITE.get("gpqa")
    raw_g = {"leaderboard_gpqa_diamond": 0.5, "leaderboard_gpqa_extended": 0.2, "leaderboard_gpqa_main": 0.3}
    n_g = {"leaderboard_gpqa_diamond": 198, "leaderboard_gpqa_extended": 546, "leaderboard_gpqa_main": 448}
    assert sc.aggregate(gpqa, raw_g, n_g) == pytest.approx(((99 + 546 * 0.2 + 448 * 0.3) / 1192 - 0.25) / 0.75 * 100)
    ife = SUITE.get("ifeval")
    assert sc.aggregate(ife, {"prompt_level_strict_acc,none": 0.2, "inst_level_strict_acc,none": 0.4}) == \
        pytest.approx(30.0)
    with pytest.raises(ValueError):
        sc.aggregate(gpqa, raw_g)  # sizes are required for size weighting


def test_normalize():
    assert sc.normalize(0.25, 0.25) == 0.0
    assert sc.normalize(0.1, 0.25) == 0.0
    assert sc.normalize(1.0, 0.25) == pytest.approx(100.0)
    assert sc.normalize(0.55, 0.1) == pytest.approx(50.0)
