"""What an acquisition will take before it starts: orbits, volume, disk and time.

Sizes are bytes; times are seconds. The time is a lower bound at the CDSE quota of
:data:`RATE_PER_CONNECTION` per connection (Quotas page,
https://documentation.dataspace.copernicus.eu/Quotas.html): a slower link takes longer.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

from s5p_lockdown.acquire.catalogue import Product
from s5p_lockdown.acquire.download import human_bytes
from s5p_lockdown.acquire.store import Plan

RATE_PER_CONNECTION = 20e6
"""Bytes per second per connection allowed by the CDSE quota (20 MB/s)."""


@dataclass(frozen=True)
class Estimate:
    """``products`` found (``orbits`` distinct orbits), ``present`` already in the archive,
    ``to_download`` of them; ``volume`` bytes to download, of which ``unknown_sizes``
    products without a catalogue size are counted at ``assumed_size`` (the median of the
    known sizes); ``disk`` bytes needed on the archive's file system (the volume plus the
    staging room of ``jobs`` transfers unpacking at once) and ``free`` bytes there (None when
    unknown); ``seconds`` of transfer at the quota rate with ``jobs`` connections."""

    products: int
    orbits: int
    present: int
    to_download: int
    volume: int
    unknown_sizes: int
    assumed_size: int
    disk: int
    free: int | None
    jobs: int
    seconds: float

    def lines(self, archive: Path) -> list[str]:
        """The estimate in words, one line per figure."""
        volume = f"volume: {human_bytes(self.volume)} ({self.volume} bytes)"
        if self.unknown_sizes:
            volume += (f", counting {self.unknown_sizes} products without a catalogue size at "
                       f"the median size {human_bytes(self.assumed_size)}")
        disk = (f"disk: {human_bytes(self.disk)} needed under {archive} (the volume plus "
                f"staging room for {self.jobs} parallel downloads)")
        if self.free is not None:
            verdict = "enough" if self.free >= self.disk else "NOT ENOUGH"
            disk += f"; {human_bytes(self.free)} free there: {verdict}"
        hours = self.seconds / 3600
        return [
            f"found {self.products} products ({self.orbits} orbits): {self.present} already in "
            f"{archive}, {self.to_download} to download",
            volume,
            disk,
            f"time: at least {hours:.1f} h ({self.seconds:.0f} s) at the CDSE quota of "
            f"{RATE_PER_CONNECTION / 1e6:.0f} MB/s per connection with {self.jobs} connections "
            "(longer on a slower link)",
        ]


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the file system of ``folder`` or of its nearest existing parent."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def estimate(products: list[Product], plan: Plan, archive: Path, jobs: int) -> Estimate:
    """The estimate of downloading ``plan.download`` (of ``products``) into ``archive`` with
    ``jobs`` parallel transfers."""
    known = [p.size for p in products if p.size is not None]
    assumed = int(statistics.median(known)) if known else 0
    sizes = [p.size if p.size is not None else assumed for p in plan.download]
    volume = sum(sizes)
    staging = 2 * jobs * max(sizes, default=0)  # a zip and its unpacked file per transfer
    return Estimate(
        products=len(products), orbits=len({p.product_name.orbit for p in products}),
        present=len(plan.present), to_download=len(plan.download), volume=volume,
        unknown_sizes=plan.unknown_sizes, assumed_size=assumed,
        disk=volume + staging if plan.download else 0, free=_free_bytes(Path(archive).absolute()),
        jobs=jobs, seconds=volume / (jobs * RATE_PER_CONNECTION),
    )
