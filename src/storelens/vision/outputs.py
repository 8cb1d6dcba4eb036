"""Pipeline updates become validated ``vision.*`` events, and events go somewhere.

`VisionEvents` turns `PipelineUpdates` into envelopes (source ``"vision"``, a fresh uuid,
the store's id, UTC times) validated by the same pydantic models the server uses, so a
bad value fails on the edge box naming its field. Writers share one small protocol
(``write(events)``, ``close()``):

* `JsonlWriter`: ``DIR/events.jsonl``, plus ``DIR/heatmap.png`` of the whole run at close;
* `ApiWriter`: batches POSTed to ``/v1/events`` with a device key through the one
  ingest client, retried with backoff on network errors, 429 and 5xx; a refused event
  is an error, never silently dropped;
* `OutboxWriter`: the edge outbox (SQLite on the box's disk), for ``storelens edge`` to
  forward when the network allows.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from storelens.core.errors import StorelensError
from storelens.core.events import EVENT_TYPES, EventBase, HeatmapEvent
from storelens.core.layout import StoreLayout
from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.vision.heatmap import HeatGrid, day_heatmap, save_heatmap_png
from storelens.vision.pipeline_io import PipelineUpdates, camera_of

if TYPE_CHECKING:
    import httpx

    from storelens.ingest.client import IngestResponse

__all__ = [
    "ApiWriter",
    "EventWriter",
    "EventsRejected",
    "JsonlWriter",
    "OutboxWriter",
    "VisionEvents",
]

SOURCE = "vision"


class VisionEvents:
    """Builds the envelopes for one store. ``occupancy_camera`` names the camera behind
    occupancy and heat (one camera); None when several cameras were fused."""

    def __init__(self, store_id: str, occupancy_camera: str | None = None) -> None:
        self.store_id, self.occupancy_camera = store_id, occupancy_camera
        self.counts: dict[str, int] = {}

    def _event(self, type_: str, ts: Any, payload: dict[str, Any]) -> EventBase:
        self.counts[type_] = self.counts.get(type_, 0) + 1
        return EVENT_TYPES[type_].model_validate(
            {
                "id": uuid.uuid4(),
                "type": type_,
                "ts": ts,
                "source": SOURCE,
                "store_id": self.store_id,
                "payload": payload,
            }
        )

    def events(self, updates: PipelineUpdates) -> list[EventBase]:
        """One tick's worth (or a run's) of updates, in time order within each kind."""
        out = []
        for t in updates.tracks:
            payload = {"camera_id": t.camera_id, "track_id": t.person_id, "x": t.x, "y": t.y}
            if t.confidence is not None:
                payload["confidence"] = min(1.0, max(0.0, t.confidence))
            out.append(self._event("vision.track", t.ts, payload))
        floor = updates.floor
        for change in floor.zone_changes:
            payload = {
                "zone_id": change.zone_id,
                "track_id": change.person_id,
                "camera_id": camera_of(change.person_id),
            }
            if change.dwell_s is not None:
                payload["dwell_s"] = change.dwell_s
            out.append(self._event(f"vision.zone_{change.kind}", change.ts, payload))
        for crossing in floor.crossings:
            payload = {
                "line_id": crossing.line_id,
                "track_id": crossing.person_id,
                "direction": crossing.direction,
                "camera_id": camera_of(crossing.person_id),
            }
            out.append(self._event("vision.line_crossed", crossing.ts, payload))
        for visit in floor.store_visits:
            if not visit.at_door:
                continue  # a staff shift or a stray track, not a customer's visit
            payload = {
                "visit_id": visit.visit_id,
                "started_at": visit.start,
                "dwell_s": visit.dwell_s,
                "entered_by": visit.entered_by,
                "left_by": visit.left_by,
                "tracks": visit.tracks,
            }
            if self.occupancy_camera is not None:
                payload["camera_id"] = self.occupancy_camera
            out.append(self._event("vision.visit", visit.end, payload))
        for sample in floor.occupancy:
            payload = {"zone_id": sample.zone_id, "count": sample.count}
            if self.occupancy_camera is not None:
                payload["camera_id"] = self.occupancy_camera
            out.append(self._event("vision.occupancy", sample.ts, payload))
        for heat in updates.heat:
            grid = heat.grid.to_payload(self.occupancy_camera).model_dump()
            out.append(self._event("vision.heatmap", heat.ts, grid))
        return out


class EventWriter(Protocol):
    """Where events go; ``close`` flushes whatever is buffered."""

    def write(self, events: Sequence[EventBase]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """``DIR/events.jsonl``, one envelope a line; at close ``DIR/heatmap.png`` of the run.

    The picture shows only time per floor cell: nothing of any camera image.
    """

    def __init__(self, out_dir: Path | str, layout: StoreLayout, *, heatmap_png: bool = True):
        self.dir = Path(out_dir)
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(f"{self.dir} exists and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "events.jsonl"
        self.heatmap_path: Path | None = None
        self._layout, self._png = layout, heatmap_png
        self._file = self.path.open("wb")
        self._grids: list[HeatGrid] = []
        self.written = 0

    def write(self, events: Sequence[EventBase]) -> None:
        for event in events:
            self._file.write(orjson.dumps(event.model_dump(mode="json")) + b"\n")
            if isinstance(event, HeatmapEvent):
                self._grids.append(HeatGrid.from_payload(event.payload))
        self.written += len(events)

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        if self._png and self._grids:
            target = self.dir / "heatmap.png"
            self.heatmap_path = save_heatmap_png(target, self._layout, day_heatmap(self._grids))


class ApiWriter:
    """Batches of events POSTed to ``{server}/v1/events`` with a device key.

    Sent through :class:`~storelens.ingest.client.IngestClient`: network errors, 429
    and 5xx are retried ``retries`` times with capped jittered backoff (a
    ``Retry-After`` is honoured), then :class:`~storelens.ingest.client.IngestUnavailable`
    is raised; a refused key or request raises ``IngestRefused`` and events the server
    rejects raise :class:`EventsRejected` with its reasons, never silently dropped.
    ``transport`` swaps the network out and ``clock`` the waiting, in tests.
    """

    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        from storelens.ingest.client import MAX_BATCH, IngestClient

        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self._client = IngestClient(
            server_url,
            api_key,
            timeout_s=timeout_s,
            user_agent="storelens-vision",
            transport=transport,
        )
        self.url = self._client.url
        self.batch_size, self.retries = batch_size, retries
        self.backoff = Backoff(backoff_s, max_backoff_s, jitter="equal", rng=rng)
        self._clock = clock
        self._pending: list[bytes] = []
        self.sent = self.accepted = self.duplicates = 0

    def write(self, events: Sequence[EventBase]) -> None:
        self._pending += [orjson.dumps(e.model_dump(mode="json")) for e in events]
        while len(self._pending) >= self.batch_size:
            self._post(self._pending[: self.batch_size])
            del self._pending[: self.batch_size]

    def close(self) -> None:
        try:
            if self._pending:
                self._post(self._pending)
                self._pending = []
        finally:
            self._client.close()

    def _post(self, batch: list[bytes]) -> None:
        from storelens.ingest.client import IngestUnavailable

        body = b"[" + b",".join(batch) + b"]"
        self.backoff.reset()
        for attempt in range(self.retries + 1):
            try:
                answer = self._client.post_events(body)
            except IngestUnavailable as exc:
                if attempt == self.retries:
                    raise IngestUnavailable(
                        f"gave up after {self.retries + 1} tries: {exc}", exc.status
                    ) from exc
                self._clock.sleep(self.backoff.next(exc.retry_after))
                continue
            self._settle(answer, batch)
            return

    def _settle(self, answer: IngestResponse, batch: list[bytes]) -> None:
        self.sent += len(batch)
        self.accepted += answer.accepted
        self.duplicates += answer.duplicates
        if answer.rejected:
            shown = [r.model_dump() for r in answer.errors[:3]]
            raise EventsRejected(f"the server rejected {answer.rejected} events: {shown}")


class EventsRejected(StorelensError):
    """The server counted a batch but refused some of its events (with its reasons)."""


class OutboxWriter:
    """Events into the edge outbox; ``storelens edge`` forwards them to the server."""

    def __init__(self, path: Path | str) -> None:
        from storelens.ingest.outbox import Outbox

        self._outbox = Outbox(path)
        self.written = 0

    def write(self, events: Sequence[EventBase]) -> None:
        if events:
            self.written += self._outbox.put(events)

    def close(self) -> None:
        self._outbox.close()
