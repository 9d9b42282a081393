"""HTTP plumbing shared by the catalogue, token and download clients: endpoints, retries.

Transient failures are retried with exponential backoff and jitter: HTTP 429 (honouring
``Retry-After``), HTTP 5xx, and dropped or timed-out connections. Delays are in seconds.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3

from s5p_lockdown.acquire.errors import AcquireError

log = logging.getLogger(__name__)

CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
"""The documented download root since 2024 (``catalogue.…/Products(<Id>)/$value`` redirects
there; the older ``zipper.`` host is no longer documented)."""
TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
TOKEN_URL = "https://identity.dataspace.copernicus.eu" + TOKEN_PATH
CDSE_DOMAIN = "dataspace.copernicus.eu"

TRANSIENT_ERRORS = (
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError,
)
"""Network failures worth retrying (a dropped connection, a timeout, a truncated body), as
raised by requests or, when reading a streamed body, by urllib3."""


@dataclass(frozen=True)
class Endpoints:
    """Base URLs: ``catalogue`` and ``download`` are OData roots (``.../odata/v1``), ``token``
    is the OpenID Connect token URL."""

    catalogue: str = CATALOGUE_URL
    download: str = DOWNLOAD_URL
    token: str = TOKEN_URL

    @classmethod
    def from_urls(
        cls, base_url: str | None = None, catalogue: str | None = None,
        download: str | None = None, token: str | None = None,
    ) -> Endpoints:
        """Endpoints of one server at ``base_url`` (``<base>/odata/v1`` and ``<base>`` +
        :data:`TOKEN_PATH`, as a local test server serves them) or the CDSE defaults, with
        individual overrides."""
        if base_url:
            base = base_url.rstrip("/")
            default = cls(f"{base}/odata/v1", f"{base}/odata/v1", base + TOKEN_PATH)
        else:
            default = cls()
        return cls(
            catalogue=(catalogue or default.catalogue).rstrip("/"),
            download=(download or default.download).rstrip("/"),
            token=token or default.token,
        )

    def hosts(self) -> set[str]:
        return {urlsplit(url).hostname or "" for url in (self.catalogue, self.download, self.token)}


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``attempts`` tries of a request; before try ``n + 1`` wait
    ``min(max_delay, base_delay * 2**(n-1))`` seconds times a random factor in [0.5, 1.5), or
    the server's ``Retry-After`` when it sends one."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self):
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(f"retry policy needs attempts >= 1 and delays >= 0, got {self}")

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures`` >= 1)."""
        if retry_after is not None:
            return retry_after
        backoff = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return backoff * random.uniform(0.5, 1.5)

    def wait(self, failures: int, retry_after: float | None = None) -> None:
        time.sleep(self.delay(failures, retry_after))


def is_transient_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def retry_after(response: requests.Response) -> float | None:
    """The ``Retry-After`` header in seconds (it may be a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``, passed as ``auth=``: requests then does not look for a
    ``~/.netrc`` entry of the host (a header given in ``headers=`` would be replaced by the
    netrc's Basic credentials)."""

    def __init__(self, token: str):
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class CdseSession(requests.Session):
    """A session for CDSE that never takes credentials from ``~/.netrc`` and keeps the
    ``Authorization`` header when CDSE redirects a download to another of its hosts.

    requests drops the header on any change of host and, on every redirect, re-applies the
    netrc entry of the new host (Basic auth instead of the token: the download fails with 401).
    Here the header survives redirects to ``trusted_hosts`` and ``*.dataspace.copernicus.eu``,
    is dropped elsewhere, and netrc is never read. Proxy settings of the environment
    (``trust_env``) still apply. Requests without ``auth=`` (searches, token requests) skip
    netrc too: the session's default ``auth`` is an explicit no-op.
    """

    def __init__(self, trusted_hosts: set[str] = frozenset()):
        super().__init__()
        self.trusted_hosts = set(trusted_hosts)
        self.auth = _NoAuth()

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        host = urlsplit(new_url).hostname or ""
        if host in self.trusted_hosts or host == CDSE_DOMAIN or host.endswith("." + CDSE_DOMAIN):
            return False
        return super().should_strip_auth(old_url, new_url)

    def rebuild_auth(self, prepared_request, response) -> None:
        """Strip the header when leaving CDSE (:meth:`should_strip_auth`); never add netrc
        credentials."""
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(
            response.request.url, prepared_request.url
        ):
            del headers["Authorization"]


class _NoAuth(requests.auth.AuthBase):
    """Explicitly no authentication (so requests does not fall back to ``~/.netrc``)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def send(
    session: requests.Session, method: str, url: str, retry: RetryPolicy, what: str, **kwargs
) -> requests.Response:
    """Send a (non-streamed) request, retrying transient failures; ``what`` names the request
    in messages. Returns the last response, whatever its status, unless it is still a
    transient failure after ``retry.attempts`` tries: then raises :class:`AcquireError`."""
    attempt = 0
    while True:
        attempt += 1
        wait_for = None
        try:
            response = session.request(method, url, **kwargs)
        except TRANSIENT_ERRORS as exc:
            problem = f"connection failed ({type(exc).__name__})"
        else:
            if not is_transient_status(response.status_code):
                return response
            problem, wait_for = f"HTTP {response.status_code}", retry_after(response)
        if attempt == retry.attempts:
            raise AcquireError(f"{what}: {problem}; gave up after {attempt} attempts")
        log.warning("%s: %s; retrying (attempt %d of %d)",
                    what, problem, attempt + 1, retry.attempts)
        retry.wait(attempt, wait_for)
