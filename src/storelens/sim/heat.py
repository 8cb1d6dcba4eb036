"""``vision.heatmap`` events from the simulated tracks, as the vision pipeline would send them.

Each sampled position a camera sees stands for one sampling step of a person's time
in its floor cell; the person-seconds are summed per period (``heatmap_every_s``) and
sent at the period's end, one fused grid for the store (no camera id), empty periods
included so "nobody there" is data rather than a gap. Periods are aligned to whole
multiples of the period since the epoch, so days and dayparts split cleanly.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from storelens.core.layout import StoreLayout
from storelens.sim.journal import DayJournal
from storelens.vision.heatmap import staff_cells

__all__ = ["DayHeat"]


class DayHeat:
    """Person-seconds per cell for one day's periods; ``emit`` writes them to the journal."""

    def __init__(
        self,
        width_m: float,
        height_m: float,
        cell_m: float,
        every_ms: int,
        step_ms: int,
        layout: StoreLayout | None = None,
    ) -> None:
        if every_ms <= 0 or step_ms <= 0 or cell_m <= 0:
            raise ValueError("heatmap period, sampling step and cell size must be positive")
        self.rows = math.ceil(height_m / cell_m - 1e-9)
        self.cols = math.ceil(width_m / cell_m - 1e-9)
        self.cell_m, self.every_ms, self.step_s = cell_m, every_ms, step_ms / 1000
        self._grids: dict[int, npt.NDArray[np.float64]] = {}
        # Staff-only zones stay blank, as the pipeline leaves them (``layout`` given).
        self._hidden = (
            None
            if layout is None
            else staff_cells(layout, self.rows, self.cols, cell_m).reshape(self.rows, self.cols)
        )

    def add(self, ms: int, x: float, y: float) -> None:
        grid = self._grids.get(ms // self.every_ms)
        if grid is None:
            grid = self._grids[ms // self.every_ms] = np.zeros((self.rows, self.cols))
        row = min(max(int(y / self.cell_m), 0), self.rows - 1)
        col = min(max(int(x / self.cell_m), 0), self.cols - 1)
        if self._hidden is None or not self._hidden[row, col]:
            grid[row, col] += self.step_s

    def emit(self, journal: DayJournal) -> int:
        """One event per period from the first to the last seen; returns how many."""
        if not self._grids:
            return 0
        first, last = min(self._grids), max(self._grids)
        empty = np.zeros((self.rows, self.cols))
        for period in range(first, last + 1):
            values = self._grids.get(period, empty)
            payload = {
                "period_s": self.every_ms / 1000,
                "cell_m": self.cell_m,
                "rows": self.rows,
                "cols": self.cols,
                "values": [round(v, 3) for v in values.ravel().tolist()],
            }
            journal.add((period + 1) * self.every_ms, "vision.heatmap", "vision", payload)
        self._grids.clear()
        return last - first + 1
