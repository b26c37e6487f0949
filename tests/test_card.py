"""`evalsuite card`: the leaderboard bot's model-card section and model-index, from stored results."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from evalsuite.published.card import ROWS, Card, markdown_table, render
from evalsuite.cli.main import main

FEW_SHOT = {"IFEval (0-Shot)": 0, "BBH (3-Shot)": 3, "MATH Lvl 5 (4-Shot)": 4, "GPQA (0-shot)": 0,
            "MuSR (0-shot)": 0, "MMLU-PRO (5-shot)": 5}
MODELS = ["tiny-merge", "tiny-parent_a", "tiny-parent_b"]


def _card_text(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["card", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _split(text: str) -> tuple[dict, str]:
    m = re.match(r"---\n(.*?)\n---\n(.*)\Z", text, re.S)
    assert m, text[:300]
    return yaml.safe_load(m.group(1)), m.group(2)


def _table(body: str) -> dict[str, str]:
    rows = {}
    for line in body.splitlines():
        cells = line.split("|")
        if len(cells) == 4 and not set(cells[1]) <= {"-"} and cells[1].strip() != "Metric":
            rows[cells[1].strip()] = cells[2].strip()
    return rows


def _expected(demo_run, model: str):
    """`evalsuite.score` on the model's job folders of the stored run, independently of evalsuite.published.card."""
    from evalsuite.results.files import load_results_as
    from evalsuite.score import score_model

    store = demo_run.store
    rec = store.read_experiment(demo_run.exp.name)
    files = []
    for job_id in rec.jobs[model].values():
        job = store.finished_job(job_id)
        assert job is not None
        files.append(store.results_path(job))
    return score_model(load_results_as(files, model))


def _expected_values(scores, parser: str) -> dict[str, float]:
    by_id = {s.id: s.value for s in scores.scores.values()}
    math_id = "math_hard" if parser == "math-verify" else "math_hard_original"
    ids = ["ifeval", "bbh", math_id, "gpqa", "musr", "mmlu_pro"]
    vals = dict(zip(FEW_SHOT, (by_id[i] for i in ids)))
    vals["Avg."] = sum(vals.values()) / 6
    return vals


# ---------------------------------------------------------------------------------------------
# the bot's layout (no run needed)


def test_table_layout_is_the_bots():
    # the bot's table of ZeroXClem/Llama-3.1-8B-AthenaSky-MegaMix (see evalsuite/published/card.py): the
    # same values must give the same text, byte for byte
    values = dict(zip([r.benchmark for r in ROWS], [63.01, 31.39, 27.95, 3.69, 6.90, 27.82]))
    card = Card(model="m", experiment="e", hub=None, harness="leaderboard", math_parser="math-verify", values=values)
    assert markdown_table(card) == (
        "|      Metric       |Value|\n"
        "|-------------------|----:|\n"
        "|Avg.               |26.79|\n"
        "|IFEval (0-Shot)    |63.01|\n"
        "|BBH (3-Shot)       |31.39|\n"
        "|MATH Lvl 5 (4-Shot)|27.95|\n"
        "|GPQA (0-shot)      | 3.69|\n"
        "|MuSR (0-shot)      | 6.90|\n"
        "|MMLU-PRO (5-shot)  |27.82|"
    )


def test_missing_benchmark_dash_and_no_average():
    values = dict(zip([r.benchmark for r in ROWS], [63.01, 31.39, 27.95, None, 6.90, 27.82]))
    card = Card(model="m", experiment="e", hub="org/m", harness="upstream", math_parser="original", values=values)
    meta, body = _split(render(card))
    rows = _table(body)
    assert rows["GPQA (0-shot)"] == "—" and rows["Avg."] == "—"
    assert "no Avg." in body and "GPQA (0-shot)" in body
    (entry,) = meta["model-index"]
    assert entry["name"] == "m" and len(entry["results"]) == 5
    assert "GPQA (0-shot)" not in [r["dataset"]["name"] for r in entry["results"]]
    assert entry["results"][0]["source"]["url"].endswith("?query=org/m")
    assert "`upstream`" in body and "original parser" in body


def test_math_parser_picks_its_score():
    from evalsuite.published.card import card_from_scores
    from evalsuite.schema import ModelScores, Score

    def score(sid, bench, value, in_average=True, label=None):
        return Score(id=sid, display=sid, benchmark=bench, value=value, raw=value / 100, stderr=None, subtasks={},
                     in_average=in_average, label=label)

    main_ids = ["ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"]
    scores = {i: score(i, i, 10.0 * (n + 1)) for n, i in enumerate(main_ids)}
    scores["math_hard_original"] = score("math_hard_original", "math_hard", 7.5, in_average=False, label="original parser")
    ms = ModelScores(model="m", scores=scores, average=35.0)
    verify = card_from_scores(ms, model="m", experiment="e", harness="leaderboard")
    original = card_from_scores(ms, model="m", experiment="e", harness="leaderboard", math_parser="original")
    assert verify.values["math_hard"] == 30.0 and verify.average == 35.0
    assert original.values["math_hard"] == 7.5 and original.average == (10 + 20 + 7.5 + 40 + 50 + 60) / 6
    assert _table(_split(render(original))[1])["MATH Lvl 5 (4-Shot)"] == "7.50"


def test_other_few_shot_setting_is_said():
    values = dict(zip([r.benchmark for r in ROWS], [63.01, 31.39, 27.95, 3.69, 6.90, 27.82]))
    card = Card(model="m", experiment="e", hub=None, harness="leaderboard", math_parser="math-verify", values=values,
                shots={"bbh": [0], "mmlu_pro": [5]})
    body = render(card)
    assert "BBH (3-Shot) ran 0-shot" in body and "MMLU-PRO" not in body.split("few-shot setting")[1].split("\n")[0]


# ---------------------------------------------------------------------------------------------
# on the demo's stored run


@pytest.mark.parametrize("parser", ["math-verify", "original"])
@pytest.mark.parametrize("model", MODELS)
def test_card_numbers_are_the_stored_scores(demo_run, capsys, model, parser):
    rc, out, _ = _card_text(capsys, "--config", str(demo_run.config), "--model", model, "--math-parser", parser)
    assert rc == 0
    meta, body = _split(out)
    expected = _expected_values(_expected(demo_run, model), parser)
    rows = _table(body)
    assert list(rows) == ["Avg.", *FEW_SHOT]
    for label, value in expected.items():
        assert rows[label] == f"{value:.2f}", label
    (entry,) = meta["model-index"]
    assert entry["name"] == model
    assert len(entry["results"]) == 6
    for r in entry["results"]:
        name = r["dataset"]["name"]
        assert r["task"]["type"] == "text-generation"
        assert r["dataset"]["args"]["num_few_shot"] == FEW_SHOT[name]
        (metric,) = r["metrics"]
        assert metric["value"] == round(expected[name], 2)
        assert set(metric) == {"type", "value", "name"} and set(r["source"]) == {"url", "name"}
    assert "few-shot setting" not in body  # the results files' n-shot are the bot's counts
    # which parser and which harness made the numbers, said in one line
    line = next(x for x in body.splitlines() if "harness profile" in x)
    assert "`leaderboard`" in line  # the demo's default harness
    assert f"--math-parser {parser}" in line
    assert ("Math-Verify" if parser == "math-verify" else "original parser") in line


def test_default_parser_is_math_verify(demo_run, capsys):
    rc, out, _ = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-merge")
    assert rc == 0 and "--math-parser math-verify" in out
    scores = _expected(demo_run, "tiny-merge")
    assert _table(_split(out)[1])["Avg."] == f"{scores.average:.2f}"


def test_limit_run_is_marked_and_strict_refuses(demo_run, capsys):
    limit = demo_run.exp.limit
    assert limit  # the demo runs with a limit
    rc, out, _ = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-merge")
    assert rc == 0
    assert f"limited to {limit} documents per task: not comparable with the leaderboard" in out
    rc, out, err = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-merge", "--strict")
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "--limit" in err


def test_unknown_model_one_line_exit_2(demo_run, capsys):
    rc, out, err = _card_text(capsys, "--config", str(demo_run.config), "--model", "no-such-model")
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    for name in MODELS:
        assert name in err


def test_bad_math_parser_exit_2(demo_run, capsys):
    rc, _, err = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-merge", "--math-parser", "x")
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_out_writes_atomically(demo_run, capsys, tmp_path: Path, monkeypatch):
    target = tmp_path / "card.md"
    target.write_text("old card\n")
    rc, out, _ = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-parent_a", "--out", str(target))
    assert rc == 0 and out == ""
    rc2, stdout_text, _ = _card_text(capsys, "--config", str(demo_run.config), "--model", "tiny-parent_a")
    assert target.read_text() == stdout_text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md"]  # no temp file left

    # a write that fails half way leaves the old file and no temp file
    import os

    def boom(*a, **k):
        raise OSError("simulated failure before the rename")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        main(["card", "--config", str(demo_run.config), "--model", "tiny-parent_b", "--out", str(target)])
    assert target.read_text() == stdout_text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md"]
