"""The run history's database file: `results/history.sqlite`, its schema, the check that a file of
that name is evalsuite's, and the connections (each write one transaction).

A run is written in ONE transaction (WAL journal, synchronous=FULL): a crash or SIGKILL at any
point leaves the whole run or none of it (`evalsuite.history.runs.record_run`).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Optional

from evalsuite.errors import UserError

DB_NAME = "history.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    experiment TEXT NOT NULL,
    config_file TEXT,
    finished REAL,
    status TEXT NOT NULL,              -- ok | partial (some jobs failed)
    failed TEXT NOT NULL,              -- JSON list of failure lines
    lm_eval TEXT NOT NULL,             -- lm-eval version(s) of the jobs, comma-separated
    data TEXT NOT NULL,                -- data identity(ies) of the jobs
    candidate TEXT,
    record TEXT NOT NULL               -- the ExperimentRecord JSON
);
CREATE TABLE IF NOT EXISTS run_models (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    identity TEXT NOT NULL,
    ref TEXT NOT NULL,                 -- ModelRef JSON (dtype, device, chat template, ...)
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS run_jobs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    job_id TEXT NOT NULL,
    identity TEXT NOT NULL,            -- the job identity JSON (everything that changes a number)
    task_hashes TEXT NOT NULL,         -- lm-eval's task_hashes of the results JSON
    lm_eval_version TEXT,              -- as lm-eval wrote it into the results JSON
    results_file TEXT NOT NULL,        -- relative to the results folder
    samples_files TEXT NOT NULL,       -- JSON list, relative to the results folder
    PRIMARY KEY (run_id, model, benchmark)
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    score_id TEXT NOT NULL,            -- benchmark id, or an extra score id (MATH original parser)
    display TEXT NOT NULL,
    subtask TEXT NOT NULL,             -- '' for the benchmark's number, else the leaf task / metric key
    value REAL NOT NULL,               -- leaderboard-normalized, 0-100
    stderr REAL,                       -- normalized standard error, NULL when lm-eval gave none
    raw REAL,
    in_average INTEGER NOT NULL,
    PRIMARY KEY (run_id, model, score_id, subtask)
);
CREATE TABLE IF NOT EXISTS baselines (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs(experiment, seq);
"""


# ---------------------------------------------------------------------------------------------
# the database


def db_path(results_root: Path) -> Path:
    return Path(results_root) / DB_NAME


# The schema marker: SQLite's header field `application_id` ("evlh"), set when evalsuite creates
# the file. A history written before the marker existed is recognised by user_version 1 and
# evalsuite's own tables. Any other file named history.sqlite is someone else's: refused, untouched.
APPLICATION_ID = 0x65766C68
_TABLES = {"meta", "runs", "run_models", "run_jobs", "scores", "baselines"}
_SQLITE_MAGIC = b"SQLite format 3\0"


def _not_ours(path: Path, why: str) -> UserError:
    return UserError(f"{path}: not an evalsuite run history ({why}); evalsuite leaves it as it is: "
                     "move it away or use another results folder")


def check_history_file(results_root: Path) -> None:
    """Refuse a `history.sqlite` that evalsuite did not create (before a command writes anything);
    an absent one is fine. Reads the file's 100-byte header, and its table names when it carries no
    marker; opens nothing for writing."""
    path = db_path(results_root)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_file():
        raise _not_ours(path, "a link or not a regular file")
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the run history ({exc.strerror})") from exc
    if not header:
        raise _not_ours(path, "an empty file")
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise _not_ours(path, "not an SQLite file")
    user_version = int.from_bytes(header[60:64], "big")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id == APPLICATION_ID:
        if user_version > SCHEMA_VERSION:
            raise UserError(f"{path}: history schema {user_version} is newer than this evalsuite ({SCHEMA_VERSION}); upgrade evalsuite")
        return
    if app_id != 0 or user_version != SCHEMA_VERSION:
        raise _not_ours(path, f"an SQLite file of another program (application_id {app_id:#x}, user_version {user_version})")
    try:  # written before the marker: evalsuite's tables, read-only
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise _not_ours(path, f"SQLite cannot read it: {exc}") from exc
    if not _TABLES <= tables:
        raise _not_ours(path, "an SQLite file of another program: no evalsuite tables")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT; on any failure (COMMIT's too) ROLLBACK and raise again."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite has already rolled back after e.g. SQLITE_FULL
            conn.execute("ROLLBACK")
        raise


def connect(results_root: Path, *, create: bool, write: Optional[bool] = None) -> sqlite3.Connection:
    """The history, recognised as evalsuite's first (`check_history_file`). `create`: make it when
    absent (recording a run); `write` (default: `create`): open it for writing, else read-only
    (SQLite `mode=ro`: a command that only lists cannot change the file)."""
    write = create if write is None else write
    path = db_path(results_root)
    if not create and not path.is_file():
        raise UserError(f"{path}: no run history yet (every `evalsuite run` records one)")
    check_history_file(results_root)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = None
    try:
        if write:
            conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)  # explicit BEGIN/COMMIT
            conn.execute("PRAGMA synchronous=FULL")
        else:
            # read-only. With no -wal/-shm beside it (no writer has it open) SQLite would create them
            # even for a reader, so the file is then opened immutable: nothing appears in the folder.
            # (A writer starting during these few queries writes to its new WAL, unseen here.)
            quiet = not any(Path(f"{path}{x}").exists() for x in ("-wal", "-shm"))
            uri = f"{path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if quiet else "")
            conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and write:
            with transaction(conn):  # one statement at a time: executescript would COMMIT on its own
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        elif version > SCHEMA_VERSION:
            raise UserError(f"{path}: history schema {version} is newer than this evalsuite ({SCHEMA_VERSION}); upgrade evalsuite")
        if write:  # WAL only after the schema and the marker were committed to the file itself (rollback
            # journal): its header then says evalsuite's even when a kill leaves the WAL unmerged
            conn.execute("PRAGMA journal_mode=WAL")
    except (sqlite3.DatabaseError, UserError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, UserError):
            raise
        if getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE):
            raise UserError(f"no space left on device: {path}") from exc
        raise UserError(f"{path}: cannot open the run history ({exc})") from exc
    return conn


def new_run_id(now: Optional[float] = None) -> str:
    """Sortable and unique: UTC time plus random hex, e.g. `20261126T181502Z-3fa9c1`."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + secrets.token_hex(3)
