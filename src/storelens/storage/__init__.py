"""Where events and projections are kept: engines, tables, the event log, migrations.

Storage sits directly above :mod:`storelens.core`: it knows the event envelope but no
domain package (in-store, CDP, privacy, vision), so every domain can build on it
without import cycles. The ``layers`` import-linter contract in pyproject.toml holds it
to that.
"""
