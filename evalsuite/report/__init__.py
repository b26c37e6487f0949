"""Reports: one self-contained HTML file (jinja2, autoescaped; inline CSS, SVG plots as data URIs,
one static script allowed by a CSP hash), a Markdown summary, and a JSON sidecar per report that
`evalsuite view` lists. Entry point: `build_report`."""

from evalsuite.report.build import ReportPaths, build_report, report_experiment

__all__ = ["ReportPaths", "build_report", "report_experiment"]
