"""Writing outputs: atomically, with provenance.

Every file the workflow produces is first written to a temporary name in the target folder
and then renamed into place (``os.replace`` is atomic on POSIX), so an interrupted job never
leaves a truncated output that a later run would take as finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import s5p_lockdown
from s5p_lockdown.errors import ConfigError
from s5p_lockdown.filenames import FileNameError, ProductName

if TYPE_CHECKING:  # annotations only: importing xarray costs every Snakemake job ~0.4 s
    import pandas as pd
    import xarray as xr


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; on success rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: str | Path, writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path``."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> Path:
    return write_atomically(path, lambda tmp: frame.to_csv(tmp, **kwargs))


def write_json(data, path: str | Path) -> Path:
    return write_atomically(
        path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    )


def write_dataset(ds: xr.Dataset, path: str | Path, writer=None) -> Path:
    """Write a Dataset as netCDF-4 atomically (``writer(ds, tmp)`` defaults to ``to_netcdf``)."""
    if writer is None:
        return write_atomically(path, lambda tmp: ds.to_netcdf(tmp, format="NETCDF4"))
    return write_atomically(path, lambda tmp: writer(ds, tmp))


def digest(names: Iterable[str]) -> str:
    """SHA-256 of a sorted list of names (a short fingerprint of an input file list)."""
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode())
        h.update(b"\n")
    return h.hexdigest()


def processor_versions(names: Iterable[str]) -> list[str]:
    """Distinct processor versions found in S5P product file names."""
    versions = set()
    for name in names:
        try:
            versions.add(ProductName.parse(name).processor_version)
        except FileNameError:
            continue
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


#: Environment variable that fixes ``date_created`` (seconds since 1970-01-01 UTC), the
#: reproducible-builds convention (https://reproducible-builds.org/specs/source-date-epoch/):
#: two runs with the same value write byte-identical outputs.
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"


def creation_time() -> datetime:
    """When outputs are created: now, or :data:`SOURCE_DATE_EPOCH` when it is set (UTC)."""
    epoch = os.environ.get(SOURCE_DATE_EPOCH)
    if epoch is None:
        return datetime.now(timezone.utc)
    try:
        return datetime.fromtimestamp(int(epoch), timezone.utc)
    except ValueError:
        raise ConfigError(f"environment variable {SOURCE_DATE_EPOCH}={epoch!r} is not a whole "
                          f"number of seconds") from None


def provenance(config: dict | None = None, inputs: Iterable[str] = ()) -> dict:
    """Provenance attributes for an output: software version, time (:func:`creation_time`),
    inputs digest, processor versions, and the configuration (as JSON)."""
    names = sorted({Path(n).name for n in inputs})
    attrs = {
        "software": f"s5p-lockdown {s5p_lockdown.__version__}",
        "python": platform.python_version(),
        "date_created": creation_time().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input_count": len(names),
        "input_digest": digest(names),
        "processor_versions": ",".join(processor_versions(names)),
    }
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True, default=str)
    return attrs
