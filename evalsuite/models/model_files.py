"""Reading a model folder's files without loading any tensor: safetensors headers (8-byte length +
JSON: names, dtypes, shapes, offsets), the shard index, small JSON files and the tokenizer's
vocabulary. The one reader of each for `models.check` (before any job) and the merge preflight
(`models.merge_recipe`); a damaged file is a one-line `UserError` naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from evalsuite.errors import UserError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_HEADER = 100_000_000  # the safetensors format's own limit

DTYPE_BYTES: dict[str, int] = {  # sub-byte float types (F4, F6_*) are packed: not size-checked
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I64": 8, "U64": 8, "I32": 4, "U32": 4, "I16": 2, "U16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: str
    shape: tuple[int, ...]


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ------------------------------------------------------------------------------------------
# safetensors headers and the shard index
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
    if not 0 <= start <= end or (dtype in DTYPE_BYTES and end - start != numel(tuple(shape)) * DTYPE_BYTES[dtype]):
        raise UserError(f"{where}: invalid safetensors header (tensor {name}: {dtype} {shape} does not "
                        f"fit bytes {start}..{end})")
    return TensorInfo(file=path, dtype=dtype, shape=tuple(shape))


def read_json(path: Path, what: str) -> Optional[dict]:
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
    index = read_json(folder / INDEX_FILE, what)
    if index is None:  # unsharded: transformers reads model.safetensors
        single = folder / SINGLE_FILE
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


def folder_headers(folder: Path, what: str) -> dict[Path, dict[str, TensorInfo]]:
    """Every weight file of the folder (`weight_files`) -> its header."""
    return {path: read_header(path, what) for path in weight_files(folder, what)}


# ------------------------------------------------------------------------------------------
# the tokenizer's vocabulary
# ------------------------------------------------------------------------------------------


def _token_ids(tok: dict) -> Iterator[tuple[Any, int]]:
    """(token, id) of a tokenizer.json: the model's vocabulary (a token -> id mapping, or
    Unigram's [[piece, score], ...] where the id is the position), then the added tokens."""
    vocab = (tok.get("model") or {}).get("vocab")
    if isinstance(vocab, dict):
        yield from ((t, i) for t, i in vocab.items() if isinstance(i, int))
    elif isinstance(vocab, list):
        yield from ((item[0] if isinstance(item, (list, tuple)) and item else None, i) for i, item in enumerate(vocab))
    for a in tok.get("added_tokens") or []:
        if isinstance(a, dict) and isinstance(a.get("id"), int):
            yield a.get("content"), a["id"]


def tokenizer_size(tok: dict) -> Optional[int]:
    """Highest token id + 1 of a tokenizer.json (model vocab and added tokens)."""
    ids = [i for _, i in _token_ids(tok)]
    return max(ids) + 1 if ids else None


def tokenizer_vocab(tok: dict) -> dict[Any, int]:
    """Token -> id of a tokenizer.json (model vocab, then the added tokens over it)."""
    return dict(_token_ids(tok))
