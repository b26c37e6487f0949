"""A real `lm_eval run --model dummy --tasks leaderboard` (all 39 tasks, the demo mirror's rows):
the scorer reads the real 0.4.13 layout, and the synthetic layout used elsewhere matches it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalsuite import score as sc
from evalsuite.results.files import read_results_file
from evalsuite.suite import load_suite
from conftest import REPO
from evalsuite.data.overrides import write_task_overrides
from fixtures_score.lm_eval_layout import build_results, per_benchmark_files, write_results

pytestmark = pytest.mark.slow
SUITE = load_suite()
SIX = ["IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO"]
MODEL = "evalsuite-dummy"


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lm_eval_real")
    include = write_task_overrides(REPO / "examples" / "demo_mirror", SUITE.ids, root / "tasks")
    from evalsuite.data.nltk_data import ensure_punkt_tab

    status = ensure_punkt_tab(root / "nltk", offline=True, allow_standin=True)  # IFEval scoring needs it
    assert status.kind != "missing", status.detail
    lm_eval = shutil.which("lm_eval") or str(Path(sys.executable).parent / "lm_eval")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", NLTK_DATA=str(root / "nltk"),
               HF_HOME=str(root / "hf"), TOKENIZERS_PARALLELISM="false")
    cmd = [lm_eval, "run", "--model", "dummy", "--model_args", f"pretrained={MODEL}", "--tasks", "leaderboard",
           "--include_path", str(include), "--output_path", str(root / "out")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = sorted((root / "out").rglob("results_*.json"))
    return path


def test_real_file_scores_by_hand(real_results):
    data = json.loads(real_results.read_text())
    res, ns = data["results"], data["n-samples"]
    (s,) = sc.score_paths([real_results.parent.parent])
    assert s.model == MODEL
    assert all(s.value(d) is not None for d in SIX) and s.average is not None
    # independent arithmetic from the file, with k taken from the file's own task configs
    bbh = [t for t in data["group_subtasks"]["leaderboard_bbh"]]
    assert len(bbh) == 24
    terms = []
    for t in bbh:
        k = len(data["configs"][t]["doc_to_choice"])
        raw = res[t]["acc_norm,none"]
        terms.append(max(raw - 1 / k, 0) / (1 - 1 / k) * 100)
    assert s.value("BBH") == pytest.approx(sum(terms) / 24, abs=1e-9)
    gpqa = data["group_subtasks"]["leaderboard_gpqa"]
    correct = sum(res[t]["acc_norm,none"] * ns[t]["effective"] for t in gpqa)
    total = sum(ns[t]["effective"] for t in gpqa)
    assert s.value("GPQA") == pytest.approx(max(correct / total - 0.25, 0) / 0.75 * 100, abs=1e-9)
    math_t = data["group_subtasks"]["leaderboard_math_hard"]
    em = sum(res[t]["exact_match,none"] * ns[t]["effective"] for t in math_t) / sum(ns[t]["effective"] for t in math_t)
    assert s.value("MATH Lvl 5") == pytest.approx(em * 100, abs=1e-9)
    # lm-eval's own group value is the size-weighted exact_match: same thing for MATH
    assert s.value("MATH Lvl 5") == pytest.approx(res["leaderboard_math_hard"]["exact_match,none"] * 100, abs=1e-9)
    ife = res["leaderboard_ifeval"]
    assert s.value("IFEval") == pytest.approx(
        (ife["prompt_level_strict_acc,none"] + ife["inst_level_strict_acc,none"]) / 2 * 100, abs=1e-9)
    assert s.value("MMLU-PRO") == pytest.approx(max(res["leaderboard_mmlu_pro"]["acc,none"] - 0.1, 0) / 0.9 * 100,
                                                abs=1e-9)


def test_six_per_benchmark_files_give_identical_numbers(real_results, tmp_path):
    """One combined `leaderboard` file vs the same results split into six per-benchmark files."""
    data = json.loads(real_results.read_text())
    per_benchmark_files(data, tmp_path)
    (one,) = sc.score_paths([real_results])
    (six,) = sc.score_paths([tmp_path])
    assert len(six.sources) == 6
    for d in SIX + ["MATH Lvl 5 (original parser)", "Average"]:
        assert six.value(d) == one.value(d), d


def test_synthetic_layout_matches_real_layout(real_results, tmp_path):
    real = json.loads(real_results.read_text())
    values = {t: {k: v for k, v in e.items() if "," in k and "stderr" not in k}
              for t, e in real["results"].items() if t not in real["groups"]}
    n = {t: real["n-samples"][t]["effective"] for t in values}
    fake = build_results(MODEL, values, n)
    assert set(fake) == set(real)
    assert set(fake["results"]) == set(real["results"]) - {"leaderboard"}  # the top group is not built
    for t in values:
        assert set(fake["results"][t]) == set(real["results"][t]), t
        assert fake["n-samples"][t].keys() == real["n-samples"][t].keys()
    for g in fake["groups"]:
        assert set(fake["groups"][g]) == set(real["groups"][g]), g
        assert fake["groups"][g]["acc_norm,none" if "math" not in g else "exact_match,none"] == pytest.approx(
            real["groups"][g]["acc_norm,none" if "math" not in g else "exact_match,none"], abs=1e-12)
    assert set(fake["config"]) == set(real["config"])
    assert isinstance(real["config"]["model_args"], dict)  # 0.4.13 stores model_args parsed
    # and the scorer gives the same numbers for both
    a = sc.score_model(read_results_file(real_results), SUITE)
    b = sc.score_model(read_results_file(write_results(tmp_path, fake)), SUITE)
    for d in SIX + ["MATH Lvl 5 (original parser)", "Average"]:
        assert a.value(d) == b.value(d), d
