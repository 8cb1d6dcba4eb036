"""The registry of personal data: the one list of every place that holds data about a customer.

Export and erasure walk this list, so a store of personal data that is not registered
is a store an access request misses and an erasure leaves behind. Each domain module
that keeps data about a person registers a :class:`PersonalStore` (an exporter and an
eraser for a :class:`Subject`) when it is imported; :data:`PROVIDERS` names those
modules, so this file is where a reviewer sees the whole inventory, and a capability
built later (features, scores, recommendations, embeddings, campaign logs) adds its
module here and its ``register(...)`` call beside its own tables.

::

    # in storelens/recommend/serving.py
    from storelens.privacy.registry import PersonalStore, SubjectRequest, register

    def _export(req: SubjectRequest) -> list[dict[str, Any]]: ...
    def _erase(req: SubjectRequest) -> int: ...

    register(PersonalStore("recommendations", _export, _erase, tables=("recommendations",)))

Stores are not only tables: a cache, a file or a model registers the same way, reaching
its data through the :class:`SubjectRequest` (which carries the connection, the log
files and the pseudonym of this erasure).
"""

from __future__ import annotations

import dataclasses
import importlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

__all__ = [
    "PROVIDERS",
    "PersonalStore",
    "Relinker",
    "Settler",
    "Subject",
    "SubjectRequest",
    "personal_store",
    "plain",
    "register",
    "registered_stores",
    "relinked",
]

PROVIDERS: tuple[str, ...] = (
    "storelens.cdp.records",  # source records, as each source system holds them
    "storelens.cdp.erasure",  # identity resolution (aliases, changes, decisions), profiles
    "storelens.sales",  # orders: kept, pseudonymised
    "storelens.privacy.consent",  # consent history
    "storelens.privacy.spine",  # the event log, audit rows, dead letters, log files
    "storelens.staff.notices",  # staff notices about a member (who, where, outcome)
    "storelens.recognition.store",  # biometric consents and sealed face embeddings
    "storelens.predict.forgetting",  # computed features, scores, segment memberships
    "storelens.recommend.evidence",  # impressions, declined items, candidate caches
    "storelens.recommend.blend_scores",  # each customer's learned-blend scores
)
"""Modules that register personal stores when imported; a new store's module goes here."""


@dataclass(frozen=True, slots=True)
class Subject:
    """One person, resolved before anything is exported or erased.

    ``ids`` are every key the person's rows may carry (their customer id, ids retired
    by merges, loyalty ids, ``source:record`` keys); ``records`` are their source
    records as (source system, record id); ``emails``, ``phones`` (each spelling seen)
    and ``names`` (first, last) are what the verification scan searches for besides ids.
    """

    customer_id: str
    requested_id: str
    ids: tuple[str, ...]
    records: tuple[tuple[str, str], ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    names: tuple[tuple[str, str], ...] = ()

    def identifiers(self) -> list[tuple[str, str]]:
        """(kind, value) for every single-value identifier: ids, e-mails and phones."""
        found = [("id", v) for v in self.ids]
        found += [("email", v) for v in self.emails]
        found += [("phone", v) for v in self.phones]
        return found


@dataclass(frozen=True, slots=True)
class SubjectRequest:
    """What an exporter or eraser is handed: the open transaction and the subject.

    ``pseudonym`` replaces the person's ids where a row must be kept (orders for the
    accounts, audit rows); it is empty for an export. ``log_paths`` are the log files
    the operator configured (``STORELENS_PRIVACY_LOG_PATHS``).
    """

    conn: Connection
    subject: Subject
    pseudonym: str = ""
    log_paths: tuple[Path, ...] = ()


Exporter = Callable[[SubjectRequest], list[dict[str, Any]]]
Eraser = Callable[[SubjectRequest], int]
Settler = Callable[[Engine, Subject, bool], int]
"""Work after the erasure's transaction has ended, told whether it committed: on a
commit, remove what a request running alongside it may have put back (a cache fill, a
queued row) from a read made before the commit; either way, lift what the eraser fenced.
A rolled-back erasure must delete nothing: the person is still a customer. It returns
how many items it removed."""
Relinker = Callable[[Connection, frozenset[str]], int]
"""Work when identity resolution has just linked or split people, in its transaction,
given the ids it changed: records' ``source:record`` keys and their old and new
customer ids (``privacy.subject.people_ids`` gives every id of those people, for a
store that holds anything at all; a first run names every record). A consent
decision is the person's under any of their ids, so a merge can hand a card a
withdrawal made under a web account: a store that keeps data only under consent
removes it here, not at its next run (a security review found scores kept until the
next scoring run). It returns how many items it removed."""


@dataclass(frozen=True, slots=True)
class PersonalStore:
    """A place holding personal data, with how to export and how to erase it.

    ``export`` returns the person's items as JSON-ready objects (what remains after
    an erasure is a trace, so the verification scan calls it again); ``erase``
    returns how many items it deleted or pseudonymised. ``tables`` names the database
    tables it covers (a test checks every table with personal data is covered);
    ``kept`` says what survives erasure and why, for docs and the erase report.
    ``settle`` runs once the erasure's transaction has ended (see :data:`Settler`);
    ``relink`` when resolution has linked or split people (see :data:`Relinker`).
    """

    name: str
    export: Exporter
    erase: Eraser
    tables: tuple[str, ...] = ()
    kept: str | None = None
    description: str = field(default="", compare=False)
    settle: Settler | None = None
    relink: Relinker | None = None


_stores: dict[str, PersonalStore] = {}


def register(store: PersonalStore) -> PersonalStore:
    """Add ``store`` to the registry; a second store with the same name is a mistake."""
    known = _stores.get(store.name)
    if known is not None and known != store:
        raise ValueError(f"a personal store named {store.name!r} is already registered")
    _stores[store.name] = store
    return store


def personal_store(
    name: str, *, erase: Eraser, tables: tuple[str, ...] = (), kept: str | None = None
) -> Callable[[Exporter], Exporter]:
    """Decorate an exporter to register it together with its eraser."""

    def wrap(export: Exporter) -> Exporter:
        register(
            PersonalStore(
                name, export, erase, tables=tables, kept=kept, description=export.__doc__ or ""
            )
        )
        return export

    return wrap


def plain(value: Any) -> Any:
    """A row or value as JSON types: times as ISO strings, UUIDs as text, rows as dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if hasattr(value, "_mapping"):  # a SQLAlchemy row
        return plain(dict(value._mapping))
    return value


def relinked(conn: Connection, ids: frozenset[str]) -> dict[str, int]:
    """Run every store's :data:`Relinker` for the people known by ``ids``, in ``conn``'s
    transaction; what each removed, by store name."""
    if not ids:
        return {}
    return {s.name: s.relink(conn, ids) for s in registered_stores() if s.relink is not None}


def registered_stores() -> list[PersonalStore]:
    """Every registered store, by name, after loading :data:`PROVIDERS`."""
    for module in PROVIDERS:
        importlib.import_module(module)
    return [_stores[name] for name in sorted(_stores)]
