"""Index archives of L2 NO2 orbit files by day (from file names, without opening files).

An orbit belongs to the UTC day of the middle of its sensing interval: for full orbits that is
the day side, where the NO2 measurements are (~13:30 local time), so an orbit starting at 23:40
on day D whose day side is on D+1 is counted on D+1.

When several files hold the same orbit (several streams, or reprocessings), one stream and
processor version is chosen for it: the preferred stream first (default order RPRO, PAL_, OFFL,
NRTI), then the newest processor version. Every file of that choice with a distinct sensing
start is kept (NRTI delivers an orbit as ~5-minute slices, several files per orbit; the other
streams one file per orbit); of files with the same start, the newest production.
"""

from __future__ import annotations

import glob
import logging
from datetime import date
from pathlib import Path

import pandas as pd

from s5p_lockdown.filenames import FileNameError, ProductName

log = logging.getLogger(__name__)

DEFAULT_STREAM_PREFERENCE = ("RPRO", "PAL_", "OFFL", "NRTI")
INDEX_COLUMNS = ("path", "name", "day", "orbit", "stream", "processor_version", "production")


def overpass_day(name: ProductName) -> date:
    """UTC day of the middle of the sensing interval."""
    return (name.start + (name.end - name.start) / 2).date()


def index_files(
    paths: list[str | Path], stream_preference: tuple[str, ...] = DEFAULT_STREAM_PREFERENCE
) -> pd.DataFrame:
    """Index L2 NO2 files (columns :data:`INDEX_COLUMNS`, one row per orbit, or per slice of
    an NRTI orbit, sorted by day, orbit and start; see the module docstring). Files that are
    not S5P L2 NO2 products by name are skipped with a warning."""
    rows = []
    for path in map(Path, paths):
        try:
            name = ProductName.parse(path)
        except FileNameError as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if not name.is_no2:
            log.warning("skipping %s: product %s is not L2__NO2___", path, name.product)
            continue
        rows.append(
            {
                "path": str(path),
                "name": path.name,
                "day": overpass_day(name),
                "orbit": name.orbit,
                "stream": name.stream,
                "processor_version": name.processor_version,
                "production": name.production,
                "_stream_rank": (
                    stream_preference.index(name.stream)
                    if name.stream in stream_preference else len(stream_preference)
                ),
                "_version": tuple(int(p) for p in name.processor_version.split(".")),
                "_start": name.start,
            }
        )
    if not rows:
        return pd.DataFrame(columns=list(INDEX_COLUMNS))
    frame = pd.DataFrame(rows).sort_values(
        ["orbit", "_stream_rank", "_version", "production"], ascending=[True, True, False, False]
    )
    chosen = frame.drop_duplicates("orbit")[["orbit", "stream", "processor_version"]]
    choice = frame.merge(chosen, how="left", on="orbit", suffixes=("", "_chosen"))
    other_choice = ((choice["stream"] != choice["stream_chosen"]) | (
        choice["processor_version"] != choice["processor_version_chosen"])).to_numpy()
    duplicates = other_choice | frame.duplicated(["orbit", "_start"], keep="first").to_numpy()
    for _, row in frame[duplicates].iterrows():
        log.info("orbit %s: using a preferred file instead of %s", row["orbit"], row["name"])
    frame = frame[~duplicates].sort_values(["day", "orbit", "_start"])
    return frame[list(INDEX_COLUMNS)].reset_index(drop=True)


def index_local_archive(
    root: str | Path, pattern: str = "**/S5P_*_L2__NO2____*.nc",
    stream_preference: tuple[str, ...] = DEFAULT_STREAM_PREFERENCE,
) -> pd.DataFrame:
    """Index the files under ``root`` matching the recursive glob ``pattern``; files on a
    shared filesystem are indexed in place, never copied."""
    root = Path(root)
    if not root.is_dir():
        from s5p_lockdown.errors import ConfigError

        raise ConfigError(f"source.archive: {root} is not a directory")
    paths = sorted(glob.glob(str(root / pattern), recursive=True))
    return index_files(paths, stream_preference)
