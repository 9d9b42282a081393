"""The archive of downloaded products: planning, verification, placement and manifest.

Layout under the archive folder::

    YYYY/MM/DD/<stem>.nc        one file per orbit; the day is the UTC overpass day
    cdse_manifest.json          one entry per downloaded product (see :class:`Manifest`)
    .staging/<stem>.part        downloads in progress (resumed by the next run)

A download is checked before it enters the archive: complete according to the server
(:func:`~.download.fetch`), the same size (bytes) and MD5 as the catalogue says when it says
(a size it does not give, or gives as 0, is unknown), unzipped when delivered zipped (``PK``
magic bytes rather than ``\\x89HDF``; a zip holds the ``.nc`` and possibly a ``.cdl``), and
opened as an L2 NO2 product (:func:`s5p_lockdown.io.open_product`,
:func:`~s5p_lockdown.io.product_metadata`). It is then renamed into place (atomic: the staging
folder is on the same file system). A rejected file is deleted; an interrupted transfer keeps
its ``.part`` file. The staging folder starts with a dot, so archive indexes (recursive globs)
do not see it. It is never removed, even when empty: acquisitions running at the same time
(e.g. the workflow's download jobs for different weeks) share it.

A product is already present when a file of its archive name exists anywhere under the archive
(so a shared ``local`` archive is indexed, not copied) with the catalogue size, or with the size
the manifest recorded when it was downloaded zipped, or, when the catalogue gives no size, at
all (files enter the archive only complete and validated).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from s5p_lockdown.acquire.auth import TokenManager
from s5p_lockdown.acquire.catalogue import Product
from s5p_lockdown.acquire.download import Progress, fetch, product_url
from s5p_lockdown.acquire.errors import (
    AcquireError, ArchiveWriteError, DownloadError, TransferError,
)
from s5p_lockdown.acquire.http import CdseSession, Endpoints, RetryPolicy
from s5p_lockdown.errors import InvalidProductError
from s5p_lockdown.io import HDF5_SIGNATURE, open_product, product_metadata
from s5p_lockdown.outputs import write_json

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"
MANIFEST_NAME = "cdse_manifest.json"
ZIP_SIGNATURE = b"PK"
ARCHIVE_GLOB = "**/S5P_*_L2__NO2____*.nc"

_NETCDF_LOCK = threading.Lock()
"""The netCDF-C library is not thread-safe: download threads validate files one at a time."""


def archive_path(archive: Path, product: Product) -> Path:
    """``<archive>/YYYY/MM/DD/<stem>.nc`` (overpass day, UTC)."""
    return Path(archive) / f"{product.day:%Y/%m/%d}" / product.filename


def archived_files(archive: Path) -> dict[str, Path]:
    """L2 NO2 files anywhere under ``archive`` (hidden folders excluded), by file name."""
    paths = glob.glob(str(Path(archive) / ARCHIVE_GLOB), recursive=True)
    return {Path(p).name: Path(p) for p in sorted(paths)}


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """``<archive>/cdse_manifest.json``: a JSON list, sorted by name, of the downloaded
    products with ``name`` (archive file name), ``path`` (relative to the archive), ``size``
    (bytes) and ``md5`` of the archive file, ``id`` (catalogue UUID), ``source_name`` and
    ``source_size`` (bytes, as delivered: they differ when zipped) and ``downloaded`` (UTC,
    ISO 8601). Rewritten atomically after every product; a lock file serialises writers of
    several threads and processes."""

    def __init__(self, archive: Path):
        self.path = Path(archive) / MANIFEST_NAME
        self._lock_path = Path(archive) / f".{MANIFEST_NAME}.lock"
        self._lock = threading.Lock()

    def entries(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        try:
            return {entry["name"]: entry for entry in json.loads(self.path.read_text())}
        except (ValueError, KeyError, TypeError) as exc:
            raise AcquireError(
                f"{self.path}: not a download manifest ({exc}); move it away"
            ) from None

    def record(self, entry: dict) -> None:
        with self._lock, self._lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self.entries()
            entries[entry["name"]] = entry
            write_json([entries[name] for name in sorted(entries)], self.path)


@dataclass
class Plan:
    """What to download (``download``) and what the archive already has (``present``:
    product -> archive file)."""

    download: list[Product]
    present: dict[Product, Path]

    @property
    def download_bytes(self) -> int:
        """Bytes to download according to the catalogue (products of unknown size count 0)."""
        return sum(p.size or 0 for p in self.download)

    @property
    def unknown_sizes(self) -> int:
        """Products to download whose size the catalogue does not give."""
        return sum(p.size is None for p in self.download)


def plan_downloads(products: list[Product], archive: Path) -> Plan:
    """Split ``products`` into those to download and those already in ``archive``."""
    files = archived_files(archive)
    recorded = Manifest(archive).entries()
    download, present = [], {}
    for product in products:
        path = files.get(product.filename)
        if path is not None and product.size in (
            None, path.stat().st_size, recorded.get(product.filename, {}).get("source_size"),
        ):
            present[product] = path
            continue
        if path is not None:
            log.warning("%s: size %d bytes differs from the catalogue (%d); downloading again",
                        path, path.stat().st_size, product.size)
        download.append(product)
    return Plan(download, present)


# --- one product ---------------------------------------------------------------------------------
def _verify(part: Path, product: Product) -> str:
    """Check the complete download's size and MD5 against the catalogue (what it gives);
    returns the MD5."""
    size = part.stat().st_size
    if product.size is None:
        log.info("%s: the catalogue gives no size; %d bytes as the server announced",
                 product.name, size)
    elif size != product.size:
        raise DownloadError(product.name, (
            f"the server delivered {size} bytes, complete according to its answer, but the "
            f"catalogue says {product.size}: catalogue and delivery disagree, so the file is "
            f"not archived (report product {product.id} to the CDSE help desk if this persists)"
        ))
    md5 = _md5(part)
    if product.md5 is None:
        log.warning("%s: the catalogue gives no MD5; checked the size only", product.name)
    elif md5 != product.md5:
        raise DownloadError(
            product.name, f"MD5 {md5} differs from the catalogue's {product.md5} (corrupted "
            "transfer); rejected"
        )
    return md5


def _unpack(part: Path, staged: Path, product: Product, md5: str) -> str:
    """Move the netCDF file to ``staged``, unzipping it if needed; returns its MD5."""
    with part.open("rb") as handle:
        head = handle.read(len(HDF5_SIGNATURE))
    if head == HDF5_SIGNATURE:
        os.replace(part, staged)
        return md5
    if not head.startswith(ZIP_SIGNATURE):
        raise DownloadError(
            product.name, f"delivered file is neither netCDF-4 nor zip (starts {head!r})"
        )
    try:
        with zipfile.ZipFile(part) as archive:
            members = [m for m in archive.namelist() if m.endswith(".nc")]
            if len(members) != 1:
                raise DownloadError(
                    product.name, f"zip holds {len(members)} .nc files, expected one: {members}"
                )
            digest = hashlib.md5(usedforsecurity=False)
            with archive.open(members[0]) as source, staged.open("wb") as target:
                while block := source.read(1 << 20):
                    target.write(block)
                    digest.update(block)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DownloadError(product.name, f"delivered zip cannot be read: {exc}") from None
    part.unlink()
    return digest.hexdigest()


def _validate(staged: Path, product: Product) -> None:
    try:
        with _NETCDF_LOCK, open_product(staged) as nc:
            product_metadata(nc, staged)
    except InvalidProductError as exc:
        raise DownloadError(product.name, f"not a valid L2 NO2 product: {exc.reason}") from None


def acquire_product(
    product: Product, archive: Path, tokens: TokenManager, manifest: Manifest,
    endpoints: Endpoints = Endpoints(), retry: RetryPolicy = RetryPolicy(),
    timeout: float = 60.0, on_bytes=lambda n: None,
) -> Path:
    """Download, verify, unpack, validate and place one product; returns its archive path.
    A rejected or unplaceable file leaves nothing behind in staging or in the archive."""
    archive = Path(archive)
    staging = archive / STAGING_DIR
    part = staging / f"{product.product_name.stem}.part"
    staged = staging / product.filename
    target = archive_path(archive, product)
    try:
        try:
            staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveWriteError(
                product.name, f"cannot create {staging}: {exc.strerror or exc}"
            ) from None
        with CdseSession(endpoints.hosts()) as session:
            delivered = fetch(product, part, product_url(endpoints.download, product), tokens,
                              session, retry, timeout, on_bytes)
        try:
            md5 = _unpack(part, staged, product, _verify(part, product))
            _validate(staged, product)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)
        except OSError as exc:
            raise ArchiveWriteError(product.name, (
                f"cannot write into the archive ({exc.filename or target}): "
                f"{exc.strerror or exc}"
            )) from None
    except TransferError:
        raise
    except DownloadError:
        for path in (part, staged):
            with suppress(OSError):
                path.unlink()
        raise
    entry = {
        "name": product.filename, "path": str(target.relative_to(archive)),
        "size": target.stat().st_size, "md5": md5, "id": product.id,
        "source_name": product.name, "source_size": delivered,
        "downloaded": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    try:
        manifest.record(entry)
    except OSError as exc:
        raise ArchiveWriteError(product.name, f"placed, but cannot update {manifest.path}: "
                                f"{exc.strerror or exc}") from None
    log.info("%s -> %s", product.name, target)
    return target


@dataclass
class Outcome:
    """What :func:`download_products` did: ``placed`` (product -> archive file) and
    ``failed`` (product -> the error saying why)."""

    placed: dict[Product, Path]
    failed: dict[Product, DownloadError]

    def paths(self, products: list[Product]) -> list[Path]:
        """The archive files of ``products`` in their order; raises the failures (a single
        one as itself, several together as :class:`AcquireError`)."""
        failures = [self.failed[p] for p in products if p in self.failed]
        if len(failures) == 1:
            raise failures[0]
        if failures:
            raise AcquireError(
                f"{len(failures)} of {len(products)} products failed:\n"
                + "\n".join(f"  {exc}" for exc in failures)
            )
        return [self.placed[p] for p in products]


def download_products(
    products: list[Product], archive: Path, tokens: TokenManager,
    endpoints: Endpoints = Endpoints(), retry: RetryPolicy = RetryPolicy(),
    timeout: float = 60.0, jobs: int = 3,
    progress: TextIO | None = None,
) -> Outcome:
    """Download ``products`` into ``archive`` with ``jobs`` parallel transfers. A progress
    line goes to ``progress`` if given.

    Every product is attempted; a product that fails is reported in the outcome with its
    reason. Refused credentials or an interruption (Ctrl-C) raise, stopping the transfers in
    progress at their next chunk and keeping their partial files for the next run.
    """
    archive = Path(archive)
    manifest = Manifest(archive)
    total = None if any(p.size is None for p in products) else sum(p.size for p in products)
    bar = Progress(total, progress) if progress is not None else None
    stop = threading.Event()

    def on_bytes(n: int) -> None:
        if stop.is_set():
            raise AcquireError("download stopped")
        if bar is not None:
            bar.add(n)
    outcome = Outcome({}, {})
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="cdse-download")
    try:
        futures = {
            pool.submit(acquire_product, p, archive, tokens, manifest, endpoints, retry,
                        timeout, on_bytes): p
            for p in products
        }
        for future in as_completed(futures):
            try:
                outcome.placed[futures[future]] = future.result()
            except DownloadError as exc:
                log.error("%s", exc)
                outcome.failed[futures[future]] = exc
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return outcome
