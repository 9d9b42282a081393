"""Sentinel-5P product file names.

Pattern (83 characters without extension)::

    S5P_{stream}_{product:10}_{start}_{end}_{orbit:05d}_{collection:02d}_{processor:06d}_{production}

e.g. ``S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_20200306T053815``.
Times are UTC sensing start/end and production time, ``YYYYMMDDTHHMMSS``. The processor field
``010302`` means version 1.3.2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

STREAMS = ("NRTI", "OFFL", "RPRO", "PAL_")
NO2_PRODUCT = "L2__NO2___"

_PATTERN = re.compile(
    r"^S5P_(?P<stream>NRTI|OFFL|RPRO|PAL_)_(?P<product>[A-Z0-9_]{10})_"
    r"(?P<start>\d{8}T\d{6})_(?P<end>\d{8}T\d{6})_(?P<orbit>\d{5})_(?P<collection>\d{2})_"
    r"(?P<processor>\d{6})_(?P<production>\d{8}T\d{6})$"
)
_TIME = "%Y%m%dT%H%M%S"


class FileNameError(ValueError):
    """A name does not follow the Sentinel-5P product naming convention."""


@dataclass(frozen=True)
class ProductName:
    """The fields encoded in a Sentinel-5P product file name (times are naive UTC)."""

    stream: str
    product: str
    start: datetime
    end: datetime
    orbit: int
    collection: int
    processor_version: str
    production: datetime

    @classmethod
    def parse(cls, name: str | Path) -> ProductName:
        """Parse a file name or path (``.nc``/``.zip`` extension optional)."""
        stem = Path(name).name
        for ext in (".nc", ".zip", ".SAFE"):
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        match = _PATTERN.match(stem)
        if match is None:
            raise FileNameError(
                f"{Path(name).name!r} is not a Sentinel-5P product name "
                "(expected S5P_<stream>_<product>_<start>_<end>_<orbit>_<collection>_"
                "<processor>_<production>)"
            )
        fields = match.groupdict()
        processor = fields["processor"]
        try:
            start, end, production = (
                datetime.strptime(fields[k], _TIME) for k in ("start", "end", "production")
            )
        except ValueError as exc:
            raise FileNameError(f"{Path(name).name!r}: invalid date in file name: {exc}") from None
        return cls(
            stream=fields["stream"],
            product=fields["product"],
            start=start,
            end=end,
            orbit=int(fields["orbit"]),
            collection=int(fields["collection"]),
            processor_version=".".join(str(int(processor[i : i + 2])) for i in (0, 2, 4)),
            production=production,
        )

    @property
    def processor_code(self) -> str:
        """Six-digit processor field, e.g. ``"010302"`` for version 1.3.2."""
        major, minor, patch = (int(p) for p in self.processor_version.split("."))
        return f"{major:02d}{minor:02d}{patch:02d}"

    @property
    def stem(self) -> str:
        """The 83-character product identifier (file name without extension)."""
        return (
            f"S5P_{self.stream}_{self.product}_{self.start:{_TIME}}_{self.end:{_TIME}}_"
            f"{self.orbit:05d}_{self.collection:02d}_{self.processor_code}_"
            f"{self.production:{_TIME}}"
        )

    @property
    def filename(self) -> str:
        return self.stem + ".nc"

    @property
    def is_no2(self) -> bool:
        return self.product == NO2_PRODUCT

    def with_(self, **changes) -> ProductName:
        """A copy with some fields changed."""
        return replace(self, **changes)
