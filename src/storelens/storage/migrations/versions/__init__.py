"""Revision scripts, one per schema change; Alembic reads them by path and skips this file."""
