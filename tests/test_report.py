"""Reports end to end: the offline demo (real lm-eval on tiny models, --limit 1) -> `evalsuite compare`,
`evalsuite report` (HTML + Markdown + sidecar), `evalsuite view` over HTTP, and the report opened in
a real headless Chromium (DevTools protocol): no console errors, working filters, and a planted
hostile model output shown as text without running anything.

Chromium: Debian's `chromium` package; the DevTools client is the PyPI package `websocket-client`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from markupsafe import escape

from evalsuite.cli.main import main
from evalsuite.results.samples import pair_docs
from evalsuite.score import score_paths
from evalsuite.study import read_study
from evalsuite.suite import load_suite

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = "<img src=x onerror=alert(1)><script>alert(2)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


# --- the demo, run once per session (tests/conftest.py) -----------------------------------------


def _config_copy(config: Path, folder: Path, results: Path, reports: Path) -> Path:
    """An experiment file with other output folders (same experiment name)."""
    data = yaml.safe_load(Path(config).read_text())
    data["output"] = {"results": str(results), "reports": str(reports)}
    out = folder / Path(config).name
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory) -> dict:
    """The session's finished demo run (tests/conftest.py `demo_run`: merge + 3 models x 6
    benchmarks through real lm-eval), with a reports folder of this module's own.
    EVALSUITE_DEMO_RESULTS=<results folder of a finished demo run> reuses one (local work)."""
    root = tmp_path_factory.mktemp("report-demo")
    reuse = os.environ.get("EVALSUITE_DEMO_RESULTS")
    if reuse:
        results = Path(reuse)
        name = _record(results)["experiment"]
        data = yaml.safe_load((REPO / "examples" / "demo.yaml").read_text())
        data.update(name=name, output={"results": str(results), "reports": str(root / "reports")})
        data["data"]["mirror"] = str(REPO / "examples" / data["data"]["mirror"])
        data["candidate"]["recipe"] = str(REPO / "examples" / data["candidate"]["recipe"])
        config = root / f"{name}.yaml"
        config.write_text(yaml.safe_dump(data))
    else:
        run = request.getfixturevalue("demo_run")
        results, name = Path(run.exp.output.results), run.exp.name
        config = _config_copy(run.config, root, results, root / "reports")
    return {"root": root, "config": config, "results": results, "reports": root / "reports", "name": name}


def _record(results: Path) -> dict:
    (path,) = (results / "experiments").glob("*.json")
    return json.loads(path.read_text())


def _names(results: Path) -> tuple[str, list[str]]:
    """(candidate, parents) of the demo's experiment record."""
    names = [m["name"] for m in _record(results)["models"]]
    return names[0], names[1:]


def _copy_demo(demo: dict, dest: Path) -> dict:
    """A private copy of the demo's results (tests that edit files use it)."""
    for per in _record(demo["results"])["jobs"].values():
        for job_id in per.values():
            shutil.copytree(demo["results"] / "jobs" / job_id, dest / "results" / "jobs" / job_id, symlinks=True)
    shutil.copytree(demo["results"] / "experiments", dest / "results" / "experiments")
    cfg = _config_copy(demo["config"], dest, dest / "results", dest / "reports")
    return {**demo, "root": dest, "config": cfg, "results": dest / "results", "reports": dest / "reports"}


# --- compare and report through the CLI ---------------------------------------------------------


def test_compare_cli_prints_scores_and_verdicts(demo):
    proc = subprocess.run([sys.executable, "-m", "evalsuite.cli.main", "compare", "--config", str(demo["config"]), "--boot", "200"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    cand, parents = _names(demo["results"])
    assert len(parents) == 2
    for name in (cand, *parents):
        assert name in out
    assert "MATH Lvl 5 (original" in out and "Average" in out
    for parent in parents:
        assert f"{cand} − {parent}" in out
    # every candidate-vs-parent score row of each delta table carries a verdict (the Average row none)
    from evalsuite.report.scores import table_columns

    lines = out.splitlines()
    titles = [i for i, line in enumerate(lines) if re.search(rf"{re.escape(cand)} − .* \(paired;", line)]
    assert len(titles) == len(parents)
    for parent in parents:
        (start,) = [i for i in titles if f"{cand} − {parent} (paired;" in lines[i]]
        end = min([i for i in titles if i > start] + [len(lines)])
        # each row is two lines (evalsuite/report/tables.py): Score, docs, Δ, ✓ cand / parent, p, verdict;
        # then the interval under Δ and Holm's p in parentheses under p
        cells = [[c.strip() for c in re.split(r"[│┃|]", line)[1:-1]] for line in lines[start + 1:end]]
        rows = [r + cells[i + 1] for i, r in enumerate(cells[:-1])
                if len(r) == 6 and r[0] not in ("", "Score") and len(cells[i + 1]) == 6 and cells[i + 1][0] == ""]
        scores = {r[0]: r for r in rows if r[0] != "Average"}
        assert set(scores) == set(table_columns()) - {"Average"}, rows
        for name, r in scores.items():
            assert r[5] in ("better", "worse", "indistinguishable"), (parent, name, r)
            assert r[1].replace(",", "").isdigit() and re.fullmatch(r"\((<0\.0001|[01]\.\d{4})\)", r[10]), (parent, name, r)
            assert re.fullmatch(r"\[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", r[8]), (parent, name, r)
        (avg,) = [r for r in rows if r[0] == "Average"]
        assert avg[5] == ""


class _Cells(HTMLParser):
    """Text of each <td> of the headline table, per row."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_table = self._in_td = False

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "headline-table") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._in_td = True
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag == "td":
            self._in_td = False

    def handle_data(self, data):
        if self._in_table and self._in_td:
            self.rows[-1][-1] += data


def test_report_renders_from_real_demo_results(demo, capsys):
    rc = main(["report", "--config", str(demo["config"]), "--boot", "300", "--no-published"])
    assert rc == 0
    html_file = Path(re.search(r"^report: (.+)$", capsys.readouterr().out, re.M).group(1))
    assert html_file.parent == demo["reports"]
    side = json.loads(html_file.with_suffix(".json").read_text())
    assert side["html"] == html_file.name
    html = html_file.read_text()
    md = (demo["reports"] / side["markdown"]).read_text()
    cand, parents = _names(demo["results"])
    assert side["experiment"] == demo["name"] and side["candidate"] == cand and side["parents"] == parents
    # the headline numbers are the scorer's numbers for the jobs' results files
    study = read_study(demo["results"], demo["name"])
    for model, scores in study.scores.items():
        expected = score_paths([study.job_dirs[model][b] / study.jobs[model][b].results_file for b in study.jobs[model]])[0]
        for col, value in side["headline"][model].items():
            assert value == pytest.approx(expected.value(col), abs=1e-12)
    parser = _Cells()
    parser.feed(html)
    rows = [r for r in parser.rows if r]
    assert len(rows) == 3 and rows[0][0].strip().startswith(cand)
    for row, model in zip(rows, [cand, *parents]):
        for cell, col in zip(row[1:], side["columns"]):
            v = side["headline"][model][col]
            assert cell.strip().startswith("—" if v is None else f"{v:.2f}"), (model, col, cell)
    # self-contained: no external fetches, plots inline, script allowed only by its hash
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count('src="data:image/svg+xml;base64,') >= 2  # bars + subtask heatmap
    assert "script-src 'sha256-" in unescape(html)
    assert f"| {cand} (candidate) |" in md and f"## {cand} − {parents[0]}" in md
    # provenance: lm-eval version and task hashes from the results files
    res = next(iter(study.results[cand].values()))
    assert res["lm_eval_version"] in html
    some_task, some_hash = next(iter(res["task_hashes"].items()))
    assert some_hash in html and some_task in html
    assert oct(html_file.stat().st_mode & 0o777) != oct(0o600)  # readable like a normal file


def test_report_with_published_scores_and_the_merge_plan(demo, tmp_path):
    """Published values appear beside reproduced ones; the demo's candidate is merged by evalsuite
    (mergekit), so the merge stage's merge_plan.json gives the t-per-layer plot and the recipe."""
    cand, _ = _names(demo["results"])
    ref = _record(demo["results"])["models"][0]
    assert ref["identity"].startswith("merge:"), "the demo candidate is expected to be a mergekit merge"
    merged = Path(ref["local_path"])
    assert (merged / "merge_plan.json").is_file()
    published = tmp_path / "published.csv"
    rows = (REPO / "examples" / "published_scores.csv").read_text().splitlines()
    rows.append(f"evalsuite/{cand},abc,float32,false," + ",".join(["0.5", "12.34"] * 6) + ",56.78")
    published.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out" / "study.html"
    rc = main(["report", "--config", str(demo["config"]), "--boot", "200", "--published", str(published), "--out", str(out)])
    assert rc == 0
    html = out.read_text()
    assert "pub 12.34" in html and "pub 56.78" in html and f"published: evalsuite/{cand}" in html
    assert 'id="plot-merge"' in html and "Merge plan" in html
    recipe = (merged / "mergekit_config.yml").read_text()
    assert escape(recipe.strip().splitlines()[-1]) in html  # the recipe, in provenance
    fingerprint = json.loads((merged / "evalsuite_merge.json").read_text())["fingerprint"]
    assert fingerprint in html
    assert out.with_suffix(".md").is_file() and out.with_suffix(".json").is_file()


def test_published_csv_rows_match_models_case_insensitively():
    from evalsuite.report.published import match_published, read_published

    rows = read_published(REPO / "examples" / "published_scores.csv", load_suite())
    assert len(rows) == 3
    hit = match_published(rows, {"name": "GemmaSlerp2-9B", "pretrained": "/local/folder"})
    assert hit is not None and hit.values["MMLU-PRO"] == pytest.approx(35.985520094562645)
    assert hit.values["Average"] == pytest.approx(34.25757823554644)
    assert match_published(rows, {"name": "other", "pretrained": "sam-paech/delirium-v1"}).model == "sam-paech/Delirium-v1"
    assert match_published(rows, {"name": "tiny-candidate", "pretrained": "/x"}) is None


def test_report_errors_are_one_line_exit_2(demo, tmp_path, capsys):
    copy = _copy_demo(demo, tmp_path)
    # a samples file edited after the run: refused (the run recorded its sha256)
    _, parents = _names(copy["results"])
    (edited,) = (copy["results"] / "jobs").glob(f"{parents[1]}--gpqa--*/**/samples_leaderboard_gpqa_main_*.jsonl")
    data = edited.read_bytes()
    flipped = data.replace(b'"acc_norm": 0.0', b'"acc_norm": 1.0')
    edited.write_bytes(flipped if flipped != data else data + b"\n")
    assert main(["report", "--config", str(copy["config"]), "--no-published"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "changed since the run recorded it" in err and "\n" not in err
    _rehash(edited)
    for f in (copy["results"] / "jobs").glob(f"{parents[0]}--musr--*/**/samples_leaderboard_musr_team_allocation_*.jsonl"):
        f.unlink()
    assert main(["report", "--config", str(copy["config"]), "--no-published"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "leaderboard_musr_team_allocation" in err and "\n" not in err
    assert main(["report", "--config", str(copy["config"]), "--published", str(tmp_path / "nope.csv")]) == 2
    assert not copy["reports"].exists() or not list(copy["reports"].iterdir())  # nothing half-written


# --- view -----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str, dict]:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return resp.status, resp.read().decode("utf-8"), dict(resp.headers)


def _planted_report(demo: dict, tmp_path: Path) -> tuple[dict, dict]:
    """A copy of the demo whose candidate 'answered' PAYLOAD on a document where it and a parent
    disagree (prompt, target and output of that samples line); returns (copy, planted doc)."""
    copy = _copy_demo(demo, tmp_path)
    suite = load_suite()
    study = read_study(copy["results"], copy["name"])
    cand = study.candidate
    for bench in suite.benchmarks:
        if bench.id not in study.docs[cand]:
            continue
        for parent in study.parents:
            for task in bench.leaf_tasks:
                a, b = study.docs[cand][bench.id][task], study.docs[parent][bench.id][task]
                ia, ib, _ = pair_docs(a, b)
                metric = bench.metrics[0]
                diff = [k for k in range(len(ia)) if a.correct(metric)[ia[k]] != b.correct(metric)[ib[k]]]
                if diff:
                    i = int(ia[diff[0]])
                    lines = a.path.read_bytes().split(b"\n")
                    offsets = [0]
                    for line in lines:
                        offsets.append(offsets[-1] + len(line) + 1)
                    n = offsets.index(int(a.offsets[i]))
                    rec = json.loads(lines[n])
                    args = rec["arguments"]["gen_args_0"]
                    args["arg_0"] = PAYLOAD + "\n" + args["arg_0"]
                    if isinstance(args.get("arg_1"), str):
                        for g in rec["arguments"].values():
                            g["arg_1"] = " " + PAYLOAD
                    else:
                        rec["resps"], rec["filtered_resps"] = [[PAYLOAD]], [PAYLOAD]
                    rec["target"] = PAYLOAD
                    lines[n] = json.dumps(rec, ensure_ascii=False).encode()
                    a.path.write_bytes(b"\n".join(lines))
                    _rehash(a.path)  # as if the run had recorded this output
                    return copy, {"benchmark": bench.id, "task": task, "parent": parent, "doc_id": int(a.doc_ids[i])}
    pytest.fail("the demo has no document where the candidate and a parent disagree")


def _rehash(path: Path) -> None:
    """Record a samples file's new content in its job's job.json (sha256 map)."""
    from evalsuite.fsio import file_sha256

    job_json = next(p / "job.json" for p in path.parents if (p / "job.json").is_file())
    rec = json.loads(job_json.read_text())
    rel = path.relative_to(job_json.parent).as_posix()
    assert rel in rec["sha256"], rel
    rec["sha256"][rel] = file_sha256(path)
    job_json.write_text(json.dumps(rec))


class DevTools:
    """Minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg: dict) -> None:
        self.events.append(msg)
        if msg.get("method") == "Page.javascriptDialogOpening":  # record it, then dismiss so the page goes on
            self.ws.send(json.dumps({"id": 10**6 + len(self.events), "method": "Page.handleJavaScriptDialog", "params": {"accept": True}}))

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for msg in self.events:
            if msg.get("method") == method:
                return msg
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            self._event(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(method)

    def eval(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(res["exceptionDetails"])
        return res["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors/warnings, uncaught exceptions, error log entries (CSP violations), dialogs."""
        out = []
        for m in self.events:
            method, p = m.get("method"), m.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {p.get('args')}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log: {p['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('message')}")
        return out


@pytest.fixture
def chromium(tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    websocket = pytest.importorskip("websocket", reason="pip install websocket-client")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and port is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                port = int(m.group(1))
        assert port is not None, "chromium did not start its DevTools endpoint"
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining its log
        _, targets, _ = _get(f"http://127.0.0.1:{port}/json/list")
        page = next(t for t in json.loads(targets) if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        tools = DevTools(ws)
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=1400, height=1800, deviceScaleFactor=1, mobile=False)
        yield tools
        ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_view_serves_index_and_report_which_renders_safely_in_chromium(demo, tmp_path, chromium):
    from evalsuite.cli.view import make_server

    copy, planted = _planted_report(demo, tmp_path)
    assert main(["report", "--config", str(copy["config"]), "--boot", "200", "--no-published"]) == 0
    (side,) = copy["reports"].glob("*.json")
    html_name = json.loads(side.read_text())["html"]
    assert PAYLOAD not in (copy["reports"] / html_name).read_text()  # escaped in the file

    server = make_server(copy["reports"], "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        status, index, _ = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and f'href="{html_name}"' in index and _names(copy["results"])[0] in index
        status, page, headers = _get(f"http://127.0.0.1:{port}/{html_name}")
        assert status == 200 and 'id="headline-table"' in page and headers.get("X-Content-Type-Options") == "nosniff"

        chromium.call("Page.navigate", url=f"http://127.0.0.1:{port}/{html_name}")
        chromium.wait_for("Page.loadEventFired", timeout=60)
        dom = chromium.eval("""(() => {
            const imgs = [...document.querySelectorAll('img.plot')];
            return {
              headlineRows: document.querySelectorAll('#headline-table tbody tr').length,
              plots: imgs.length,
              plotsLoaded: imgs.every(i => i.complete && i.naturalWidth > 0),
              plantedImgs: document.querySelectorAll('img[src="x"]').length,
              scripts: document.scripts.length,
              bodyText: document.body.innerText.includes(%s) || document.body.textContent.includes(%s),
              samples: document.querySelectorAll('.sample').length,
              shown: document.getElementById('shown-count').textContent,
            };
        })()""" % (json.dumps(PAYLOAD), json.dumps(PAYLOAD)))
        assert dom["headlineRows"] == 3
        assert dom["plots"] >= 2 and dom["plotsLoaded"]
        assert dom["plantedImgs"] == 0 and dom["scripts"] == 1  # only the report's own static script
        assert dom["bodyText"], "the planted output is not shown as text"
        assert dom["samples"] > 0 and dom["shown"] == str(dom["samples"])
        # the static filter script works: only documents of the planted subtask remain
        visible = chromium.eval("""(() => {
            const s = document.querySelector('select[data-filter="task"]');
            s.value = %s; s.dispatchEvent(new Event('change'));
            const cards = [...document.querySelectorAll('.sample')].filter(c => !c.hidden);
            return {n: cards.length, tasks: [...new Set(cards.map(c => c.dataset.task))],
                    shown: document.getElementById('shown-count').textContent,
                    planted: cards.some(c => c.textContent.includes(%s))};
        })()""" % (json.dumps(planted["task"]), json.dumps(PAYLOAD)))
        assert visible["tasks"] == [planted["task"]] and visible["shown"] == str(visible["n"]) and visible["planted"]
        chromium.eval("""(() => { const s = document.querySelector('select[data-filter="task"]'); s.value = '';
                                  s.dispatchEvent(new Event('change')); window.scrollTo(0, 0); })()""")
        time.sleep(0.3)
        assert chromium.problems() == []
        shot = chromium.call("Page.captureScreenshot", format="png")
        out = Path(os.environ.get("EVALSUITE_SCREENSHOT", tmp_path / "report.png"))
        out.write_bytes(base64.b64decode(shot["data"]))
        assert out.stat().st_size > 10_000
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_view_cli_serves_on_localhost(demo, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "evalsuite.cli.main", "view", "--dir", str(reports), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body, _ = _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "evalsuite view did not start"
                time.sleep(0.2)
        assert status == 200 and "No reports yet" in body
        with pytest.raises(urllib.error.HTTPError) as exc:
            _get(f"http://127.0.0.1:{port}/../../etc/passwd")
        assert exc.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
