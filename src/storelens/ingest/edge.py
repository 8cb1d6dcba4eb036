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
quarantined with the server's reason instead of being retried forever. That includes
an event whose id the server already holds for a different event (error type
``id_conflict``): resending it unchanged can never store it, and giving it a new id
here could bring back an event an erasure redacted on the server, so a person decides
(it is counted in ``conflicts`` and logged by id). Posting and
telling answers apart is :class:`~storelens.ingest.client.IngestClient`'s job, waiting
is :class:`~storelens.core.retry.Backoff`'s; the rules of what to keep are here.

Reading sources into the outbox, and :func:`~storelens.ingest.edge_sources.run_edge`
that runs both, are in :mod:`storelens.ingest.edge_sources`.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import httpx
import orjson

from storelens.core.errors import ID_CONFLICT
from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.ingest.client import (
    MAX_BATCH,
    IngestAuthError,
    IngestClient,
    IngestRefused,
    IngestResponse,
    IngestUnavailable,
)
from storelens.ingest.outbox import Outbox

__all__ = ["EdgeAuthError", "Forwarder", "ForwarderStats"]

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.2  # also how soon puts from another process are noticed


class EdgeAuthError(IngestAuthError):
    """The server refused the edge's API key: retrying cannot fix that, a person must."""


@dataclass(slots=True)
class ForwarderStats:
    """Counters since the forwarder started; ``sent`` counts every event put in a request,
    resends included, so ``sent - acked - quarantined`` shows the cost of outages."""

    sent: int = 0
    acked: int = 0
    quarantined: int = 0
    conflicts: int = 0  # of the quarantined: the server holds another event under the id
    retries: int = 0
    requests: int = 0
    batch_size: int = 0
    last_error: str | None = None


def _event_id(raw: str) -> str | None:
    value = orjson.loads(raw).get("id")
    return str(value) if value is not None else None


class Forwarder:
    """Moves events from an outbox to the server; see the module docstring for the rules.

    ``transport`` and ``clock`` exist for tests: an in-memory network, and a clock
    that does not really wait (:class:`~storelens.core.retry.ManualClock`). ``stats``
    may be read from another thread.
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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        self.outbox = outbox
        self.backoff = Backoff(
            initial_backoff,
            max_backoff,
            factor=backoff_factor,
            jitter="full",  # many edge boxes lose the same server at once: spread them
            max_retry_after=max_retry_after,
            rng=rng,
        )
        self.stats = ForwarderStats(batch_size=batch_size)
        self._limit = self._max_limit = batch_size
        self._clock = clock
        self._client = IngestClient(
            server_url, api_key, timeout_s=timeout, user_agent="storelens-edge", transport=transport
        )
        self.server_url = self._client.url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- loops -----------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        input_closed: threading.Event | None = None,
        give_up_after: int | None = None,
    ) -> None:
        """Forward until ``stop`` is set (or, once ``input_closed`` is set, until empty).

        ``give_up_after``: once the input is closed, return after that many failed
        tries in a row, the events still queued (``edge run --once`` from cron used to
        retry forever while the server was down, and the runs piled up).
        Raises :class:`EdgeAuthError` when the server refuses the key; the events stay.
        """
        failed = 0
        while not stop.is_set():
            closed = input_closed is not None and input_closed.is_set()
            seen = self.outbox.generation
            retries = self.stats.retries
            delay = self._step()
            failed = failed + 1 if self.stats.retries > retries else 0
            if delay is None:
                if closed:
                    return
                self.outbox.wait_for_events(seen, _IDLE_POLL_S)
                continue
            if closed and give_up_after is not None and failed >= give_up_after:
                return
            if delay > 0:
                self._clock.sleep(delay, stop)

    def drain(self, timeout: float | None = None, stop: threading.Event | None = None) -> bool:
        """Forward until the outbox is empty; False if ``timeout`` ran out first.

        The deadline is checked between requests, so one slow request can overrun it.
        """
        deadline = None if timeout is None else self._clock.now() + timeout
        stop = stop or threading.Event()
        while not stop.is_set():
            delay = self._step()
            if delay is None:
                return True
            if deadline is not None:
                remaining = deadline - self._clock.now()
                if remaining <= 0:
                    return False
                delay = min(delay, remaining)
            if delay > 0:
                self._clock.sleep(delay, stop)
        return not self.outbox.peek(1)

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
            answer = self._client.post_events(body)
        except IngestUnavailable as exc:
            return self._retry(str(exc), exc.retry_after)
        except IngestAuthError as exc:
            message = (
                f"the server at {self.server_url} refused this edge's API key "
                f"({exc.status}: {exc.detail}); give the edge a valid device key. "
                "Pending events stay in the outbox."
            )
            self.stats.last_error = message
            raise EdgeAuthError(message, exc.status, exc.detail) from None
        except IngestRefused as exc:
            if exc.status == 413:
                return self._shrink(batch, exc, lasting=True)
            if exc.status in (400, 422):
                return self._shrink(batch, exc, lasting=False)
            # 404, 405, 415...: a proxy or a wrong URL, which a person can fix while
            # the events wait here.
            return self._retry(str(exc))
        return self._settle(batch, answer)

    def _retry(self, reason: str, retry_after: float | None = None) -> float:
        """Keep everything and wait: the failure is the link's or the server's, not the data's."""
        self.stats.retries += 1
        self.stats.last_error = reason
        delay = self.backoff.next(retry_after)
        log.warning("edge forwarder: %s; retrying in %.1f s", reason, delay)
        return delay

    def _shrink(self, batch: list[tuple[int, str]], refusal: IngestRefused, lasting: bool) -> float:
        """Halve the batch; a single event the server still refuses is quarantined.

        A 413 lowers the batch size for good (the server's limit is lower than ours);
        a 400/422 only for the next try, so one poisonous event is cornered by halving.
        """
        reason = str(refusal)
        if len(batch) == 1:
            rowid, _ = batch[0]
            kind = "too_large" if refusal.status == 413 else "refused_body"
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

    def _settle(self, batch: list[tuple[int, str]], answer: IngestResponse) -> float:
        """Acknowledge what the server counted, quarantine what it rejected, and nothing
        else: an answer that does not add up acknowledges nothing (resending is safe)."""
        n = len(batch)
        if not answer.matches([_event_id(raw) for _, raw in batch]):
            return self._retry(f"server's answer does not match the {n} events sent: {answer}")
        rejected = {r.index: r for r in answer.errors}
        for i, item in sorted(rejected.items()):
            rowid, _ = batch[i]
            if self.outbox.quarantine(rowid, item.errors):
                self.stats.quarantined += 1
                if any(e.get("type") == ID_CONFLICT for e in item.errors):
                    self.stats.conflicts += 1
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
