"""One live WebSocket session, shared by the staff sockets (alerts and notices).

Both sockets admit a person the same way (credential, role, store scope), then relay a
hub queue to the device until the device hangs up, the credential expires or the
person or key is revoked (disabled, deleted, password reset, role changed; a key
revoked or deleted: see :mod:`storelens.api.socket_revocation`). Keeping that loop in
one place means a fix to how sockets end (the 4401 on expiry or revocation, a hang-up
mid-send) reaches every live feed at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

from fastapi import HTTPException, WebSocket, WebSocketDisconnect

from storelens.accounts import Role
from storelens.api.auth import Principal
from storelens.api.socket_revocation import Admission, revocation, standing_of
from storelens.api.websocket_auth import (
    clock_of,
    credential_expiry,
    store_refusal,
    websocket_principal,
)

__all__ = ["admit", "relay"]

log = logging.getLogger(__name__)

Message = dict[str, Any]
# Same code for both, so a client needs one rule; the reason tells a person what to do.
_REVOKED = {"user": "signed out: sign in again", "api_key": "API key revoked"}


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
    # The user or key row as the credential was just checked against; relay() watches it.
    standing = await asyncio.to_thread(standing_of, websocket, principal)
    if not await asyncio.to_thread(standing.holds):  # revoked since the check: no opening
        await websocket.close(code=4401, reason=_REVOKED[principal.kind])
        return None
    websocket.state.standing = standing
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
    hangs up, the credential expires or the person or key is revoked (then close with
    4401). The standing is re-read before each queued message and every
    ``RECHECK_S`` seconds. The caller admitted and accepted the socket and owns the
    queue's subscription."""
    standing: Admission | None = getattr(websocket.state, "standing", None)
    clock = clock_of(websocket)

    async def forward() -> None:  # returns (without sending) once revoked
        while True:
            message = await queue.get()
            if standing is not None and not await asyncio.to_thread(standing.holds):
                return
            await websocket.send_json(wrap(message))

    async def until_closed() -> None:  # the device hung up: stop waiting
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    expiry = asyncio.create_task(credential_expiry(principal, clock))
    revoked = asyncio.create_task(revocation(standing, clock))
    hangup = asyncio.create_task(until_closed())
    sender = asyncio.create_task(forward())
    tasks = [sender, hangup, expiry, revoked]
    try:
        for message in opening:
            await websocket.send_json(message)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if not hangup.done():
            stopped = sender.done() and not sender.cancelled() and sender.exception() is None
            failed = sender.done() and not sender.cancelled() and sender.exception() is not None
            if revoked.done() or stopped:
                await websocket.close(code=4401, reason=_REVOKED[principal.kind])
            elif expiry.done():
                await websocket.close(code=4401, reason="token expired")
            elif failed:  # the standing check itself failed: nothing more is sent
                log.warning("live socket closed: sending failed (%r)", sender.exception())
                await websocket.close(code=1011, reason="server error")
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
