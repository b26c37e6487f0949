"""Golden values: published leaderboard rows and the worked Llama-2-7b example, to 1e-9.

Inputs are lm-eval 0.4.13-shaped results files built from correct-answer counts consistent with
the published raw AND normalized columns (tests/fixtures_score/published_counts.json says how
they were derived). Expected values come from the CSV or from arithmetic written out here,
never from the scorer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evalsuite import score as sc
from evalsuite.suite import load_suite
from fixtures_score.lm_eval_layout import build_results, counts_to_inputs, write_results

HERE = Path(__file__).parent
COUNTS = json.loads((HERE / "fixtures_score" / "published_counts.json").read_text())
_CSV = HERE.parent / "examples" / "published_scores.csv"  # verbatim copy of shared/reference/published_scores.csv
PUBLISHED = {r["model"]: r for r in csv.DictReader(_CSV.read_text().splitlines())}
# The published rows, typed out once more and checked against the CSV below.
ROWS = {
    "allknowingroger/Gemmaslerp2-9B": dict(ifeval=72.81003293483514, bbh=42.541032642532, math=21.07250755287009,
                                           gpqa=13.646532438478745, musr=19.489843749999995,
                                           mmlu_pro=35.985520094562645, average=34.25757823554644,
                                           bbh_raw=0.598271299766216, musr_raw=0.47671875),
    "sam-paech/Delirium-v1": dict(ifeval=72.07564816908027, bbh=42.31507908993327, math=21.07250755287009,
                                  gpqa=12.416107382550338, musr=15.230989583333338, mmlu_pro=35.44067671394799,
                                  average=33.09183474861921, bbh_raw=0.5962113834521733, musr_raw=0.45144791666666667),
    "DreadPoor/Emu_Eggs-9B-Model_Stock": dict(ifeval=76.06982805622415, bbh=42.783674159620205,
                                              math=20.996978851963746, gpqa=11.073825503355701, musr=9.318750000000003,
                                              mmlu_pro=35.85623522458629, average=32.68321529929168,
                                              bbh_raw=0.6051657213517168, musr_raw=0.4070833333333333),
}
KEYS = {"ifeval": "IFEval", "bbh": "BBH", "math": "MATH Lvl 5", "gpqa": "GPQA", "musr": "MuSR",
        "mmlu_pro": "MMLU-PRO", "average": "Average"}
TOL = 1e-9


def test_rows_copied_correctly():
    for model, row in ROWS.items():
        pub = PUBLISHED[model]
        for k in ("ifeval", "bbh", "math", "gpqa", "musr", "mmlu_pro"):
            assert row[k] == float(pub[f"{k}_norm"])
        assert row["average"] == float(pub["average"])


@pytest.fixture(scope="module")
def published_scores(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("published")
    for model, counts in COUNTS["models"].items():
        values, n = counts_to_inputs(counts, COUNTS["sizes"])
        write_results(folder, build_results(model, values, n))
    return {s.model: s.to_json_dict() for s in sc.score_paths([folder])}


@pytest.mark.parametrize("model", list(ROWS))
def test_published_rows(published_scores, model):
    got = published_scores[model]
    for k, display in KEYS.items():
        assert got[display] == pytest.approx(ROWS[model][k], abs=TOL), display
    # the published raw BBH / MuSR columns are unweighted means of subtask accuracies
    assert got["raw"]["BBH"] == pytest.approx(ROWS[model]["bbh_raw"], abs=1e-12)
    assert got["raw"]["MuSR"] == pytest.approx(ROWS[model]["musr_raw"], abs=1e-12)


def test_fixture_counts_are_consistent_with_published_raw():
    """The counts themselves (independent of the scorer) reproduce the published raw columns."""
    for model, c in COUNTS["models"].items():
        sizes = COUNTS["sizes"]
        bbh_raw = sum(c["bbh"][s] / sizes["bbh"][s] for s in c["bbh"]) / 24
        musr_raw = sum(c["musr"][s] / sizes["musr"][s] for s in c["musr"]) / 3
        assert bbh_raw == pytest.approx(ROWS[model]["bbh_raw"], abs=1e-15)
        assert musr_raw == pytest.approx(ROWS[model]["musr_raw"], abs=1e-15)
        assert len(c["bbh"]) == 24


def test_seed_math_both_parsers(published_scores):
    got = published_scores["allknowingroger/Gemmaslerp2-9B"]
    assert got["MATH Lvl 5"] == pytest.approx(279 / 1324 * 100, abs=TOL)
    assert got["MATH Lvl 5 (original parser)"] == pytest.approx(219 / 1324 * 100, abs=TOL)
    assert round(got["MATH Lvl 5 (original parser)"], 2) == 16.54  # the seed card's number
    assert round(got["MATH Lvl 5"], 2) == 21.07
    # the original-parser MATH is reported but not averaged
    six = [got[d] for d in ("IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO")]
    assert got["Average"] == pytest.approx(sum(six) / 6, abs=TOL)


def test_seed_card_average_with_original_parser(published_scores):
    """The seed card's 33.50 average is the same run with the original MATH parser."""
    got = published_scores["allknowingroger/Gemmaslerp2-9B"]
    six = [got[d] for d in ("IFEval", "BBH", "MATH Lvl 5 (original parser)", "GPQA", "MuSR", "MMLU-PRO")]
    assert round(sum(six) / 6, 2) == 33.50


def test_per_subtask_normalized_values(published_scores):
    got = published_scores["allknowingroger/Gemmaslerp2-9B"]["subtasks"]
    c = COUNTS["models"]["allknowingroger/Gemmaslerp2-9B"]
    # object_counting: k = 19, 110 / 250 correct
    assert got["BBH"]["leaderboard_bbh_object_counting"] == pytest.approx((110 / 250 - 1 / 19) / (18 / 19) * 100, abs=TOL)
    assert got["MuSR"]["leaderboard_musr_object_placements"] == pytest.approx(
        (c["musr"]["object_placements"] / 256 - 0.2) / 0.8 * 100, abs=TOL)
    assert got["IFEval"]["prompt_level_strict_acc,none"] == pytest.approx(372 / 541 * 100, abs=TOL)


def test_llama2_worked_example(tmp_path):
    """Llama-2-7b-hf: IFEval 25.19, MMLU-PRO 9.57, MATH 1.21 (16/1324), GPQA 2.24 (318/1192)."""
    suite = load_suite()
    math_sizes = COUNTS["sizes"]["math_hard"]
    math_counts = dict(zip(math_sizes, [6, 2, 1, 2, 2, 3, 0]))  # 16 in all
    gpqa_counts = {"diamond": 50, "extended": 146, "main": 122}  # 318 in all
    values = {"leaderboard_ifeval": {"prompt_level_strict_acc,none": 0.18484, "inst_level_strict_acc,none": 0.31894}}
    n = {"leaderboard_ifeval": 541}
    for s, size in math_sizes.items():
        values[f"leaderboard_math_{s}"] = {"exact_match,none": math_counts[s] / size,
                                          "exact_match_original,none": math_counts[s] / size}
        n[f"leaderboard_math_{s}"] = size
    for s, size in COUNTS["sizes"]["gpqa"].items():
        values[f"leaderboard_gpqa_{s}"] = {"acc_norm,none": gpqa_counts[s] / size}
        n[f"leaderboard_gpqa_{s}"] = size
    values["leaderboard_mmlu_pro"] = {"acc,none": 0.1861}
    n["leaderboard_mmlu_pro"] = 12032
    path = write_results(tmp_path, build_results("meta-llama/Llama-2-7b-hf", values, n))
    (got,) = sc.score_paths([path], suite)
    row = got.to_json_dict()
    assert row["IFEval"] == pytest.approx((0.18484 + 0.31894) / 2 * 100, abs=TOL)
    assert round(row["IFEval"], 2) == 25.19
    assert row["MMLU-PRO"] == pytest.approx((0.1861 - 0.1) / 0.9 * 100, abs=TOL)
    assert round(row["MMLU-PRO"], 2) == 9.57
    assert row["MATH Lvl 5"] == pytest.approx(16 / 1324 * 100, abs=TOL)
    assert round(row["MATH Lvl 5"], 2) == 1.21
    assert row["GPQA"] == pytest.approx((318 / 1192 - 0.25) / 0.75 * 100, abs=TOL)
    assert round(row["GPQA"], 2) == 2.24
    # BBH and MuSR were not run: left out, and so is the Average
    assert "BBH" not in row and "MuSR" not in row and "Average" not in row


def test_all_subtasks_at_raw_mean(tmp_path):
    """Every BBH subtask at the published raw mean (all above baseline): normalized mean by hand."""
    suite = load_suite()
    raw = ROWS["allknowingroger/Gemmaslerp2-9B"]["bbh_raw"]
    ks = [2, 2, 6, 3, 2, 11, 2, 5, 7, 3, 6, 2, 19, 5, 18, 6, 6, 2, 2, 4, 5, 7, 3, 2]  # README list, in order
    tasks = suite.get("bbh").leaf_tasks
    values = {t: {"acc_norm,none": raw} for t in tasks}
    n = {t: 250 for t in tasks}
    path = write_results(tmp_path, build_results("m", values, n))
    (got,) = sc.score_paths([path], suite)
    expected = sum((raw - 1 / k) / (1 - 1 / k) for k in ks) / 24 * 100
    assert got.value("BBH") == pytest.approx(expected, abs=TOL)
