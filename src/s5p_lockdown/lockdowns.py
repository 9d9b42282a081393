"""National lockdown dates: the shipped table and user overrides.

The table (CSV, one row per country) has columns ``iso3, iso2, country, lockdown_start,
lockdown_end, measure, note``. Dates are ISO local calendar days; ``lockdown_end`` may be blank
(gradual easing); ``measure`` is one of :data:`MEASURES`, and ``none`` rows have no dates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from s5p_lockdown.errors import ConfigError
from s5p_lockdown.resources import resource_path

MEASURES = ("national", "partial", "regional", "targeted", "none")
COLUMNS = ("iso3", "iso2", "country", "lockdown_start", "lockdown_end", "measure")


def default_table_path() -> Path:
    return resource_path("lockdown_dates.csv")


def load_lockdown_dates(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a lockdown-dates table; index = iso3.

    ``lockdown_start``/``lockdown_end`` become ``datetime64`` (NaT where blank). Errors name the
    file, the row's country and the column.
    """
    path = Path(path) if path is not None else default_table_path()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"lockdown dates table {path}: cannot be read: {exc}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(f"lockdown dates table {path}: missing column(s) {missing}")
    table["iso3"] = table["iso3"].str.strip().str.upper()
    duplicated = table["iso3"][table["iso3"].duplicated()].tolist()
    if duplicated:
        raise ConfigError(f"lockdown dates table {path}: duplicate iso3 code(s) {duplicated}")
    for column in ("lockdown_start", "lockdown_end"):
        parsed = pd.to_datetime(table[column].str.strip().replace("", None), errors="coerce")
        bad = parsed.isna() & (table[column].str.strip() != "")
        if bad.any():
            row = table[bad].iloc[0]
            raise ConfigError(
                f"lockdown dates table {path}: {row['iso3']} has an invalid {column} "
                f"{row[column]!r} (expected YYYY-MM-DD)"
            )
        table[column] = parsed
    for _, row in table.iterrows():
        where = f"lockdown dates table {path}: {row['iso3']}"
        if row["measure"] not in MEASURES:
            raise ConfigError(f"{where} has unknown measure {row['measure']!r}; use one of {MEASURES}")
        if row["measure"] == "none" and pd.notna(row["lockdown_start"]):
            raise ConfigError(f"{where} has measure 'none' but a lockdown_start")
        if row["measure"] != "none" and pd.isna(row["lockdown_start"]):
            raise ConfigError(f"{where} has measure {row['measure']!r} but no lockdown_start")
        if pd.notna(row["lockdown_end"]) and row["lockdown_end"] < row["lockdown_start"]:
            raise ConfigError(f"{where}: lockdown_end is before lockdown_start")
    return table.set_index("iso3")
