"""The HTTP API (FastAPI). Build it with :func:`storelens.api.app.create_app`."""
