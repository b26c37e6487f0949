"""The leaderboard's own contents table, `open-llm-leaderboard/contents` (its parquet file, local or
from the hub: one row per model the leaderboard scored), read as published rows (`PublishedRow`,
also the rows of a published-scores CSV: `evalsuite.report.published`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from evalsuite.errors import UserError
from evalsuite.suite import Suite


class PublishedRow(BaseModel):
    model: str
    revision: Optional[str] = None
    chat_template: Optional[str] = None
    values: dict[str, float]  # score display name (and the average label) -> normalized value


CONTENTS_REPO = "open-llm-leaderboard/contents"
CONTENTS_FILE = "data/train-00000-of-00001.parquet"
# the contents table's normalized columns -> suite benchmark ids (its "Raw" columns are 0-1)
CONTENTS_COLUMNS = {"IFEval": "ifeval", "BBH": "bbh", "MATH Lvl 5": "math_hard", "GPQA": "gpqa", "MUSR": "musr", "MMLU-PRO": "mmlu_pro"}
CONTENTS_AVERAGE = "Average ⬆️"


def contents_from_hub(revision: Optional[str] = None) -> Path:
    """The leaderboard's contents parquet, downloaded (or found in the HF cache)."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(CONTENTS_REPO, CONTENTS_FILE, repo_type="dataset", revision=revision))
    except Exception as exc:  # network, offline and not cached
        raise UserError(f"{CONTENTS_REPO}: cannot get {CONTENTS_FILE}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


def read_contents(path: Path, suite: Suite) -> list[PublishedRow]:
    """Rows of the leaderboard's contents table (`fullname`, `Model sha`, `Chat Template`, the six
    normalized benchmark columns, `Average ⬆️`)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # not parquet, damaged
        raise UserError(f"{path}: cannot read the contents table: {str(exc).splitlines()[0]}") from exc
    names = set(table.column_names)
    missing = [c for c in ("fullname", *CONTENTS_COLUMNS) if c not in names]
    if missing:
        raise UserError(f"{path}: not the leaderboard's contents table (no column {missing[0]!r})")
    display = {b.id: b.display for b in suite.benchmarks}
    out = []
    for row in table.to_pylist():
        values = {display[bid]: float(row[col]) for col, bid in CONTENTS_COLUMNS.items() if bid in display and row.get(col) is not None}
        if row.get(CONTENTS_AVERAGE) is not None:
            values[suite.average] = float(row[CONTENTS_AVERAGE])
        chat = row.get("Chat Template")
        out.append(PublishedRow(model=str(row["fullname"]).strip(), revision=row.get("Model sha") or None,
                                chat_template=None if chat is None else str(chat).lower(), values=values))
    return out
