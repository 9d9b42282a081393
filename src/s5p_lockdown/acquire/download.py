"""Resumable, authenticated transfer of one product into a partial file, and a progress line.

The transfer appends to ``<stem>.part`` and, after an interruption, asks for the rest with
``Range: bytes=<size of the part>-``, so received bytes are never fetched again. The size of
the complete file is taken from the server's answer (``Content-Length`` of a 200, the total of
a ``Content-Range``; a body without announced length is complete when it ends cleanly), never
from the catalogue, whose size may differ from what is delivered (zipped on the fly, or
null): comparing with the catalogue is the caller's check (:mod:`.store`), made once the
transfer is complete.

Attempts that receive nothing are bounded by :class:`~s5p_lockdown.acquire.http.RetryPolicy`
``attempts``; an attempt that made progress resets the count. Whatever happens, at most
:data:`MAX_REQUESTS` requests are sent for one product, so no server behaviour can make a
transfer loop. A 401 renews the token once; a second 401 with the new token is an error. The
token is passed with ``auth=`` through a :class:`~s5p_lockdown.acquire.http.CdseSession`, so a
``~/.netrc`` entry for a download host never replaces it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import requests

from s5p_lockdown.acquire.auth import TokenManager
from s5p_lockdown.acquire.catalogue import Product
from s5p_lockdown.acquire.errors import (
    ArchiveWriteError, AuthenticationError, DownloadError, TransferError,
)
from s5p_lockdown.acquire.http import (
    TRANSIENT_ERRORS, BearerAuth, RetryPolicy, is_transient_status, retry_after,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
MAX_REQUESTS = 30
"""Requests sent for one product in one run, at most (resumes, retries, token renewals)."""


def product_url(download_root: str, product: Product) -> str:
    return f"{download_root}/Products({product.id})/$value"


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """First byte and total size of ``Content-Range: bytes <first>-<last>/<size>`` (or
    ``bytes */<size>`` on a 416); None for what is absent or ``*``."""
    value = response.headers.get("Content-Range", "")
    try:
        span, total = value.split()[1].split("/")
    except (IndexError, ValueError):
        return None, None
    first = span.split("-")[0]
    return (int(first) if first.isdigit() else None, int(total) if total.isdigit() else None)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _refusal(status: int, url: str) -> str:
    if status == 403:
        return "access denied (HTTP 403): check that the account may download this product"
    if status == 404:
        return f"not found (HTTP 404) at {url}: withdrawn from the catalogue?"
    return f"download failed with HTTP {status} from {url}"


def _write_body(
    response: requests.Response, part: Path, append: bool, name: str,
    count: Callable[[int], None],
) -> None:
    """Write the body of ``response`` to ``part`` (appending or from the start). Network
    errors propagate; file-system errors become :class:`ArchiveWriteError`."""
    try:
        handle = part.open("ab" if append else "wb")
    except OSError as exc:
        raise ArchiveWriteError(name, f"cannot write {part}: {exc.strerror or exc}") from None
    with handle:
        # read1 returns what has arrived; read/iter_content would wait to fill a whole chunk and
        # lose the partial chunk when the connection drops.
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            try:
                handle.write(chunk)
            except OSError as exc:
                raise ArchiveWriteError(
                    name, f"cannot write {part}: {exc.strerror or exc}"
                ) from None
            count(len(chunk))


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def fetch(
    product: Product, part: Path, url: str, tokens: TokenManager, session: requests.Session,
    retry: RetryPolicy = RetryPolicy(), timeout: float = 60.0,
    on_bytes: Callable[[int], None] = lambda n: None, max_requests: int = MAX_REQUESTS,
) -> int:
    """Download ``url`` into ``part`` until it holds the whole file, resuming from what
    ``part`` already holds; returns the size of the file (bytes) as the server gave it.
    ``on_bytes`` is called with each received chunk's size.

    Raises :class:`TransferError` (``part`` kept) when the network keeps failing or after
    ``max_requests`` requests, :class:`AuthenticationError` when a renewed token is refused,
    :class:`DownloadError` on other refusals or contradictory answers (``part`` deleted) and
    :class:`ArchiveWriteError` when ``part`` cannot be written.
    """
    failures = 0
    sent = 0
    renewed = False
    total: int | None = None  # size of the complete file, from the last answer
    while True:
        offset = _size(part)
        if total is not None and offset >= total:
            if offset > total:
                part.unlink()
                raise DownloadError(product.name, (
                    f"received {offset} bytes, more than the {total} the server announced; "
                    "the partial file is deleted"
                ))
            return total
        if sent >= max_requests:
            raise TransferError(product.name, (
                f"not complete after {sent} requests ({offset} bytes received"
                + (f" of {total}" if total is not None else "")
                + f"); the partial file {part} is kept and the next run resumes it"
            ))
        sent += 1
        token = tokens.token()
        # identity: sizes and ranges count the bytes of the file, not of a compressed body
        headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={offset}-"} if offset else {})
        received = 0

        def count(n: int) -> None:
            nonlocal received
            received += n
            on_bytes(n)

        problem, wait_for = None, None
        try:
            with session.get(url, headers=headers, auth=BearerAuth(token), stream=True,
                             timeout=timeout) as response:
                status = response.status_code
                if status == 401:
                    if renewed:
                        raise AuthenticationError(
                            f"{product.name}: the download server refused a freshly renewed "
                            "token (HTTP 401)"
                        )
                    log.info("%s: token refused (HTTP 401); renewing it", product.name)
                    tokens.invalidate(token)
                    renewed = True
                    continue
                renewed = False
                if is_transient_status(status):
                    problem, wait_for = f"HTTP {status}", retry_after(response)
                elif status == 416:
                    _, total = _content_range(response)
                    if total == offset:
                        continue  # the part already holds the whole file
                    part.unlink(missing_ok=True)
                    total = None
                    problem = "HTTP 416 (range not satisfiable); restarting from the first byte"
                elif status not in (200, 206):
                    raise DownloadError(product.name, _refusal(status, url))
                else:
                    if status == 206:
                        first, total = _content_range(response)
                        if first != offset:
                            raise DownloadError(product.name, (
                                f"asked for bytes {offset}- and got Content-Range "
                                f"{response.headers.get('Content-Range')!r} from {url}"
                            ))
                    else:
                        total = _content_length(response)
                        if offset:
                            log.info("%s: server ignored the range; restarting", product.name)
                    _write_body(response, part, status == 206, product.name, count)
                    if total is None:  # no announced size: a body that ends cleanly is whole
                        total = _size(part)
        except TRANSIENT_ERRORS as exc:
            problem = f"connection dropped ({type(exc).__name__})"
        if total is not None and _size(part) >= total:
            continue
        problem = problem or "transfer ended early"
        failures = 0 if received else failures + 1
        if failures >= retry.attempts:
            raise TransferError(
                product.name,
                f"{problem}; gave up after {failures} attempts without progress "
                f"(the partial file {part} is kept and will be resumed)",
            )
        log.warning("%s: %s after %d new bytes; resuming", product.name, problem, received)
        retry.wait(max(failures, 1), wait_for)


class Progress:
    """A one-line progress display on ``stream``: bytes done of the ``total`` (None when some
    sizes are unknown), rate and ETA, redrawn at most every ``interval`` seconds. Thread-safe."""

    def __init__(self, total: int | None, stream: TextIO = sys.stderr, interval: float = 0.5):
        self.total = total
        self.done = 0
        self.stream = stream
        self.interval = interval
        self._started = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._drawn >= self.interval:
                self._drawn = now
                self._draw(now)

    def close(self) -> None:
        with self._lock:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total is None:
            of = "of ? (some sizes unknown)"
            eta = "?"
        else:
            left = max(self.total - self.done, 0)
            percent = 100 * self.done / self.total if self.total else 100
            of = f"of {human_bytes(self.total)} ({percent:.0f} %)"
            eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        self.stream.write(f"\r{human_bytes(self.done)} {of}, {human_bytes(rate)}/s, ETA {eta}   ")
        self.stream.flush()


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary prefixes)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    index = 0
    while abs(n) >= 1024 and index < len(units) - 1:
        n /= 1024
        index += 1
    return f"{n:.0f} B" if index == 0 else f"{n:.1f} {units[index]}"
