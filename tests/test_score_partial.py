"""`evalsuite score` on partial files (#19 item 3): every genuine results file in
tests/fixtures_score/ scores with exit 0, and so does one cut down to a partial BBH and GPQA
(tests/fixtures_score/partial/README.md): the complete benchmark gets the number the whole file
gives it, the partial ones are shown incomplete with their subtask counts, no Average."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsuite.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures_score"
NO_SUITE_TASK = FIXTURES / "lm_eval_versions" / "0.4.3"  # 0.4.3 has no leaderboard tasks (gpqa_diamond_zeroshot)
GENUINE = sorted(p for p in FIXTURES.rglob("results_*.json") if NO_SUITE_TASK not in p.parents)
PARTIAL = FIXTURES / "partial"
WHOLE = FIXTURES / "lm_eval_versions" / "0.4.8" / "limit2"


def _json(capsys, *paths) -> tuple[int, list]:
    code = main(["score", *map(str, paths), "--format", "json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return code, json.loads(out.out)


@pytest.mark.parametrize("path", GENUINE, ids=[str(p.relative_to(FIXTURES)) for p in GENUINE])
def test_every_genuine_results_file_scores(path, capsys):
    _, rows = _json(capsys, path)
    assert rows and all(r.get("incomplete") is None or r.get("Average") is None for r in rows)


def test_a_file_without_any_suite_task_is_still_refused(capsys):
    (path,) = NO_SUITE_TASK.rglob("results_*.json")
    code = main(["score", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "none of the leaderboard_v2 benchmarks' tasks found" in err and "gpqa_diamond_zeroshot" in err


def test_partial_file_scores_what_is_complete(capsys):
    _, (row,) = _json(capsys, PARTIAL)
    _, (whole,) = _json(capsys, WHOLE)
    assert row["MMLU-PRO"] == whole["MMLU-PRO"]  # complete: the same number as in the whole file
    assert "Average" not in row and "BBH" not in row and "GPQA" not in row
    inc = row["incomplete"]
    assert (inc["BBH"]["present"], inc["BBH"]["tasks"]) == (1, 24)
    assert (inc["GPQA"]["present"], inc["GPQA"]["tasks"]) == (1, 3)
    assert set(inc["GPQA"]["subtasks"]) == {"leaderboard_gpqa_main"}
    assert inc["GPQA"]["subtasks"]["leaderboard_gpqa_main"] == pytest.approx(whole["subtasks"]["GPQA"]["leaderboard_gpqa_main"])
    assert inc["BBH"]["subtasks"]["leaderboard_bbh_boolean_expressions"] == pytest.approx(
        whole["subtasks"]["BBH"]["leaderboard_bbh_boolean_expressions"])
    assert any(n.startswith("BBH incomplete: 1 of 24 subtasks") for n in row["notes"])


def test_partial_file_table(capsys):
    code = main(["score", str(PARTIAL)])
    out = capsys.readouterr().out
    assert code == 0
    assert "1/24 tasks" in out and "1/3 tasks" in out and "GPQA incomplete: 1 of 3 subtasks" in out
