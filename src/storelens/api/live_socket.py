"""One live WebSocket session, shared by the staff sockets (alerts and notices).

Both sockets admit a person the same way (credential, role, store scope), then relay a
hub queue to the device until the device hangs up or the credential expires. Keeping
that loop in one place means a fix to how sockets end (the 4401 on expiry, a hang-up
mid-send) reaches every live feed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable
from typing import Any

from fastapi import HTTPException, WebSocket, WebSocketDisconnect

from storelens.accounts import Role
from storelens.api.auth import Principal
from storelens.api.websocket_auth import (
    clock_of,
    credential_expiry,
    store_refusal,
    websocket_principal,
)

__all__ = ["admit", "relay"]

Message = dict[str, Any]


async def admit(
    websocket: WebSocket,
    store_id: str,
    roles: Collection[Role],
    *,
    ticket: str | None,
    token: str | None,
) -> Principal | None:
    """The person opening a socket on ``store_id``, or None once the socket is closed
    with the reason: 4401 no valid credential, 4403 wrong role or store, 4404 no store."""
    try:
        principal = websocket_principal(websocket, ticket=ticket, token=token)
    except HTTPException:
        principal = None
    if principal is None or principal.role not in roles:
        await websocket.close(code=4401 if principal is None else 4403)
        return None
    refusal = await asyncio.to_thread(store_refusal, websocket, principal, store_id)
    if refusal is not None:
        await websocket.close(code=refusal)
        return None
    return principal


async def relay(
    websocket: WebSocket,
    principal: Principal,
    queue: asyncio.Queue[Message],
    *,
    opening: Iterable[Message],
    wrap: Callable[[Message], Message] = lambda message: message,
) -> None:
    """Send ``opening``, then every queued message through ``wrap``, until the device
    hangs up or the credential expires (then close with 4401). The caller accepted the
    socket and owns the queue's subscription."""

    async def forward() -> None:
        while True:
            await websocket.send_json(wrap(await queue.get()))

    async def until_closed() -> None:  # the device hung up: stop waiting
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    expiry = asyncio.create_task(credential_expiry(principal, clock_of(websocket)))
    hangup = asyncio.create_task(until_closed())
    tasks = [asyncio.create_task(forward()), hangup, expiry]
    try:
        for message in opening:
            await websocket.send_json(message)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if expiry.done() and not hangup.done():
            await websocket.close(code=4401, reason="token expired")
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
