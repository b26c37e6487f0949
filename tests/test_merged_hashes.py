"""A merged model's shards are hashed once, then trusted while size, mtime and ctime stay the same
(evalsuite.models.file_cache.cached_sha256 in merge.verify_output): a run does not re-read ~18.5 GB."""

from __future__ import annotations

import hashlib
import json
import os
import time

from evalsuite import fsio
from evalsuite.models.merge import MARKER, verify_output


def test_shards_verified_once_then_trusted_until_written(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "merged"
    out.mkdir()
    shards = {f"model-0000{i}-of-00002.safetensors": os.urandom(4096) for i in (1, 2)}
    for name, data in shards.items():
        (out / name).write_bytes(data)
    files = {n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in shards.items()}
    (out / MARKER).write_text(json.dumps({"fingerprint": "sha256:x", "files": files}))
    hashed = []
    real = fsio.file_sha256
    monkeypatch.setattr(fsio, "file_sha256", lambda p: hashed.append(p.name) or real(p))

    assert verify_output(out, "sha256:x") is None and len(hashed) == 2
    assert verify_output(out, "sha256:x") is None and len(hashed) == 2  # trusted: nothing re-read
    shard = out / "model-00002-of-00002.safetensors"
    st = shard.stat()
    time.sleep(0.05)  # past the kernel's coarse timestamp tick
    data = bytearray(shards[shard.name])
    data[100] ^= 1
    shard.write_bytes(bytes(data))  # same size; the mtime put back: the ctime still moved
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_output(out, "sha256:x") == "model-00002-of-00002.safetensors hash mismatch"
    assert hashed[2:] == ["model-00002-of-00002.safetensors"]


def test_merge_runs_on_the_gpu_when_there_is_one(monkeypatch):
    """mergekit's `cuda` option when torch sees a GPU (faked here: the CPU box has none), with a
    fingerprint of its own; on the CPU the options and fingerprints stay as they were."""
    import torch

    from evalsuite.models import merge

    cpu = merge.merge_options(1 << 30, progress=False)
    assert merge.merge_device() == "cpu" and cpu.cuda is False and cpu.device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    gpu = merge.merge_options(1 << 30, progress=False)
    assert merge.merge_device() == "cuda" and gpu.cuda is True and gpu.device == "cuda"


def test_the_batch_size_lm_eval_chose_is_recorded():
    """`batch_size: auto`: the sizes lm-eval's detector chose (its results' `config.batch_sizes`,
    as lm_eval/evaluator.py writes them) go into job.json; a given size records none."""
    from evalsuite.run.local import chosen_batch_sizes
    from evalsuite.schema import JobRecord

    assert chosen_batch_sizes({"config": {"batch_size": "auto", "batch_sizes": [64]}}) == [64]
    assert chosen_batch_sizes({"config": {"batch_size": "auto:4", "batch_sizes": [64, 32, 32, 16]}}) == [64, 32, 32, 16]
    assert chosen_batch_sizes({"config": {"batch_size": 8, "batch_sizes": []}}) is None
    assert chosen_batch_sizes({}) is None
    rec = JobRecord(job_id="j", model="m", role="candidate", benchmark="bbh", task="t", identity={}, command=[], env={},
                    results_file="r.json", samples_files=[], started=0, finished=1, batch_sizes=[64])
    assert JobRecord.model_validate_json(rec.model_dump_json()).batch_sizes == [64]
