"""A simulated Hugging Face hub for the tests: a local HTTP server speaking the parts of the hub API
that `huggingface_hub` 2.4 (and through it `datasets`, `transformers`) calls in evalsuite, reached
through `HF_ENDPOINT`. Learnt from huggingface_hub's own client code (hf_api.py, file_download.py,
_snapshot_download.py, utils/_http.py):

  GET  /api/{models,datasets}/ORG/NAME[/revision/REV]   repo info (`model_info`, `dataset_info`,
                                                      `repo_info`): id, sha, siblings (their sizes
                                                      with ?blobs=True), gated
  GET  /api/{models,datasets}/ORG/NAME/tree/REV[/PATH]  file listing (`list_repo_tree`,
                                                      `snapshot_download`)
  GET  /api/{models,datasets}/ORG/NAME/auth-check     `auth_check`: 200, or 401/403 for a gated repo
  HEAD/GET /ORG/NAME/resolve/REV/PATH                 a model file (`hf_hub_download`): headers
  HEAD/GET /datasets/ORG/NAME/resolve/REV/PATH         X-Repo-Commit, ETag, Content-Length

Errors carry the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo),
which `huggingface_hub.utils.hf_raise_for_status` turns into its typed errors. A gated repo's info is
public (as on the hub); its files and auth-check answer 401 without a token and 403 with a token
that was not granted access. Every request is logged (`requests`) so a test can say what was asked.

Repos hold commits (full 40-hex shas made from their content) and branches; a test adds a commit
with `add_commit` and moves `main` to it, as a dataset revised on the hub.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".parquet", ".bin", ".gguf", ".pt")


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 (git's own)


@dataclass
class Repo:
    repo_id: str
    repo_type: str  # "model" or "dataset"
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> path -> bytes
    branches: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    granted: set[str] = field(default_factory=set)  # tokens allowed to read a gated repo

    def add_commit(self, files: dict[str, bytes], *, branch: Optional[str] = "main") -> str:
        h = hashlib.sha1(f"{self.repo_type}/{self.repo_id}".encode())  # noqa: S324
        for path in sorted(files):
            h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        h.update(str(len(self.commits)).encode())
        sha = h.hexdigest()
        self.commits[sha] = dict(files)
        if branch:
            self.branches[branch] = sha
        return sha

    def resolve(self, rev: Optional[str]) -> Optional[str]:
        rev = rev or "main"
        if rev in self.commits:
            return rev
        return self.branches.get(rev)


def folder_files(root: Path) -> dict[str, bytes]:
    """A local folder's files as a commit's content (relative posix path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class SimHub:
    """The server and its repos. `url` is the `HF_ENDPOINT` to give clients."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "SimHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo(self, repo_id: str, repo_type: str = "model", *, gated: bool = False) -> Repo:
        key = (repo_type, repo_id)
        if key not in self.repos:
            self.repos[key] = Repo(repo_id, repo_type, gated=gated)
        return self.repos[key]

    def file_requests(self, repo_id: str) -> list[str]:
        """The resolve (file) requests made for a repo: 'METHOD path'."""
        return [f"{m} {p}" for m, p in self.requests if f"/{repo_id}/resolve/" in p]


def _handler(hub: SimHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        # -- answers ---------------------------------------------------------------------
        def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data) -> None:
            self._send(200, json.dumps(data).encode())

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

        def _token(self) -> Optional[str]:
            auth = self.headers.get("Authorization", "")
            return auth[7:] if auth.startswith("Bearer ") else None

        def _gate(self, repo: Repo) -> bool:
            """True when the request may read the repo's files; else the gated answer is sent."""
            if not repo.gated:
                return True
            token = self._token()
            if token is None:
                self._error(401, "GatedRepo", "Access to this repo is restricted: you must be authenticated to access it.")
                return False
            if token not in repo.granted:
                self._error(403, "GatedRepo", f"Access to repo {repo.repo_id} is restricted and you are not in the authorized list. Visit the repo to ask for access.")
                return False
            return True

        # -- routing ---------------------------------------------------------------------
        def do_HEAD(self) -> None:
            self._route()

        def do_GET(self) -> None:
            self._route()

        def _route(self) -> None:
            path = urlparse(self.path).path
            hub.requests.append((self.command, path))
            parts = [unquote(p) for p in path.split("/") if p]
            try:
                if parts[:1] == ["api"] and len(parts) >= 4 and parts[1] in ("models", "datasets"):
                    return self._api(parts[1][:-1], f"{parts[2]}/{parts[3]}", parts[4:])
                if parts[:1] == ["datasets"] and len(parts) >= 6 and parts[3] == "resolve":
                    return self._resolve("dataset", f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:]))
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self._resolve("model", f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            except (BrokenPipeError, ConnectionResetError):
                return
            self._error(404, "NotFound", f"no such endpoint {path}")

        def _repo(self, repo_type: str, repo_id: str) -> Optional[Repo]:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                self._error(401, "RepoNotFound", "Repository not found")
            return repo

        def _api(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
            repo = self._repo(repo_type, repo_id)
            if repo is None:
                return
            if rest == ["auth-check"]:
                if self._gate(repo):
                    self._json({})
                return
            if not rest or rest[0] in ("revision", "tree"):
                rev = rest[1] if len(rest) > 1 else None
                sha = repo.resolve(rev)
                if sha is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                files = repo.commits[sha]
                if rest[:1] == ["tree"]:
                    sub = "/".join(rest[2:])
                    return self._json(_tree(files, sub))
                info = {
                    "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],  # noqa: S324
                    "id": repo_id, "sha": sha, "private": False, "disabled": False,
                    "gated": "manual" if repo.gated else False,
                    "lastModified": "2026-01-01T00:00:00.000Z", "tags": [], "downloads": 0, "likes": 0,
                    "siblings": [{"rfilename": p, **({"size": len(files[p])} if "blobs=" in urlparse(self.path).query else {})}
                                 for p in sorted(files)],
                }
                return self._json(info)
            self._error(404, "NotFound", "no such endpoint")

        def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
            repo = self._repo(repo_type, repo_id)
            if repo is None or not self._gate(repo):
                return
            sha = repo.resolve(rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            data = repo.commits[sha].get(path)
            if data is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist at {rev}")
            etag = hashlib.sha256(data).hexdigest() if path.endswith(LFS_SUFFIXES) else _git_blob_oid(data)
            self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{etag}"'}, ctype="application/octet-stream")

    return Handler


def _tree(files: dict[str, bytes], sub: str) -> list[dict]:
    """`list_repo_tree(recursive=True)`'s entries under `sub`: folders then files."""
    prefix = f"{sub.rstrip('/')}/" if sub else ""
    out, folders = [], set()
    for path, data in sorted(files.items()):
        if not path.startswith(prefix):
            continue
        parents = path.split("/")[:-1]
        for i in range(len(prefix.split("/")) - 1 if prefix else 0, len(parents)):
            folders.add("/".join(parents[: i + 1]))
        entry = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_oid(data)}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        out.append(entry)
    return [{"type": "directory", "path": f, "oid": _git_blob_oid(f.encode())} for f in sorted(folders)] + out


def client_env(hub: SimHub, hf_home: Path, *, offline: bool) -> dict[str, str]:
    """The environment a client process needs to use `hub` (online) or only `hf_home`'s cache."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_CACHE", "HF_DATASETS_CACHE")}
    flag = "1" if offline else "0"
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(hf_home), HF_HUB_OFFLINE=flag, HF_DATASETS_OFFLINE=flag,
               HF_HUB_DISABLE_TELEMETRY="1")
    return env


def use_in_process(monkeypatch, hub: SimHub, hf_home: Path, *, offline: bool, token: Optional[str] = None) -> None:
    """Point this process's huggingface_hub (its constants are read at import) at `hub` and the
    cache under `hf_home`."""
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "ENDPOINT", hub.url)
    monkeypatch.setattr(hc, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(Path(hf_home) / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(Path(hf_home) / "hub"))
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hc, "HF_TOKEN_PATH", str(Path(hf_home) / "no-token"))
    else:
        monkeypatch.setenv("HF_TOKEN", token)
