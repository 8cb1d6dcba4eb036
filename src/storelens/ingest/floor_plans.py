"""Heat grids must fit their store's floor plan: checked at ingest, per event.

A ``vision.heatmap`` grid is ``rows`` x ``cols`` cells of ``cell_m`` metres from the
plan's origin, so a store's layout fixes its shape for each cell size
(:meth:`~storelens.core.layout.Floor.grid`). Insights have always left out grids of
another shape, but only when read, by a "most common shape" vote that a key sending
many wrong grids could win, dropping every camera's heat. Refusing them here, like any
other invalid event (a rejected item over HTTP, a dead letter over MQTT, the field
named), keeps them out of the log, and a camera configured with an old or wrong plan
is told at once instead of its heat silently going missing.

The current layout decides: after a layout change, grids drawn on the old plan are
refused. A store without a layout (or an event without a store) takes any shape; the
insights still vote among sources there (:mod:`storelens.instore.insights_heat`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from storelens.core.errors import FieldError, LayoutError, NotFound
from storelens.core.events import Event, HeatmapEvent
from storelens.core.layout import Floor, parse_layout
from storelens.stores import get_layout

__all__ = ["FloorPlans", "and_floor_plans"]


class FloorPlans:
    """A permit refusing heat grids whose shape is not their store's floor plan.

    Layouts are read once per store and kept for the life of the object: make one per
    batch, so a layout saved between batches counts from the next one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._floors: dict[str, Floor | None] = {}

    def __call__(self, event: Event) -> FieldError | None:
        if not isinstance(event, HeatmapEvent):
            return None
        floor = self._floor(event.store_id)
        if floor is None:
            return None
        grid = event.payload
        rows, cols = floor.grid(grid.cell_m)
        if (grid.rows, grid.cols) == (rows, cols):
            return None
        return FieldError(
            "payload.rows" if grid.rows != rows else "payload.cols",
            f"the grid is {grid.rows} x {grid.cols} cells of {grid.cell_m:g} m, but the floor "
            f"plan of {event.store_id} ({floor.width_m:g} x {floor.height_m:g} m) is "
            f"{rows} x {cols} cells of that size",
            "floor_plan",
        )

    def _floor(self, store_id: str) -> Floor | None:
        if store_id not in self._floors:
            try:
                with self.engine.connect() as conn:
                    _, document = get_layout(conn, store_id)
                self._floors[store_id] = parse_layout(document, path=f"layout of {store_id}").floor
            except (NotFound, LayoutError):  # no layout yet: any shape
                self._floors[store_id] = None
        return self._floors[store_id]


_Permit = Callable[[Event], FieldError | None]  # ingest.batch.Permit, which imports this


def and_floor_plans(engine: Engine, permit: _Permit | None) -> _Permit:
    """``permit``'s refusals, then the floor plans' (a fresh :class:`FloorPlans`)."""
    plans = FloorPlans(engine)
    if permit is None:
        return plans

    def both(event: Event) -> FieldError | None:
        return permit(event) or plans(event)

    return both
