"""Files written safely: atomic writes and folder swaps, temp names and their sweep, the disk-full
rule, normal permissions, a file's sha256. Used by every stage that writes (`results/`, `models/`,
`data/`, `history/`, `report/`); decides nothing about where things live (that is
`evalsuite.results.store`)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Union

from evalsuite.faults import checkpoint


def atomic_write_text(path: Path, text: str, *, point: Optional[str] = None) -> None:
    """Write via a temp file in the same folder + os.replace: readers see old or new, never half.
    `point`: a crash point (evalsuite/faults.py) between the temp file and the rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        if point:
            checkpoint(point)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        name_full_disk(exc, path)
        raise


def temp_prefix(name: str) -> str:
    """Hidden temp name beside `name`, tagged with this process id so a later run can tell the
    leftovers of a dead process (SIGKILL, power cut) from a live writer's: see `sweep_stale`."""
    return f".{name}.tmp-{os.getpid()}-"


_STALE = (  # .NAME.tmp-PID-xxxx (files, folders), .NAME.old-PID (swap_folder), .tmp-JOB-PID (jobs)
    re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?$"),
    re.compile(r"^\.(?P<kind>tmp)-(?P<name>.+)-(?P<pid>\d+)$"),
)


def sweep_stale(folder: Path, only: Optional[str] = None) -> list[Path]:
    """Clear what dead evalsuite processes left in `folder`: their temp files and folders are
    removed; a previous version moved aside by an interrupted `swap_folder` is put back when its
    replacement never arrived (else removed). `only`: leave every name but this one alone (a
    folder evalsuite does not own). Returns what was removed or restored."""
    done: list[Path] = []
    if not folder.is_dir():
        return done
    for p in folder.iterdir():
        m = _STALE[0].match(p.name) or _STALE[1].match(p.name)
        if m is None or pid_alive(m["pid"]) or (only is not None and m["name"] != only):
            continue
        target = folder / m["name"]
        if m["kind"] == "old" and not target.exists():
            os.replace(p, target)
        elif p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        done.append(p)
    return done


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# How a full disk shows up: OSError's errnos; in messages and logs, Python's, SQLite's and Rust's
# (safetensors) words for it.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_WORDS = ("No space left on device", "[Errno 28]", "os error 28", "database or disk is full", "Disk quota exceeded")


def disk_full(error: Union[BaseException, str]) -> bool:
    """Does this exception (by errno, or by its message when it is not an OSError) or this log
    text say the disk is full?"""
    if isinstance(error, OSError):
        return error.errno in DISK_FULL_ERRNOS
    return any(w in str(error) for w in DISK_FULL_WORDS)


def name_full_disk(exc: BaseException, path: Path) -> None:
    """A write that fails on a full disk names no file (the error comes at write or close) or a
    temp file that is gone by now: name the file or folder that was being written instead."""
    if isinstance(exc, OSError) and disk_full(exc):
        exc.filename = str(path)


def swap_folder(new: Path, target: Path) -> None:
    """Rename the finished folder `new` onto `target` (same parent). A previous `target` is moved
    aside first, put back if the rename fails, and removed only once the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None and old.is_symlink():  # the target was a link (inside the folder): drop the link only
        old.unlink()
    elif old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(target: Path, files: Mapping[str, Union[bytes, str]]) -> None:
    """Write `files` (relative path -> content) as the folder `target`, all or nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), dir=target.parent))
    try:
        for rel, data in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        normal_modes(tmp)
        swap_folder(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        name_full_disk(exc, target)
        raise


def normal_modes(folder: Path) -> None:
    """mkdtemp makes 0700 folders (and safetensors writers 0600 files): before a temp folder is
    renamed into place, give it and its files the modes the umask would have given them."""
    umask = _umask()
    folder.chmod(0o777 & ~umask)
    for p in folder.rglob("*"):  # sub-folders keep their x bit (0666 on a folder locks it)
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
