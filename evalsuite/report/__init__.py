"""Reports and every rendering of results: one self-contained HTML file (jinja2, autoescaped; inline
CSS, SVG plots as data URIs, one static script allowed by a CSP hash), a Markdown summary, and a
JSON sidecar per report that `evalsuite view` lists (entry point: `build.build_report`); the
terminal tables and their `--format json|csv` renderings (`tables.Grid`).

Nothing is imported here: `evalsuite.report.tables` is used by quick commands that must not load
the HTML report's dependencies (jinja2, matplotlib)."""
