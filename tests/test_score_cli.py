"""`evalsuite score`: result-file discovery, merging, output formats and one-line errors (exit 2)."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path

import pytest

from evalsuite import score as sc
from evalsuite.results.files import load_results, read_results_file
from evalsuite.report.scores import table_text
from evalsuite.cli.main import main
from evalsuite.suite import load_suite
from fixtures_score.lm_eval_layout import build_results, counts_to_inputs, write_results, per_benchmark_files

SUITE = load_suite()
COUNTS = json.loads((Path(__file__).parent / "fixtures_score" / "published_counts.json").read_text())
SEED = "allknowingroger/Gemmaslerp2-9B"
SIX = ["IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO"]


def full(model: str = SEED, **kw) -> dict:
    values, n = counts_to_inputs(COUNTS["models"][SEED], COUNTS["sizes"])
    return build_results(model, values, n, **kw)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["score", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- discovery and merging ---------------------------------------------------------------------


def test_folder_of_per_benchmark_files_equals_combined_file(tmp_path):
    data = full()
    combined = write_results(tmp_path / "combined", data)
    parts = per_benchmark_files(data, tmp_path / "split")
    (one,) = sc.score_paths([combined])
    (merged,) = sc.score_paths([tmp_path / "split"])
    assert len(merged.sources) == 6 and sorted(merged.sources) == sorted(map(str, parts))
    for d in SIX + ["MATH Lvl 5 (original parser)", "Average"]:
        assert merged.value(d) == one.value(d), d
    assert one.average is not None


def test_identical_duplicate_task_is_fine_conflicting_one_is_an_error(tmp_path, capsys):
    data = full()
    a = write_results(tmp_path / "a", data)
    b = write_results(tmp_path / "b", data, stamp="2025-02-01T00-00-00.000000")
    (s,) = sc.score_paths([a, b])
    assert s.value("BBH") is not None and len(s.sources) == 2
    other = copy.deepcopy(data)
    other["results"]["leaderboard_bbh_snarks"]["acc_norm,none"] = 0.123
    c = write_results(tmp_path / "c", other)
    code, out, err = run_cli(capsys, a, c)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and str(c) in err and "leaderboard_bbh_snarks" in err


def test_same_path_twice_is_read_once(tmp_path):
    a = write_results(tmp_path, full())
    (s,) = sc.score_paths([a, tmp_path, a])
    assert s.sources == [str(a)]


def test_model_key_from_model_args_string_or_dict(tmp_path):
    s_str = full("x", model_name=None, model_args="pretrained=org/model-a,revision=abc,dtype=bfloat16")
    d_dict = full("y", model_name=None, model_args={"pretrained": "org/model-b", "dtype": "bfloat16"})
    d_dict["model_name_sanitized"] = "b"
    write_results(tmp_path, s_str)
    write_results(tmp_path, d_dict)
    models = sorted(r.model for r in load_results([tmp_path]))
    assert models == ["org/model-a", "org/model-b"]


def test_two_models_two_rows_and_ignores_samples_files(tmp_path):
    write_results(tmp_path, full("org/one"))
    write_results(tmp_path, full("org/two"))
    (tmp_path / "org__one" / "samples_leaderboard_ifeval_2025.jsonl").write_text("{}\n")
    scores = sc.score_paths([tmp_path])
    assert [s.model for s in scores] == ["org/one", "org/two"]
    assert scores[0].value("BBH") == scores[1].value("BBH")


# --- output formats ----------------------------------------------------------------------------


def test_json_format(tmp_path, capsys):
    write_results(tmp_path, full())
    code, out, err = run_cli(capsys, tmp_path, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["model"] == SEED
    for d in SIX + ["MATH Lvl 5 (original parser)", "Average"]:
        assert isinstance(row[d], float)
    assert row["Average"] == pytest.approx(sum(row[d] for d in SIX) / 6, abs=1e-12)
    assert row["Average"] == pytest.approx(34.25757823554644, abs=1e-9)
    assert set(row["subtasks"]["BBH"]) == set(SUITE.get("bbh").leaf_tasks)
    assert set(row["stderr"]) >= set(SIX)


def test_json_leaves_out_absent_benchmarks_and_average(tmp_path, capsys):
    data = full()
    parts = per_benchmark_files(data, tmp_path)
    code, out, _ = run_cli(capsys, parts[1], parts[5], "--format", "json")  # BBH and MMLU-PRO only
    assert code == 0
    (row,) = json.loads(out)
    assert {"BBH", "MMLU-PRO"} <= set(row) and not ({"IFEval", "GPQA", "MuSR", "MATH Lvl 5", "Average"} & set(row))


def test_table_format(tmp_path, capsys):
    write_results(tmp_path, full())
    code, out, _ = run_cli(capsys, tmp_path)
    assert code == 0
    for header in ["Model", "Average", "IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO"]:
        assert header in out
    for value in ["34.26", "72.81", "42.54", "21.07", "16.54", "13.65", "19.49", "35.99"]:
        assert value in out, value
    assert "Gemmaslerp2-9B" in out


def test_csv_format_same_columns_full_precision(tmp_path, capsys):
    write_results(tmp_path, full())
    code, out, _ = run_cli(capsys, tmp_path, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["Model", "Average", "IFEval", "BBH", "MATH Lvl 5", "MATH Lvl 5 (original parser)", "GPQA",
                       "MuSR", "MMLU-PRO"]
    assert rows[1][0] == SEED
    assert float(rows[1][rows[0].index("GPQA")]) == pytest.approx(13.646532438478745, abs=1e-12)
    assert float(rows[1][1]) == pytest.approx(34.25757823554644, abs=1e-9)


def test_table_text_helper(tmp_path):
    write_results(tmp_path, full())
    text = table_text(sc.score_paths([tmp_path]))
    assert "72.81" in text and "Average" in text


# --- errors: one line, names the file and the key, exit 2 ---------------------------------------


def _assert_error(capsys, args, *needles):
    code, out, err = run_cli(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, (n, err)


def test_error_unreadable_json(tmp_path, capsys):
    p = tmp_path / "results_bad.json"
    p.write_text("{not json")
    _assert_error(capsys, [p], str(p))


def test_error_not_lm_eval_json(tmp_path, capsys):
    p = tmp_path / "results_x.json"
    p.write_text(json.dumps({"hello": 1}))
    _assert_error(capsys, [p], str(p), "results")
    p.write_text(json.dumps([1, 2]))
    _assert_error(capsys, [p], str(p))


def test_error_missing_metric_key(tmp_path, capsys):
    data = full()
    del data["results"]["leaderboard_mmlu_pro"]["acc,none"]
    p = write_results(tmp_path, data)
    _assert_error(capsys, [p], str(p), "leaderboard_mmlu_pro", "acc,none")


def test_error_n_samples_missing_for_weighting(tmp_path, capsys):
    data = full()
    del data["n-samples"]["leaderboard_gpqa_main"]
    p = write_results(tmp_path, data)
    _assert_error(capsys, [p], str(p), "n-samples", "leaderboard_gpqa_main")


def test_error_value_outside_unit_interval(tmp_path, capsys):
    data = full()
    data["results"]["leaderboard_bbh_navigate"]["acc_norm,none"] = 57.2  # a percentage, not a fraction
    p = write_results(tmp_path, data)
    _assert_error(capsys, [p], str(p), "leaderboard_bbh_navigate", "acc_norm,none", "outside [0, 1]")


def test_error_missing_path_and_empty_folder(tmp_path, capsys):
    _assert_error(capsys, [tmp_path / "nope.json"], "nope.json")
    (tmp_path / "empty").mkdir()
    _assert_error(capsys, [tmp_path / "empty"], "empty", "results_*.json")


def test_incomplete_benchmark_is_shown_incomplete_not_an_error(tmp_path, capsys):
    """#19: a partial benchmark no longer refuses the file (exit 2): `evalsuite score` shows it
    incomplete (23/24 tasks, no BBH number, no Average) and scores the rest; the library's
    `score_model` without `partial` still refuses it, naming the benchmark and the task."""
    data = full()
    del data["results"]["leaderboard_bbh_snarks"]
    p = write_results(tmp_path, data)
    with pytest.raises(sc.UserError, match="BBH incomplete.*leaderboard_bbh_snarks"):
        sc.score_model(read_results_file(p), SUITE)
    code, out, err = run_cli(capsys, p, "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert "BBH" not in row and "Average" not in row
    assert row["incomplete"]["BBH"]["present"] == 23 and row["incomplete"]["BBH"]["missing"] == ["leaderboard_bbh_snarks"]
    assert all(d in row for d in SIX if d != "BBH")
    assert any("BBH incomplete: 23 of 24" in n for n in row["notes"])


def test_error_choice_count_disagrees_with_suite(tmp_path, capsys):
    data = full()
    data["configs"]["leaderboard_bbh_date_understanding"]["doc_to_choice"] = ["(A)", "(B)", "(C)"]
    p = write_results(tmp_path, data)
    _assert_error(capsys, [p], str(p), "leaderboard_bbh_date_understanding", "doc_to_choice")


def test_error_no_model_name(tmp_path, capsys):
    data = full(model_name=None, model_args={"dtype": "bfloat16"})
    p = write_results(tmp_path, data)
    _assert_error(capsys, [p], str(p), "model_name")


def test_bad_format_option_is_a_usage_error(tmp_path, capsys):
    write_results(tmp_path, full())
    code = main(["score", str(tmp_path), "--format", "xml"])
    assert code == 2
