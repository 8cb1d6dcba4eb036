"""storelens: self-hosted, privacy-first retail customer intelligence."""

__all__ = ["__version__"]
__version__ = "0.1.0"
