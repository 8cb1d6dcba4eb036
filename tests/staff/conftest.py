"""A shop floor for notice tests: a store, a member with purchases, staff who clock in."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from storelens import accounts, stores
from storelens.api.auth import issue_token
from storelens.api.deps import current_time
from storelens.config import Settings
from storelens.core.events import make_event
from storelens.recognition import store as face_store
from storelens.recognition.keyring import EMBEDDING_DIM, FaceKeyring
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import consent_records, customers, order_lines, orders, products

STORE = "cafe-01"
MEMBER = "L-ada"
PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

CATALOGUE = [
    ("flat-white", "Flat white", "coffee", 3.6),
    ("croissant", "Butter croissant", "bakery", 2.4),
    ("almond-croissant", "Almond croissant", "bakery", 3.1),
    ("oat-latte", "Oat latte", "coffee", 3.9),
    ("brownie", "Brownie", "bakery", 2.9),
]


class Floor:
    """Puts people, shifts and purchases into the database the way production would."""

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine, self.settings = engine, settings
        self.log = EventLog(engine)

    def store(self, store_id: str = STORE, name: str = "Café") -> str:
        with self.engine.begin() as conn:
            stores.create_store(conn, store_id, name)
        return store_id

    def member(
        self, customer_id: str = MEMBER, *, first: str = "Ada", greeting: str | None = "Ady"
    ) -> str:
        with self.engine.begin() as conn:
            conn.execute(
                insert(customers),
                {
                    "source_system": "crm",
                    "source_record_id": f"r-{customer_id}",
                    "customer_id": customer_id,
                    "first_name": first,
                    "last_name": "Lovelace",
                    "email": f"{customer_id.lower()}@example.com",
                    "loyalty_id": customer_id,
                    "greeting_name": greeting,
                },
            )
        return customer_id

    def consent(
        self, customer_id: str, purpose: str, granted: bool, at: datetime, channel: str = "app"
    ) -> None:
        """A consent decision as the consent projection stores it."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(consent_records),
                {
                    "subject": customer_id,
                    "purpose": purpose,
                    "granted": granted,
                    "channel": channel,
                    "ts": at,
                    "event_id": uuid.uuid4(),
                },
            )

    def recognisable(
        self,
        customer_id: str = MEMBER,
        *,
        store_id: str = STORE,
        at: datetime = T0 - timedelta(days=1),
        stores: list[str] | None = None,
        approved: bool = True,
    ) -> None:
        """The store's recognition switched on and the member enrolled under biometric
        consent and (unless ``approved`` is false) approved by an admin (one sealed
        embedding, a random one: no face is matched here), as the enrollment and
        approval routes store them."""
        keyring = FaceKeyring(os.urandom(32))
        vector = np.random.default_rng(7).standard_normal(EMBEDDING_DIM).astype(np.float32)
        with self.engine.begin() as conn:
            face_store.set_recognition(conn, store_id, True, by="admin", at=at)
            consent_id = face_store.record_consent(
                conn,
                customer_id,
                text_version="v1",
                store_ids=stores,
                recorded_by="ana",
                at=at,
                approved_by="admin" if approved else None,
            )
            face_store.add_embeddings(conn, consent_id, customer_id, [vector], keyring, at)

    def catalogue(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(products),
                [{"id": i, "name": n, "category": c, "price": p} for i, n, c, p in CATALOGUE],
            )

    def order(
        self, customer_id: str | None, at: datetime, *items: str, store_id: str = STORE
    ) -> None:
        order_id = f"o-{uuid.uuid4().hex[:8]}"
        prices = {i: p for i, _, _, p in CATALOGUE}
        with self.engine.begin() as conn:
            conn.execute(
                insert(orders),
                {
                    "store_id": store_id,
                    "order_id": order_id,
                    "ts": at,
                    "channel": "in_store",
                    "customer_id": customer_id,
                    "total": round(sum(prices[i] for i in items), 2),
                    "currency": "EUR",
                    "event_id": uuid.uuid4(),
                },
            )
            conn.execute(
                insert(order_lines),
                [
                    {
                        "store_id": store_id,
                        "order_id": order_id,
                        "line_no": n,
                        "product_id": item,
                        "qty": 1,
                        "unit_price": prices[item],
                    }
                    for n, item in enumerate(items, start=1)
                ],
            )

    def history(self) -> None:
        """Ada: flat white three times (once with a croissant); others: flat white +
        almond croissant is the common pair."""
        self.catalogue()
        for days in (30, 12, 2):
            extra = ("croissant",) if days == 12 else ()
            self.order(MEMBER, T0 - timedelta(days=days), "flat-white", *extra)
        for n in range(6):
            self.order(None, T0 - timedelta(days=n + 1), "flat-white", "almond-croissant")
        self.order(None, T0 - timedelta(days=3), "flat-white", "brownie")

    def staff(self, username: str | None = None) -> str:
        username = username or f"staff-{uuid.uuid4().hex[:8]}"
        with self.engine.begin() as conn:
            accounts.create_user(conn, username, PASSWORD, accounts.Role.staff)
        return username

    def token(self, username: str) -> dict[str, str]:
        """Bearer headers without a sign-in round trip (Argon2 per user is slow)."""
        assert self.settings is not None
        with self.engine.connect() as conn:
            found = accounts.token_version(conn, username)
        assert found is not None, username
        token, _ = issue_token(self.settings, username, accounts.Role.staff, found[2])
        return {"Authorization": f"Bearer {token}"}

    def scanner(self, store_id: str = STORE) -> dict[str, str]:
        """Key headers of the store's loyalty scanner: devices announce arrivals, staff
        do not (they could then claim any customer and read their profile)."""
        with self.engine.begin() as conn:
            _, secret = accounts.create_api_key(conn, f"scanner-{store_id}", store_id=store_id)
        return {"X-API-Key": secret}

    def clock(self, kind: str, *staff_ids: str, at: datetime, store_id: str = STORE) -> None:
        self.log.append(
            [
                make_event(
                    f"staff.clock_{kind}",
                    {"staff_id": s, "role": "sales"},
                    id=str(uuid.uuid4()),
                    ts=at.isoformat(),
                    store_id=store_id,
                    source="till",
                )
                for s in staff_ids
            ]
        )


def raise_body(**overrides: Any) -> dict[str, Any]:
    return {"store_id": STORE, "customer_id": MEMBER, "trigger": "loyalty_scan", **overrides}


@pytest.fixture
def floor(engine: Engine, settings: Settings) -> Floor:
    return Floor(engine, settings)


@pytest.fixture
def suggesting_shop(client: TestClient, floor: Floor, engine: Engine, settings: Settings) -> Floor:
    """Ada (flat white on days -100, -30, -12 and -2) and the crowd; the clock at T0 for
    the requests and the recommendation engine the claimer view suggests from."""
    client.app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
    reco = RecommendationEngine(engine, settings, MemoryCandidates(600), clock=lambda: T0)
    client.app.state.recommendations = reco  # type: ignore[attr-defined]
    floor.store()
    floor.member()
    floor.history()
    floor.order(MEMBER, T0 - timedelta(days=100), "flat-white")  # outside the 60-day window
    return floor
