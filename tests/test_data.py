"""The demo mirror and the data-source stage, checked against the real lm-eval 0.4.13 task code."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalsuite.data.overrides import write_task_overrides
from evalsuite.data.tasks import HUB_DATASETS, data_identity, installed_task_yamls, load_task_yaml, mirror_problems
from evalsuite.errors import UserError
from evalsuite.fixtures import demo_data as dd
from evalsuite.suite import load_suite

REPO = Path(__file__).resolve().parent.parent
MIRROR = REPO / "examples" / "demo_mirror"
ALL = list(HUB_DATASETS)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
    }


def _punkt_dir(tmp: Path) -> Path:
    """NLTK punkt_tab for IFEval scoring (key 1007 counts sentences), or skip."""
    try:
        from evalsuite.data.nltk_data import ensure_punkt_tab
    except ImportError:
        pytest.skip("evalsuite.data.nltk_data (offline punkt_tab for IFEval) is not in this checkout")
    status = ensure_punkt_tab(tmp, offline=True)
    if not status.genuine:
        pytest.skip(f"NLTK punkt_tab unavailable offline: {status.detail}")
    return tmp


def _expected_counts() -> dict[str, int]:
    """Docs lm-eval should see per leaf task, computed from the fixture rows."""
    counts: dict[str, int] = {}
    suite = load_suite()
    for sub, rows in dd.BBH.items():
        counts[f"leaderboard_bbh_{sub}"] = len(rows)
    math_tasks = suite.get("math_hard").leaf_tasks
    for cfg, task in zip(dd.MATH_TYPES, math_tasks):
        counts[task] = sum(r["level"] == "Level 5" for r in dd.MATH_TEST[cfg])
    for cfg in ("diamond", "extended", "main"):
        counts[f"leaderboard_gpqa_{cfg}"] = len(dd.GPQA[f"gpqa_{cfg}"])
    for split, rows in dd.MUSR.items():
        counts[f"leaderboard_musr_{split}"] = len(rows)
    counts["leaderboard_mmlu_pro"] = len(dd.MMLU_PRO_TEST)
    counts["leaderboard_ifeval"] = len(dd.IFEVAL)
    return counts


# ---------------------------------------------------------------- the mirror files themselves


def test_mirror_in_repo_is_up_to_date(tmp_path):
    dd.write_mirror(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(MIRROR)
    assert sorted(fresh) == sorted(committed), "run: python -m evalsuite.fixtures.demo_data"
    stale = [k for k in fresh if fresh[k] != committed[k]]
    assert not stale, f"stale mirror files {stale}; run: python -m evalsuite.fixtures.demo_data"
    assert sum(len(b) for b in committed.values()) < 400_000


def test_write_mirror_replaces_repos_byte_identically(tmp_path):
    dd.write_mirror(tmp_path)
    first = _tree(tmp_path)
    junk = tmp_path / "TAUR-Lab" / "MuSR" / "stale.csv"
    junk.write_text("x\n")
    dd.write_mirror(tmp_path)
    assert _tree(tmp_path) == first
    assert not list(tmp_path.rglob(".*tmp-*")) and not list(tmp_path.rglob(".*old-*"))


def test_mirror_layout_follows_the_hub_repos():
    files = _tree(MIRROR)
    assert "SaylorTwift/bbh/boolean_expressions/test-00000-of-00001.parquet" in files
    assert "Idavidrein/gpqa/gpqa_diamond.csv" in files
    assert "wis-k/instruction-following-eval/input_data.jsonl" in files
    assert "DigitalLearningGmbH/MATH-lighteval/algebra/test-00000-of-00001.parquet" in files
    assert "TAUR-Lab/MuSR/murder_mystery.csv" in files
    assert "TIGER-Lab/MMLU-Pro/data/validation-00000-of-00001.parquet" in files
    schema = pq.read_schema(MIRROR / "TIGER-Lab/MMLU-Pro/data/test-00000-of-00001.parquet")
    assert schema.names == ["question_id", "question", "options", "answer", "answer_index",
                            "cot_content", "category", "src"]


# ---------------------------------------------------------------- gold answers, via lm-eval code


def test_bbh_targets_are_choices_of_the_installed_task():
    suite = load_suite()
    yamls = installed_task_yamls()
    for sub, rows in dd.BBH.items():
        cfg = load_task_yaml(yamls[f"leaderboard_bbh_{sub}"])
        choices = cfg["doc_to_choice"]
        assert len(choices) == suite.get("bbh").choices[sub]
        assert len(rows) >= 3
        for row in rows:
            assert row["target"] in choices, (sub, row["target"])
            if row["target"].startswith("("):  # the lettered option is printed in the question
                assert f"\n{row['target']} " in row["input"], (sub, row["target"])


def test_math_gold_answers_score_with_lm_eval():
    import datasets
    from lm_eval.tasks.leaderboard.math import utils

    for cfg, rows in dd.MATH_TEST.items():
        docs = list(utils.process_docs(datasets.Dataset.from_list(rows)))
        assert len(docs) == 3 and len(rows) == 4, cfg  # the one non-Level-5 row is filtered out
        for doc in docs:
            right = f"Final Answer: The final answer is ${doc['answer']}$. I hope it is correct."
            wrong = "Final Answer: The final answer is $1234567$. I hope it is correct."
            assert utils.process_results(doc, [right]) == {
                "exact_match": 1, "exact_match_original": 1}, (cfg, doc["answer"])
            assert utils.process_results(doc, [wrong])["exact_match"] == 0


COMPLIANT = {
    1001: "Dear neighbours\n\nPlease join us for a *street party on Saturday* at noon. Bring a "
          "dish to share and your *favourite music*. See you there!",
    1002: "The sun lifts slowly out of the calm grey sea and paints the water with gold and soft "
          "pink light while gulls glide above the waves and the cool morning air fills with the "
          "quiet sound of the tide. Is there anything else I can help with?",
    1003: "* Water keeps your energy up.\n* Water helps your skin stay healthy.\n* Water supports "
          "digestion.",
    1004: "<<Falling Leaves>>\nRed and golden leaves drift down,\nthey dance across the quiet "
          "town.",
    1005: '```json\n{"items": ["tent", "sleeping bag", "flashlight", "water"]}\n```',
    1006: '"Dear Ms. Lee, thank you for a wonderful year of lessons.\nP.S. I will miss your '
          'science experiments."',
    1007: "Sunlight is scattered by the gases in the air. Blue light is scattered the most "
          "because its wavelength is short.",
}


def test_ifeval_compliant_responses_pass_lm_eval_checks(tmp_path, monkeypatch):
    import nltk

    punkt = _punkt_dir(tmp_path / "nltk_data")
    monkeypatch.setattr(nltk.data, "path", [str(punkt), *nltk.data.path])
    from lm_eval.tasks.leaderboard.ifeval import utils

    assert sorted(COMPLIANT) == sorted(r["key"] for r in dd.IFEVAL)
    for doc in dd.IFEVAL:
        assert "language:response_language" not in doc["instruction_id_list"]
        assert len(doc["kwargs"]) == len(doc["instruction_id_list"])
        out = utils.process_results(doc, [COMPLIANT[doc["key"]]])
        assert out["prompt_level_strict_acc"] is True, (doc["key"], out)
        assert all(out["inst_level_strict_acc"]), (doc["key"], out)
        bad = utils.process_results(doc, ["Lol. " * 6])
        assert bad["prompt_level_strict_acc"] is False, doc["key"]


def test_multiple_choice_golds_are_consistent():
    for row in dd.MMLU_PRO_TEST + dd.MMLU_PRO_VALIDATION:
        assert row["answer"] == chr(65 + row["answer_index"])
        assert 3 <= len(row["options"]) <= 10 and row["answer_index"] < len(row["options"])
        assert len(set(row["options"])) == len(row["options"])
    assert len(dd.MMLU_PRO_VALIDATION) >= 5 and len(dd.MMLU_PRO_TEST) >= 8
    for split, rows in dd.MUSR.items():
        k = load_suite().get("musr").choices[split]
        for row in rows:
            choices = ast.literal_eval(row["choices"])
            assert len(choices) == k and choices[row["answer_index"]] == row["answer_choice"]
    from lm_eval.tasks.leaderboard.gpqa.utils import preprocess

    for rows in dd.GPQA.values():
        for row in rows:
            answers = [preprocess(row[c]) for c in ("Correct Answer", "Incorrect Answer 1",
                                                    "Incorrect Answer 2", "Incorrect Answer 3")]
            assert len(set(answers)) == 4, row["Question"]


# ---------------------------------------------------------------- mirror_problems


def test_demo_mirror_has_no_problems():
    assert mirror_problems(MIRROR, ALL) == []


def test_mirror_problems_catch_broken_copies(tmp_path):
    m = tmp_path / "mirror"
    shutil.copytree(MIRROR, m)
    (m / "TAUR-Lab/MuSR/README.md").write_text(
        (m / "TAUR-Lab/MuSR/README.md").read_text().replace("split: team_allocation",
                                                             "split: teams"))
    bbh = m / "SaylorTwift/bbh/navigate/test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(bbh).drop(["target"]), bbh)
    shutil.rmtree(m / "Idavidrein/gpqa")
    readme = m / "TIGER-Lab/MMLU-Pro/README.md"
    readme.write_text("---\nlicense: mit\n---\n")

    problems = mirror_problems(m, ALL)
    text = "\n".join(problems)
    assert all("\n" not in p for p in problems)
    assert "no 'team_allocation' split" in text
    assert f"{bbh}: missing column(s) 'target'" in text
    assert "Idavidrein/gpqa is missing" in text
    assert f"{readme}: no `configs:` block" in text
    assert mirror_problems(m, ["ifeval", "math_hard"]) == []
    assert mirror_problems(tmp_path / "nope", ALL) == [
        f"mirror folder {tmp_path / 'nope'} does not exist"]


def test_mirror_problems_check_fewshot_rows_and_math_levels(tmp_path):
    m = tmp_path / "mirror"
    shutil.copytree(MIRROR, m)
    val = m / "TIGER-Lab/MMLU-Pro/data/validation-00000-of-00001.parquet"
    pq.write_table(pq.read_table(val).slice(0, 3), val)
    geo = m / "DigitalLearningGmbH/MATH-lighteval/geometry/test-00000-of-00001.parquet"
    table = pq.read_table(geo)
    keep = [lvl != "Level 5" for lvl in table.column("level").to_pylist()]
    pq.write_table(table.filter(pa.array(keep)), geo)
    text = "\n".join(mirror_problems(m, ["mmlu_pro", "math_hard"]))
    assert "split 'validation' has 3 rows, leaderboard_mmlu_pro takes 5-shot" in text
    assert "config 'geometry' split 'test' has no 'Level 5' rows" in text


# ---------------------------------------------------------------- overrides and identity


def test_write_task_overrides(tmp_path):
    out = write_task_overrides(MIRROR, ALL, tmp_path / "tasks")
    suite = load_suite()
    leaves = [t for b in ALL for t in suite.get(b).leaf_tasks]
    assert len(leaves) == 39
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.yaml" for t in leaves)
    cfg = load_task_yaml(out / "leaderboard_musr_team_allocation.yaml")
    assert cfg["task"] == "leaderboard_musr_team_allocation"
    assert cfg["dataset_path"] == str(MIRROR.resolve() / "TAUR-Lab/MuSR")
    assert cfg["test_split"] == "team_allocation"  # inherited through include:
    assert cfg["doc_to_text"] == "!function utils.doc_to_text"
    first = _tree(out)
    write_task_overrides(MIRROR, ALL, out)  # rewrite in place: same bytes
    assert _tree(out) == first
    write_task_overrides(MIRROR, ["bbh"], out)  # a smaller set drops the others
    assert len(list(out.iterdir())) == 24

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="did not write"):
        write_task_overrides(MIRROR, ALL, tmp_path / "other")
    with pytest.raises(UserError, match="does not exist"):
        write_task_overrides(tmp_path / "nope", ALL, tmp_path / "t2")
    assert not (tmp_path / "t2").exists()


def test_data_identity(tmp_path):
    assert data_identity(None, ALL) == "hub"
    m = tmp_path / "mirror"
    shutil.copytree(MIRROR, m)
    ident = data_identity(m, ALL)
    assert ident.startswith("sha256:") and ident == data_identity(MIRROR, ALL)
    only_bbh = data_identity(m, ["bbh"])
    (m / "SaylorTwift/bbh/.cache").mkdir()
    (m / "SaylorTwift/bbh/.cache/x.metadata").write_text("download bookkeeping")
    assert data_identity(m, ALL) == ident
    csv_path = m / "Idavidrein/gpqa/gpqa_main.csv"
    csv_path.write_bytes(csv_path.read_bytes().replace(b"18 g/mol", b"19 g/mol", 1))
    assert data_identity(m, ALL) != ident
    assert data_identity(m, ["bbh"]) == only_bbh


# ---------------------------------------------------------------- the real thing: lm-eval loads it


@pytest.mark.slow
def test_lm_eval_reads_all_39_tasks_from_the_mirror(tmp_path):
    overrides = write_task_overrides(MIRROR, ALL, tmp_path / "tasks")
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),  # keep the user's datasets cache untouched
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "NLTK_DATA": str(_punkt_dir(tmp_path / "nltk_data")),
        "TOKENIZERS_PARALLELISM": "false",
    }
    lm_eval = Path(sys.executable).parent / "lm_eval"
    cmd = [str(lm_eval), "run", "--model", "dummy", "--tasks", "leaderboard", "--include_path",
           str(overrides), "--output_path", str(tmp_path / "out"), "--log_samples"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list((tmp_path / "out").rglob("results_*.json"))
    assert len(results) == 1
    res = json.loads(results[0].read_text())
    got = {task: n["effective"] for task, n in res["n-samples"].items()}
    assert got == _expected_counts()
    for task, cfg in res["configs"].items():
        assert cfg["dataset_path"].startswith(str(MIRROR.resolve())), task
    assert "prompt_level_strict_acc,none" in res["results"]["leaderboard_ifeval"]


def test_mirror_json_data_as_array_or_broken(tmp_path):
    """A JSON data file may hold JSON lines or one (pretty-printed) array of rows, as `datasets`
    reads both; anything else is one problem line, not a traceback."""
    m = tmp_path / "mirror"
    shutil.copytree(MIRROR, m)
    f = m / "wis-k/instruction-following-eval/input_data.jsonl"
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    f.write_text(json.dumps(rows, indent=2))
    assert mirror_problems(m, ["ifeval"]) == []
    f.write_text(json.dumps(rows, indent=2)[:-40])  # cut short
    problems = mirror_problems(m, ["ifeval"])
    assert problems == [f"ifeval: {f}: not a data file lm-eval can read (parquet, csv, JSON lines or a JSON array of rows)"]
