"""Pipeline updates become validated ``vision.*`` events, and events go somewhere.

`VisionEvents` turns `PipelineUpdates` into envelopes (source ``"vision"``, a fresh uuid,
the store's id, UTC times) validated by the same pydantic models the server uses, so a
bad value fails on the edge box naming its field. Writers share one small protocol
(``write(events)``, ``close()``):

* `JsonlWriter`: ``DIR/events.jsonl``, plus ``DIR/heatmap.png`` of the whole run at close;
* `ApiWriter`: batches POSTed to ``/v1/events`` with a device key, retried with backoff
  on network errors, 429 and 5xx; a refused event is an error, never silently dropped;
* `OutboxWriter`: the edge outbox (SQLite on the box's disk), for ``storelens edge`` to
  forward when the network allows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from storelens.core.events import EVENT_TYPES, EventBase, HeatmapEvent
from storelens.core.layout import StoreLayout
from storelens.vision.heatmap import HeatGrid, day_heatmap, save_heatmap_png
from storelens.vision.pipeline import PipelineUpdates, camera_of

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ApiWriter",
    "EventWriter",
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
    """Batches of events POSTed to ``{server}/v1/events`` with ``Authorization: Bearer``.

    Network errors, 429 and 5xx are retried ``retries`` times with doubling waits (a
    ``Retry-After`` is honoured); 401/403 and events the server rejects raise
    ``RuntimeError`` with its reason. ``transport`` swaps the network out in tests.
    """

    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        batch_size: int = 500,
        retries: int = 5,
        backoff_s: float = 0.5,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        url = httpx.URL(server_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"server URL must be http(s)://host[:port], not {server_url!r}")
        if not api_key.strip():
            raise ValueError("an API key is needed: --api-key or STORELENS_API_KEY")
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be between 1 and 10000, got {batch_size}")
        self.url = str(url).rstrip("/")
        self.batch_size, self.retries, self.backoff_s = batch_size, retries, backoff_s
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
            transport=transport,
        )
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
        import httpx

        body = b"[" + b",".join(batch) + b"]"
        wait = self.backoff_s
        for attempt in range(self.retries + 1):
            reason: str
            try:
                response = self._client.post("/v1/events", content=body)
            except httpx.TransportError as exc:
                reason, retry_after = f"cannot reach {self.url}: {exc!r}", None
            else:
                if response.status_code == 200:
                    self._settle(response, len(batch))
                    return
                if response.status_code not in (429, 500, 502, 503, 504):
                    raise RuntimeError(
                        f"{self.url} refused the events ({response.status_code}): "
                        f"{response.text[:300]}"
                    )
                reason = f"{self.url} answered {response.status_code}"
                retry_after = _seconds(response.headers.get("Retry-After"))
            if attempt == self.retries:
                raise RuntimeError(f"gave up after {self.retries + 1} tries: {reason}")
            self._sleep(retry_after if retry_after is not None else wait)
            wait *= 2

    def _settle(self, response: httpx.Response, sent: int) -> None:
        answer = response.json()
        self.sent += sent
        self.accepted += int(answer.get("accepted", 0))
        self.duplicates += int(answer.get("duplicates", 0))
        if rejected := int(answer.get("rejected", 0)):
            errors = answer.get("errors", [])[:3]
            raise RuntimeError(f"the server rejected {rejected} events: {errors}")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, min(float(value), 300.0)) if value is not None else None
    except ValueError:
        return None


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
