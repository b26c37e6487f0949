"""The report's "published" column from the leaderboard's own contents table
(`open-llm-leaderboard/contents`, `data/train-00000-of-00001.parquet`; columns as documented in
shared/reference/leaderboard_details.md), matched to a model by hub id and revision."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalsuite.errors import UserError
from evalsuite.report.published import match_published, read_published
from evalsuite.suite import load_suite

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "examples" / "published_scores.csv"


def contents_table(path: Path) -> Path:
    """The three reference rows of examples/published_scores.csv in the contents table's columns,
    plus a second (older) revision of one model."""
    rows = []
    with PUBLISHED.open() as fh:
        for r in csv.DictReader(fh):
            rows.append({
                "eval_name": r["model"].replace("/", "_") + "_bfloat16", "Precision": "bfloat16", "Type": "🤝 base merges and moerges",
                "Weight type": "Original", "Architecture": "Gemma2ForCausalLM", "Model": f"<a href='x'>{r['model']}</a>",
                "fullname": r["model"], "Model sha": r["revision"], "Average ⬆️": float(r["average"]),
                "Chat Template": r["chat_template"] == "true",
                "IFEval Raw": float(r["ifeval_raw"]), "IFEval": float(r["ifeval_norm"]), "BBH Raw": float(r["bbh_raw"]), "BBH": float(r["bbh_norm"]),
                "MATH Lvl 5 Raw": float(r["math_raw"]), "MATH Lvl 5": float(r["math_norm"]), "GPQA Raw": float(r["gpqa_raw"]), "GPQA": float(r["gpqa_norm"]),
                "MUSR Raw": float(r["musr_raw"]), "MUSR": float(r["musr_norm"]), "MMLU-PRO Raw": float(r["mmlu_pro_raw"]), "MMLU-PRO": float(r["mmlu_pro_norm"]),
            })
    older = dict(rows[1], **{"Model sha": "0" * 40, "BBH": 1.0})
    pq.write_table(pa.Table.from_pylist([older, *rows]), path)
    return path


def test_contents_table_gives_the_same_published_values_as_the_csv(tmp_path):
    suite = load_suite()
    from_contents = read_published(contents_table(tmp_path / "contents.parquet"), suite)
    from_csv = read_published(PUBLISHED, suite)
    delirium = {"name": "Delirium-v1", "pretrained": "sam-paech/Delirium-v1", "revision": "98dc2dad47af405013c0584d752504ca448bd8eb"}
    a, b = match_published(from_contents, delirium), match_published(from_csv, delirium)
    assert a.revision == delirium["revision"]  # the row at the model's revision, not the older one
    assert a.values == b.values and set(a.values) == {"IFEval", "BBH", "MATH Lvl 5", "GPQA", "MuSR", "MMLU-PRO", "Average"}
    for name in ("Gemmaslerp2-9B", "Emu_Eggs-9B-Model_Stock"):
        assert match_published(from_contents, {"name": name}).values == match_published(from_csv, {"name": name}).values
    assert match_published(from_contents, {"name": "Delirium-v1"}).values["BBH"] == 1.0  # no revision: the first row
    assert match_published(from_contents, {"name": "unknown"}) is None


def test_a_parquet_file_that_is_not_the_contents_table_is_one_line(tmp_path):
    bad = tmp_path / "other.parquet"
    pq.write_table(pa.Table.from_pylist([{"fullname": "a/b", "IFEval": 1.0}]), bad)
    with pytest.raises(UserError, match=r"other.parquet: not the leaderboard's contents table \(no column 'BBH'\)"):
        read_published(bad, load_suite())
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(UserError, match=r"junk.parquet: cannot read the contents table"):
        read_published(tmp_path / "junk.parquet", load_suite())
