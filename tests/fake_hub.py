"""A loopback fake of the Hugging Face Hub HTTP API, for push/download tests that never leave the machine.

What it serves (enough for ``huggingface_hub`` 2.x and ``transformers`` 5.x):

* uploads: ``POST /api/repos/create``, ``/api/validate-yaml``, ``/api/models/{repo}/preupload/{rev}`` (every file is
  answered ``uploadMode: regular``, so the client inlines file bytes in the commit and no LFS/Xet endpoint is used),
  ``/api/models/{repo}/commit/{rev}`` (NDJSON), ``/api/models/{repo}/branch/{branch}``;
* downloads: ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (git blob sha1) and
  ``Content-Length``; ``GET /api/models/{repo}[/revision/{rev}]`` (model info with ``sha`` and ``siblings``);
  ``GET /api/models/{repo}/tree/{rev}`` (used by ``snapshot_download``). So ``hf_hub_download``,
  ``snapshot_download`` and ``from_pretrained("user/repo")`` work against it;
* missing repos/revisions/files answer 404 with the ``X-Error-Code`` the client maps to its exception types.

``HF_ENDPOINT`` is read when ``huggingface_hub`` is imported, so the client side runs in a subprocess:
:meth:`FakeHub.run_python` starts one with ``HF_ENDPOINT``, ``HF_TOKEN`` and a private ``HF_HOME`` set and
``HF_HUB_OFFLINE`` removed, while the server thread lives in the test process.

Reuse in a test module (``tests/`` is not a package, so put it on ``sys.path`` first)::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/
    from fake_hub import FakeHub, fake_hub_fixture  # noqa: F401  (importing the fixture makes pytest see it)

    def test_push(fake_hub):
        fake_hub.run_python('''
            import labelsynth, torch
            model = ...
            model.push_to_hub("tester/tiny")
        ''')
        readme = fake_hub.store["tester/tiny"]["README.md"].decode()
        assert "library_name: labelsynth" in readme

``fake_hub.store`` maps repo id -> {path: bytes} on ``main``; ``fake_hub.requests`` lists ``(method, path)`` of every
request; ``fake_hub.seed(repo_id, files)`` pre-populates a repo. For several pushes in one subprocess (one torch
import instead of several), use ``with FakeHub() as hub:`` in a module-scoped fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from typing_extensions import Self

__all__ = ["FakeHub", "fake_hub_fixture"]

FAKE_TOKEN = "hf_fake_token_for_tests"
DEFAULT_USER = "tester"  # namespace used when a repo id has none (the real Hub uses the token's user)
_ENV_TO_DROP = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub uses as ETag / ``oid`` for non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Repo:
    """Branches (name -> files) and every commit (oid -> files) of one model repo."""

    def __init__(self) -> None:
        self.branches: dict[str, dict[str, bytes]] = {"main": {}}
        self.heads: dict[str, str] = {"main": "0" * 40}
        self.commits: dict[str, dict[str, bytes]] = {"0" * 40: {}}

    def resolve(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        """Branch name or commit oid -> (commit oid, files); ``None`` if unknown."""
        if revision in self.branches:
            return self.heads[revision], self.branches[revision]
        if revision in self.commits:
            return revision, self.commits[revision]
        return None

    def commit(self, branch: str, files: dict[str, bytes]) -> str:
        oid = hashlib.sha1(repr(sorted((k, git_blob_sha1(v)) for k, v in files.items())).encode()).hexdigest()
        self.branches[branch], self.heads[branch], self.commits[oid] = files, oid, dict(files)
        return oid


class FakeHub:
    """In-memory Hub served on ``127.0.0.1`` (random port) by a background thread. Use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._home = tempfile.TemporaryDirectory(prefix="fake_hub_home_")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._home.cleanup()

    @property
    def store(self) -> dict[str, dict[str, bytes]]:
        """Repo id -> {path: bytes} of the ``main`` branch."""
        return {rid: repo.branches["main"] for rid, repo in self.repos.items()}

    def seed(self, repo_id: str, files: Mapping[str, bytes | str], branch: str = "main") -> str:
        """Create ``repo_id`` (if needed) and commit ``files`` to ``branch``; returns the commit oid."""
        data = {p: v.encode() if isinstance(v, str) else v for p, v in files.items()}
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo())
            return repo.commit(branch, {**repo.branches.get(branch, {}), **data})

    def env(self) -> dict[str, str]:
        """Environment for a client process: this endpoint, a token, a private HF_HOME, online mode."""
        env = {k: v for k, v in os.environ.items() if k not in _ENV_TO_DROP}
        env.update(
            HF_ENDPOINT=self.url,
            HF_TOKEN=FAKE_TOKEN,
            HF_HOME=self._home.name,
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        # Make `import labelsynth` work in the child even without an installed package (src layout).
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        return env

    def run_python(self, code: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``code`` (dedented) in a fresh interpreter wired to this hub; fails the test on a non-zero exit."""
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            check=False,  # a failure is reported below with the output and the requests seen
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"subprocess exited with {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n"
                f"{proc.stderr}\n--- requests ---\n" + "\n".join(f"{m} {p}" for m, p in self.requests),
                pytrace=False,
            )
        return proc


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

        def log_message(self, *args: Any) -> None:  # silence per-request stderr lines
            pass

        # -- plumbing -------------------------------------------------------------------------------------------
        def _reply(self, code: int, body: bytes | Any = b"", headers: Mapping[str, str] | None = None) -> None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json", **(headers or {})}
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, code: int, error_code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
            self._reply(
                code, {"error": message}, {"X-Error-Code": error_code, "X-Error-Message": message, **(headers or {})}
            )

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self) -> tuple[list[str], dict[str, list[str]]]:
            url = urlsplit(self.path)
            with hub._lock:
                hub.requests.append((self.command, url.path))
            return [unquote(p) for p in url.path.strip("/").split("/")], parse_qs(url.query)

        def _repo(self, repo_id: str) -> _Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return repo

        # -- verbs ----------------------------------------------------------------------------------------------
        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            parts, _ = self._route()
            if parts[:2] == ["api", "agent-harnesses"]:  # client telemetry probe
                return self._reply(200, {"standardEnvVars": [], "harnesses": {}})
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._model_api(f"{parts[2]}/{parts[3]}", parts[4:])
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
            self._error(404, "NotFound", f"fake hub: unhandled GET {self.path}")

        def do_POST(self) -> None:
            parts, query = self._route()
            body = self._body()
            if parts == ["api", "validate-yaml"]:
                return self._reply(200, {"errors": [], "warnings": []})
            if parts == ["api", "repos", "create"]:
                req = json.loads(body or b"{}")
                name = req["name"]
                repo_id = name if "/" in name else f"{req.get('organization') or DEFAULT_USER}/{name}"
                with hub._lock:
                    hub.repos.setdefault(repo_id, _Repo())
                return self._reply(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id, "id": repo_id})
            if parts[:2] == ["api", "models"] and len(parts) >= 6:
                repo = self._repo(f"{parts[2]}/{parts[3]}")
                if repo is None:
                    return None
                action, rev = parts[4], "/".join(parts[5:])
                if action == "preupload":
                    files = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                        for f in json.loads(body)["files"]
                    ]
                    return self._reply(200, {"files": files, "commitOid": repo.heads.get(rev, "0" * 40)})
                if action == "branch":
                    with hub._lock:
                        if rev not in repo.branches:
                            repo.commit(rev, dict(repo.branches["main"]))
                    return self._reply(200, {})
                if action == "commit":
                    return self._commit(f"{parts[2]}/{parts[3]}", repo, rev, body, query)
            self._error(404, "NotFound", f"fake hub: unhandled POST {self.path}")

        # -- endpoints ------------------------------------------------------------------------------------------
        def _commit(self, repo_id: str, repo: _Repo, rev: str, body: bytes, query: dict[str, list[str]]) -> None:
            if query.get("create_pr"):
                return self._error(400, "BadRequest", "fake hub: create_pr is not supported")
            if rev not in repo.branches:
                return self._error(404, "RevisionNotFound", f"Branch {rev} not found")
            with hub._lock:
                files = dict(repo.branches[rev])
                for line in body.decode().splitlines():
                    item = json.loads(line) if line.strip() else {}
                    if item.get("key") == "file":
                        files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    elif item.get("key") == "deletedFile":
                        files.pop(item["value"]["path"], None)
                    elif item.get("key") not in (None, "header"):
                        return self._error(400, "BadRequest", f"fake hub: unsupported commit item {item['key']}")
                oid = repo.commit(rev, files)
            self._reply(
                200,
                {
                    "success": True,
                    "commitOid": oid,
                    "commitUrl": f"{hub.url}/{repo_id}/commit/{oid}",
                    "pullRequestUrl": None,
                    "hookOutput": "",
                },
            )

        def _resolve(self, repo_id: str, rev: str, path: str) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return None
            resolved = repo.resolve(rev)
            if resolved is None:
                return self._error(404, "RevisionNotFound", f"Revision {rev} not found")
            oid, files = resolved
            if path not in files:
                return self._error(404, "EntryNotFound", f"{path} not found", {"X-Repo-Commit": oid})
            data = files[path]
            self._reply(
                200,
                data,
                {"Content-Type": "application/octet-stream", "X-Repo-Commit": oid, "ETag": f'"{git_blob_sha1(data)}"'},
            )

        def _model_api(self, repo_id: str, rest: list[str]) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return None
            kind = rest[0] if rest else "revision"
            rev = rest[1] if len(rest) > 1 else "main"
            resolved = repo.resolve(rev)
            if kind not in ("revision", "tree"):
                return self._error(404, "NotFound", f"fake hub: unhandled GET {self.path}")
            if resolved is None:
                return self._error(404, "RevisionNotFound", f"Revision {rev} not found")
            oid, files = resolved
            if kind == "tree":
                prefix = "/".join(rest[2:])
                tree = [
                    {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
                    for path, data in sorted(files.items())
                    if not prefix or path.startswith(prefix + "/")
                ]
                return self._reply(200, tree)
            self._reply(
                200,
                {
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": oid,
                    "private": False,
                    "disabled": False,
                    "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())],
                },
            )

    return Handler


@pytest.fixture(name="fake_hub")
def fake_hub_fixture() -> Iterator[FakeHub]:
    """A fresh, running :class:`FakeHub` for one test."""
    with FakeHub() as hub:
        yield hub
