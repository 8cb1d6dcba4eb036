"""Who an approval reaches, on SQLite and PostgreSQL: one enrollment, the person's newest.

A review's attacks on the first version, each now a test: approval addressed to a
customer landed on a later re-enrollment (see test_enrollment_api.py for the route);
after a merge two enrollments stayed in force and approval reached only the newest,
while the gallery loaded both; an admin's self-approved enrollment outlived their
demotion; an approver could approve what they recorded. Random vectors stand for faces:
nothing here is matched, only loaded or refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, insert, select, update

from storelens import accounts, stores
from storelens.cdp.resolution import resolve
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import Conflict, Forbidden, NotFound
from storelens.privacy import audit
from storelens.recognition import store as face_store
from storelens.recognition.approval import approve, pending_approval
from storelens.recognition.keyring import EMBEDDING_DIM, FaceKeyring
from storelens.storage.tables import customer_aliases, customers, users

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
KEYRING = FaceKeyring(os.urandom(32))
PASSWORD = "correct horse battery staple"


def _admin(name: str) -> audit.Actor:
    return audit.Actor(name=name, kind="user", role="admin")


def _enrolled(conn: Connection, customer_id: str, by: str, *, approved: bool = False) -> int:
    """A consent with one random embedding, as the enrollment route stores it."""
    consent = face_store.record_consent(
        conn,
        customer_id,
        text_version="v1",
        store_ids=None,
        recorded_by=by,
        at=T0,
        approved_by=by if approved else None,
    )
    vector = np.random.default_rng(consent).standard_normal(EMBEDDING_DIM).astype(np.float32)
    face_store.add_embeddings(conn, consent, customer_id, [vector], KEYRING, T0)
    return consent


@pytest.fixture
def shop(engine: Engine, add_customer: Callable[[str], None]) -> Engine:
    for customer in ("X", "Y"):
        add_customer(customer)
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="boss", at=T0)
        accounts.create_user(conn, "boss", PASSWORD, accounts.Role.admin)
        accounts.create_user(conn, "eve", PASSWORD, accounts.Role.admin)
        accounts.create_user(conn, "zoe", PASSWORD, accounts.Role.admin)  # never the last
        conn.execute(update(users).values(created_at=T0 - timedelta(days=30)))  # hired before
    return engine


def _gallery(conn: Connection) -> list[str]:
    """Each loaded embedding's member, in no particular order but sorted."""
    gallery = face_store.load_gallery(conn, "cafe-01", KEYRING)
    members = sorted(gallery.members)
    assert len(gallery) == len(members)  # one embedding each in these tests
    return members


def test_after_a_merge_only_the_newest_enrollment_counts_anywhere(shop: Engine) -> None:
    """Y merged into X leaves two enrollments in force. The newest stands for the person
    in the pending list, in matching and in the gallery; the older cannot be approved,
    so an approval of what the admin saw under X cannot admit the face enrolled as Y."""
    with shop.begin() as conn:
        older = _enrolled(conn, "X", "alice")
        newer = _enrolled(conn, "Y", "mallory")
        conn.execute(insert(customer_aliases), {"alias": "Y", "customer_id": "X", "at": T0})
    with shop.begin() as conn:
        assert [c["id"] for c in pending_approval(conn, 10)] == [newer]
        with pytest.raises(Conflict, match=f"enrollment {newer} replaced it"):
            approve(conn, older, actor=_admin("boss"), at=T0)
    with shop.begin() as conn:
        approve(conn, newer, actor=_admin("boss"), at=T0)
    with shop.connect() as conn:
        assert _gallery(conn) == ["X"]  # one embedding: the newer consent's only
        assert face_store.consent_in_force(conn, "X", "cafe-01")


def test_an_older_approved_enrollment_does_not_match_beside_a_newer_waiting_one(
    shop: Engine,
) -> None:
    with shop.begin() as conn:
        approved = _enrolled(conn, "X", "alice")
        approve(conn, approved, actor=_admin("boss"), at=T0)
        _enrolled(conn, "Y", "mallory")  # made before the merge, so nothing withdrew X's
        conn.execute(insert(customer_aliases), {"alias": "Y", "customer_id": "X", "at": T0})
    with shop.connect() as conn:
        assert _gallery(conn) == []
        assert not face_store.consent_in_force(conn, "X", "cafe-01")


def test_a_self_approved_enrollment_lapses_when_its_admin_is_demoted_or_disabled(
    shop: Engine,
) -> None:
    with shop.begin() as conn:
        own = _enrolled(conn, "X", "eve", approved=True)
        approved_by_boss = _enrolled(conn, "Y", "alice")
        approve(conn, approved_by_boss, actor=_admin("eve"), at=T0)
    with shop.connect() as conn:
        assert _gallery(conn) == ["X", "Y"]
    with shop.begin() as conn:
        accounts.set_role(conn, "eve", accounts.Role.staff)
    with shop.connect() as conn:
        assert _gallery(conn) == ["Y"]  # an approval given to someone else's stands
        assert not face_store.consent_in_force(conn, "X", "cafe-01")
        assert [c["id"] for c in pending_approval(conn, 10)] == [own]
    with shop.begin() as conn, pytest.raises(Forbidden, match="another admin"):
        approve(conn, own, actor=_admin("eve"), at=T0)  # promoted again, still not a second person
    with shop.begin() as conn:
        approve(conn, own, actor=_admin("boss"), at=T0 + timedelta(hours=1))
    with shop.connect() as conn:
        assert _gallery(conn) == ["X", "Y"]

    with shop.begin() as conn:
        admins_own = _enrolled(conn, "X", "boss", approved=True)
        accounts.set_active(conn, "boss", False)
    with shop.connect() as conn:
        assert [c["id"] for c in pending_approval(conn, 10)] == [admins_own]


def test_approving_the_unknown_the_withdrawn_and_the_approved_is_refused(shop: Engine) -> None:
    with shop.begin() as conn:
        consent = _enrolled(conn, "X", "alice")
    with shop.begin() as conn, pytest.raises(NotFound):
        approve(conn, consent + 100, actor=_admin("boss"), at=T0)
    with shop.begin() as conn:
        approve(conn, consent, actor=_admin("boss"), at=T0)
    with shop.begin() as conn, pytest.raises(Conflict, match="already approved"):
        approve(conn, consent, actor=_admin("eve"), at=T0)
    with shop.begin() as conn:
        face_store.withdraw(conn, "X", by="alice", at=T0)
    with shop.begin() as conn, pytest.raises(Conflict, match="withdrawn or replaced"):
        approve(conn, consent, actor=_admin("boss"), at=T0)


def _record(conn: Connection, record: str, email: str, phone: str, first: str) -> None:
    now = T0
    conn.execute(
        customers.insert().values(
            source_system="pos",
            source_record_id=record,
            first_name=first,
            last_name="Example",
            email=email,
            phone=phone,
            created_at=now,
            updated_at=now,
        )
    )


def _customer_of(conn: Connection, record: str) -> str:
    return str(
        conn.execute(
            select(customers.c.customer_id).where(customers.c.source_record_id == record)
        ).scalar_one()
    )


def test_a_merge_or_unmerge_sends_the_members_approvals_back_to_an_admin(
    engine: Engine,
) -> None:
    """A review: staff member Sam enrolls his own face under his own member record and an
    admin rightly approves it. Sam then gives his record Vera's e-mail and phone, and
    identity resolution merges the two: his approved face stood for Vera, and an unmerge
    kept it so. Now resolution linking or splitting a person's records sends their
    approved enrollments back to the pending list, named by the person they would
    stand for now."""
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="boss", at=T0)
        accounts.create_user(conn, "boss", PASSWORD, accounts.Role.admin)
        _record(conn, "vera", "vera@example.com", "+4930111111", "Vera")
        _record(conn, "sam", "sam@example.com", "+4930222222", "Sam")
    resolve(engine, "full")
    with engine.begin() as conn:
        vera, sam = _customer_of(conn, "vera"), _customer_of(conn, "sam")
        approve(conn, _enrolled(conn, vera, "ana"), actor=_admin("boss"), at=T0)
        sams = _enrolled(conn, sam, "sam")
        approve(conn, sams, actor=_admin("boss"), at=T0)
        assert _gallery(conn) == sorted([vera, sam])
        conn.execute(
            update(customers)
            .where(customers.c.source_record_id == "sam")
            .values(email="vera@example.com", phone="+4930111111", first_name="Vera")
        )
    resolve(engine, "full")
    with engine.connect() as conn:
        merged = _customer_of(conn, "vera")
        assert _customer_of(conn, "sam") == merged
        assert _gallery(conn) == []
        assert not face_store.consent_in_force(conn, merged, "cafe-01")
        [waiting] = pending_approval(conn, 10)
    assert (waiting["id"], waiting["customer_id"], waiting["enrolled_as"]) == (sams, merged, sam)

    with engine.begin() as conn:  # an admin who approves anyway, then the unmerge
        approve(conn, sams, actor=_admin("boss"), at=T0)
    split = unmerge(engine, merged, ["pos:sam"], audit.Actor("ana", "user", "analyst"))
    assert {split.customer_id, split.new_customer_id} == {vera, sam}  # the merge undone
    with engine.connect() as conn:
        assert _gallery(conn) == []
        # Each enrollment stands for its own person again, both waiting: before ids
        # followed the records, Sam's still stood for Vera and hid hers.
        waiting = {c["id"]: c["customer_id"] for c in pending_approval(conn, 10)}
        assert waiting[sams] == sam and set(waiting.values()) == {vera, sam}


def test_a_new_admin_with_a_departed_admins_name_does_not_revive_their_approval(
    shop: Engine,
) -> None:
    with shop.begin() as conn:
        own = _enrolled(conn, "X", "eve", approved=True)
        accounts.delete_user(conn, "eve")
    with shop.connect() as conn:
        assert _gallery(conn) == []
    with shop.begin() as conn:
        accounts.create_user(conn, "eve", PASSWORD, accounts.Role.admin)
    with shop.connect() as conn:
        assert _gallery(conn) == []
        assert [c["id"] for c in pending_approval(conn, 10)] == [own]


def test_the_server_shell_cannot_approve_its_own_logins_enrollment(shop: Engine) -> None:
    with shop.begin() as conn:
        consent = _enrolled(conn, "X", "bob")
    shell = audit.Actor(name="cli:bob", kind="system")
    with shop.begin() as conn, pytest.raises(Forbidden):
        approve(conn, consent, actor=shell, at=T0)
    with shop.begin() as conn:
        approve(conn, consent, actor=audit.Actor(name="cli:root", kind="system"), at=T0)
