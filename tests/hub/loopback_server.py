"""A loopback HTTP file server for download tests: byte blobs at paths, as the release hosts serve them.

* ``add(path, data)``: ``GET path`` answers the bytes (``Range: bytes=N-`` -> 206 with ``Content-Range``; an
  offset at or past the end -> 416; ``ignore_ranges`` -> 200 with the whole file);
* ``cut_once(path, after)``: the next ``GET path`` sends the full ``Content-Length`` header, then only `after`
  bytes, and closes the connection (an interrupted download);
* ``add_drive_file(file_id, data)``: Google Drive's large-file flow. ``/uc?id=<id>&export=download`` answers a
  ``text/html`` "can't scan for viruses" page whose ``<form id="download-form" action=".../download">`` carries the
  hidden inputs ``id``, ``export``, ``confirm``, ``uuid`` (what gdown's ``get_url_from_gdrive_confirmation`` reads:
  it parses the page line by line, so the form and its inputs are on one line, as on Drive's page);
  ``/download?id=..&export=download&confirm=t&uuid=..`` answers the file with a ``Content-Disposition`` header, and a
  wrong or missing ``uuid`` gets the page again;
* ``add_redirect(path, target)``: 302 to `target` (Dropbox's share link -> content host);
* ``add_page(path, html)``: a ``text/html`` page;
* anything else: 404 (under ``/api/models/`` with the Hub's ``X-Error-Code: RepoNotFound``).

``log`` records every request (method, path with query, headers).

Bounded: binds 127.0.0.1 on port 0, serves from a daemon thread, and `close` (the fixture's teardown) shuts it down.
"""

from __future__ import annotations

import html
import re
import sys
import threading
import uuid as uuid_module
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from typing_extensions import Self

__all__ = ["LoopbackServer", "Request"]


@dataclass
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """See the module docstring. Use as a context manager, or call `close`."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.drive: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.pages: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}
        self.ignore_ranges = False  # answer 200 with the whole file to a Range request, like servers without ranges
        self.log: list[Request] = []
        self._drive_tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-server", daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, data: bytes) -> str:
        self.blobs[path] = data
        return self.url(path)

    def add_page(self, path: str, html_text: str) -> str:
        """A ``text/html`` page at `path` (e.g. a sign-in page where a file was expected)."""
        self.pages[path] = html_text.encode()
        return self.url(path)

    def add_drive_file(self, file_id: str, data: bytes) -> str:
        """Serve `data` behind a Drive confirmation page; returns the ``/uc?id=..&export=download`` URL."""
        self.drive[file_id] = data
        self._drive_tokens[file_id] = str(uuid_module.uuid4())
        return self.url(f"/uc?{urlencode({'id': file_id, 'export': 'download'})}")

    def add_redirect(self, path: str, target: str) -> str:
        self.redirects[path] = target
        return self.url(path)

    def cut_once(self, path: str, after: int) -> None:
        """The next GET of `path` (without its query) breaks after `after` bytes of the body."""
        self.cuts[path] = after

    def requests_for(self, path: str) -> list[Request]:
        """Logged requests whose path (query excluded) is `path`."""
        return [r for r in self.log if urlsplit(r.path).path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _confirmation_page(self, file_id: str) -> bytes:
        inputs = "".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">' for name, value in (
            ("id", file_id), ("export", "download"), ("confirm", "t"), ("uuid", self._drive_tokens[file_id])))
        form = (f'<form id="download-form" action="{self.base}/download" method="get">'
                f'<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" '
                f'value="Download anyway">{inputs}</form>')
        return ("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\n"
                '<div class="uc-main"><p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.'
                "</p>\n" + form + "\n</div></body></html>\n").encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up (a failed download) is normal
            super().handle_error(request, client_address)


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest's output clean
            pass

        def do_GET(self) -> None:
            with server._lock:
                server.log.append(Request("GET", self.path, dict(self.headers.items())))
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path in server.redirects:
                self._reply(302, b"", {"Location": server.redirects[parts.path]})
            elif parts.path == "/uc" and query.get("id") in server.drive:
                self._reply(200, server._confirmation_page(query["id"]), {"Content-Type": "text/html; charset=utf-8"})
            elif parts.path == "/download" and query.get("id") in server.drive:
                file_id = query["id"]
                if query.get("confirm") != "t" or query.get("uuid") != server._drive_tokens[file_id]:
                    self._reply(200, server._confirmation_page(file_id), {"Content-Type": "text/html; charset=utf-8"})
                else:
                    self._file(parts.path, server.drive[file_id],
                               {"Content-Disposition": f'attachment; filename="{file_id}"'})
            elif parts.path in server.blobs:
                self._file(parts.path, server.blobs[parts.path], {})
            elif parts.path in server.pages:
                self._reply(200, server.pages[parts.path], {"Content-Type": "text/html; charset=utf-8"})
            else:
                # what the Hub answers for a repo that does not exist; a plain 404 for other hosts' files
                headers = {"X-Error-Code": "RepoNotFound"} if parts.path.startswith("/api/models/") else {}
                self._reply(404, b"not found", {"Content-Type": "text/plain", **headers})

        def _file(self, path: str, data: bytes, headers: dict[str, str]) -> None:
            headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            status, start = 200, 0
            if match and not server.ignore_ranges and int(match[1]) < len(data):
                status, start = 206, int(match[1])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            elif match and not server.ignore_ranges:  # nothing left after that offset
                self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            body = data[start:]
            with server._lock:
                cut = server.cuts.pop(path, None)
            if cut is None:
                self._reply(status, body, headers)
                return
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True  # the client sees a body shorter than Content-Length

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler
