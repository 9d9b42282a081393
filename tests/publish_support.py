"""Helpers of the publishing tests and benchmark: what a server's process tree holds, concurrent
anonymous visitors, the kernel websocket, a real nginx in front of the dashboard.

- :func:`kernel_pids` and :func:`tree_rss_mb` read /proc: the kernels a server started, and
  the resident memory of the server with all its descendants;
- :class:`TreeSampler` samples both in a thread while something else happens;
- :func:`fetch` is one anonymous visitor (status, headers, body), :func:`visit_concurrently`
  many at once;
- :func:`kernel_id_of` and :func:`open_kernel_websocket` reach a page's kernel as a browser does;
- :class:`NginxProxy` runs Debian's nginx with ``dashboards/deploy/nginx-s5p-dashboard.conf``
  (TLS with a certificate made by the test) on loopback ports, as an unprivileged user.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import websocket

from dashboard_support import REPO, free_port, stop_process_group

DEPLOY = REPO / "dashboards" / "deploy"
NGINX = "/usr/sbin/nginx"
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


# --- processes ----------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (all threads' children, /proc/PID/task/*/children)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return children


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants still alive."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if Path(f"/proc/{current}").exists():
            found.append(current)
            todo += _children(current)
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of one process (MB); 0 if it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (MB; shared pages counted per process,
    as a memory limit of the service's cgroup would see them roughly)."""
    return sum(rss_mb(p) for p in descendants(pid))


def kernel_pids(server_pid: int) -> list[int]:
    """The ipykernel processes the server started."""
    pids = []
    for pid in _children(server_pid):
        try:
            if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            pass
    return pids


@dataclass
class TreeSampler:
    """Samples the number of kernels and the tree's RSS of a server every ``period`` s in a
    thread; use as a context manager."""

    server_pid: int
    period: float = 0.2
    kernels: list[int] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.kernels.append(len(kernel_pids(self.server_pid)))
            self.rss.append(tree_rss_mb(self.server_pid))
            self._stop.wait(self.period)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def wait_for(condition, timeout: float, what: str, period: float = 0.5):
    """Poll ``condition()`` until it is true (returns its value) or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(period)
    raise TimeoutError(f"{what}: not within {timeout} s")


# --- visitors -----------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


def fetch(url: str, method: str = "GET", timeout: float = 180.0,
          context: ssl.SSLContext | None = None, headers: dict | None = None) -> Response:
    """One anonymous request (no cookie), whole body read; HTTP errors are responses too."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return Response(response.status, dict(response.headers.items()),
                            response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()),
                        error.read().decode("utf-8", "replace"))


def visit_concurrently(url: str, visitors: int, **kwargs) -> list[Response]:
    """``visitors`` anonymous GETs of ``url`` at once."""
    with ThreadPoolExecutor(max_workers=visitors) as pool:
        return list(pool.map(lambda _: fetch(url, **kwargs), range(visitors)))


def kernel_id_of(page_html: str) -> str:
    """The kernel id Voilà wrote into a dashboard page."""
    match = re.search(r'<script[^>]*id="jupyter-config-data"[^>]*>(.*?)</script>', page_html,
                      re.S)
    return json.loads(match.group(1))["kernelId"]


def open_kernel_websocket(ws_base: str, kernel_id: str, v1: bool, **options):
    """A websocket to the kernel, as a browser opens it (``v1``: the binary protocol of
    JupyterLab's services, else the legacy JSON text protocol)."""
    url = f"{ws_base}api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    return websocket.create_connection(url, timeout=10,
                                       subprotocols=[V1_PROTOCOL] if v1 else None, **options)


def kernel_message(channel: str, msg_type: str, content: dict) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "visitor",
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": channel, "buffers": [],
            "content": content}


def encode_v1(msg: dict) -> bytes:
    """A message in the v1 binary websocket protocol (offsets, then channel, header, parent
    header, metadata, content)."""
    parts = [msg["channel"].encode()] + [json.dumps(msg[k]).encode() for k in
                                         ("header", "parent_header", "metadata", "content")]
    offsets, position = [], 8 * (len(parts) + 2)
    for part in parts:
        offsets.append(position)
        position += len(part)
    offsets.append(position)
    head = (len(offsets)).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little")
                                                          for o in offsets)
    return head + b"".join(parts)


def decode(frame: bytes | str) -> tuple[str, str, dict, str]:
    """(channel, msg_type, content, raw text) of a frame received from the kernel websocket."""
    if isinstance(frame, str):
        msg = json.loads(frame)
        return msg["channel"], msg["header"]["msg_type"], msg["content"], frame
    count = int.from_bytes(frame[:8], "little")
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
    parts = [frame[a:b] for a, b in zip(offsets, offsets[1:])]
    raw = frame.decode("utf-8", "replace")
    return parts[0].decode(), json.loads(parts[1])["msg_type"], json.loads(parts[4]), raw


def receive_for(ws, seconds: float) -> list[bytes | str]:
    """Every frame the websocket receives during ``seconds``."""
    frames, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            frames.append(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
    return frames


# --- nginx ---------------------------------------------------------------------------------------
def make_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate and key for ``host`` (openssl, one day)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def nginx_test_config(folder: Path, https_port: int, http_port: int, upstream_port: int,
                      cert: Path, key: Path) -> Path:
    """``dashboards/deploy/nginx-s5p-dashboard.conf`` wrapped in a main configuration an
    unprivileged nginx can run: loopback ports, pid, logs and temporary files in ``folder``,
    the certificate of the test. The site file itself is used unchanged but for its
    placeholders (server name, ports, certificate paths)."""
    site = (DEPLOY / "nginx-s5p-dashboard.conf").read_text()
    replacements = {
        "dashboard.example.org": "127.0.0.1",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "127.0.0.1:8866": f"127.0.0.1:{upstream_port}",
        "/etc/ssl/certs/s5p-dashboard.pem": str(cert),
        "/etc/ssl/private/s5p-dashboard.key": str(key),
        "https://$host$request_uri": f"https://$host:{https_port}$request_uri",
    }
    for old, new in replacements.items():
        if old not in site:
            raise AssertionError(f"{old!r} not in the nginx site configuration")
        site = site.replace(old, new)
    (folder / "site.conf").write_text(site)
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(exist_ok=True)
    config = folder / "nginx.conf"
    # the test runs nginx in the foreground from its own folder; as root (CI), its workers run as
    # root too, since the folder is private (a deployment uses Debian's nginx.conf: www-data)
    user = "user root;" if os.geteuid() == 0 else ""
    config.write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
""")
    return config


@dataclass
class NginxProxy:
    """Debian's nginx with the deployment's site configuration in front of ``upstream_port``."""

    folder: Path
    upstream_port: int
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/"

    def start(self) -> NginxProxy:
        cert, key = make_certificate(self.folder)
        self.certificate = cert
        config = nginx_test_config(self.folder, self.https_port, self.http_port,
                                   self.upstream_port, cert, key)
        check = subprocess.run([NGINX, "-t", "-c", str(config), "-e", str(self.folder / "e.log")],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
        self.process = subprocess.Popen([NGINX, "-c", str(config), "-e",
                                         str(self.folder / "e.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        context = self.ssl_context()
        wait_for(lambda: self._answers(context), 20, "nginx answering")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting the test's certificate only."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def _answers(self, context) -> bool:
        try:
            fetch(self.url + "voila/static/voila.js", context=context, timeout=5)
            return True
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)

    def __enter__(self) -> NginxProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
