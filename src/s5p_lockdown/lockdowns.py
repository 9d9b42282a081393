"""Lockdown dates: the national table (shipped, with user overrides) and regional tables.

The national table (CSV, one row per country) has columns ``iso3, iso2, country,
lockdown_start, lockdown_end, measure, note``. A regional table (CSV, one row per region, keyed
by the region ids of a region file, e.g. NUTS ids) has columns ``region, iso3, name,
lockdown_start, lockdown_end, measure, note``: a region with a row takes its own dates, every
other region its country's (``iso3``: the region's country, for the reader and for synthetic
scenarios; the workflow takes a region's country from the region file). Dates are
ISO local calendar days; ``lockdown_end`` may be blank (gradual easing); ``measure`` is one of
:data:`MEASURES`, and ``none`` rows have no dates.

``resources/lockdown_dates_regions_italy.csv`` is a documented real example (see its
PROVENANCE): Lombardy and the provinces of the decree of 8 March 2020, keyed by NUTS 2021 ids.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.resources import resource_path

MEASURES = ("national", "partial", "regional", "targeted", "none")
COLUMNS = ("iso3", "iso2", "country", "lockdown_start", "lockdown_end", "measure")
REGION_COLUMNS = ("region", "iso3", "name", "lockdown_start", "lockdown_end", "measure")


def default_table_path() -> Path:
    return resource_path("lockdown_dates.csv")


def load_lockdown_dates(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a national lockdown-dates table; index = iso3.

    ``lockdown_start``/``lockdown_end`` become ``datetime64`` (NaT where blank). Errors name the
    file, the row's country and the column.
    """
    path = Path(path) if path is not None else default_table_path()
    table = _read_table(path, "lockdown dates table", COLUMNS)
    table["iso3"] = table["iso3"].str.strip().str.upper()
    return _checked(table, "iso3", path, "lockdown dates table")


def load_region_lockdowns(path: str | Path) -> pd.DataFrame:
    """Read and validate a regional lockdown-dates table (module docstring); index = region id.

    Dates as in :func:`load_lockdown_dates`; errors name the file, the region and the column.
    """
    path = Path(path)
    table = _read_table(path, "regional lockdown dates table", REGION_COLUMNS)
    table["region"] = table["region"].str.strip()
    table["iso3"] = table["iso3"].str.strip().str.upper()
    if (table["region"] == "").any():
        raise ConfigError(f"regional lockdown dates table {path}: a row has no region id")
    return _checked(table, "region", path, "regional lockdown dates table")


def _read_table(path: Path, what: str, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {path}: cannot be read: {exc}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(f"{what} {path}: missing column(s) {missing}")
    return table


def _checked(table: pd.DataFrame, key: str, path: Path, what: str) -> pd.DataFrame:
    """Unique keys, parsed dates and consistent measures; the table indexed by ``key``."""
    duplicated = table[key][table[key].duplicated()].tolist()
    if duplicated:
        raise ConfigError(f"{what} {path}: duplicate {key} code(s) {duplicated}")
    for column in ("lockdown_start", "lockdown_end"):
        parsed = pd.to_datetime(table[column].str.strip().replace("", None), errors="coerce")
        bad = parsed.isna() & (table[column].str.strip() != "")
        if bad.any():
            row = table[bad].iloc[0]
            raise ConfigError(
                f"{what} {path}: {row[key]} has an invalid {column} "
                f"{row[column]!r} (expected YYYY-MM-DD)"
            )
        table[column] = parsed
    for _, row in table.iterrows():
        where = f"{what} {path}: {row[key]}"
        if row["measure"] not in MEASURES:
            raise ConfigError(f"{where} has unknown measure {row['measure']!r}; use one of {MEASURES}")
        if row["measure"] == "none" and pd.notna(row["lockdown_start"]):
            raise ConfigError(f"{where} has measure 'none' but a lockdown_start")
        if row["measure"] != "none" and pd.isna(row["lockdown_start"]):
            raise ConfigError(f"{where} has measure {row['measure']!r} but no lockdown_start")
        if pd.notna(row["lockdown_end"]) and row["lockdown_end"] < row["lockdown_start"]:
            raise ConfigError(f"{where}: lockdown_end is before lockdown_start")
    return table.set_index(key)
