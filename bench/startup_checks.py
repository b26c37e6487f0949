"""The start-up checks' time (`check_data` + `preflight.check_study`) against the simulated hub
(tests/hub_server.py): the six demo datasets (GPQA gated) and three tiny hub models, online with an
empty cache, online cached, offline. Run from the repository root: `python bench/startup_checks.py`.
Figures in docs/fidelity.md ("Start-up checks' time")."""

import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hub_server import SimHub, folder_files, use_in_process  # noqa: E402

from evalsuite.config import load_experiment  # noqa: E402
from evalsuite.data.tasks import HUB_DATASETS  # noqa: E402
from evalsuite.fixtures.tiny import build_demo_models  # noqa: E402
from evalsuite.preflight import check_study  # noqa: E402
from evalsuite.run.runner import check_data  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="startup-checks-"))
    models = build_demo_models(tmp / "m")
    hub = SimHub().start()
    shas = {n: hub.repo(f"org/{n}").add_commit(folder_files(p)) for n, p in models.items()}
    for b, repo in HUB_DATASETS.items():
        r = hub.repo(repo, "dataset", gated=(b == "gpqa"))
        r.add_commit(folder_files(REPO / "examples" / "demo_mirror" / repo))
        r.granted.add("hf_ok")
    cfg = {"name": "t", "candidate": {"hub": "org/candidate", "revision": shas["candidate"]},
           "parents": [{"hub": f"org/{n}", "revision": shas[n]} for n in ("parent_a", "parent_b")], "device": "cpu",
           "output": {"results": str(tmp / "results"), "reports": str(tmp / "reports")}}
    (tmp / "e.yaml").write_text(yaml.safe_dump(cfg))
    mp = pytest.MonkeyPatch()

    def timed(label: str, offline: bool) -> None:
        use_in_process(mp, hub, tmp / "hf", offline=offline, token="hf_ok")
        exp = load_experiment(tmp / "e.yaml")
        if offline:
            exp = exp.model_copy(update={"offline": True})
        n = len(hub.requests)
        t = time.perf_counter()
        check_data(exp)
        t1 = time.perf_counter()
        check_study(exp)
        t2 = time.perf_counter()
        print(f"{label}: data {t1 - t:.2f}s, models+details+disk {t2 - t1:.2f}s, hub requests {len(hub.requests) - n}")

    timed("online, empty cache (6 datasets downloaded)", False)
    timed("online, datasets cached, models not", False)
    from huggingface_hub import snapshot_download

    use_in_process(mp, hub, tmp / "hf", offline=False, token="hf_ok")
    for n in shas:
        snapshot_download(f"org/{n}", revision=shas[n])
    timed("online, everything cached", False)
    timed("offline, everything cached", True)
    mp.undo()
    hub.stop()


if __name__ == "__main__":
    main()
