"""The one client that posts events to ``POST /v1/events``, and its typed answer.

It also raises staff notices (``POST /v1/notices``) for an edge box that recognises
members at the entrance, with the same errors. The edge forwarder
(:mod:`storelens.ingest.edge`) and the vision API writer
(:mod:`storelens.vision.outputs`) both send through :class:`IngestClient`, so the
server's answer is parsed in one place, into :class:`IngestResponse` (the same shape
as the API's ``IngestResult``), and every HTTP outcome falls into one branch of a
small exception tree that tells the caller whether waiting can help::

    StorelensError
    └── IngestError
        ├── IngestUnavailable   network, timeout, 408/429/5xx, a 200 that is not an
        │                       answer: keep the events and retry (``retry_after``)
        └── IngestRefused       a 4xx: the server will not take this request as sent
            └── IngestAuthError 401/403, also an ``AuthError``: a person must act

What to do with a refusal (halve the batch on 413, quarantine, stop) stays with the
caller: the forwarder keeps events on disk, the vision writer has nowhere to keep them.

Plain ``http://`` to a host other than this machine sends the device key in clear
text; the client logs a warning once per host, and carries on (a shop's LAN may be
trusted). ``transport`` swaps the network for an in-memory one in tests.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from storelens.core.errors import AuthError, StorelensError
from storelens.core.retry import parse_retry_after

__all__ = [
    "MAX_BATCH",
    "IngestAuthError",
    "IngestClient",
    "IngestError",
    "IngestRefused",
    "IngestRejection",
    "IngestResponse",
    "IngestUnavailable",
    "NoticeReceipt",
    "is_loopback_host",
]

log = logging.getLogger(__name__)

MAX_BATCH = 10_000  # the server's default STORELENS_MAX_BATCH
_TRANSIENT = frozenset({408, 429})
_warned_hosts: set[str] = set()
_warned_lock = threading.Lock()


class IngestError(StorelensError):
    """Posting events did not get an answer that counts them."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        self.status = status
        self.detail = detail  # the server's own reason, when it gave one
        super().__init__(message)


class IngestUnavailable(IngestError):
    """Worth retrying: the link, the server or its answer failed, not the data."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status, detail)


class IngestRefused(IngestError):
    """A 4xx: the same request would be refused again."""


class IngestAuthError(IngestRefused, AuthError):
    """The server refused the API key (401) or its role or store scope (403)."""


class IngestRejection(BaseModel):
    """One event the server refused, by its position in the batch sent."""

    index: int
    id: str | None = None
    errors: list[dict[str, Any]]


class IngestResponse(BaseModel):
    """The server's count of one batch: the shape of the API's ``IngestResult``."""

    accepted: int
    duplicates: int
    rejected: int
    conflicts: int = 0  # of the rejected; a server from before id conflicts sends none
    errors: list[IngestRejection]

    def matches(self, event_ids: Sequence[str | None]) -> bool:
        """Whether this answer can be the count of exactly these events.

        Counts must add up, listed rejections must be distinct, in range and name the
        event that was at that position; the server may list fewer rejections than it
        counts (it caps the list), never more.
        """
        n = len(event_ids)
        indices = {r.index for r in self.errors}
        return (
            min(self.accepted, self.duplicates, self.rejected) >= 0
            and self.accepted + self.duplicates + self.rejected == n
            and len(indices) == len(self.errors) <= self.rejected
            and all(0 <= i < n for i in indices)
            and all(r.id is None or r.id == event_ids[r.index] for r in self.errors)
        )


class NoticeReceipt(BaseModel):
    """What ``POST /v1/notices`` answers that a device needs (the rest is ignored)."""

    id: str
    store_id: str
    state: str
    created: bool


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: traffic that never leaves the machine."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _warn_plain_http(url: httpx.URL) -> None:
    if url.scheme != "http" or is_loopback_host(url.host):
        return
    with _warned_lock:
        if url.host in _warned_hosts:
            return
        _warned_hosts.add(url.host)
    log.warning(
        "sending events and the device API key to %s over plain http://: anyone on the "
        "network can read them; use https:// (see docs/operations.md, TLS)",
        url.host,
    )


def _detail(response: httpx.Response) -> str:
    """The server's reason, short enough for a log line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return response.text.strip()[:200] or response.reason_phrase


class IngestClient:
    """Posts JSON arrays of events with a device API key; see the module docstring."""

    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        timeout_s: float = 30.0,
        user_agent: str = "storelens",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(server_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"server URL must be http(s)://host[:port], not {server_url!r}")
        if not api_key.strip():
            raise ValueError("an API key is needed: --api-key or STORELENS_API_KEY")
        _warn_plain_http(url)
        self.url = str(url).rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            headers={
                "X-API-Key": api_key,
                "Content-Type": "application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
            transport=transport,
        )

    def post_events(self, body: bytes) -> IngestResponse:
        """Send one batch (a JSON array, already encoded) and return the server's count.

        Raises :class:`IngestUnavailable`, :class:`IngestAuthError` or
        :class:`IngestRefused`; never returns an answer that failed to parse.
        """
        try:
            response = self._client.post("/v1/events", content=body)
        except httpx.TransportError as exc:
            raise IngestUnavailable(f"cannot reach {self.url}: {exc!r}") from exc
        status = response.status_code
        if status == 200:
            try:
                return IngestResponse.model_validate_json(response.content)
            except ValidationError:
                raise IngestUnavailable(
                    f"{self.url} answered 200 with an unexpected body: {response.text[:200]}",
                    status,
                ) from None
        raise self._failure(response)

    def post_notice(self, store_id: str, customer_id: str, trigger: str) -> NoticeReceipt:
        """Announce a member to the store's staff (``POST /v1/notices``, the edge box's
        way to the staff app); errors as for :meth:`post_events`. The member already
        waiting there is answered with their notice (``created`` false), not an error."""
        body = {"store_id": store_id, "customer_id": customer_id, "trigger": trigger}
        try:
            response = self._client.post("/v1/notices", json=body)
        except httpx.TransportError as exc:
            raise IngestUnavailable(f"cannot reach {self.url}: {exc!r}") from exc
        if response.status_code in (200, 201):
            try:
                return NoticeReceipt.model_validate_json(response.content)
            except ValidationError:
                raise IngestUnavailable(
                    f"{self.url} answered {response.status_code} with an unexpected body",
                    response.status_code,
                ) from None
        raise self._failure(response)

    def _failure(self, response: httpx.Response) -> IngestError:
        """The one branch of the error tree an answer that is not a success falls in."""
        status = response.status_code
        detail = _detail(response)
        reason = f"{self.url} answered {status}: {detail}"
        if status in (401, 403):
            return IngestAuthError(reason, status, detail)
        if 400 <= status < 500 and status not in _TRANSIENT:
            return IngestRefused(reason, status, detail)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return IngestUnavailable(reason, status, detail, retry_after)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> IngestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
