"""Staff enroll and withdraw the member in front of them through the notice they claimed.

By id, each face route told a staff login something about ids it guessed (an
enrollment's 404 for a stranger, a withdrawal's timing, a read's answer and the customer
id behind a card number), and a withdrawal or re-enrollment by id could end any member's
recognition (reviews). Staff now act only on the customer of a notice they claimed, on
shift, while the claim is open; the answers name the notice, never the customer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from storelens.api.deps import current_time
from storelens.config import Settings
from storelens.storage.tables import audit_log, face_consents, face_embeddings

from ..staff.conftest import MEMBER, STORE, T0, Floor, raise_body

RGB = npt.NDArray[np.uint8]
Login = Callable[[str], dict[str, str]]


@pytest.fixture(autouse=True)
def _published(consent_text: str) -> None:
    """Enrollment names a published consent text (conftest)."""


@pytest.fixture
def counter(client: TestClient, engine: Engine, settings: Settings) -> Floor:
    """Ada, a member, and the café whose till scans her card; the requests' clock at T0."""
    client.app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
    floor = Floor(engine, settings)
    floor.store()
    floor.member()
    return floor


def _claimed(
    client: TestClient, floor: Floor, username: str | None = None, trigger: str = "loyalty_scan"
) -> tuple[str, dict[str, str]]:
    """A new notice for Ada (her card scanned, unless ``trigger`` says otherwise),
    claimed by a staff member on shift."""
    name = floor.staff(username)
    floor.clock("in", name, at=T0 - timedelta(hours=1))
    headers = floor.token(name)
    body = raise_body(trigger=trigger)
    raised = client.post("/v1/notices", json=body, headers=floor.scanner())
    assert raised.status_code == 201, raised.text
    notice_id = raised.json()["id"]
    assert client.post(f"/v1/notices/{notice_id}/claim", headers=headers).status_code == 200
    return notice_id, headers


def _enroll(
    client: TestClient, notice_id: str, headers: dict[str, str], photos: list[bytes], **form: str
) -> object:
    data = {"consent": "true", "consent_text_version": "2026-12", **form}
    files = [("photos", (f"p{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    return client.post(f"/v1/notices/{notice_id}/faces", headers=headers, data=data, files=files)


def _stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(face_consents)).scalar_one(),
            conn.execute(select(func.count()).select_from(face_embeddings)).scalar_one(),
        )


def test_the_claimer_enrolls_the_member_and_an_admin_approves_it(
    client: TestClient,
    counter: Floor,
    engine: Engine,
    login: Login,
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """The consent box is staff's to tick, so a staff member's enrollment matches no one
    until a second person, an admin, approves that one enrollment."""
    notice_id, headers = _claimed(client, counter)
    r = _enroll(client, notice_id, headers, [png(astronaut)], stores=STORE)
    assert r.status_code == 201, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert (body["notice_id"], body["photos"], body["stores"]) == (notice_id, 1, [STORE])
    assert body["approved_at"] is None
    assert MEMBER not in r.text and "customer_id" not in body  # type: ignore[attr-defined]
    assert _stored(engine) == (1, 1)
    with engine.connect() as conn:
        row = conn.execute(select(face_consents)).one()
    assert row.customer_id == MEMBER and row.recorded_by.startswith("staff-")

    consent_id = body["consent_id"]
    assert client.post(f"/v1/faces/{consent_id}/approval", headers=headers).status_code == 403
    assert client.get("/v1/faces/pending", headers=headers).status_code == 403
    admin = login("admin")
    [item] = client.get("/v1/faces/pending", headers=admin).json()["items"]
    assert (item["consent_id"], item["customer_id"]) == (consent_id, MEMBER)
    approved = client.post(f"/v1/faces/{consent_id}/approval", headers=admin)
    assert approved.status_code == 200, approved.text
    assert client.get(f"/v1/customers/{MEMBER}/faces", headers=admin).json()["approved_at"]


def test_the_claimer_withdraws_the_member_and_the_trail_names_the_notice(
    client: TestClient, counter: Floor, engine: Engine
) -> None:
    counter.recognisable()
    notice_id, headers = _claimed(client, counter)
    r = client.delete(f"/v1/notices/{notice_id}/faces", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["embeddings_deleted"] == 1 and r.json()["notice_id"] == notice_id
    assert MEMBER not in r.text
    assert _stored(engine) == (1, 0)  # the consent's record stays, marked withdrawn
    with engine.connect() as conn:
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "faces.withdraw")
        ).scalar_one()
    assert detail == {"deleted": 1, "notice_id": notice_id}
    again = client.delete(f"/v1/notices/{notice_id}/faces", headers=headers)
    assert again.status_code == 200 and again.json()["embeddings_deleted"] == 0


def test_only_the_claimer_of_an_open_claim_on_shift_acts(
    client: TestClient,
    counter: Floor,
    engine: Engine,
    login: Login,
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    counter.recognisable()
    notice_id, headers = _claimed(client, counter)
    colleague = counter.staff()
    counter.clock("in", colleague, at=T0 - timedelta(hours=1))
    other = counter.token(colleague)
    photo = [png(astronaut)]
    assert _enroll(client, notice_id, other, photo).status_code == 403  # type: ignore[attr-defined]
    assert client.delete(f"/v1/notices/{notice_id}/faces", headers=other).status_code == 403
    assert _enroll(client, "no-such-notice", headers, photo).status_code == 404  # type: ignore[attr-defined]
    admin = login("admin")  # admins act by id; the notice routes are the claimer's
    assert client.delete(f"/v1/notices/{notice_id}/faces", headers=admin).status_code == 403
    closed = client.post(
        f"/v1/notices/{notice_id}/outcome", json={"outcome": "served"}, headers=headers
    )
    assert closed.status_code == 200
    assert _enroll(client, notice_id, headers, photo).status_code == 409  # type: ignore[attr-defined]
    assert client.delete(f"/v1/notices/{notice_id}/faces", headers=headers).status_code == 409
    assert _stored(engine) == (1, 1)  # the enrollment made by recognisable() is untouched


def test_a_replaced_enrollment_cannot_be_approved(
    client: TestClient,
    counter: Floor,
    login: Login,
    astronaut: RGB,
    hopper: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """A review: the approval used to name the customer, so a re-enrollment made between
    the admin's look at the pending list and the click was what got approved. The admin
    now approves the enrollment they saw, or nothing."""
    notice_id, headers = _claimed(client, counter)
    seen = _enroll(client, notice_id, headers, [png(astronaut)]).json()["consent_id"]  # type: ignore[attr-defined]
    admin = login("admin")
    listed = client.get("/v1/faces/pending", headers=admin).json()["items"]
    assert [i["consent_id"] for i in listed] == [seen]
    served = {"outcome": "served"}
    assert client.post(f"/v1/notices/{notice_id}/outcome", json=served, headers=headers).is_success
    second, theirs = _claimed(client, counter)  # Ada's card scanned again, another claimer
    other = _enroll(client, second, theirs, [png(hopper)]).json()["consent_id"]  # type: ignore[attr-defined]
    refused = client.post(f"/v1/faces/{seen}/approval", headers=admin)
    assert refused.status_code == 409, refused.text
    assert "withdrawn or replaced" in refused.text
    waiting = client.get("/v1/faces/pending", headers=admin).json()["items"]
    assert [(i["consent_id"], i["approved_at"]) for i in waiting] == [(other, None)]


def _embedding_then(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> None:
    """Run ``meanwhile`` while the photos are embedded (seconds, in production)."""
    from storelens.recognition.faces import FacePipeline

    real = FacePipeline.embed

    def embed(self: FacePipeline, face: object) -> object:
        meanwhile()
        return real(self, face)  # type: ignore[arg-type]

    monkeypatch.setattr(FacePipeline, "embed", embed)


def test_an_erasure_while_the_photos_are_embedded_leaves_no_enrollment(
    client: TestClient,
    counter: Floor,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """A review: the enrollment checked the customer before embedding and wrote after,
    without the erasure lock, so an erasure in between answered clean and left a whole
    enrollment of the person it had erased, which a second erasure could not find (the
    customer was gone). The answer to staff also named the id."""
    from storelens.privacy import audit
    from storelens.privacy.erasure import erase_customer

    notice_id, headers = _claimed(client, counter)
    _embedding_then(
        monkeypatch, lambda: erase_customer(engine, MEMBER, audit.operator(), "request 17")
    )
    r = _enroll(client, notice_id, headers, [png(astronaut)])
    assert r.status_code == 404, r.text  # type: ignore[attr-defined]
    assert MEMBER not in r.text  # type: ignore[attr-defined]
    assert _stored(engine) == (0, 0)


def test_a_claim_closed_while_the_photos_are_embedded_stores_nothing(
    client: TestClient,
    counter: Floor,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    from sqlalchemy import update

    from storelens.storage.tables import notices

    notice_id, headers = _claimed(client, counter)

    def close() -> None:
        with engine.begin() as conn:
            conn.execute(update(notices).where(notices.c.id == notice_id).values(state="closed"))

    _embedding_then(monkeypatch, close)
    r = _enroll(client, notice_id, headers, [png(astronaut)])
    assert r.status_code == 409, r.text  # type: ignore[attr-defined]
    assert _stored(engine) == (0, 0)


def test_a_member_recognised_at_the_door_can_withdraw_after_recognition_is_switched_off(
    client: TestClient, counter: Floor, engine: Engine, login: Login
) -> None:
    """A review: the gate that stops a member who said no from being announced also
    refused their withdrawal at the counter, so their embeddings stayed. Taking a face
    back is never refused to the claimer; reading the customer still is."""
    counter.recognisable()
    notice_id, headers = _claimed(client, counter, trigger="recognition")
    off = client.put(
        f"/v1/stores/{STORE}/recognition", json={"enabled": False}, headers=login("admin")
    )
    assert off.status_code == 200
    assert client.get(f"/v1/notices/{notice_id}/customer", headers=headers).status_code == 403
    r = client.delete(f"/v1/notices/{notice_id}/faces", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["embeddings_deleted"] == 1
    assert _stored(engine) == (1, 0)


def test_a_notice_enrollment_is_audited_with_its_notice(
    client: TestClient, counter: Floor, engine: Engine, astronaut: RGB, png: Callable[[RGB], bytes]
) -> None:
    notice_id, headers = _claimed(client, counter)
    assert _enroll(client, notice_id, headers, [png(astronaut)]).status_code == 201  # type: ignore[attr-defined]
    with engine.connect() as conn:
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "faces.enroll")
        ).scalar_one()
    assert detail["notice_id"] == notice_id
