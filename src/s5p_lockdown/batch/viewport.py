"""What a preview map shows, for the user's batch function: the visible box and the cell size.

A batch function ``f(input_path, output_path, **params)`` runs unchanged in two places: in the
notebook's preview (:class:`s5p_lockdown.batch.preview.PreviewMap`), for the part of the world
the map shows at about two screen pixels per cell, and in the HTCondor jobs of
:func:`s5p_lockdown.batch.submit`, over its whole grid at full resolution. Two helpers tell
the function which of the two it is doing:

* :func:`preview_grid` ``(grid)`` returns ``grid`` itself in a batch job, and during a preview
  the cells of ``grid`` inside the view merged ``k`` × ``k`` (``k`` ≥ 1 chosen so that a cell
  is about :data:`PIXELS_PER_CELL` screen pixels; never finer than ``grid``, the resolution
  the function was written for). The preview cells nest in the full-resolution cells, so the
  preview is the same binning at a coarser resolution;
* :func:`current_viewport` returns the :class:`Viewport` being previewed, or None in a batch
  job, for functions that do not work on a :class:`~s5p_lockdown.gridding.GridSpec`.

Example (gridding over a fixed box; ``read_l2`` then reads only the visible scanlines)::

    from s5p_lockdown.batch.viewport import preview_grid

    def no2(input_path, output_path, *, qa_threshold=0.75):
        grid = preview_grid(GridSpec.from_bbox(47.0, 55.0, 5.0, 15.0, 0.05))
        accumulator = GridAccumulator(grid, threads=1)
        accumulator.add_dataset(read_l2(input_path, bbox=grid.bounds), qa_threshold)
        write_grid(accumulator.finalize(), output_path, inputs=[input_path])

A function that ignores the helpers still previews: the preview crops and block-averages what
it writes to the view (:func:`fit_to_view`), but it computes the whole grid at full
resolution each time the map moves.

Conventions: degrees north and east; a view's box has inclusive edges; a preview cell of
``k`` × ``k`` grid cells starts on a multiple of ``k`` cells from the grid's first edges.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from s5p_lockdown.batch.render import GridImage
from s5p_lockdown.gridding.grid import GridSpec

#: Screen pixels per preview cell.
PIXELS_PER_CELL = 2


class PreviewCancelled(Exception):
    """Raised by the helpers inside a preview that a newer view or parameter superseded."""


class OutsideView(ValueError):
    """The function's grid has no cell in the view."""


@dataclass(frozen=True)
class Viewport:
    """The box a preview map shows and the cell size it wants.

    ``south``/``north``/``west``/``east`` in degrees (edges inclusive; ``west`` < ``east``,
    possibly beyond ±180 after panning across the antimeridian); ``resolution`` in degrees per
    preview cell.
    """

    south: float
    north: float
    west: float
    east: float
    resolution: float

    def __post_init__(self) -> None:
        if not (self.north > self.south and self.east > self.west and self.resolution > 0):
            raise ValueError(f"not a usable view: {self}")

    @classmethod
    def from_map_state(cls, south: float, north: float, west: float, east: float,
                       width_pixels: float, pixels_per_cell: float = PIXELS_PER_CELL
                       ) -> Viewport:
        """The view of a map in EPSG:4326 (plate carrée: the same degrees per pixel on both
        axes) ``width_pixels`` wide showing ``[south, north] × [west, east]``."""
        if not width_pixels > 0:
            raise ValueError(f"map width must be positive, got {width_pixels!r} pixels")
        return cls(south, north, west, east, (east - west) / width_pixels * pixels_per_cell)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(south, north, west, east), the order of ``read_l2``'s ``bbox``."""
        return (self.south, self.north, self.west, self.east)

    def factor(self, grid: GridSpec) -> int:
        """How many cells of ``grid`` a preview cell spans along each axis (≥ 1)."""
        step = max(grid.lat_edge_step, grid.lon_edge_step)
        return max(1, round(self.resolution / step))

    def grid(self, grid: GridSpec) -> GridSpec:
        """The cells of ``grid`` overlapping the view, merged :meth:`factor` × :meth:`factor`,
        aligned on ``grid``'s first edges. A last row or column of merged cells that would
        reach past ``grid`` is left out (it would hold pixels the full grid does not).
        Raises :class:`OutsideView` when no merged cell remains."""
        k = self.factor(grid)
        spans = []
        for offset, step, count, low, high in (
            (grid.lat_edge_offset, grid.lat_edge_step, grid.lat_edge_count - 1,
             self.south, self.north),
            (grid.lon_edge_offset, grid.lon_edge_step, grid.lon_edge_count - 1,
             self.west, self.east),
        ):
            first = max(0, math.floor((low - offset) / step)) // k * k
            last = min(count, math.ceil((high - offset) / step))
            cells = min(math.ceil((last - first) / k), (count - first) // k)
            if cells < 1:
                raise OutsideView(
                    f"the function's grid {grid.bounds} (south, north, west, east) has no "
                    f"{k * step:g} degree cell in the view {self.bbox}")
            spans.append((cells + 1, offset + first * step, k * step))
        (lat_count, lat_offset, lat_step), (lon_count, lon_offset, lon_step) = spans
        return GridSpec(lat_count, lat_offset, lat_step, lon_count, lon_offset, lon_step)


@dataclass
class PreviewContext:
    """What a running preview gives the helpers: its view and its cancellation flag."""

    viewport: Viewport
    cancelled: threading.Event = field(default_factory=threading.Event)
    grids: list[tuple[GridSpec, GridSpec]] = field(default_factory=list)
    """(full grid, preview grid) of each :func:`preview_grid` call, for the preview's status."""

    def check(self) -> None:
        """Raise :class:`PreviewCancelled` if a newer request superseded this preview."""
        if self.cancelled.is_set():
            raise PreviewCancelled("superseded by a newer view or parameter")


_CONTEXT: contextvars.ContextVar[PreviewContext | None] = contextvars.ContextVar(
    "s5p_lockdown_preview", default=None)


@contextlib.contextmanager
def previewing(context: PreviewContext) -> Iterator[PreviewContext]:
    """Run the enclosed code (the user's function) as a preview of ``context``."""
    token = _CONTEXT.set(context)
    try:
        yield context
    finally:
        _CONTEXT.reset(token)


def current_viewport() -> Viewport | None:
    """The view being previewed, or None outside a preview (in a batch job). Raises
    :class:`PreviewCancelled` when the preview has been superseded."""
    context = _CONTEXT.get()
    if context is None:
        return None
    context.check()
    return context.viewport


def preview_grid(grid: GridSpec) -> GridSpec:
    """``grid`` outside a preview; during one, the part of ``grid`` in view at the preview's
    resolution (:meth:`Viewport.grid`). Raises :class:`PreviewCancelled` when the preview has
    been superseded and :class:`OutsideView` when nothing of ``grid`` is in view."""
    context = _CONTEXT.get()
    if context is None:
        return grid
    context.check()
    cropped = context.viewport.grid(grid)
    context.grids.append((grid, cropped))
    return cropped


def fit_to_view(image: GridImage, viewport: Viewport) -> GridImage:
    """``image`` cropped to the cells overlapping ``viewport`` and, when its cells are finer
    than the view's resolution, averaged over blocks of ``k`` × ``k`` cells (the mean of the
    finite values), with the blocks placed as :meth:`Viewport.grid` places them: from the
    image's south-west corner, whole blocks inside the image only. An image already on the
    preview's grid (from :func:`preview_grid`) comes back unchanged. Raises
    :class:`OutsideView` when no block is in view."""
    (south, west), (north, east) = image.bounds
    rows, columns = image.values.shape
    dlat, dlon = (north - south) / rows, (east - west) / columns
    k = min(max(1, round(viewport.resolution / max(dlat, dlon))), rows, columns)
    spans = []
    for first_edge, step, count, low, high in ((south, dlat, rows, viewport.south, viewport.north),
                                              (west, dlon, columns, viewport.west, viewport.east)):
        first = max(0, math.floor((low - first_edge) / step)) // k * k
        last = min(count, math.ceil((high - first_edge) / step))
        blocks = min(math.ceil((last - first) / k), (count - first) // k)
        if blocks < 1:
            raise OutsideView(f"the output {image.bounds} ((south, west), (north, east)) has no "
                              f"preview cell in the view {viewport.bbox}")
        spans.append((first, first + blocks * k))
    (row0, row1), (col0, col1) = spans
    values = image.values[::-1][row0:row1, col0:col1]  # south first
    if k > 1:
        blocks = values.reshape(values.shape[0] // k, k, values.shape[1] // k, k)
        finite = np.isfinite(blocks)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (np.where(finite, blocks, 0.0).sum(axis=(1, 3))
                      / finite.sum(axis=(1, 3)))
    bounds = ((south + row0 * dlat, west + col0 * dlon), (south + row1 * dlat, west + col1 * dlon))
    return GridImage(image.variable, image.units, values[::-1], bounds)
