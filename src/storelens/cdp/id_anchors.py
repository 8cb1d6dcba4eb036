"""Which records a customer id belongs with: read from the trail, for ids to follow them.

Rows are kept under customer ids (consent, events, scores, face enrollments), so when
records part (an analyst's unmerge, a full run that splits a customer) each id must go
with the records it stands for, or an erasure for one person misses their rows and one
for the other takes them (reviews found both). An id stands for:

- the records carrying it as their loyalty id, where a card's id became the customer
  id; if no record carries it any more (the card was reissued), the records the event
  log shows ever carried it;
- else the records it was made for: its ``new`` change in ``identity_changes``;
- for an id from before ``new`` changes were written for every minted id (a database
  older than 2026-12-07), the records of the split that minted it, or else of the
  merge that retired it, when that change names it alone.

Records that merely joined an id later (a run writes no change for a record joining a
customer) never count: rows written under the id before they came are not theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, Text, cast, select

from storelens.privacy.traces import record_key_of
from storelens.storage.tables import events, identity_changes

__all__ = ["anchor_records"]

_MINTED = re.compile(r"C[0-9A-F]{12}")
"""The shape of an id :func:`storelens.cdp.clusters.mint_customer_id` makes: never a
card's, so the log need not be searched for one."""


def _sole(others: object) -> str | None:
    """The only id a change names besides its customer, if it names just one."""
    return others[0] if isinstance(others, list) and len(others) == 1 else None


def _made_for(conn: Connection, ids: set[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {i: set() for i in ids}
    if not found:
        return found
    legacy: dict[str, dict[str, set[str]]] = {"split": {}, "merge": {}}
    for kind, cid, others, records in conn.execute(
        select(
            identity_changes.c.kind,
            identity_changes.c.customer_id,
            identity_changes.c.others,
            identity_changes.c.records,
        ).where(identity_changes.c.kind.in_(("new", "split", "merge")))
    ):
        if kind == "new" and cid in found:
            found[cid].update(records or [])
        elif kind in legacy and (sole := _sole(others)) is not None and sole in found:
            # the one id a split minted, or a merge retired
            legacy[kind].setdefault(sole, set()).update(records or [])
    for i in ids:
        if not found[i]:
            found[i] = legacy["split"].get(i) or legacy["merge"].get(i) or set()
    return found


def _card_holders(conn: Connection, card: str) -> set[str]:
    """Records the event log shows ever carrying ``card`` as their loyalty id."""
    rows = conn.execute(
        select(events.c.payload).where(
            events.c.type == "customer.upserted",
            cast(events.c.payload, Text).contains(card, autoescape=True),
        )
    ).scalars()
    return {
        key
        for payload in rows
        if isinstance(payload, dict)
        and payload.get("loyalty_id") == card
        and (key := record_key_of(payload)) is not None
    }


def anchor_records(
    conn: Connection,
    ids: Iterable[str],
    loyalty_of: Mapping[str, str | None],
    *,
    search_log: bool = True,
) -> dict[str, set[str]]:
    """Per id, the records among ``loyalty_of``'s keys (record -> its loyalty id now) that
    it stands for; an empty set when none of them is (the id then follows nobody).

    ``search_log=False`` skips the event log search for reissued cards (a full run asks
    about every retired id; an unmerge about a few)."""
    wanted = set(ids)
    made = _made_for(conn, wanted)
    present = set(loyalty_of)
    out: dict[str, set[str]] = {}
    for i in wanted:
        cards = {k for k, loyalty in loyalty_of.items() if loyalty == i}
        if not cards and search_log and not _MINTED.fullmatch(i):
            cards = _card_holders(conn, i) & present
        out[i] = cards or (made[i] & present)
    return out
