"""A local stand-in for the CDSE token, OData catalogue and download endpoints, with faults.

Serves products from bytes in memory on ``http://127.0.0.1:<free port>``:

* ``POST /auth/realms/CDSE/protocol/openid-connect/token``: password and refresh_token grants;
  wrong credentials -> 401 ``invalid_grant``; access tokens live ``token_lifetime`` seconds.
  With ``totp`` set (a two-factor account), the password grant also needs ``totp=<that code>``
  and is otherwise refused with the same ``invalid_grant`` as a wrong password.
* ``GET /odata/v1/Products?$filter=...``: filters on ``ContentDate/Start`` (ge/lt), the
  ``startswith(Name, ...)`` streams and ``contains(Name, ...)`` version; pages of ``$top``
  (at most ``page_size``) with ``@odata.nextLink`` (``$skip``), which, like the real service,
  stops being given past ``max_skip`` results, without an error. The area is recorded, not
  applied. ``ContentLength`` is the product's ``listed_size`` (null or 0 to mimic entries
  without a size; a value other than the delivered size to mimic a catalogue mismatch).
* ``GET /odata/v1/Products(<id>)/$value``: bearer token required (anything else, e.g. the
  Basic credentials requests takes from a ``~/.netrc``, is a 401); ``Range: bytes=N-``
  answered with 206 (``Content-Range`` with the total), or 416 ``bytes */<size>`` past the end.
  With ``redirect_host`` set it first redirects to ``/download/<id>`` on that host (as
  ``catalogue.…/$value`` redirects to ``download.…``).

Faults are queued with :meth:`FakeCdse.add_fault` and consumed by download requests in order.
Every request is appended to :attr:`FakeCdse.log`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from s5p_lockdown.filenames import ProductName

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"


@dataclass
class FakeProduct:
    id: str
    name: str
    data: bytes
    md5: str
    served: bytes  # what downloads deliver (differs from data when corrupted or short)
    listed_size: int | None  # the catalogue's ContentLength

    @property
    def start(self) -> datetime:
        return ProductName.parse(self.name).start


@dataclass
class Fault:
    """``status``: answer with this HTTP status (``retry_after`` header if set); or
    ``drop_after``: send that many bytes then close the socket, and if ``revoke_tokens``
    also invalidate every access token (the token 'expires' during the transfer)."""

    status: int | None = None
    retry_after: str | None = None
    drop_after: int | None = None
    revoke_tokens: bool = False


class FakeCdse:
    def __init__(self, username: str = "alice", password: str = "s3cret",
                 token_lifetime: float = 600.0, page_size: int = 2, max_skip: int = 10_000):
        self.username, self.password = username, password
        self.totp: str | None = None
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.max_skip = max_skip
        self.redirect_host: str | None = None
        self.products: dict[str, FakeProduct] = {}
        self.faults: list[Fault] = []
        self.log: list[dict] = []
        self._access: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeCdse:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- set-up -------------------------------------------------------------------------------
    def add(self, name: str, data: bytes) -> FakeProduct:
        product = FakeProduct(str(uuid.uuid4()), name, data, hashlib.md5(data).hexdigest(), data,
                              len(data))
        self.products[product.id] = product
        return product

    def add_file(self, path: Path, name: str | None = None) -> FakeProduct:
        return self.add(name or path.name, path.read_bytes())

    def add_fault(self, fault: Fault, count: int = 1) -> None:
        self.faults.extend([fault] * count)

    def requests(self, kind: str) -> list[dict]:
        return [entry for entry in self.log if entry["kind"] == kind]

    # --- tokens -------------------------------------------------------------------------------
    def _issue(self) -> dict:
        access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
        self._access[access] = time.monotonic() + self.token_lifetime
        self._refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh,
                "expires_in": self.token_lifetime, "refresh_expires_in": 3600,
                "token_type": "Bearer"}

    def token_answer(self, form: dict) -> tuple[int, dict]:
        grant = form.get("grant_type")
        with self._lock:
            if form.get("client_id") != "cdse-public":
                return 400, {"error": "invalid_client"}
            if grant == "password":
                if (form.get("username"), form.get("password"), form.get("totp")) != (
                    self.username, self.password, self.totp
                ):
                    return 401, {"error": "invalid_grant",
                                 "error_description": "Invalid user credentials"}
                return 200, self._issue()
            if grant == "refresh_token" and form.get("refresh_token") in self._refresh:
                self._refresh.discard(form["refresh_token"])
                return 200, self._issue()
            return 400, {"error": "invalid_grant", "error_description": "Invalid refresh token"}

    def token_valid(self, header: str | None) -> bool:
        token = (header or "").removeprefix("Bearer ")
        with self._lock:
            return self._access.get(token, 0) > time.monotonic()

    def revoke_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    # --- catalogue ----------------------------------------------------------------------------
    def search(self, query: dict) -> dict:
        text = query["$filter"]
        low = re.search(r"ContentDate/Start ge (\S+?)\.000Z", text).group(1)
        high = re.search(r"ContentDate/Start lt (\S+?)\.000Z", text).group(1)
        prefixes = re.findall(r"startswith\(Name,'([^']+)'\)", text)
        versions = re.findall(r"contains\(Name,'([^']+)'\)", text)
        low, high = datetime.fromisoformat(low), datetime.fromisoformat(high)
        matches = sorted(
            (p for p in self.products.values()
             if low <= p.start < high and any(p.name.startswith(x) for x in prefixes)
             and all(v in p.name for v in versions)),
            key=lambda p: p.start,
        )
        top, skip = int(query.get("$top", 20)), int(query.get("$skip", 0))
        top = min(top, self.page_size)
        page = matches[skip:skip + top]
        answer = {"value": [
            {"Id": p.id, "Name": p.name, "ContentLength": p.listed_size, "Online": True,
             "ContentDate": {"Start": f"{p.start:%Y-%m-%dT%H:%M:%S}.000Z"},
             "Checksum": [{"Value": p.md5, "Algorithm": "MD5"},
                          {"Value": "0" * 64, "Algorithm": "BLAKE3"}]}
            for p in page
        ]}
        if skip + top < len(matches) and skip + top <= self.max_skip:
            answer["@odata.nextLink"] = (
                f"{self.base_url}/odata/v1/Products?{urlencode({**query, '$skip': skip + top})}"
            )
        return answer

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients hanging up (as after a dropped transfer) are expected, not errors."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(fake: FakeCdse):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if urlsplit(self.path).path != TOKEN_PATH:
                return self._json(404, {"error": "not found"})
            status, body = fake.token_answer(form)
            fake.log.append({"kind": "token", "grant": form.get("grant_type"), "status": status,
                             "auth": self.headers.get("Authorization", "").split(" ")[0]})
            self._json(status, body)

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/odata/v1/Products":
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.log.append({"kind": "search", "query": query})
                return self._json(200, fake.search(query))
            match = re.fullmatch(r"/odata/v1/Products\((.+)\)/\$value|/download/(.+)", url.path)
            if match is None:
                return self._json(404, {"error": "not found"})
            self._download(match.group(1) or match.group(2), redirected=match.group(2) is not None)

        def _download(self, product_id: str, redirected: bool) -> None:
            product = fake.products.get(product_id)
            ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            start = int(ranged.group(1)) if ranged else None
            entry = {"kind": "download", "id": product_id, "range_start": start,
                     "host": self.headers.get("Host", "").split(":")[0], "sent": 0,
                     "auth": self.headers.get("Authorization", "").split(" ")[0]}
            fake.log.append(entry)
            if not fake.token_valid(self.headers.get("Authorization")):
                entry["status"] = 401
                return self._json(401, {"error": "invalid or expired token"})
            if product is None:
                entry["status"] = 404
                return self._json(404, {"error": "no such product"})
            if fake.redirect_host and not redirected:
                entry["status"] = 302
                location = f"http://{fake.redirect_host}:{fake.port}/download/{product_id}"
                return self._json(302, {}, {"Location": location})
            fault = fake.next_fault()
            if fault is not None and fault.status is not None:
                entry["status"] = fault.status
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return self._json(fault.status, {"error": "injected"}, headers)
            data = product.served
            first = start or 0
            if first >= len(data):
                entry["status"] = 416
                return self._json(416, {"error": "range not satisfiable"},
                                  {"Content-Range": f"bytes */{len(data)}"})
            body = data[first:]
            entry["status"] = 206 if ranged else 200
            self.send_response(entry["status"])
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if ranged:
                self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if fault is not None and fault.drop_after is not None:
                self.wfile.write(body[:fault.drop_after])
                self.wfile.flush()
                entry["sent"] = min(fault.drop_after, len(body))
                if fault.revoke_tokens:
                    fake.revoke_access_tokens()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)
            entry["sent"] = len(body)

    return Handler
