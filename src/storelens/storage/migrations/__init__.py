"""Alembic's script directory, loaded by path from ``storage/migrate.py``; a package only so
the import contracts see what migrations import (``storage.tables``, nothing above it)."""
