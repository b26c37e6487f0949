"""bench/gpu_probe.py keeps working: at the tiny shape on the CPU (the 9B bf16 shape needs a GPU),
through evalsuite's hf-leaderboard lm-eval model, one document per benchmark, short prompts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_gpu_probe_runs_at_the_tiny_shape(tmp_path):
    out = tmp_path / "probe.json"
    p = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_probe.py"), "--shape", "tiny", "--dtype", "float32",
                        "--docs", "1", "--max-gen", "4", "--prompt-scale", "0.05", "--json", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["shape"] == "tiny" and figures["device"] == "cpu"
    bench = figures["benchmarks"]
    assert set(bench) == {"ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"}
    assert bench["mmlu_pro"]["choices"] == 10 and bench["mmlu_pro"]["documents"] == 12032
    assert bench["ifeval"]["kind"] == "generate" and bench["ifeval"]["gen_tokens"] == 4
    assert all(f["s_per_doc"] > 0 and f["study_s"] > 0 for f in bench.values())
    assert figures["study_s"] == pytest.approx(sum(f["study_s"] for f in bench.values()))
    assert "whole study, one model:" in p.stdout
