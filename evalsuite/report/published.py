"""Published leaderboard rows matched to our models: a CSV like `examples/published_scores.csv`, or
the leaderboard's own `open-llm-leaderboard/contents` table (`evalsuite.published.contents`: its
parquet file, local or from the hub: one row per model the leaderboard scored)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from evalsuite.errors import UserError
from evalsuite.published.contents import PublishedRow, read_contents
from evalsuite.suite import Suite
from evalsuite.textio import read_text


def _column(bench_id: str, header: list[str]) -> Optional[str]:
    for name in (f"{bench_id}_norm", f"{bench_id.split('_')[0]}_norm"):
        if name in header:
            return name
    return None


def read_published(path: Path, suite: Suite) -> list[PublishedRow]:
    """Rows of a published-scores CSV (columns `model`, `<benchmark>_norm`, `average`, ...), or of
    the leaderboard's contents table (a `.parquet` file)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return read_contents(path, suite)
    try:
        import io

        with io.StringIO(read_text(path), newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read published scores: {exc}".splitlines()[0]) from exc
    if "model" not in header:
        raise UserError(f"{path}: published scores need a 'model' column (header: {', '.join(header) or 'empty'})")
    columns = {b.display: _column(b.id, header) for b in suite.benchmarks}
    if not any(columns.values()):
        raise UserError(f"{path}: no <benchmark>_norm columns (expected e.g. bbh_norm)")
    out = []
    for i, row in enumerate(rows, 2):
        values: dict[str, float] = {}
        for display, col in [*columns.items(), (suite.average, "average" if "average" in header else None)]:
            if col and (row.get(col) or "").strip():
                try:
                    values[display] = float(row[col])
                except ValueError:
                    raise UserError(f"{path}:{i}: column {col}: {row[col]!r} is not a number") from None
        out.append(PublishedRow(model=row["model"].strip(), revision=(row.get("revision") or "").strip() or None,
                                chat_template=(row.get("chat_template") or "").strip() or None, values=values))
    return out


def match_published(rows: list[PublishedRow], model: dict) -> Optional[PublishedRow]:
    """The published row of one model (ModelRef dump): same hub id or same name, case-insensitive;
    of several rows of one model (the contents table has one per precision/revision), the one at
    the model's revision."""
    keys = {str(model.get("pretrained", "")).lower(), str(model.get("name", "")).lower()}
    hits = [row for row in rows if row.model.lower() in keys or row.model.split("/")[-1].lower() in keys]
    return next((r for r in hits if r.revision and r.revision == model.get("revision")), hits[0] if hits else None)
