"""The bottom layer: the event envelope, store layouts, camera geometry and the error tree.

Everything else in storelens may import from here; nothing here imports the rest of
storelens, so these contracts can be read (and tested) on their own. The
``core-is-the-bottom`` import-linter contract in pyproject.toml holds it to that.
"""
