"""Store-and-forward for edge boxes (camera boxes, POS bridges): no event is lost to a bad link.

Events go into a local :class:`~storelens.ingest.outbox.Outbox` first; a
:class:`Forwarder` posts them to ``POST /v1/events`` and deletes only what the
server acknowledged (accepted, or a duplicate of something it already has). Because
the server deduplicates on the event id, a batch whose answer was lost in a crash or
an outage is simply sent again and counted as duplicates: at-least-once delivery
from here becomes exactly-once in the server's log.

Failures are told apart by whether waiting can fix them: an unreachable server, a
timeout, 5xx and 429 keep everything and back off (exponential, full jitter,
``Retry-After`` honoured); a refused key (401/403) stops with an error a person must
act on; a body too large (413) halves the batch; an event the server rejects is
quarantined with the server's reason instead of being retried forever.

Reading sources into the outbox, and :func:`~storelens.ingest.edge_sources.run_edge`
that runs both, are in :mod:`storelens.ingest.edge_sources`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from storelens.core.errors import AuthError
from storelens.ingest.outbox import Outbox

__all__ = ["Backoff", "EdgeAuthError", "Forwarder", "ForwarderStats"]

log = logging.getLogger(__name__)

_MAX_BATCH = 10_000  # the server's default STORELENS_MAX_BATCH
_IDLE_POLL_S = 0.2  # also how soon puts from another process are noticed


class EdgeAuthError(AuthError):
    """The server refused the edge's API key: retrying cannot fix that, a person must."""


class Backoff:
    """Exponential backoff with full jitter: a random wait in ``[0, ceiling]``.

    Full jitter spreads the retries of many edge boxes that lost the server at the
    same moment, so they do not all come back in the same second.
    """

    def __init__(
        self,
        initial: float = 0.5,
        factor: float = 2.0,
        cap: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or factor < 1 or cap < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and cap >= initial")
        self.initial, self.factor, self.cap = initial, factor, cap
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography

    @property
    def ceiling(self) -> float:
        """The longest the next wait may be."""
        return float(min(self.cap, self.initial * self.factor**self.attempt))

    def next(self) -> float:
        delay = self._rng.uniform(0.0, self.ceiling)
        if self.ceiling < self.cap:  # stop counting once capped: factor**n would overflow
            self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class ForwarderStats:
    """Counters since the forwarder started; ``sent`` counts every event put in a request,
    resends included, so ``sent - acked - quarantined`` shows the cost of outages."""

    sent: int = 0
    acked: int = 0
    quarantined: int = 0
    retries: int = 0
    requests: int = 0
    batch_size: int = 0
    last_error: str | None = None


class _Rejection(BaseModel):
    index: int
    id: str | None = None
    errors: list[dict[str, Any]]


class _IngestAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    errors: list[_Rejection]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return response.text.strip()[:200] or response.reason_phrase


def _event_id(raw: str) -> str | None:
    value = orjson.loads(raw).get("id")
    return str(value) if value is not None else None


class Forwarder:
    """Moves events from an outbox to the server; see the module docstring for the rules.

    ``transport`` and ``sleep`` exist for tests: a mock network, and a clock that
    does not really wait. ``stats`` may be read from another thread.
    """

    def __init__(
        self,
        outbox: Outbox,
        server_url: str,
        api_key: str,
        batch_size: int = 1000,
        *,
        initial_backoff: float = 0.5,
        backoff_factor: float = 2.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 300.0,
        timeout: float = 30.0,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not 1 <= batch_size <= _MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {_MAX_BATCH}")
        url = httpx.URL(server_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"server URL must be http(s)://host[:port], not {server_url!r}")
        self.outbox = outbox
        self.server_url = str(url).rstrip("/")
        self.backoff = Backoff(initial_backoff, backoff_factor, max_backoff, rng)
        self.max_retry_after = max_retry_after
        self.stats = ForwarderStats(batch_size=batch_size)
        self._limit = self._max_limit = batch_size
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.server_url,
            headers={
                "X-API-Key": api_key,
                "Content-Type": "application/json",
                "User-Agent": "storelens-edge",
            },
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- loops -----------------------------------------------------------------------

    def run(self, stop: threading.Event, *, input_closed: threading.Event | None = None) -> None:
        """Forward until ``stop`` is set (or, once ``input_closed`` is set, until empty).

        Raises :class:`EdgeAuthError` when the server refuses the key; the events stay.
        """
        while not stop.is_set():
            closed = input_closed is not None and input_closed.is_set()
            seen = self.outbox.generation
            delay = self._step()
            if delay is None:
                if closed:
                    return
                self.outbox.wait_for_events(seen, _IDLE_POLL_S)
            elif delay > 0:
                self._pause(delay, stop)

    def drain(self, timeout: float | None = None, stop: threading.Event | None = None) -> bool:
        """Forward until the outbox is empty; False if ``timeout`` ran out first.

        The deadline is checked between requests, so one slow request can overrun it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        stop = stop or threading.Event()
        while not stop.is_set():
            delay = self._step()
            if delay is None:
                return True
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                delay = min(delay, remaining)
            if delay > 0:
                self._pause(delay, stop)
        return not self.outbox.peek(1)

    def _pause(self, delay: float, stop: threading.Event) -> None:
        if self._sleep is not None:
            self._sleep(delay)
        else:
            stop.wait(delay)

    # -- one batch -------------------------------------------------------------------

    def _step(self) -> float | None:
        """Send one batch. Returns None when there was nothing to send, else how long
        to wait before the next batch (0 to go straight on)."""
        batch = self.outbox.peek(self._limit)
        if not batch:
            return None
        body = ("[" + ",".join(raw for _, raw in batch) + "]").encode()
        self.stats.sent += len(batch)
        self.stats.requests += 1
        try:
            response = self._client.post("/v1/events", content=body)
        except httpx.RequestError as exc:
            return self._retry(f"cannot reach {self.server_url}: {exc!r}")
        status = response.status_code
        if status == 200:
            return self._settle(batch, response)
        if status in (401, 403):
            message = (
                f"the server at {self.server_url} refused this edge's API key "
                f"({status}: {_detail(response)}); give the edge a valid device key. "
                "Pending events stay in the outbox."
            )
            self.stats.last_error = message
            raise EdgeAuthError(message)
        if status == 413:
            return self._shrink(batch, response, lasting=True)
        if status in (400, 422):
            return self._shrink(batch, response, lasting=False)
        return self._retry(
            f"server answered {status}: {_detail(response)}",
            _retry_after(response.headers.get("retry-after")),
        )

    def _retry(self, reason: str, retry_after: float | None = None) -> float:
        """Keep everything and wait: the failure is the link's or the server's, not the data's."""
        self.stats.retries += 1
        self.stats.last_error = reason
        delay = self.backoff.next()
        if retry_after is not None:
            delay = min(retry_after, self.max_retry_after)
        log.warning("edge forwarder: %s; retrying in %.1f s", reason, delay)
        return delay

    def _shrink(
        self, batch: list[tuple[int, str]], response: httpx.Response, lasting: bool
    ) -> float:
        """Halve the batch; a single event the server still refuses is quarantined.

        A 413 lowers the batch size for good (the server's limit is lower than ours);
        a 400/422 only for the next try, so one poisonous event is cornered by halving.
        """
        reason = f"server answered {response.status_code}: {_detail(response)}"
        if len(batch) == 1:
            rowid, _ = batch[0]
            kind = "too_large" if response.status_code == 413 else "refused_body"
            if self.outbox.quarantine(rowid, [{"loc": "(event)", "msg": reason, "type": kind}]):
                self.stats.quarantined += 1
            log.warning("edge forwarder: quarantined event %d: %s", rowid, reason)
            self._limit = self._max_limit
            return 0.0
        self._limit = max(1, len(batch) // 2)
        if lasting:
            self._max_limit = self._limit
            self.stats.batch_size = self._limit
        self.stats.last_error = reason
        log.warning("edge forwarder: %s; trying batches of %d", reason, self._limit)
        return 0.0

    def _settle(self, batch: list[tuple[int, str]], response: httpx.Response) -> float:
        """Acknowledge what the server counted, quarantine what it rejected, and nothing
        else: an answer that does not add up acknowledges nothing (resending is safe)."""
        try:
            answer = _IngestAnswer.model_validate_json(response.content)
        except ValidationError:
            return self._retry(
                f"server answered 200 with an unexpected body: {response.text[:200]}"
            )
        n = len(batch)
        rejected = {r.index: r for r in answer.errors}
        consistent = (
            answer.accepted + answer.duplicates + answer.rejected == n
            and len(rejected) == len(answer.errors) <= answer.rejected
            and all(0 <= i < n for i in rejected)
            and all(r.id is None or r.id == _event_id(batch[i][1]) for i, r in rejected.items())
        )
        if not consistent:
            return self._retry(f"server's answer does not match the {n} events sent: {answer}")
        for i, item in sorted(rejected.items()):
            rowid, _ = batch[i]
            if self.outbox.quarantine(rowid, item.errors):
                self.stats.quarantined += 1
            log.warning("edge forwarder: server rejected event %s: %s", item.id, item.errors)
        if len(rejected) == answer.rejected:
            self.stats.acked += self.outbox.ack(
                rowid for i, (rowid, _) in enumerate(batch) if i not in rejected
            )
        else:
            # The server cut its error list short: which of the rest were accepted is
            # unknown, so send them again; this time they come back as duplicates.
            log.info("edge forwarder: rejections listed in part; re-sending the rest")
        if self.backoff.attempt:
            log.info("edge forwarder: server reachable again")
        self.backoff.reset()
        self._limit = self._max_limit
        return 0.0
