"""`evalsuite report`: one self-contained HTML report (plus Markdown) of the last run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evalsuite.cli.options import stats_options
from evalsuite.config import StatsSettings


def default_published(config: Path) -> Optional[Path]:
    """`published_scores.csv` beside the config file or in its `examples/` folder, if present."""
    base = Path(config).resolve().parent
    for candidate in (base / "published_scores.csv", base / "examples" / "published_scores.csv"):
        if candidate.is_file():
            return candidate
    return None


@stats_options("n_boot", "seed", "alpha", alpha={"max": 0.5})
def report(
    config: Path = typer.Option(Path("evalsuite.yaml"), "--config", "-c", help="Experiment file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: REPORTS/<experiment>-<time>.html)."),
    published: Optional[str] = typer.Option(None, "--published", help="Published scores: a CSV (columns as examples/published_scores.csv), the leaderboard's contents table (.parquet), or 'hub' for open-llm-leaderboard/contents."),
    no_published: bool = typer.Option(False, "--no-published", help="Do not look for a published-scores CSV."),
    stats: StatsSettings = StatsSettings(),
    samples: int = typer.Option(80, "--samples", min=0, help="Disagreeing documents shown per parent and benchmark."),
) -> None:
    """Write the HTML report, a Markdown summary and an index entry into the reports folder.

    The HTML file works offline (inline CSS, plots as inline SVG): headline table with published
    numbers and verdicts, plots, the documents where candidate and parents disagree, provenance.
    Without --published, a published_scores.csv beside the config (or in its examples/) is used.

    Examples:

      evalsuite report --config examples/demo.yaml

      evalsuite report --published examples/published_scores.csv --out study.html

      evalsuite report --published hub        # every model the leaderboard scored (open-llm-leaderboard/contents)

      evalsuite report --alpha 0.01 --boot 5000   # stricter verdicts, more bootstrap draws, for this report
    """
    from evalsuite.config import load_experiment
    from evalsuite.errors import UserError
    from evalsuite.report.build import build_report

    exp = load_experiment(config)
    if published == "hub":
        from evalsuite.published.contents import contents_from_hub

        published = str(contents_from_hub())
    if published is not None and not Path(published).is_file():
        raise UserError(f"--published {published}: no such file")
    pub = None if no_published else (Path(published) if published else default_published(config))
    paths = build_report(Path(exp.output.results), exp.name, Path(exp.output.reports), out=out, published=pub,
                         stats=stats.over(exp.stats), per_pair=samples)
    typer.echo(f"report: {paths.html}")
    typer.echo(f"summary: {paths.markdown}")
