"""Hub datasets read exactly at the commit their identity names, from the HF hub cache, online and
offline (evalsuite.data.hub_snapshot), against the simulated hub (tests/hub_server.py). The
offline matrix (cache state x pins -> what is read) of docs/fidelity.md, row by row."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from evalsuite.data.hub_data import hub_snapshot, hub_snapshots
from evalsuite.data.overrides import override_yamls
from evalsuite.errors import UserError
from hub_server import folder_files, use_in_process

REPO = Path(__file__).resolve().parent.parent
MMLU = "TIGER-Lab/MMLU-Pro"


def mmlu_commit(tag: str = "") -> dict[str, bytes]:
    """The demo mirror's MMLU-Pro repo; with `tag`, every question starts with it (a revised dataset)."""
    files = folder_files(REPO / "examples" / "demo_mirror" / MMLU)
    if tag:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for name in [n for n in files if n.endswith(".parquet")]:
            table = pq.read_table(io.BytesIO(files[name]))
            questions = pa.array([f"{tag} {q}" for q in table.column("question").to_pylist()])
            table = table.set_column(table.schema.get_field_index("question"), "question", questions)
            out = io.BytesIO()
            pq.write_table(table, out)
            files[name] = out.getvalue()
    return files


def questions(folder: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(next(folder.glob("data/test-*.parquet"))).column("question").to_pylist()


@pytest.fixture
def two_commits(sim_hub):
    repo = sim_hub.repo(MMLU, "dataset")
    old = repo.add_commit(mmlu_commit())
    new = repo.add_commit(mmlu_commit("REVISED"))
    return sim_hub, old, new


def test_offline_matrix(two_commits, tmp_path, monkeypatch):
    hub, old, new = two_commits
    home = tmp_path / "hf"
    # empty cache, offline: nothing to read, and says how to get it
    use_in_process(monkeypatch, hub, home, offline=True)
    with pytest.raises(UserError, match=r"^dataset TIGER-Lab/MMLU-Pro \(mmlu_pro\): not in the Hugging Face hub cache and the run is offline: run once online"):
        hub_snapshot("mmlu_pro", None, offline=True)
    # online, pinned to the older commit: that commit is downloaded (by commit: no refs/main)
    use_in_process(monkeypatch, hub, home, offline=False)
    got = hub_snapshot("mmlu_pro", old, offline=False)
    assert got.name == old and not questions(got)[0].startswith("REVISED")
    assert not (home / "hub" / "datasets--TIGER-Lab--MMLU-Pro" / "refs" / "main").exists()
    # offline, one commit cached, no refs/main: no pin needed
    use_in_process(monkeypatch, hub, home, offline=True)
    n = len(hub.requests)
    assert hub_snapshot("mmlu_pro", None, offline=True) == got
    # offline, pinned to a commit the cache lacks: stops, naming it
    with pytest.raises(UserError, match=rf"commit {new} is not in the Hugging Face hub cache and the run is offline"):
        hub_snapshot("mmlu_pro", new, offline=True)
    assert len(hub.requests) == n  # offline asks the hub nothing
    # online, not pinned: main's commit now (the revised one)
    use_in_process(monkeypatch, hub, home, offline=False)
    latest = hub_snapshot("mmlu_pro", None, offline=False)
    assert latest.name == new and questions(latest)[0].startswith("REVISED ")
    # offline, two commits cached: each pin reads its own rows; no pin names the pins to choose from
    use_in_process(monkeypatch, hub, home, offline=True)
    assert questions(hub_snapshot("mmlu_pro", old, offline=True)) == questions(got)
    assert hub_snapshot("mmlu_pro", new, offline=True) == latest
    with pytest.raises(UserError) as err:
        hub_snapshot("mmlu_pro", None, offline=True)
    assert str(err.value) == (f"dataset TIGER-Lab/MMLU-Pro (mmlu_pro): the Hugging Face hub cache holds 2 commits of it; "
                              f"pin the one to read (newest first): data: {{revisions: {{mmlu_pro: {new}}}}}; "
                              f"data: {{revisions: {{mmlu_pro: {old}}}}}")
    # the task override lm-eval reads points at the snapshot of that commit
    files = override_yamls(None, ["mmlu_pro"], harness="leaderboard", folders={"mmlu_pro": got})
    assert f"dataset_path: {got}\n" in files["leaderboard_mmlu_pro.yaml"]
    assert "revision" not in files["leaderboard_mmlu_pro.yaml"]


def test_gated_missing_and_broken_datasets_one_line(sim_hub, tmp_path, monkeypatch):
    gpqa = sim_hub.repo("Idavidrein/gpqa", "dataset", gated=True)
    gpqa.add_commit(folder_files(REPO / "examples" / "demo_mirror" / "Idavidrein" / "gpqa"))
    gpqa.granted.add("hf_granted")
    home = tmp_path / "hf"
    use_in_process(monkeypatch, sim_hub, home, offline=False)
    with pytest.raises(UserError, match=r"^dataset Idavidrein/gpqa \(gpqa\): Idavidrein/gpqa is gated and no Hugging Face token is set: "
                                        r"accept its terms at https://huggingface.co/datasets/Idavidrein/gpqa and log in"):
        hub_snapshots(["gpqa"], {}, offline=False)
    use_in_process(monkeypatch, sim_hub, home, offline=False, token="hf_other")
    with pytest.raises(UserError, match=r"is gated and this token has not been granted access"):
        hub_snapshots(["gpqa"], {}, offline=False)
    use_in_process(monkeypatch, sim_hub, home, offline=False, token="hf_granted")
    assert hub_snapshots(["gpqa"], {}, offline=False)["gpqa"].name == gpqa.branches["main"]
    with pytest.raises(UserError, match=r"^dataset TAUR-Lab/MuSR \(musr\): TAUR-Lab/MuSR not found on the hub"):
        hub_snapshots(["musr"], {}, offline=False)
    with pytest.raises(UserError, match=r"has no revision '0{40}' on the hub: fix the pin"):
        hub_snapshots(["gpqa"], {"gpqa": "0" * 40}, offline=False)
    # a commit whose files lm-eval cannot read stops at start-up, naming the commit
    files = mmlu_commit()
    del files["data/validation-00000-of-00001.parquet"]
    bad = sim_hub.repo(MMLU, "dataset").add_commit(files)
    with pytest.raises(UserError, match=rf"^dataset TIGER-Lab/MMLU-Pro@{bad}: mmlu_pro: TIGER-Lab/MMLU-Pro config 'default' split 'validation': no data files match"):
        hub_snapshots(["mmlu_pro"], {}, offline=False)
