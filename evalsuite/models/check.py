"""Checks of a local model folder before any job starts: damage that would otherwise surface as a
crash (or, worse, as silently wrong numbers) deep inside an lm-eval child process.

Cheap checks read only the safetensors headers and the small JSON files (`models.model_files`):
shards an index names but the folder lacks, truncated or invalid headers, non-floating weights in
a model that is not quantized, and a vocabulary that does not fit the embedding. The NaN/inf scan reads every tensor, one at a time in slices, and
caches its verdict per (file, size, mtime) beside the content-hash cache, so a 9B folder is
scanned once.

Every problem is a `UserError` of one line naming the model, the file and the tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from evalsuite.errors import UserError
from evalsuite.models.file_cache import file_key, read_cache, write_cache
from evalsuite.models.model_files import INDEX_FILE, TensorInfo, folder_headers, numel, read_json, tokenizer_size

CACHE_FILE = "weight_checks.json"
CACHE_VERSION = "v1"  # bump when the scan changes what it accepts

FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}
SCANNED_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}  # the ones that can hold NaN/inf
EMBEDDING_SUFFIXES = ("embed_tokens.weight", "wte.weight", "embed_in.weight", "word_embeddings.weight")
SLICE_ELEMENTS = 1 << 24  # NaN scan: read at most this many values at once


# ------------------------------------------------------------------------------------------
# the index
# ------------------------------------------------------------------------------------------


def _check_index_tensors(folder: Path, headers: dict[Path, dict[str, TensorInfo]], what: str) -> None:
    """Each tensor the index maps to a shard is in that shard's header (else transformers stops)."""
    index = read_json(folder / INDEX_FILE, what) or {}
    for name, shard in sorted(index.get("weight_map", {}).items()):
        if name not in headers.get(folder / str(shard), {}):
            raise UserError(f"{what}: {folder / INDEX_FILE}: maps tensor {name} to {shard}, which does not hold it")


# ------------------------------------------------------------------------------------------
# dtype and vocabulary
# ------------------------------------------------------------------------------------------


def _check_dtypes(tensors: dict[str, TensorInfo], config: dict, what: str) -> None:
    """Weights of an unquantized model are floating point; an integer weight is a damaged or
    mislabelled checkpoint (transformers would cast it, and the numbers would be garbage)."""
    if config.get("quantization_config") is not None:
        return
    for name, info in sorted(tensors.items()):
        if name.endswith(".weight") and info.dtype not in FLOAT_DTYPES:
            raise UserError(f"{what}: {info.file}: tensor {name} is {info.dtype}, not floating point "
                            "(and config.json has no quantization_config)")


def _embedding(tensors: dict[str, TensorInfo]) -> Optional[tuple[str, TensorInfo]]:
    found = [(n, t) for n, t in tensors.items()
             if n.endswith(EMBEDDING_SUFFIXES) and len(t.shape) == 2 and t.dtype in FLOAT_DTYPES]
    return min(found, key=lambda nt: (len(nt[0]), nt[0])) if found else None


def _check_vocab(folder: Path, tensors: dict[str, TensorInfo], config: dict, what: str) -> None:
    """Token ids index the embedding rows: a tokenizer with more ids than rows reads out of range
    (a crash on GPU, garbage elsewhere); config.json's vocab_size must equal the rows."""
    emb = _embedding(tensors)
    if emb is None:
        return
    name, info = emb
    rows = info.shape[0]
    vocab_size = config.get("vocab_size")
    if isinstance(vocab_size, int) and vocab_size != rows:
        raise UserError(f"{what}: {folder / 'config.json'}: vocab_size {vocab_size} but {info.file.name} "
                        f"tensor {name} has {rows} rows (mismatched vocab)")
    tok = read_json(folder / "tokenizer.json", what)
    n = tokenizer_size(tok) if tok is not None else None
    if n is not None and n > rows:
        raise UserError(f"{what}: {folder / 'tokenizer.json'}: token ids go up to {n - 1} but {info.file.name} "
                        f"tensor {name} has only {rows} rows (mismatched vocab)")


# ------------------------------------------------------------------------------------------
# NaN / inf scan, cached
# ------------------------------------------------------------------------------------------


def _cache_key(path: Path) -> str:
    return file_key(path, prefix=f"{CACHE_VERSION}:")


def _count_bad(values) -> tuple[int, int]:
    import torch

    if values.dtype not in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        values = values.to(torch.float32)  # float8: no isfinite kernel on CPU
    if bool(torch.isfinite(values).all()):
        return 0, 0
    return int(torch.isnan(values).sum()), int(torch.isinf(values).sum())


def scan_file(path: Path, tensors: dict[str, TensorInfo], what: str) -> None:
    """Every floating tensor of one file (`tensors`: its header), read in slices of the first
    dimension so memory stays bounded even for a 256k-row embedding."""
    from safetensors import safe_open

    names = sorted(n for n, t in tensors.items() if t.dtype in SCANNED_DTYPES)
    with safe_open(str(path), framework="pt") as f:
        for name in names:
            shape = tensors[name].shape
            nan = inf = 0
            if len(shape) == 0 or shape[0] == 0:
                nan, inf = _count_bad(f.get_tensor(name))
            else:
                per_row = max(1, numel(shape[1:]))
                step = max(1, SLICE_ELEMENTS // per_row)
                sl = f.get_slice(name)
                for start in range(0, shape[0], step):
                    a, b = _count_bad(sl[start:start + step])
                    nan, inf = nan + a, inf + b
            if nan or inf:
                counts = " and ".join(f"{k} {label} value{'s' if k > 1 else ''}"
                                      for k, label in ((nan, "NaN"), (inf, "inf")) if k)
                raise UserError(f"{what}: {path}: tensor {name} has {counts}")


def scan_finite(headers: dict[Path, dict[str, TensorInfo]], what: str) -> None:
    """NaN/inf scan of files not yet known clean; the verdicts are cached only once the whole
    folder passed (bad input writes nothing)."""
    cache = read_cache(CACHE_FILE)
    fresh = []
    for path, tensors in headers.items():
        key = _cache_key(path)
        if cache.get(key) == "finite":
            continue
        scan_file(path, tensors, what)
        fresh.append(key)
    if fresh:
        cache.update({k: "finite" for k in fresh})
        write_cache(CACHE_FILE, cache)


# ------------------------------------------------------------------------------------------
# the whole folder
# ------------------------------------------------------------------------------------------


def check_model_folder(folder: Path, what: str) -> None:
    """All checks, cheapest first; raises `UserError` on the first problem found."""
    folder = Path(folder)
    config = read_json(folder / "config.json", what) or {}
    headers = folder_headers(folder, what)
    if (folder / INDEX_FILE).is_file():
        _check_index_tensors(folder, headers, what)
    tensors: dict[str, TensorInfo] = {}
    for header in headers.values():
        for name, info in header.items():
            tensors.setdefault(name, info)
    _check_dtypes(tensors, config, what)
    _check_vocab(folder, tensors, config, what)
    scan_finite(headers, what)
