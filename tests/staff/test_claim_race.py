"""The race the issue asks for: 50 staff claim one notice at the same moment, through a
real uvicorn server, 100 times, on SQLite and on PostgreSQL. Exactly one 200 each time,
every other answer a 409 that says a colleague was first, and the database names the
same winner as the HTTP answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, insert, select

from storelens.storage.tables import notices, users

from ..conftest import LiveServer
from .conftest import STORE, Floor

CLAIMERS = 50
ROUNDS = 100


async def _round(
    client: httpx.AsyncClient,
    raiser: dict[str, str],
    staff: list[tuple[str, dict[str, str]]],
    n: int,
) -> tuple[str, list[tuple[str, int, str]]]:
    body = {"store_id": STORE, "customer_id": f"L-{n:03d}", "trigger": "loyalty_scan"}
    raised = await client.post("/v1/notices", json=body, headers=raiser)
    assert raised.status_code == 201, raised.text
    nid = raised.json()["id"]
    start = asyncio.Event()

    async def claim(name: str, headers: dict[str, str]) -> tuple[str, int, str]:
        await start.wait()  # all 50 requests leave together
        r = await client.post(f"/v1/notices/{nid}/claim", headers=headers)
        return name, r.status_code, r.text

    tasks = [asyncio.create_task(claim(name, h)) for name, h in staff]
    await asyncio.sleep(0)
    start.set()
    return nid, await asyncio.gather(*tasks)


async def _race(
    url: str, raiser: dict[str, str], staff: list[tuple[str, dict[str, str]]]
) -> list[tuple[str, list[tuple[str, int, str]]]]:
    # No keep-alive: a connection the server closes as idle while the client reuses it
    # would read as a failed claim; fresh local connections cost next to nothing.
    limits = httpx.Limits(max_connections=CLAIMERS + 5, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return [await _round(client, raiser, staff, n) for n in range(ROUNDS)]


def test_fifty_claimers_one_winner_a_hundred_times(
    floor: Floor, engine: Engine, server: LiveServer
) -> None:
    floor.store()
    for n in range(ROUNDS):
        floor.member(f"L-{n:03d}", greeting=None)
    names = [f"claimer-{i:02d}" for i in range(CLAIMERS)]
    with engine.begin() as conn:  # no Argon2 hash per claimer: they never sign in with one
        conn.execute(
            insert(users),
            [{"username": u, "password_hash": "!", "role": "staff", "active": True} for u in names],
        )
    floor.clock("in", *names, at=datetime.now(UTC) - timedelta(minutes=5))
    staff = [(u, floor.token(u)) for u in names]

    rounds = asyncio.run(_race(server.url, floor.scanner(), staff))

    outcomes: Counter[str] = Counter()
    with engine.connect() as conn:
        winners_in_db = dict(conn.execute(select(notices.c.id, notices.c.claimed_by)).all())
    for nid, answers in rounds:
        statuses = Counter(status for _, status, _ in answers)
        assert statuses == {200: 1, 409: CLAIMERS - 1}, (nid, statuses, answers[:3])
        assert all("already claimed" in text for _, status, text in answers if status == 409)
        (winner,) = [name for name, status, _ in answers if status == 200]
        assert winners_in_db[nid] == winner
        outcomes[winner] += 1
    assert sum(outcomes.values()) == ROUNDS
