"""`evalsuite doctor`: one table of checks, a fix for each failure, exit 1 when something fails."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REPO, demo_config
from evalsuite.cli.main import main
from evalsuite.config import load_experiment
from evalsuite.doctor import run_checks


def test_demo_config_passes(tmp_path, capsys):
    cfg = demo_config(tmp_path)
    checks = {c.name: c for c in run_checks(load_experiment(cfg))}
    for bench in ["ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"]:
        assert checks[f"data {bench}"].status == "ok", checks[f"data {bench}"]
    assert checks["package lm_eval"].status == "ok" and checks["package lm_eval"].detail == "0.4.13"
    assert checks["torch device"].status == "ok"
    assert checks["NLTK punkt_tab"].status in {"ok", "warn"}
    assert main(["doctor", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "evalsuite doctor" in out and "free disk" in out


def test_broken_mirror_fails_with_the_fix(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    shutil.copytree(REPO / "examples" / "demo_mirror", mirror)
    shutil.rmtree(mirror / "TAUR-Lab")
    cfg = demo_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(str(REPO / "examples" / "demo_mirror"), str(mirror)))
    checks = {c.name: c for c in run_checks(load_experiment(cfg))}
    musr = checks["data musr"]
    assert musr.status == "fail" and "hf download --repo-type dataset TAUR-Lab/MuSR" in musr.fix
    assert checks["data bbh"].status == "ok"
    assert main(["doctor", "--config", str(cfg)]) == 1
    assert "TAUR-Lab" in capsys.readouterr().out


def test_cuda_requested_without_gpu_fails(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    cfg = demo_config(tmp_path, **{"device: cpu": "device: cuda"})
    checks = {c.name: c for c in run_checks(load_experiment(cfg))}
    assert checks["torch device"].status == "fail" and "device: cpu" in checks["torch device"].fix


def test_run_with_a_broken_mirror_writes_nothing(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    shutil.copytree(REPO / "examples" / "demo_mirror", mirror)
    (next((mirror / "TIGER-Lab" / "MMLU-Pro").rglob("validation*"))).unlink()
    cfg = demo_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(str(REPO / "examples" / "demo_mirror"), str(mirror)))
    assert main(["run", "--all", "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "data.mirror" in err and "validation" in err
    assert not (tmp_path / "results").exists()
    assert Path(tmp_path / "reports").exists() is False
