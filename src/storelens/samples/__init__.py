"""Sample data shipped with the package: store layouts for the demo and the tests."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["sample_layout_path"]


def sample_layout_path(name: str = "cafe.toml") -> Path:
    """A packaged layout by file name. The Corner Café (the default) is the store every
    example, test and benchmark uses; it lives here, below every layer, so the vision
    commands can default to it without importing the simulator."""
    return Path(str(files(__name__).joinpath("layouts", name)))
