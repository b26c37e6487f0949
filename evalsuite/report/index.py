"""The reports folder's index: one row per report, read from the JSON sidecars `build_report` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalsuite.report.build import SIDECAR_SCHEMA, static_text, template_env


def read_sidecars(folder: Path) -> list[dict[str, Any]]:
    """Complete reports in `folder`, newest first (a sidecar whose HTML is missing is skipped)."""
    out = []
    for side in Path(folder).glob("*.json"):
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("schema_version") != SIDECAR_SCHEMA:
            continue
        html = data.get("html")
        # a plain file name of this folder ending in .html: never a `javascript:` or outside link
        if not isinstance(html, str) or html != side.with_suffix(".html").name or not (side.parent / html).is_file():
            continue
        out.append(data)
    out.sort(key=lambda d: float(d.get("generated") or 0), reverse=True)
    return out


def render_index(folder: Path) -> str:
    reports = read_sidecars(folder)
    columns: list[str] = []
    for r in reports:
        columns += [c for c in r.get("columns", []) if c not in columns and c != "Average"]
    return template_env().get_template("index.html.j2").render(reports=reports, columns=columns, folder=str(folder), css=static_text("report.css"))
