"""Regular latitude/longitude grids and HARP ``bin_spatial``-compatible binning."""

from s5p_lockdown.gridding.grid import GridSpec

__all__ = ["GridSpec"]
