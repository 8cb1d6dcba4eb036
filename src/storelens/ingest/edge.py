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
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from storelens.core.errors import AuthError, field_errors
from storelens.core.events import EVENT_TYPES, Event, event_adapter
from storelens.ingest.outbox import Outbox, SourceCursor

__all__ = [
    "STDIN",
    "Backoff",
    "EdgeAuthError",
    "EdgeReport",
    "Forwarder",
    "ForwarderStats",
    "edge_status",
    "run_edge",
]

log = logging.getLogger(__name__)

STDIN = Path("-")
"""Pass as ``source`` to :func:`run_edge` to read events from standard input."""

_TAGS = tuple(EVENT_TYPES)
_MAX_BATCH = 10_000  # the server's default STORELENS_MAX_BATCH
_IDLE_POLL_S = 0.2  # also how soon puts from another process are noticed
_CHUNK = 1 << 20

BadLineHandler = Callable[[int, str], None]


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


# -- reading a source ----------------------------------------------------------------


@dataclass(slots=True)
class EdgeReport:
    """What :func:`run_edge` did: lines read from the source, events queued, bad lines."""

    lines: int = 0
    queued: int = 0
    bad_lines: int = 0
    stats: ForwarderStats = field(default_factory=ForwarderStats)


def _log_bad_line(line: int, reason: str) -> None:
    log.warning("edge source line %d skipped: %s", line, reason)


def _queue_lines(
    outbox: Outbox,
    numbered: Sequence[tuple[int, bytes]],
    cursor: SourceCursor | None,
    report: EdgeReport,
    on_bad_line: BadLineHandler,
) -> None:
    """Validate lines and queue the good ones in one commit (one fsync for many events)."""
    good: list[Event] = []
    for line, raw in numbered:
        text = raw.strip()
        if not text:
            continue
        report.lines += 1
        try:
            good.append(event_adapter.validate_json(text))
        except ValidationError as exc:
            report.bad_lines += 1
            on_bad_line(line, "; ".join(f"{e.loc}: {e.msg}" for e in field_errors(exc, _TAGS)))
    if good or cursor is not None:
        report.queued += outbox.put(good, cursor=cursor)


def _tail_file(
    path: Path,
    outbox: Outbox,
    halt: threading.Event,
    follow: bool,
    report: EdgeReport,
    on_bad_line: BadLineHandler,
) -> None:
    """Read a JSONL file from where the last run stopped, then follow it as it grows.

    The read position is committed with the events, so a restart resumes exactly; a
    file that was replaced (new inode) or truncated is read again from the top.
    """
    name = str(path.resolve())
    fh = None
    inode = offset = line = 0
    pending = b""
    try:
        while not halt.is_set():
            if fh is None:
                try:
                    fh = path.open("rb")
                except FileNotFoundError:
                    if not follow:
                        raise
                    halt.wait(_IDLE_POLL_S)
                    continue
                st = os.fstat(fh.fileno())
                saved = outbox.cursor(name)
                if saved and saved.inode == st.st_ino and saved.offset <= st.st_size:
                    offset, line = saved.offset, saved.line
                else:
                    offset, line = 0, 0
                fh.seek(offset)
                inode, pending = st.st_ino, b""
            data = fh.read(_CHUNK)
            if data:
                *complete, pending = (pending + data).split(b"\n")
                if complete:
                    numbered = []
                    for raw in complete:
                        line += 1
                        offset += len(raw) + 1
                        numbered.append((line, raw))
                    cursor = SourceCursor(name, inode, offset, line)
                    _queue_lines(outbox, numbered, cursor, report, on_bad_line)
                continue
            if not follow:
                if pending.strip():  # a last line without its newline
                    cursor = SourceCursor(name, inode, offset + len(pending), line + 1)
                    _queue_lines(outbox, [(line + 1, pending)], cursor, report, on_bad_line)
                return
            try:
                st = os.stat(path)
            except FileNotFoundError:
                halt.wait(_IDLE_POLL_S)  # rotated away; the new file is not there yet
                continue
            if st.st_ino != inode or st.st_size < offset + len(pending):
                fh.close()  # replaced or truncated: the old handle is read to its end
                fh = None
                continue
            halt.wait(_IDLE_POLL_S)
    finally:
        if fh is not None:
            fh.close()


def _read_stream(
    fd: int,
    outbox: Outbox,
    halt: threading.Event,
    report: EdgeReport,
    on_bad_line: BadLineHandler,
) -> None:
    """Read events from a pipe until it closes; ``select`` keeps ``halt`` responsive."""
    pending = b""
    line = 0
    can_select = os.name == "posix"
    while not halt.is_set():
        if can_select and not select.select([fd], [], [], _IDLE_POLL_S)[0]:
            continue
        data = os.read(fd, _CHUNK)
        if not data:
            if pending.strip():
                _queue_lines(outbox, [(line + 1, pending)], None, report, on_bad_line)
            return
        *complete, pending = (pending + data).split(b"\n")
        numbered = []
        for raw in complete:
            line += 1
            numbered.append((line, raw))
        _queue_lines(outbox, numbered, None, report, on_bad_line)


def run_edge(
    outbox_path: Path | str,
    server_url: str,
    api_key: str,
    source: Path | None,
    stop: threading.Event,
    *,
    batch_size: int = 1000,
    follow: bool = True,
    on_bad_line: BadLineHandler | None = None,
) -> EdgeReport:
    """Queue events from ``source`` and forward the outbox until ``stop`` is set.

    ``source`` is a JSONL file to tail (``follow=False`` reads it once), :data:`STDIN`
    for standard input, or None to only forward what other processes put in the
    outbox. Once a finite source is read, this returns when the outbox is empty (or
    at ``stop``; what is left stays queued for the next run). Bad lines are passed to
    ``on_bad_line(line number, reason)`` (logged by default) and skipped. Raises
    :class:`EdgeAuthError` when the server refuses the key.
    """
    report_bad = on_bad_line or _log_bad_line
    outbox = Outbox(outbox_path)
    report = EdgeReport()
    try:
        forwarder = Forwarder(outbox, server_url, api_key, batch_size)
    except BaseException:
        outbox.close()
        raise
    report.stats = forwarder.stats
    halt = threading.Event()
    input_closed = threading.Event()
    forwarding_done = threading.Event()
    failures: list[BaseException] = []

    def forward() -> None:
        try:
            forwarder.run(halt, input_closed=input_closed if source is not None else None)
        except BaseException as exc:
            failures.append(exc)
        finally:
            forwarding_done.set()

    def read() -> None:
        try:
            if source == STDIN:
                _read_stream(0, outbox, halt, report, report_bad)
            elif source is not None:
                _tail_file(source, outbox, halt, follow, report, report_bad)
            else:
                return
            if not halt.is_set():
                input_closed.set()
        except BaseException as exc:
            failures.append(exc)

    forwarder_thread = threading.Thread(target=forward, name="edge-forwarder")
    reader_thread = threading.Thread(target=read, name="edge-reader", daemon=True)
    forwarder_thread.start()
    reader_thread.start()
    try:
        while not (stop.is_set() or failures or forwarding_done.is_set()):
            stop.wait(0.1)
    finally:
        halt.set()
        forwarder_thread.join()
        reader_thread.join(timeout=5)
        forwarder.close()
        if not reader_thread.is_alive():  # a reader stuck in a blocking read keeps it
            outbox.close()
    if failures:
        raise failures[0]
    return report


def edge_status(outbox_path: Path | str) -> dict[str, Any]:
    """Pending and quarantined counts and the age of the backlog, for ``storelens edge status``."""
    path = Path(outbox_path)
    if not path.exists():
        raise FileNotFoundError(f"no edge outbox at {path}")
    with Outbox(path) as outbox:
        oldest_ts, oldest_queued = outbox.oldest()
        return {
            "path": str(path),
            "pending": outbox.size(),
            "quarantined": outbox.quarantined_count(),
            "oldest_pending_ts": oldest_ts.isoformat() if oldest_ts else None,
            "oldest_queued_at": oldest_queued.isoformat() if oldest_queued else None,
        }
