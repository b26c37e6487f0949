"""Checks of a local model folder before any job starts: damage that would otherwise surface as a
crash (or, worse, as silently wrong numbers) deep inside an lm-eval child process.

Cheap checks read only the safetensors headers (8-byte length + JSON: names, dtypes, shapes,
offsets) and the small JSON files: shards an index names but the folder lacks, truncated or
invalid headers, non-floating weights in a model that is not quantized, and a vocabulary that
does not fit the embedding. The NaN/inf scan reads every tensor, one at a time in slices, and
caches its verdict per (file, size, mtime) beside the content-hash cache, so a 9B folder is
scanned once.

Every problem is a `UserError` of one line naming the model, the file and the tensor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from evalsuite.errors import UserError

INDEX_FILE = "model.safetensors.index.json"
CACHE_FILE = "weight_checks.json"
CACHE_VERSION = "v1"  # bump when the scan changes what it accepts
MAX_HEADER = 100_000_000  # the safetensors format's own limit

DTYPE_BYTES: dict[str, int] = {  # sub-byte float types (F4, F6_*) are packed: not size-checked
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"}
SCANNED_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}  # the ones that can hold NaN/inf
EMBEDDING_SUFFIXES = ("embed_tokens.weight", "wte.weight", "embed_in.weight", "word_embeddings.weight")
SLICE_ELEMENTS = 1 << 24  # NaN scan: read at most this many values at once


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: str
    shape: tuple[int, ...]


# ------------------------------------------------------------------------------------------
# headers and small JSON files
# ------------------------------------------------------------------------------------------


def read_header(path: Path, what: str) -> dict[str, TensorInfo]:
    """Tensor name -> dtype and shape, from the header alone; a truncated or invalid file is a
    UserError (safetensors would fail to open it, or mmap past its end)."""
    size = path.stat().st_size
    where = f"{what}: {path}"
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UserError(f"{where}: not a safetensors file (only {size} bytes; truncated?)")
        n = int.from_bytes(head, "little")
        if n > size - 8 or n > MAX_HEADER:
            raise UserError(f"{where}: invalid safetensors header (says {n} header bytes, the file has "
                            f"{size - 8} after the length; truncated or not safetensors)")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except ValueError:
        raise UserError(f"{where}: invalid safetensors header (not JSON; damaged or not safetensors)") from None
    if not isinstance(header, dict):
        raise UserError(f"{where}: invalid safetensors header (not a JSON object)")
    data_len = size - 8 - n
    out: dict[str, TensorInfo] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        out[name] = _tensor_info(path, where, name, info, data_len)
    return out


def _tensor_info(path: Path, where: str, name: str, info: Any, data_len: int) -> TensorInfo:
    try:
        dtype, shape, (start, end) = str(info["dtype"]), [int(d) for d in info["shape"]], info["data_offsets"]
        start, end = int(start), int(end)
    except (TypeError, KeyError, ValueError):
        raise UserError(f"{where}: invalid safetensors header (entry of tensor {name} lacks dtype, shape "
                        "or data_offsets)") from None
    if end > data_len:
        raise UserError(f"{where}: truncated: tensor {name} ends at data byte {end}, the file holds "
                        f"{data_len}")
    if not 0 <= start <= end or (dtype in DTYPE_BYTES and end - start != _numel(tuple(shape)) * DTYPE_BYTES[dtype]):
        raise UserError(f"{where}: invalid safetensors header (tensor {name}: {dtype} {shape} does not "
                        f"fit bytes {start}..{end})")
    return TensorInfo(file=path, dtype=dtype, shape=tuple(shape))


def _read_json(path: Path, what: str) -> Optional[dict]:
    """A small JSON file of the folder (None when absent); unreadable JSON is a UserError."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{what}: {path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what}: {path}: expected a JSON object")
    return data


def weight_files(folder: Path, what: str) -> list[Path]:
    """The safetensors files transformers would load: those the index names, else all of them.
    An index naming shards that are not there is a UserError (the load would stop half-way)."""
    index = _read_json(folder / INDEX_FILE, what)
    if index is None:  # unsharded: transformers reads model.safetensors
        single = folder / "model.safetensors"
        files = [single] if single.is_file() else sorted(p for p in folder.glob("*.safetensors") if p.is_file())
        if not files:
            raise UserError(f"{what}: {folder}: no *.safetensors entry is a readable file (broken links?)")
        return files
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{what}: {folder / INDEX_FILE}: no weight_map (tensor -> shard file)")
    shards = sorted(set(map(str, weight_map.values())))
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise UserError(f"{what}: {folder / INDEX_FILE}: names {len(missing)} of {len(shards)} shard files "
                        f"that are missing: {', '.join(missing)}")
    return [folder / s for s in shards]


def _check_index_tensors(folder: Path, headers: dict[Path, dict[str, TensorInfo]], what: str) -> None:
    """Each tensor the index maps to a shard is in that shard's header (else transformers stops)."""
    index = _read_json(folder / INDEX_FILE, what) or {}
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


def tokenizer_size(tok: dict) -> Optional[int]:
    """Highest token id + 1 of a tokenizer.json (model vocab and added tokens)."""
    ids: list[int] = []
    vocab = (tok.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        ids += [v for v in vocab.values() if isinstance(v, int)]
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...], id = position
        ids.append(len(vocab) - 1)
    ids += [a["id"] for a in tok.get("added_tokens") or [] if isinstance(a, dict) and isinstance(a.get("id"), int)]
    return max(ids) + 1 if ids else None


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
    tok = _read_json(folder / "tokenizer.json", what)
    n = tokenizer_size(tok) if tok is not None else None
    if n is not None and n > rows:
        raise UserError(f"{what}: {folder / 'tokenizer.json'}: token ids go up to {n - 1} but {info.file.name} "
                        f"tensor {name} has only {rows} rows (mismatched vocab)")


# ------------------------------------------------------------------------------------------
# NaN / inf scan, cached
# ------------------------------------------------------------------------------------------


def _cache_path() -> Path:
    from evalsuite.models.load import _hash_cache_path

    return _hash_cache_path().parent / CACHE_FILE


def _cache_key(path: Path) -> str:
    st = path.stat()
    return f"{CACHE_VERSION}:{path}:{st.st_size}:{st.st_mtime_ns}"


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
                per_row = max(1, _numel(shape[1:]))
                step = max(1, SLICE_ELEMENTS // per_row)
                sl = f.get_slice(name)
                for start in range(0, shape[0], step):
                    a, b = _count_bad(sl[start:start + step])
                    nan, inf = nan + a, inf + b
            if nan or inf:
                counts = " and ".join(f"{k} {label} value{'s' if k > 1 else ''}"
                                      for k, label in ((nan, "NaN"), (inf, "inf")) if k)
                raise UserError(f"{what}: {path}: tensor {name} has {counts}")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def scan_finite(headers: dict[Path, dict[str, TensorInfo]], what: str) -> None:
    """NaN/inf scan of files not yet known clean; the verdicts are cached only once the whole
    folder passed (bad input writes nothing)."""
    cache_file = _cache_path()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    fresh = []
    for path, tensors in headers.items():
        key = _cache_key(path)
        if cache.get(key) == "finite":
            continue
        scan_file(path, tensors, what)
        fresh.append(key)
    if fresh:
        from evalsuite.store import atomic_write_text

        cache.update({k: "finite" for k in fresh})
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cache_file, json.dumps(cache, indent=0, sort_keys=True))


# ------------------------------------------------------------------------------------------
# the whole folder
# ------------------------------------------------------------------------------------------


def check_model_folder(folder: Path, what: str) -> None:
    """All checks, cheapest first; raises `UserError` on the first problem found."""
    folder = Path(folder)
    config = _read_json(folder / "config.json", what) or {}
    headers = {path: read_header(path, what) for path in weight_files(folder, what)}
    if (folder / INDEX_FILE).is_file():
        _check_index_tensors(folder, headers, what)
    tensors: dict[str, TensorInfo] = {}
    for header in headers.values():
        for name, info in header.items():
            tensors.setdefault(name, info)
    _check_dtypes(tensors, config, what)
    _check_vocab(folder, tensors, config, what)
    scan_finite(headers, what)
