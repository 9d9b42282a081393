"""The published dashboard's web server: Voilà with a kernel cap, strict headers and no error
detail sent to a browser.

``dashboards/serve`` runs ``python -m s5p_lockdown.serving lockdown.ipynb ...`` in the
``dashboards/`` folder, so that Voilà reads ``dashboards/voila.json``. On top of Voilà:

- **a cap on kernels** (:attr:`DashboardServer.max_kernels`, counting the preheated ones):
  a visitor who would need a kernel beyond the cap gets the "busy, try again shortly" page
  (``busy.html`` of the ``s5p`` template) with HTTP 503 and ``Retry-After``, and no kernel is
  started for them (:class:`CappedVoilaHandler`);
- **kernels no browser is connected to** (a page fetched by a script, a closed tab) are shut
  down after ``DashboardKernelManager.unconnected_timeout`` seconds instead of holding a place
  until the idle cull (:class:`DashboardKernelManager`);
- **no traceback or server path reaches a browser**: error and stderr messages a kernel
  publishes on iopub (e.g. the traceback of a malformed widget message) are written to the
  server log and not forwarded to the websocket (:class:`FilteredKernelWebsocketHandler`);
  the page itself is rendered with ``show_tracebacks=false`` and without stderr outputs
  (template ``s5p``);
- **the same strict headers on every response**, error pages and websocket upgrades included,
  and no ``Server`` banner (:class:`SecurityHeaders`, policy in :data:`SECURITY_HEADERS`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import tornado.web
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from traitlets import Float, Integer, TraitError, validate
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

SCRIPT_SRC = "script-src 'self'"
"""Scripts: Voilà's bundles and the widget extensions, served by Voilà itself. The inline
scripts of the dashboard page (Voilà's progress and finish calls) carry a per-response nonce,
added to this directive for that response only (:class:`CappedVoilaHandler`)."""

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    SCRIPT_SRC,
    # JupyterLab, the widgets and plotly set styles from JavaScript (style attributes and
    # <style> elements).
    "style-src 'self' 'unsafe-inline'",
    # plotly draws heatmaps and map canvases into data: and blob: images; maplibre runs its
    # workers from blob: URLs.
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "worker-src 'self' blob:",
    "connect-src 'self'",  # the kernel websocket (same origin, ws: or wss:)
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
"""The Content-Security-Policy of every response."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
"""Headers set on every response (HSTS is the TLS-terminating proxy's, see
dashboards/deploy/nginx-s5p-dashboard.conf)."""

BUSY_RETRY_AFTER_S = 30
"""Retry-After of the busy page (seconds); the page also reloads itself after that time."""


NONCE_ATTRIBUTE = "s5p_script_nonce"
"""Attribute of a request holding the nonce of its response's inline scripts."""


class SecurityHeaders(tornado.web.OutputTransform):
    """Sets :data:`SECURITY_HEADERS` and removes Tornado's ``Server`` banner on every response
    of the application (a transform applies to all handlers, error pages included)."""

    def __init__(self, request):
        super().__init__(request)
        self.request = request

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        headers.pop("Server", None)
        for name, value in SECURITY_HEADERS.items():
            headers[name] = value
        nonce = getattr(self.request, NONCE_ATTRIBUTE, None)  # set by the handler meanwhile
        if nonce:
            headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
                SCRIPT_SRC, f"{SCRIPT_SRC} 'nonce-{nonce}'")
        return status_code, headers, chunk


_SCRIPT_TAG = re.compile(r"<script(?=[\s>])")


def add_script_nonce(html: str, nonce: str) -> str:
    """``html`` with ``nonce`` on every ``<script>`` element."""
    return _SCRIPT_TAG.sub(f'<script nonce="{nonce}"', html)


# --- kernels ----------------------------------------------------------------------------------
class DashboardKernelManager(AsyncMappingKernelManager):
    """Voilà's kernel manager base (``VoilaConfiguration.multi_kernel_manager_class``) that also
    shuts down a visitor's kernel no browser is connected to for ``unconnected_timeout``
    seconds: one never connected to (a page fetched by a script) or whose last browser left
    (a tab closed without Voilà's shutdown beacon, a lost network). The clock starts at the
    first cull pass that sees the kernel out of Voilà's pool and without a connection (pooled
    kernels never reach :meth:`cull_kernel_if_idle`), so the timeout is exact to
    ``cull_interval``. Kernels with a browser connected are left to the idle cull."""

    unconnected_timeout = Float(
        60.0, config=True,
        help="seconds after which a visitor's kernel with no browser connected is shut down")

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        if kernel_id in self:
            # a mark on the kernel object, like jupyter_server's own last_activity
            self.get_kernel(kernel_id).s5p_alone_since = None

    def _alone_for_too_long(self, kernel_id: str) -> bool:
        if self.kernel_model(kernel_id)["connections"] > 0:
            return False
        kernel = self.get_kernel(kernel_id)
        if getattr(kernel, "s5p_alone_since", None) is None:
            kernel.s5p_alone_since = time.monotonic()
        return time.monotonic() - kernel.s5p_alone_since > self.unconnected_timeout

    async def cull_kernel_if_idle(self, kernel_id: str):
        # Voilà's subclass returns early for pooled kernels before calling this method.
        if kernel_id in self and self._alone_for_too_long(kernel_id):
            self.log.info("Shutting down kernel %s: no browser connected for %.0f s",
                          kernel_id, self.unconnected_timeout)
            await self.shutdown_kernel(kernel_id)
            return
        return await super().cull_kernel_if_idle(kernel_id)


def pooled_kernel_ids(kernel_manager) -> set[str]:
    """Ids of the preheated kernels waiting in Voilà's pool (not yet given to a visitor).

    Reads Voilà's ``_pools`` (voila 0.5, pinned in pyproject.toml): a list of tasks per
    notebook, each resolving to ``{"kernel_id": ...}`` once its kernel has started."""
    ids = set()
    for pool in getattr(kernel_manager, "_pools", {}).values():
        for task in pool:
            if task.done() and not task.cancelled() and task.exception() is None:
                ids.add(task.result()["kernel_id"])
    return ids


def pool_size(kernel_manager) -> int:
    """Number of preheated kernels Voilà keeps ready (0 without preheating)."""
    config = getattr(kernel_manager, "kernel_pools_config", {}).get("default", {})
    return int(config.get("pool_size", 0)) if hasattr(kernel_manager, "_pools") else 0


class CappedVoilaHandler(TornadoVoilaHandler):
    """Voilà's page handler, refusing visitors beyond the cap with the busy page.

    A visitor's kernel is either a preheated one taken from the pool (which Voilà then
    refills) or one started for them; either way the number of kernels given to visitors
    (running and not in the pool, plus the pages being rendered now) must stay below
    ``max_kernels - pool size`` so that visitors' and preheated kernels together never exceed
    ``max_kernels``. Pages being rendered are counted until they are sent: a burst of visitors
    is admitted conservatively."""

    rendering = 0
    """Pages being rendered now, across all handler instances."""

    def initialize(self, **kwargs):
        self.max_kernels = kwargs.pop("max_kernels")
        super().initialize(**kwargs)

    def visitor_kernels(self) -> int:
        manager = self.kernel_manager
        running = set(manager.list_kernel_ids())
        return len(running - pooled_kernel_ids(manager)) + CappedVoilaHandler.rendering

    def has_room(self) -> bool:
        return self.visitor_kernels() < self.max_kernels - pool_size(self.kernel_manager)

    @tornado.web.authenticated
    async def get(self, path=None):
        if path:  # single-notebook mode: any other path redirects to the file handler
            return await super().get(path=path)
        if not self.has_room():
            self.log.warning("Busy: %d visitor kernels, cap %d; answering 503",
                             self.visitor_kernels(), self.max_kernels)
            self.set_status(503)
            self.set_header("Retry-After", str(BUSY_RETRY_AFTER_S))
            self.set_header("Cache-Control", "no-store")
            self.finish(self.render_template("busy.html", retry_after=BUSY_RETRY_AFTER_S))
            return
        CappedVoilaHandler.rendering += 1
        try:
            # the page's own inline scripts run, no other: a nonce per response
            nonce = secrets.token_urlsafe(18)
            setattr(self.request, NONCE_ATTRIBUTE, nonce)
            async for html in self.get_generator(path=path):
                self.write(add_script_nonce(html, nonce))
                self.flush()
        finally:
            CappedVoilaHandler.rendering -= 1


# --- what goes to the browser -----------------------------------------------------------------
def _v1_parts(message: bytes) -> list[bytes]:
    """The parts of a message in the v1 kernel websocket protocol (jupyter_server
    ``serialize_msg_to_ws_v1``): channel, header, parent header, metadata, content, buffers."""
    count = int.from_bytes(message[:8], "little")
    offsets = [int.from_bytes(message[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
    return [message[a:b] for a, b in zip(offsets, offsets[1:])]


def _content_matters(channel: str, msg_type: str) -> bool:
    """Whether :func:`withheld_from_browser` or the server log needs the content of such a
    message."""
    return msg_type in ("stream", "error") or channel == "shell"


def message_summary(message: bytes | str | dict) -> tuple[str, str, dict]:
    """(channel, msg_type, content) of a message written to the kernel websocket, whichever
    protocol it uses (v1 binary, or the JSON text of the legacy protocol). In the v1 protocol
    of browsers, the content is decoded only when it matters (streams, errors, shell replies), not for
    the large widget updates (``{}`` then)."""
    try:
        if isinstance(message, bytes):
            parts = _v1_parts(message)
            channel = parts[0].decode()
            header = json.loads(parts[1])
            content = (json.loads(parts[4])
                       if _content_matters(channel, header.get("msg_type", "")) else {})
        else:
            msg = json.loads(message) if isinstance(message, str) else message
            channel, header, content = (msg.get("channel", ""), msg.get("header", {}),
                                        msg.get("content", {}))
        return channel, header.get("msg_type", ""), content
    except (ValueError, IndexError, KeyError, AttributeError, UnicodeDecodeError):
        return "", "", {}  # a binary message (widget buffers without JSON): passed on


def withheld_from_browser(channel: str, msg_type: str, content: dict) -> bool:
    """True for what may carry a traceback or a server path: error messages, stderr output and
    replies with status 'error'."""
    if msg_type == "error":
        return True
    if msg_type == "stream" and content.get("name") == "stderr":
        return True
    return channel == "shell" and isinstance(content, dict) and content.get("status") == "error"


class FilteredKernelWebsocketHandler(VoilaKernelWebsocketHandler):
    """Voilà's kernel websocket, not forwarding what :func:`withheld_from_browser` selects;
    it goes to the server log instead."""

    def write_message(self, message: bytes | str | dict[str, Any], binary: bool = False):
        channel, msg_type, content = message_summary(message)
        if withheld_from_browser(channel, msg_type, content):
            detail = ("\n".join(content.get("traceback", [])) or content.get("text", "")
                      or content.get("evalue", ""))
            self.log.warning("Kernel %s: %s %s withheld from the browser:\n%s",
                             getattr(self, "kernel_id", "?"), channel, msg_type, detail)
            return None
        return super().write_message(message, binary)


# --- figures ------------------------------------------------------------------------------------
PLOT_SCRIPTS_URL = "s5p/static/"
"""Where the server serves :func:`plot_scripts` (under its base URL)."""


def plot_scripts() -> dict[str, Path]:
    """The scripts that draw the dashboard's figures (name → file): plotly.js of the installed
    plotly package, and ``plots.js`` of :mod:`s5p_lockdown.dashboard`
    (:data:`s5p_lockdown.dashboard.figures.PLOTS_JS`); found without importing either (the
    server never loads plotly or pandas)."""
    plotly = Path(importlib.util.find_spec("plotly").origin).parent
    dashboard = Path(importlib.util.find_spec("s5p_lockdown.dashboard").origin).parent
    return {"plotly.min.js": plotly / "package_data" / "plotly.min.js",
            "plots.js": dashboard / "plots.js"}


def plot_script_urls(base_url: str) -> dict[str, str]:
    """URLs of :func:`plot_scripts` under ``base_url`` for the ``s5p`` template
    (``resources.s5p_plots``): ``plots`` and ``plotly``, each with a digest of its content
    (``?v=``): browsers may keep them (tornado's static files with ``v`` are sent with a
    ten-year ``Cache-Control``) and never use a stale copy after an upgrade."""
    files = plot_scripts()
    urls = {}
    for key, name in (("plotly", "plotly.min.js"), ("plots", "plots.js")):
        digest = hashlib.sha256(files[name].read_bytes()).hexdigest()[:16]
        urls[key] = url_path_join(base_url, PLOT_SCRIPTS_URL, name) + f"?v={digest}"
    return urls


# --- the application ----------------------------------------------------------------------------
class DashboardServer(Voila):
    """Voilà with the cap, the filtered websocket, the busy page and the security headers."""

    name = "s5p-dashboard"
    description = __doc__.split("\n")[0]

    max_kernels = Integer(
        8, config=True,
        help="the most kernels running at once, preheated ones included; visitors beyond "
             "get the busy page (HTTP 503)")

    @validate("max_kernels")
    def _valid_max_kernels(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"DashboardServer.max_kernels must be >= 1, not {proposal['value']}")
        return proposal["value"]

    def init_settings(self):
        # the s5p template loads plots.js (which loads plotly.js) from the URLs given here,
        # before Voilà makes its page renderers (the preheated one included)
        section = self.voila_configuration.config.VoilaConfiguration
        configured = section.get("resources")
        section.resources = {**(configured if isinstance(configured, dict) else {}),
                             "s5p_plots": plot_script_urls(self.base_url)}
        settings = super().init_settings()
        preheated = pool_size(self.kernel_manager)
        if self.max_kernels <= preheated:
            raise ValueError(
                f"DashboardServer.max_kernels ({self.max_kernels}) must exceed the number of "
                f"preheated kernels ({preheated}): no visitor could get one")
        return settings

    def init_handlers(self):
        handlers = [(url_path_join(self.server_url, PLOT_SCRIPTS_URL, rf"({re.escape(name)})"),
                     tornado.web.StaticFileHandler, {"path": str(path.parent)})
                    for name, path in plot_scripts().items()]  # before the catch-all page
        for pattern, handler, *options in super().init_handlers():
            if handler is TornadoVoilaHandler:
                handler = CappedVoilaHandler
                options = [{**options[0], "max_kernels": self.max_kernels}]
            elif handler is VoilaKernelWebsocketHandler:
                handler = FilteredKernelWebsocketHandler
            handlers.append((pattern, handler, *options))
        return handlers

    def listen(self):
        self.app.add_transform(SecurityHeaders)
        self.log.info("At most %d kernels at once (preheated included)", self.max_kernels)
        super().listen()


main = DashboardServer.launch_instance

if __name__ == "__main__":
    main()
