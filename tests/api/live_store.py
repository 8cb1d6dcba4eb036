"""What the live-socket tests share: a store to watch and an app clock that stands still."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.accounts import Role

STORE = "cafe-01"
WS = f"/v1/stores/{STORE}/alerts/ws"


class StillClock:
    """A clock on which no sleep ever ends: no periodic re-check, no expiry, so only
    what happens (a message, a revocation seen on it), not time, closes a socket."""

    def now(self) -> datetime:
        return datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def open_store(client: TestClient, engine: Engine) -> None:
    """The store the sockets watch, on an app whose clock stands still."""
    client.app.state.clock = StillClock()  # type: ignore[attr-defined]
    with engine.begin() as conn:
        stores.create_store(conn, STORE, "Café")


def store_key(engine: Engine, name: str) -> tuple[int, str]:
    """A staff-role API key for the store: its id and its secret."""
    with engine.begin() as conn:
        key, secret = accounts.create_api_key(conn, name, role=Role.staff, store_id=STORE)
    return key.id, secret
