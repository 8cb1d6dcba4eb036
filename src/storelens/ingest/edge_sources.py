"""Where an edge box's events come from, and the edge as a whole: read a source, forward.

:func:`run_edge` runs two threads: a reader that validates lines from a JSONL file
(tailed, resuming where the last run stopped) or standard input and queues them in
the outbox, and a :class:`~storelens.ingest.edge.Forwarder` that sends the outbox
to the server. The outbox sits between them, so neither waits for the other and a
crash loses nothing that was queued.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from storelens.core.errors import ConfigError, field_errors
from storelens.core.events import EVENT_TYPES, Event, event_adapter
from storelens.ingest.edge import Forwarder, ForwarderStats
from storelens.ingest.outbox import Outbox, SourceCursor, is_outbox_file

__all__ = ["STDIN", "BadLineHandler", "EdgeReport", "edge_status", "run_edge"]

log = logging.getLogger(__name__)

STDIN = Path("-")
"""Pass as ``source`` to :func:`run_edge` to read events from standard input."""

_TAGS = tuple(EVENT_TYPES)
_IDLE_POLL_S = 0.2  # how often a quiet file or pipe is looked at again
_CHUNK = 1 << 20

BadLineHandler = Callable[[int, str], None]


@dataclass(slots=True)
class EdgeReport:
    """What :func:`run_edge` did: lines read from the source, events queued, bad lines."""

    lines: int = 0
    queued: int = 0
    bad_lines: int = 0
    pending: int = 0
    """Events still in the outbox when the run ended (the server away, or stopped)."""
    stats: ForwarderStats = field(default_factory=ForwarderStats)


ONCE_GIVE_UP_AFTER = 5
"""Failed tries in a row after which a run that reads its source once stops, its
events left queued for the next run (with the backoff, about half a minute)."""


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
    :class:`~storelens.ingest.edge.EdgeAuthError` when the server refuses the key.
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
            forwarder.run(
                halt,
                input_closed=input_closed if source is not None else None,
                give_up_after=None if follow else ONCE_GIVE_UP_AFTER,
            )
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
        report.pending = outbox.size()
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
    if not is_outbox_file(path):
        raise ConfigError(f"{path} is not an edge outbox file")
    with Outbox(path) as outbox:
        oldest_ts, oldest_queued = outbox.oldest()
        return {
            "path": str(path),
            "pending": outbox.size(),
            "quarantined": outbox.quarantined_count(),
            "oldest_pending_ts": oldest_ts.isoformat() if oldest_ts else None,
            "oldest_queued_at": oldest_queued.isoformat() if oldest_queued else None,
        }
