"""The event side of a simulated day: collect, order, give ids, validate and write.

The engine emits events out of time order (an order's ``order.ready`` is known when the
barista starts it); sorting once at the end by (time, emission number) gives a
deterministic file. Ids are drawn in file order from a generator of their own, so they
depend on the seed and nothing else, and are validated with the very models ingest uses.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import IO, Any

from storelens.core.events import event_batch_adapter
from storelens.sim.clock import to_datetime

__all__ = ["DayJournal"]

_CHUNK = 4096


class DayJournal:
    """Events of one day; flushed to the file in time order when the day is done."""

    def __init__(self, store_id: str, id_rng: random.Random) -> None:
        self.store_id = store_id
        self._ids = id_rng
        self._raw: list[tuple[int, int, dict[str, Any]]] = []
        self.counts: Counter[str] = Counter()

    def add(
        self,
        ms: int,
        type_: str,
        source: str,
        payload: dict[str, Any],
        subject: str | None = None,
        *,
        in_store: bool = True,
    ) -> None:
        doc = {
            "type": type_,
            "source": source,
            "subject": subject,
            "store_id": self.store_id if in_store else None,
            "payload": payload,
        }
        self._raw.append((ms, len(self._raw), doc))

    def write(self, out: IO[str]) -> int:
        """Validate and write the day's events, oldest first; returns how many."""
        self._raw.sort(key=lambda item: (item[0], item[1]))
        for start in range(0, len(self._raw), _CHUNK):
            docs = []
            for ms, _, doc in self._raw[start : start + _CHUNK]:
                doc["ts"] = to_datetime(ms)
                doc["id"] = uuid.UUID(int=self._ids.getrandbits(128), version=4)
                docs.append(doc)
                self.counts[doc["type"]] += 1
            events = event_batch_adapter.validate_python(docs)
            out.write("".join(event.model_dump_json() + "\n" for event in events))
        written = len(self._raw)
        self._raw.clear()
        return written
