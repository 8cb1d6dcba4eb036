"""Data-subject requests: export everything held about a person, or erase it and prove it.

Both walk the registry in one transaction: an export is a consistent snapshot, and an
erasure either happens in every database store or in none (log files, outside the
database, are rewritten inside that window and stay redacted if the commit fails,
which errs on the side of the person). The erasure's audit row is written in the same
transaction and names the person only by the pseudonym the kept rows now carry, so the
audit trail can say that an erasure happened without keeping whom it was about.
After the commit the verification scan runs and its report is the erasure's answer.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from storelens.core.errors import NotFound
from storelens.privacy import audit
from storelens.privacy.registry import PersonalStore, Subject, SubjectRequest, registered_stores
from storelens.privacy.scan import ScanReport, scan_subject
from storelens.privacy.staff_names import without_staff_names
from storelens.privacy.subject import PSEUDONYM_PREFIX, resolve_subject
from storelens.storage.dialects import dialect_for

log = logging.getLogger(__name__)

__all__ = ["Erasure", "erase_customer", "export_customer", "kept_after_erasure"]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure did: items per store, the pseudonym kept rows carry, the scan."""

    pseudonym: str
    erased: dict[str, int]
    kept: dict[str, str]
    scan: ScanReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "pseudonym": self.pseudonym,
            "erased": dict(self.erased),
            "kept": dict(self.kept),
            "scan": self.scan.as_dict(),
        }


def _subject(conn: Connection, customer_id: str) -> Subject:
    subject = resolve_subject(conn, customer_id)
    if subject is None:
        raise NotFound(f"no customer {customer_id!r}")
    return subject


def _settle(
    engine: Engine, subject: Subject, stores: Sequence[PersonalStore], committed: bool
) -> None:
    """Each store's after-commit work. A failure is logged, not raised: the erasure has
    committed (or its own error is on the way), and the scan after it reports anything
    left behind."""
    for store in stores:
        if store.settle is None:
            continue
        try:
            removed = store.settle(engine, subject, committed)
        except Exception:
            log.exception("erasure: settling %s failed", store.name)  # no ids in logs
            continue
        if removed:
            log.info("erasure: %s removed %d item(s) put back during it", store.name, removed)


def kept_after_erasure(stores: Sequence[PersonalStore] | None = None) -> dict[str, str]:
    """What each store keeps after an erasure, and why (stores that keep nothing omitted)."""
    return {s.name: s.kept for s in stores or registered_stores() if s.kept}


def export_customer(
    engine: Engine,
    customer_id: str,
    actor: audit.Actor,
    log_paths: tuple[Path, ...] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything registered about the person, one key per store under ``stores``."""
    stores = registered_stores()
    with engine.begin() as conn:
        subject = _subject(conn, customer_id)
        request = SubjectRequest(conn, subject, log_paths=log_paths)
        data = without_staff_names(conn, {s.name: s.export(request) for s in stores})
        audit.record(
            conn,
            actor,
            "customer.export",
            "customer",
            subject.customer_id,
            {"items": {name: len(items) for name, items in data.items()}},
        )
    return {
        "customer_id": subject.customer_id,
        "requested_id": subject.requested_id,
        "known_ids": list(subject.ids),
        "exported_at": (now or datetime.now(UTC)).isoformat(),
        "stores": data,
    }


def erase_customer(
    engine: Engine,
    customer_id: str,
    actor: audit.Actor,
    reason: str,
    log_paths: tuple[Path, ...] = (),
) -> Erasure:
    """Erase the person from every registered store, then scan for what is left."""
    reason = reason.strip()
    if not reason:
        raise ValueError("an erasure needs a reason (e.g. the request's reference)")
    stores = registered_stores()
    pseudonym = PSEUDONYM_PREFIX + secrets.token_hex(8)
    subject: Subject | None = None
    committed = False
    try:
        with engine.begin() as conn:
            # First: rows another process computed from a read before this erasure
            # either commit before it (and are deleted below) or wait and see it.
            dialect_for(conn).lock_erasures(conn, shared=False)
            subject = _subject(conn, customer_id)
            request = SubjectRequest(conn, subject, pseudonym=pseudonym, log_paths=log_paths)
            erased = {store.name: store.erase(request) for store in stores}
            audit.record(
                conn,
                actor,
                audit.ERASE_ACTION,
                "customer",
                pseudonym,
                {"reason": reason, "erased": erased},
            )
        committed = True
    finally:
        if subject is not None:  # committed or rolled back: lift the fences either way
            _settle(engine, subject, stores, committed)
    report = scan_subject(engine, subject, log_paths, stores)
    return Erasure(pseudonym, erased, kept_after_erasure(stores), report)
