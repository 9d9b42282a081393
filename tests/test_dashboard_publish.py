"""Publishing the dashboard: the server of s5p_lockdown.serving (kernel cap and busy page,
security headers, no traceback or path to a browser, no CDN on any page), under load, and
behind a real nginx terminating TLS (dashboards/deploy/).

The servers run ``dashboards/serve`` on loopback ports; the browser is Debian's headless
chromium; screenshots go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import configparser
import http.client
import json
import re
import subprocess
import sys
import time
import uuid

import pytest
from traitlets import TraitError

from dashboard_support import REPO, SERVE, PageWatch, VoilaServer, wait_rendered
from publish_support import (
    DEPLOY,
    NginxProxy,
    TreeSampler,
    decode,
    encode_v1,
    fetch,
    kernel_id_of,
    kernel_message,
    kernel_pids,
    open_kernel_websocket,
    receive_for,
    rss_mb,
    tree_rss_mb,
    visit_concurrently,
    wait_for,
)
from s5p_lockdown import serving

pytest_plugins = ("dashboard_fixtures",)  # one workflow run shared with the other dashboard tests

VIEWPORT = {"width": 1300, "height": 900}
EXTERNAL_LINK = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.I)
LEAK_MARKERS = ("Traceback", "TraitError", 'File "', "site-packages", str(REPO))
CSP_LISTENER = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


def leaks(text: str) -> list[str]:
    return [marker for marker in LEAK_MARKERS if marker in text]


def assert_security_headers(headers: dict[str, str], where: str) -> None:
    assert "Server" not in headers, (where, headers.get("Server"))
    for name, value in serving.SECURITY_HEADERS.items():
        if name == "Content-Security-Policy":
            # the dashboard page adds its scripts' nonce to script-src, nothing else
            policy = re.sub(r" 'nonce-[\w-]+'", "", headers.get(name, ""))
            assert policy == value, (where, headers.get(name))
        else:
            assert headers.get(name) == value, (where, name, headers.get(name))


# --- without a server ---------------------------------------------------------------------------
def test_policy_allows_only_own_scripts():
    policy = dict(d.split(" ", 1) for d in serving.CONTENT_SECURITY_POLICY.split("; "))
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'" and policy["connect-src"] == "'self'"


def test_script_nonce_on_every_script_element():
    html = ('<script>a()</script><script src="/x.js"></script>'
            '<script type="application/json">{}</script><scripts><p>script</p>')
    out = serving.add_script_nonce(html, "N0nce")
    assert out.count('<script nonce="N0nce"') == 3
    assert "<scripts>" in out and "<p>script</p>" in out


@pytest.mark.parametrize("v1", [True, False], ids=["v1-binary", "legacy-json"])
@pytest.mark.parametrize("channel, msg_type, content, withheld", [
    ("iopub", "error", {"ename": "TraitError", "evalue": "x", "traceback": ["..."]}, True),
    ("iopub", "stream", {"name": "stderr", "text": "Traceback ..."}, True),
    ("iopub", "stream", {"name": "stdout", "text": "hello"}, False),
    ("shell", "comm_info_reply", {"status": "error", "traceback": []}, True),
    ("shell", "comm_info_reply", {"status": "ok", "comms": {}}, False),
    ("iopub", "comm_msg", {"comm_id": "c", "data": {"method": "update"}}, False),
])
def test_what_is_withheld_from_the_browser(v1, channel, msg_type, content, withheld):
    msg = kernel_message(channel, msg_type, content)
    frame = encode_v1(msg) if v1 else json.dumps(msg)
    summary = serving.message_summary(frame)
    assert summary[:2] == (channel, msg_type)
    assert summary[2] in (content, {})  # v1: a widget update's content is not decoded
    assert serving.withheld_from_browser(*summary) is withheld


def test_serve_passes_the_cap_and_voila_options(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SERVE), "--dry-run", "--results", str(tmp_path), "--max-kernels",
         "5", "--MappingKernelManager.cull_interval=7"],
        capture_output=True, text=True, check=True).stdout
    assert "-m s5p_lockdown.serving" in out and "--DashboardServer.max_kernels=5" in out
    assert "--MappingKernelManager.cull_interval=7" in out and "--Voila.port_retries=0" in out
    refused = subprocess.run([sys.executable, str(SERVE), "--dry-run", "--bogus"],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "unrecognized arguments: --bogus" in refused.stderr


def test_the_cap_must_leave_room_for_a_visitor():
    with pytest.raises(TraitError, match="max_kernels must be >= 1"):
        serving.DashboardServer(max_kernels=0)


def test_voila_configuration_enables_the_cap_and_culling():
    config = json.loads((REPO / "dashboards" / "voila.json").read_text())
    assert config["VoilaConfiguration"]["multi_kernel_manager_class"] == \
        "s5p_lockdown.serving.DashboardKernelManager"
    assert config["DashboardServer"]["max_kernels"] >= 2
    cull = config["MappingKernelManager"]
    assert cull["cull_idle_timeout"] > 0 and cull["cull_connected"] is True
    assert config["DashboardKernelManager"]["unconnected_timeout"] < cull["cull_idle_timeout"]


def test_systemd_unit(tmp_path):
    unit_file = DEPLOY / "s5p-dashboard.service"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(unit_file)
    service = unit["Service"]
    assert service["User"] not in ("root", "0") and service["Restart"] == "on-failure"
    assert service["MemoryMax"].endswith("M") and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["CapabilityBoundingSet"] == ""
    assert "dashboards/serve --host 127.0.0.1 --port 8866" in service["ExecStart"]
    # systemd itself checks the unit, with the paths of this checkout
    text = unit_file.read_text().replace("/opt/s5p-lockdown/.venv/bin/python", sys.executable)
    text = text.replace("/opt/s5p-lockdown", str(REPO))
    (tmp_path / "s5p-dashboard.service").write_text(text)
    verify = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "s5p-dashboard.service")],
                            capture_output=True, text=True)
    # (systemd-analyze exits 0 on parse errors it ignores: they are in stderr)
    assert verify.returncode == 0 and "s5p-dashboard.service" not in verify.stderr, verify.stderr


# --- a capped server ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def capped_server(workflow_results, tmp_path_factory):
    """The dashboard with a cap of 6 kernels (enough for the tests using it: closed pages keep
    their kernel until the idle cull); kernels nobody connects to go after 20 s."""
    log = tmp_path_factory.mktemp("capped") / "voila.log"
    with VoilaServer(workflow_results, log, [
            "--max-kernels", "6", "--DashboardKernelManager.unconnected_timeout=20",
            "--MappingKernelManager.cull_interval=2"]) as server:
        yield server


PROBES = [  # path, method, expected status
    ("voila/static/voila.js", "GET", 200),
    ("voila/files/lockdown.ipynb", "GET", 403),
    ("voila/files/nothing-here", "GET", 403),
    ("does/not/exist", "GET", 403),
    ("voila/templates/s5p/static/none.css", "GET", 404),
    ("voila/labextensions/none.js", "GET", 404),
    ("s5p/static/plots.js", "GET", 200),
    ("s5p/static/plotly.min.js", "GET", 200),
    ("s5p/static/voila.json", "GET", 403),  # only the two scripts are served there
    ("api/kernels", "POST", 403),
    ("api/kernels", "GET", 403),
    (f"api/kernels/{uuid.uuid4()}", "GET", 404),
    (f"api/kernels/{uuid.uuid4()}/channels", "GET", 404),
    ("voila/api/shutdown/x", "POST", 403),
    ("login", "GET", 403),
]


@pytest.mark.slow
@pytest.mark.parametrize("path, method, status", PROBES)
def test_every_response_has_the_headers_and_no_cdn_or_leak(capped_server, path, method, status):
    response = fetch(capped_server.url + path, method=method)
    assert response.status == status
    assert_security_headers(response.headers, path)
    if "html" in response.headers.get("Content-Type", ""):
        assert not EXTERNAL_LINK.search(response.body), response.body[:2000]
        assert "cdn" not in response.body.lower()
    assert not leaks(response.body), response.body[:2000]


@pytest.mark.slow
def test_the_page_runs_only_its_own_scripts(capped_server, browser, artifacts):
    """The page: strict headers with a nonce, no external link; in the browser it renders and
    responds under that policy without a single violation."""
    response = fetch(capped_server.url)
    assert response.status == 200
    assert_security_headers(response.headers, "/")
    nonce = re.search(r"'nonce-([\w-]+)'", response.headers["Content-Security-Policy"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.body)
    assert inline and all(f'nonce="{nonce}"' in attributes for attributes in inline)
    assert not EXTERNAL_LINK.search(response.body) and not leaks(response.body)

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.add_init_script(CSP_LISTENER)
        watch = PageWatch().attach(page)
        page.goto(capped_server.url, wait_until="commit", timeout=120_000)
        wait_rendered(page)
        page.select_option(".widget-dropdown:has-text('Country') select", label="Italy")
        page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
            .textContent.includes('Italy')""", timeout=30_000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.__cspViolations") == []
        assert watch.problems() == []
        page.screenshot(path=artifacts / "publish_strict_csp.png")
    finally:
        context.close()


@pytest.mark.slow
@pytest.mark.parametrize("v1", [True, False], ids=["v1-binary", "legacy-json"])
def test_a_malformed_widget_message_sends_no_traceback(capped_server, v1):
    """Every widget of the page is sent ``index = 9999`` (the selectors refuse it with a
    TraitError): the error reaches the server log, nothing of it the websocket."""
    page = fetch(capped_server.url)
    assert page.status == 200
    ws = open_kernel_websocket(capped_server.url.replace("http", "ws"), kernel_id_of(page.body),
                               v1)
    send = (lambda msg: ws.send_binary(encode_v1(msg))) if v1 else (
        lambda msg: ws.send(json.dumps(msg)))

    def withheld() -> int:
        return capped_server.log.read_text().count("withheld from the browser")

    withheld_before = withheld()
    try:
        send(kernel_message("shell", "comm_info_request",
                            {"target_name": "jupyter.widget"}))
        replies = [decode(f) for f in receive_for(ws, 10)]
        comms = next(c["comms"] for _, t, c, _ in replies if t == "comm_info_reply")
        assert len(comms) > 5
        for comm_id in comms:
            send(kernel_message("shell", "comm_msg", {
                "comm_id": comm_id, "data": {"method": "update", "state": {"index": 9999},
                                             "buffer_paths": []}}))
        # what the kernel publishes reaches the server (and its log) only while a websocket
        # is open: receive until the errors are logged and the kernel has fallen quiet
        frames, deadline = [], time.monotonic() + 120
        while True:
            batch = receive_for(ws, 3)
            frames += batch
            if not batch and withheld() > withheld_before:
                break
            assert time.monotonic() < deadline, "the errors were not withheld and logged"
    finally:
        ws.close()
    texts = [decode(f)[3] for f in frames]
    assert not [leaks(t) for t in texts if leaks(t)]
    assert not [t for t in texts if '"msg_type": "error"' in t or '"name": "stderr"' in t]
    log = capped_server.log.read_text()
    assert "TraitError" in log
    assert "index" in log.split("withheld from the browser")[-1]


# --- load ------------------------------------------------------------------------------------------
LOAD_CAP = 4
VISITORS = 30


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_thirty_visitors_stay_within_the_cap(workflow_results, browser, artifacts, tmp_path):
    """30 anonymous visitors at once: kernels never above the cap, the others get the busy
    page (503, Retry-After, no kernel), memory bounded by cap x kernel + 300 MB; then the
    server still answers, a browser is told 'busy' once it is full and renders the page once
    the kernels nobody connected to are gone. (While pages are being rendered, admission is
    conservative: a burst gets fewer than cap - 1 kernels.)"""
    with VoilaServer(workflow_results, tmp_path / "voila.log", [
            "--max-kernels", str(LOAD_CAP), "--DashboardKernelManager.unconnected_timeout=15",
            "--MappingKernelManager.cull_interval=2"]) as server:
        pid = server.process.pid
        wait_for(lambda: "is filled with" in server.log.read_text(), 120, "preheated kernel")
        before = tree_rss_mb(pid)
        with TreeSampler(pid) as sampler:
            responses = visit_concurrently(server.url, VISITORS)
            kernel_rss = [rss_mb(k) for k in kernel_pids(pid)]
        statuses = [r.status for r in responses]
        served = statuses.count(200)
        print(f"\n{served} of {VISITORS} visitors served, the others told 'busy' (503)")
        assert set(statuses) <= {200, 503} and 1 <= served <= LOAD_CAP - 1, statuses
        busy = [r for r in responses if r.status == 503]
        assert len(busy) == VISITORS - served
        assert all(r.headers.get("Retry-After") == str(serving.BUSY_RETRY_AFTER_S)
                   and "The dashboard is busy" in r.body and "kernelId" not in r.body
                   for r in busy)
        assert max(sampler.kernels) <= LOAD_CAP, sampler.kernels
        per_kernel = max(kernel_rss)
        peak = max(sampler.rss)
        print(f"\nserver tree before {before:.0f} MB, peak {peak:.0f} MB; largest kernel "
              f"{per_kernel:.0f} MB; cap {LOAD_CAP}: bound {LOAD_CAP * per_kernel + 300:.0f} MB")
        assert peak <= LOAD_CAP * per_kernel + 300

        assert fetch(server.url + "voila/static/voila.js").status == 200  # still answers
        # the pages have been sent: visitors are admitted up to the cap, then told 'busy'
        for _ in range(LOAD_CAP):
            if fetch(server.url).status == 503:
                break
        assert len(kernel_pids(pid)) <= LOAD_CAP
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            answer = page.goto(server.url, timeout=60_000)
            assert answer.status == 503 and answer.headers["retry-after"] == "30"
            assert "The dashboard is busy" in page.inner_text("body")
            page.screenshot(path=artifacts / "publish_busy.png")
            # the visitors' kernels were never connected to: culled, then the page renders
            wait_for(lambda: len(kernel_pids(pid)) <= 1, 90, "unconnected kernels culled")
            watch = PageWatch().attach(page)
            page.goto(server.url, wait_until="commit", timeout=120_000)
            wait_rendered(page)
            assert watch.problems() == []
            page.screenshot(path=artifacts / "publish_after_load.png")
        finally:
            context.close()
        assert "Traceback" not in server.log.read_text()


# --- behind nginx ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_through_nginx_with_tls(capped_server, browser, artifacts, tmp_path):
    """Debian's nginx with deploy/nginx-s5p-dashboard.conf (TLS, websocket upgrade, Host and
    X-Forwarded-*) in front of serve: HTTP redirects to HTTPS, headers pass, the page renders
    over TLS and its widgets respond through the proxied websocket."""
    with NginxProxy(tmp_path, capped_server.port) as proxy:
        tls = proxy.ssl_context()
        plain = http.client.HTTPConnection("127.0.0.1", proxy.http_port, timeout=10)
        plain.request("GET", "/some/path")
        redirect = plain.getresponse()
        assert redirect.status == 301
        assert redirect.getheader("Location") == f"{proxy.url}some/path"
        plain.close()
        static = fetch(proxy.url + "voila/static/voila.js", context=tls)
        assert static.status == 200
        assert_security_headers({k: v for k, v in static.headers.items() if k != "Server"},
                                "nginx")
        assert static.headers.get("Server") == "nginx"  # server_tokens off: no version
        assert static.headers["Strict-Transport-Security"].startswith("max-age=")

        context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
        try:
            page = context.new_page()
            page.add_init_script(CSP_LISTENER)
            watch = PageWatch().attach(page)
            sockets = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            page.goto(proxy.url, wait_until="commit", timeout=120_000)
            wait_rendered(page)
            page.select_option(".widget-dropdown:has-text('Country') select", label="Spain")
            page.wait_for_function("""() => document.querySelector('.s5p-country-numbers h3')
                .textContent.includes('Spain')""", timeout=30_000)
            assert any(u.startswith(f"wss://127.0.0.1:{proxy.https_port}/api/kernels/")
                       for u in sockets), sockets
            assert watch.problems() == [] and page.evaluate("window.__cspViolations") == []
            page.screenshot(path=artifacts / "publish_nginx_tls.png")
        finally:
            context.close()
        # the websocket upgrade went through nginx (logged when the websocket closes)
        wait_for(lambda: re.search(r'"GET /api/kernels/[\w-]+/channels\S* HTTP/1.1" 101 ',
                                   (tmp_path / "access.log").read_text()), 20,
                 "the websocket in nginx's access log")
