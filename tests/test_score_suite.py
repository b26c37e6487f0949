"""The suite file against the installed lm-eval, and the scorer's genericity over suite files."""

from __future__ import annotations

import pytest

from evalsuite import score as sc
from evalsuite.report.scores import table_columns
from evalsuite.errors import UserError
from evalsuite.suite import DEFAULT_SUITE, load_suite, lm_eval_choice_counts
from fixtures_score.lm_eval_layout import build_results, write_results

SUITE = load_suite()
README_K = {  # shared/reference/README.md §1
    "boolean_expressions": 2, "causal_judgement": 2, "date_understanding": 6, "disambiguation_qa": 3,
    "formal_fallacies": 2, "geometric_shapes": 11, "hyperbaton": 2, "logical_deduction_five_objects": 5,
    "logical_deduction_seven_objects": 7, "logical_deduction_three_objects": 3, "movie_recommendation": 6,
    "navigate": 2, "object_counting": 19, "penguins_in_a_table": 5, "reasoning_about_colored_objects": 18,
    "ruin_names": 6, "salient_translation_error_detection": 6, "snarks": 2, "sports_understanding": 2,
    "temporal_sequences": 4, "tracking_shuffled_objects_five_objects": 5, "tracking_shuffled_objects_seven_objects": 7,
    "tracking_shuffled_objects_three_objects": 3, "web_of_lies": 2,
}


@pytest.fixture(scope="module")
def task_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager()


def test_bbh_k_equals_installed_doc_to_choice(task_manager):
    bbh = SUITE.get("bbh")
    from_lm_eval = lm_eval_choice_counts(bbh, task_manager)
    assert len(from_lm_eval) == 24
    for task, k in from_lm_eval.items():
        assert k == bbh.choice_count(task) == README_K[bbh.short_name(task)], task


def test_musr_k_only_in_suite_file(task_manager):
    musr = SUITE.get("musr")
    assert set(lm_eval_choice_counts(musr, task_manager).values()) == {None}  # "{{choices}}"
    assert musr.choices == {"murder_mysteries": 2, "object_placements": 5, "team_allocation": 3}


def test_gpqa_constant_baseline_matches_four_choices(task_manager):
    gpqa = SUITE.get("gpqa")
    assert set(lm_eval_choice_counts(gpqa, task_manager).values()) == {4}
    assert gpqa.baseline == 0.25


def test_every_leaf_task_exists_in_lm_eval(task_manager):
    leaves = [t for b in SUITE.benchmarks for t in b.leaf_tasks]
    assert len(leaves) == len(set(leaves)) == 39
    for t in leaves:
        assert t in task_manager.task_index, t
    for b in SUITE.benchmarks:
        assert b.group in task_manager.task_index, b.group


def test_sizes():
    assert sum(SUITE.get("math_hard").sizes.values()) == 1324
    assert sum(SUITE.get("gpqa").sizes.values()) == 1192
    assert sum(SUITE.get("bbh").sizes.values()) == 21 * 250 + 187 + 146 + 178
    assert SUITE.get("mmlu_pro").metrics == ["acc,none"]


def test_bad_suite_files_are_user_errors(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(DEFAULT_SUITE.read_text().replace("combine: single", "combine: median"))
    with pytest.raises(UserError, match="s.yaml"):
        load_suite(p)
    p2 = tmp_path / "s2.yaml"
    p2.write_text(DEFAULT_SUITE.read_text().replace("      web_of_lies: 2\n", "", 1))
    # still valid (23 subtasks), a different suite
    assert len(load_suite(p2).get("bbh").leaf_tasks) == 23
    p3 = tmp_path / "s3.yaml"
    p3.write_text("name: x\nlm_eval_version: '0.4.13'\nbenchmarks:\n  - {id: a, display: A, group: g, metrics: [m],"
                  " baseline: 1/k, combine: normalize_then_mean, task_prefix: t_, subtasks: [one]}\n")
    with pytest.raises(UserError, match="choices"):
        load_suite(p3)


def test_scorer_is_generic_over_suite_file(tmp_path):
    """Another suite is another file: a two-benchmark suite, scored without code changes."""
    suite_file = tmp_path / "mini.yaml"
    suite_file.write_text(
        "name: mini\nlm_eval_version: '0.4.13'\naverage: Mean\nbenchmarks:\n"
        "  - {id: gp, display: GP, group: leaderboard_gpqa, metrics: ['acc_norm,none'], baseline: 0.25,\n"
        "     combine: weighted_then_normalize, task_prefix: leaderboard_gpqa_, subtasks: [diamond, main]}\n"
        "  - {id: mu, display: MU, group: leaderboard_musr, metrics: ['acc_norm,none'], baseline: 1/k,\n"
        "     combine: normalize_then_mean, task_prefix: leaderboard_musr_, choices: {object_placements: 5}}\n"
    )
    mini = load_suite(suite_file)
    values = {"leaderboard_gpqa_diamond": {"acc_norm,none": 0.5}, "leaderboard_gpqa_main": {"acc_norm,none": 0.25},
              "leaderboard_musr_object_placements": {"acc_norm,none": 0.6}}
    n = {"leaderboard_gpqa_diamond": 100, "leaderboard_gpqa_main": 300, "leaderboard_musr_object_placements": 256}
    path = write_results(tmp_path, build_results("m", values, n, suite=mini))
    (s,) = sc.score_paths([path], mini)
    gp = ((50 + 75) / 400 - 0.25) / 0.75 * 100
    mu = (0.6 - 0.2) / 0.8 * 100
    assert s.value("GP") == pytest.approx(gp, abs=1e-12)
    assert s.value("MU") == pytest.approx(mu, abs=1e-12)
    assert s.value("Mean") == pytest.approx((gp + mu) / 2, abs=1e-12)
    assert table_columns(mini) == ["Mean", "GP", "MU"]


def test_cli_suite_option(tmp_path, capsys):
    from evalsuite.cli.main import main

    suite_file = tmp_path / "mmlu_only.yaml"
    suite_file.write_text(
        "name: m\nlm_eval_version: '0.4.13'\nbenchmarks:\n"
        "  - {id: mp, display: MP, group: leaderboard_mmlu_pro, tasks: [leaderboard_mmlu_pro],\n"
        "     metrics: ['acc,none'], baseline: 0.1, combine: single}\n"
    )
    mini = load_suite(suite_file)
    write_results(tmp_path / "r", build_results("m", {"leaderboard_mmlu_pro": {"acc,none": 0.55}},
                                                {"leaderboard_mmlu_pro": 100}, suite=mini))
    assert main(["score", str(tmp_path / "r"), "--suite", str(suite_file), "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Model,Average,MP"
    assert [float(x) for x in out[1].split(",")[1:]] == pytest.approx([50.0, 50.0])
