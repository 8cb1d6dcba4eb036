"""A seeded, deterministic simulation of store days: the events real systems would send,
plus the ground truth they came from, for testing and benchmarking everything downstream.
"""

from storelens.sim.config import BaristaPlan, SimConfig
from storelens.sim.run import SimSummary, default_layout_path, run_simulation

__all__ = ["BaristaPlan", "SimConfig", "SimSummary", "default_layout_path", "run_simulation"]
