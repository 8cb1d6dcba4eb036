"""The Recognition page, where an admin approves a staff member's face enrollment: who may
open it, what it lists (this store's waiting enrollments, audited), the approve form
(CSRF, one enrollment by its id, refusals with their reason), on SQLite and PostgreSQL.

Consents and random embeddings are written as the enrollment route stores them: no face
is matched here, and the page never shows a photo or an embedding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.web.dashboard_clients import in_process_site

from storelens.config import Settings
from storelens.recognition import store as face_store
from storelens.recognition.keyring import EMBEDDING_DIM, FaceKeyring
from storelens.storage.tables import audit_log

PASSWORD = "correct horse battery staple"
STORE = "cafe-01"
AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def site(settings: Settings, engine: Engine) -> TestClient:
    return in_process_site(settings, engine)


def _enrolled(engine: Engine, customer_id: str, by: str, covers: list[str] | None) -> int:
    vector = np.random.default_rng(1).standard_normal(EMBEDDING_DIM).astype(np.float32)
    with engine.begin() as conn:
        consent = face_store.record_consent(
            conn, customer_id, text_version="v1", store_ids=covers, recorded_by=by, at=AT
        )
        face_store.add_embeddings(
            conn, consent, customer_id, [vector], FaceKeyring(os.urandom(32)), AT
        )
    return consent


def _csrf(page: str) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


def _audited(engine: Engine, action: str) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.actor, audit_log.c.resource_id)
            .where(audit_log.c.action == action)
            .order_by(audit_log.c.id)
        ).all()
    return [(r.actor, r.resource_id) for r in rows]


def test_an_admin_sees_this_stores_waiting_enrollments_and_approves_one(
    engine: Engine, as_role: Callable[[str], TestClient]
) -> None:
    here = _enrolled(engine, "C-ann", "staff", [STORE])
    everywhere = _enrolled(engine, "C-bob", "staff", None)
    _enrolled(engine, "C-cy", "staff", ["cafe-99"])  # another store's: not listed here
    admin = as_role("admin")
    page = admin.get(f"/stores/{STORE}/recognition")
    assert page.status_code == 200, page.text
    listed = [int(i) for i in re.findall(r'data-pending="(\d+)"', page.text)]
    assert listed == [here, everywhere]
    assert "C-cy" not in page.text and "data-switch-off" in page.text
    assert 'data-menu="recognition"' in page.text
    assert _audited(engine, "faces.pending.read") == [("admin", "pending")]

    form = {"consent_id": str(here), "csrf": _csrf(page.text)}
    done = admin.post(f"/stores/{STORE}/recognition/approve", data=form, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/stores/{STORE}/recognition?approved={here}"
    after = admin.get(done.headers["location"])
    assert f'data-approved="{here}"' in after.text and "C-ann" in after.text
    assert [int(i) for i in re.findall(r'data-pending="(\d+)"', after.text)] == [everywhere]
    assert _audited(engine, "faces.approve") == [("admin", "C-ann")]
    assert _audited(engine, "faces.read") == [("admin", "C-ann")]  # the confirmation names them
    with engine.connect() as conn:
        row = face_store.consent_by_id(conn, here)
    assert row is not None and row["approved_by"] == "admin"

    again = admin.post(f"/stores/{STORE}/recognition/approve", data=form)
    assert again.status_code == 409
    assert "data-refusal" in again.text and "already approved" in again.text
    assert _audited(engine, "faces.approve") == [("admin", "C-ann")]


def test_the_form_needs_its_csrf_token_and_an_admin(
    engine: Engine, as_role: Callable[[str], TestClient]
) -> None:
    consent = _enrolled(engine, "C-ann", "staff", None)
    admin = as_role("admin")
    token = _csrf(admin.get(f"/stores/{STORE}/recognition").text)
    forged = admin.post(
        f"/stores/{STORE}/recognition/approve", data={"consent_id": str(consent), "csrf": "x" * 40}
    )
    assert forged.status_code == 403
    cross_site = admin.post(
        f"/stores/{STORE}/recognition/approve",
        data={"consent_id": str(consent), "csrf": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    for role in ("analyst", "staff"):
        person = as_role(role)
        assert person.get(f"/stores/{STORE}/recognition").status_code == 403
        page = person.get(f"/stores/{STORE}/today").text
        assert 'data-menu="recognition"' not in page
        tried = person.post(
            f"/stores/{STORE}/recognition/approve",
            data={"consent_id": str(consent), "csrf": _csrf(page)},
        )
        assert tried.status_code == 403
    with engine.connect() as conn:
        row = face_store.consent_by_id(conn, consent)
    assert row is not None and row["approved_at"] is None
    assert _audited(engine, "faces.approve") == []


def test_bad_input_and_refusals_say_why(
    engine: Engine, as_role: Callable[[str], TestClient]
) -> None:
    own = _enrolled(engine, "C-own", "admin", None)  # recorded by this admin, not approved
    admin = as_role("admin")
    token = _csrf(admin.get(f"/stores/{STORE}/recognition").text)
    url = f"/stores/{STORE}/recognition/approve"
    mine = admin.post(url, data={"consent_id": str(own), "csrf": token})
    assert mine.status_code == 403 and "another admin" in mine.text
    missing = admin.post(url, data={"consent_id": "999", "csrf": token})
    assert missing.status_code == 404 and "no face enrollment 999" in missing.text
    for bad in ("0", "many", "", str(2**31)):
        refused = admin.post(url, data={"consent_id": bad, "csrf": token})
        assert refused.status_code == 422 and "consent_id:" in refused.text
        # A form's POST path is no page to go back to (a GET there answers 405)
        assert "Check the address" in refused.text and f'href="{url}"' not in refused.text
    unknown = admin.get("/stores/nowhere/recognition")
    assert unknown.status_code == 404 and "no store" in unknown.text
    for decision in ("approve", "refuse"):  # the form's answer is a page too, not JSON
        posted = admin.post(
            f"/stores/nowhere/recognition/{decision}", data={"consent_id": str(own), "csrf": token}
        )
        assert posted.status_code == 404 and "no store" in posted.text
        assert posted.headers["content-type"].startswith("text/html")
    assert admin.get(f"/stores/{STORE}/recognition?approved=0").status_code == 422


def _embeddings(engine: Engine, consent_id: int) -> int:
    from sqlalchemy import func

    from storelens.storage.tables import face_embeddings

    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(face_embeddings.c.consent_id == consent_id)
            ).scalar_one()
        )


def test_an_admin_refuses_one_enrollment_from_the_page(
    engine: Engine, as_role: Callable[[str], TestClient]
) -> None:
    """A new user's review: the page told a store manager to refuse an enrollment with
    ``DELETE /v1/customers/<id>/faces``. It has a button now, for one enrollment by its
    id (as the approval is), and an approved one is not refused from here."""
    doubtful = _enrolled(engine, "C-ann", "staff", [STORE])
    fine = _enrolled(engine, "C-bob", "staff", [STORE])
    admin = as_role("admin")
    page = admin.get(f"/stores/{STORE}/recognition").text
    assert f'data-refuse="{doubtful}"' in page and "DELETE /v1/customers" not in page
    form = {"consent_id": str(doubtful), "csrf": _csrf(page)}
    done = admin.post(f"/stores/{STORE}/recognition/refuse", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    after = admin.get(done.headers["location"])
    assert f'data-refused="{doubtful}"' in after.text
    assert [int(i) for i in re.findall(r'data-pending="(\d+)"', after.text)] == [fine]
    assert _embeddings(engine, doubtful) == 0 and _embeddings(engine, fine) == 1
    with engine.connect() as conn:
        row = face_store.consent_by_id(conn, doubtful)
    assert row is not None and row["withdrawn_by"] == "admin"
    assert _audited(engine, "faces.refuse") == [("admin", "C-ann")]

    again = admin.post(f"/stores/{STORE}/recognition/refuse", data=form)
    assert again.status_code == 409 and "withdrawn or replaced already" in again.text
    approve = {"consent_id": str(fine), "csrf": _csrf(page)}
    assert admin.post(f"/stores/{STORE}/recognition/approve", data=approve).status_code == 200
    approved = admin.post(f"/stores/{STORE}/recognition/refuse", data=approve)
    assert approved.status_code == 409 and "is approved" in approved.text
    assert _embeddings(engine, fine) == 1
    for role in ("analyst", "staff"):  # and the form is an admin's, with its token
        person = as_role(role)
        token = _csrf(person.get(f"/stores/{STORE}/today").text)
        tried = person.post(
            f"/stores/{STORE}/recognition/refuse", data={"consent_id": str(fine), "csrf": token}
        )
        assert tried.status_code == 403
    forged = admin.post(
        f"/stores/{STORE}/recognition/refuse", data={"consent_id": str(fine), "csrf": "x" * 40}
    )
    assert forged.status_code == 403
    assert _audited(engine, "faces.refuse") == [("admin", "C-ann")]


def test_a_stores_page_acts_only_on_the_enrollments_it_lists(
    engine: Engine, as_role: Callable[[str], TestClient]
) -> None:
    """A review: the refuse form took any enrollment id from any store's page."""
    elsewhere = _enrolled(engine, "C-cy", "staff", ["cafe-99"])
    admin = as_role("admin")
    token = _csrf(admin.get(f"/stores/{STORE}/recognition").text)
    for action in ("refuse", "approve"):
        form = {"consent_id": str(elsewhere), "csrf": token}
        r = admin.post(f"/stores/{STORE}/recognition/{action}", data=form)
        assert r.status_code == 404 and "among this store" in r.text
    wrong = admin.post(f"/stores/{STORE}/recognition/delete", data=form)
    assert wrong.status_code == 422 and "decision" in wrong.text  # only approve or refuse
    assert _embeddings(engine, elsewhere) == 1
    assert _audited(engine, "faces.refuse") == _audited(engine, "faces.approve") == []
