"""Alembic environment: runs against the connection storelens hands it, no alembic.ini."""

from __future__ import annotations

from alembic import context

from storelens.storage.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - storelens always passes a connection
    raise RuntimeError("run migrations through storelens.storage.migrate, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # Column types live in storelens.storage.tables.schema but are re-exported by the
    # package, which is what script.py.mako imports: new migrations name them there.
    user_module_prefix="storelens.storage.tables.",
)
with context.begin_transaction():
    context.run_migrations()
