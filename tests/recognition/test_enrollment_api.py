"""Enrollment through the API: consent first, one usable face per photo, nothing stored
on any refusal; withdrawal deletes the embeddings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from storelens.config import Settings
from storelens.storage.tables import audit_log, customers, face_consents, face_embeddings

RGB = npt.NDArray[np.uint8]
Login = Callable[[str], dict[str, str]]


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(face_consents)).scalar_one(),
            conn.execute(select(func.count()).select_from(face_embeddings)).scalar_one(),
            conn.execute(
                select(func.count()).where(audit_log.c.action == "faces.enroll")
            ).scalar_one(),
        )


def _post(
    client: TestClient,
    headers: dict[str, str],
    photos: list[bytes],
    customer: str = "C1",
    **form: Any,
) -> Any:
    data = {"consent": "true", "consent_text_version": "2026-12", **form}
    files = [("photos", (f"p{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    return client.post(f"/v1/customers/{customer}/faces", headers=headers, data=data, files=files)


@pytest.fixture
def staff(login: Login) -> dict[str, str]:
    return login("staff")


def test_staff_enroll_a_member_with_consent(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    settings: Settings,
) -> None:
    add_customer("C1")
    r = _post(client, staff, [png(astronaut), png(astronaut[:, ::-1].copy())], stores="cafe-01")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["customer_id"] == "C1"
    assert body["photos"] == 2
    assert body["stores"] == ["cafe-01"]
    assert body["text_version"] == "2026-12"
    assert body["purpose"] == "returning-customer recognition"
    assert body["recorded_by"].startswith("staff-")
    assert "embedding" not in r.text
    assert _counts(engine) == (1, 2, 1)
    assert settings.faces_key_path.is_file()
    got = client.get("/v1/customers/C1/faces", headers=login("admin"))
    assert got.status_code == 200
    assert got.json()["photos"] == 2


def test_enrollment_without_consent_is_refused_and_stores_nothing(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    settings: Settings,
) -> None:
    add_customer("C1")
    r = _post(client, staff, [png(astronaut)], consent="false")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "consent"]
    missing = client.post(
        "/v1/customers/C1/faces",
        headers=staff,
        data={"consent_text_version": "2026-12"},
        files=[("photos", ("p.png", png(astronaut), "image/png"))],
    )
    assert missing.status_code == 422
    assert any(e["loc"] == ["body", "consent"] for e in missing.json()["detail"])
    no_version = _post(client, staff, [png(astronaut)], consent_text_version="  ")
    assert no_version.status_code == 422
    assert _counts(engine) == (0, 0, 0)
    assert not settings.faces_key_path.exists()


@pytest.mark.parametrize(
    ("which", "type_"),
    [("cat", "photo_no_face"), ("two_people", "photo_many_faces")],
)
def test_a_photo_without_exactly_one_face_is_refused_and_nothing_is_stored(
    request: pytest.FixtureRequest,
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    which: str,
    type_: str,
) -> None:
    add_customer("C1")
    bad: RGB = request.getfixturevalue(which)
    r = _post(client, staff, [png(astronaut), png(bad)])  # the good first photo is not kept
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "photos", 1]
    assert detail[0]["type"] == type_
    assert _counts(engine) == (0, 0, 0)


def test_bad_photos_are_refused_by_name(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C1")
    not_an_image = _post(client, staff, [b"GIF89a this is no picture"])
    assert not_an_image.status_code == 422
    assert not_an_image.json()["detail"][0]["loc"] == ["body", "photos", 0]
    assert _post(client, staff, [b""]).status_code == 422
    six = _post(client, staff, [png(astronaut)] * 6)
    assert six.status_code == 422
    assert six.json()["detail"][0]["loc"] == ["body", "photos"]
    tiny = astronaut[::4, ::4].copy()  # a 22 px face: below the size gate, or not found
    small = _post(client, staff, [png(tiny)])
    assert small.status_code == 422
    assert small.json()["detail"][0]["type"] in {"photo_quality", "photo_no_face"}
    blurred = _post(client, staff, [png(np.repeat(np.repeat(astronaut[::6, ::6], 6, 0), 6, 1))])
    assert blurred.status_code == 422
    bad_store = _post(client, staff, [png(astronaut)], stores="cafe 01;drop")
    assert bad_store.status_code == 422
    assert bad_store.json()["detail"][0]["loc"] == ["body", "stores"]
    assert _counts(engine) == (0, 0, 0)


def test_an_unknown_customer_is_404_before_any_photo_is_read(
    client: TestClient, engine: Engine, staff: dict[str, str], png: Callable[[RGB], bytes], cat: RGB
) -> None:
    r = _post(client, staff, [png(cat)], customer="C-nobody")
    assert r.status_code == 404
    assert _counts(engine) == (0, 0, 0)


def test_a_staff_enrollment_probe_is_audited_and_counts_against_the_rate(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
) -> None:
    """A review: a junk "photo" told staff 422 for a customer and 404 for a stranger,
    with nothing written and no limit. The 404 stays (no face is processed without a
    person to consent), but each probe is audited and uses the staff login's rate of
    writes about customers, which declines and withdrawals share."""
    from storelens.api.ratelimit import MemoryLimiter

    client.app.state.staff_write_limiter = MemoryLimiter(2)  # type: ignore[attr-defined]
    add_customer("C1")
    junk = [b"not an image"]
    assert _post(client, staff, junk, customer="C-nobody").status_code == 404
    assert _post(client, staff, junk, customer="C1").status_code == 422
    assert _post(client, staff, junk, customer="C-nobody-2").status_code == 429
    assert client.delete("/v1/customers/C1/faces", headers=staff).status_code == 429
    with engine.connect() as conn:
        misses = conn.execute(
            select(audit_log.c.resource_id).where(audit_log.c.action == "faces.enroll.not_found")
        ).scalars()
        assert list(misses) == ["C-nobody"]
    admin = login("admin")  # admins are told outright and not held
    for _ in range(3):
        assert _post(client, admin, junk, customer="C-nobody-3").status_code == 404


def test_staff_cannot_read_who_is_enrolled_nor_learn_the_id_behind_a_card(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    login: Login,
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """Reviews: ``GET .../faces`` answered a staff login 200 for a member enrolled for
    recognition (with the consent's terms and the customer id behind a card number or a
    retired id) and 404 otherwise, so a list of card numbers could be walked for who is
    enrolled. Staff now get 403 whatever the id; an enrollment's answer names the member
    by the id it was sent."""
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            {"source_system": "crm", "source_record_id": "r-417", "customer_id": "CRM-000417",
             "loyalty_id": "4929-1111-2222"},
        )  # fmt: skip
    made = _post(client, staff, [png(astronaut)], customer="4929-1111-2222")
    assert made.status_code == 201, made.text
    assert made.json()["customer_id"] == "4929-1111-2222"
    assert "CRM-000417" not in made.text
    admin = login("admin")
    assert (
        client.get("/v1/customers/4929-1111-2222/faces", headers=admin).json()["customer_id"]
        == "CRM-000417"
    )  # admins read profiles anyway and are told the id it is kept under
    answers = [
        client.get(f"/v1/customers/{who}/faces", headers=staff)
        for who in ("4929-1111-2222", "CRM-000417", "C-nobody")
    ]
    assert [a.status_code for a in answers] == [403] * 3
    assert len({a.text for a in answers}) == 1
    with engine.connect() as conn:  # refused before anything was looked up
        reads = conn.execute(
            select(audit_log.c.actor).where(audit_log.c.action == "faces.read")
        ).scalars()
        assert [r.startswith("staff-") for r in reads] == [False]


def test_withdrawal_deletes_the_embeddings_at_once(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C1")
    assert _post(client, staff, [png(astronaut)]).status_code == 201
    r = client.delete("/v1/customers/C1/faces", headers=staff)
    assert r.status_code == 200
    assert r.json()["embeddings_deleted"] == 1
    consents, embeddings, _ = _counts(engine)
    assert (consents, embeddings) == (1, 0)  # the consent's record stays, marked withdrawn
    with engine.connect() as conn:
        row = conn.execute(select(face_consents)).one()
    assert row.withdrawn_at is not None
    assert row.withdrawn_by.startswith("staff-")
    assert client.get("/v1/customers/C1/faces", headers=login("admin")).status_code == 404
    again = client.delete("/v1/customers/C1/faces", headers=staff)
    assert again.json()["embeddings_deleted"] == 0


def test_only_an_admin_switches_a_store_and_an_unknown_store_is_404(
    client: TestClient, login: Login, engine: Engine
) -> None:
    from storelens import stores

    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
    admin = login("admin")
    r = client.put("/v1/stores/cafe-01/recognition", headers=admin, json={"enabled": True})
    assert r.status_code == 200
    assert r.json()["enabled"] is True
    assert (
        client.put(
            "/v1/stores/cafe-01/recognition", headers=login("staff"), json={"enabled": False}
        ).status_code
        == 403
    )
    assert (
        client.put(
            "/v1/stores/nowhere/recognition", headers=admin, json={"enabled": True}
        ).status_code
        == 404
    )


def test_staff_cannot_tell_an_unknown_id_from_a_customer_with_nothing_enrolled(
    client: TestClient,
    staff: dict[str, str],
    login: Login,
    engine: Engine,
    add_customer: Callable[[str], None],
) -> None:
    """A review: staff got 404 for an id that is no customer and 200 for one that is, so
    ``DELETE .../faces`` told them which ids exist (docs/staff-app.md promises not).
    Both now answer alike, and nothing is written for the stranger; admins keep the 404."""
    add_customer("C1")
    nobody = client.delete("/v1/customers/C-nobody/faces", headers=staff)
    known = client.delete("/v1/customers/C1/faces", headers=staff)  # a customer, not enrolled
    assert (nobody.status_code, known.status_code) == (200, 200)
    assert nobody.json()["embeddings_deleted"] == known.json()["embeddings_deleted"] == 0
    assert set(nobody.json()) == set(known.json())
    assert client.get("/v1/customers/C-nobody/faces", headers=staff).status_code == 403
    assert client.get("/v1/customers/C1/faces", headers=staff).status_code == 403
    assert client.delete("/v1/customers/C-nobody/faces", headers=login("admin")).status_code == 404
    with engine.connect() as conn:
        written = conn.execute(
            select(func.count())
            .select_from(face_consents)
            .where(face_consents.c.customer_id == "C-nobody")
        ).scalar_one()
        audited = (
            conn.execute(select(audit_log.c.action).where(audit_log.c.resource_id == "C-nobody"))
            .scalars()
            .all()
        )
    assert written == 0
    assert "faces.withdraw.not_found" in audited


def test_a_staff_enrollment_waits_for_an_admin_and_only_an_admin_approves_it(
    client: TestClient,
    engine: Engine,
    staff: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """Staff could enroll their own face under a customer's id and read that customer's
    history from the notice it raises; a second person (an admin) now has to approve
    that one enrollment, named by its id."""
    add_customer("C1")
    enrolled = _post(client, staff, [png(astronaut)])
    assert enrolled.status_code == 201, enrolled.text
    assert (enrolled.json()["approved_at"], enrolled.json()["approved_by"]) == (None, None)
    consent_id = enrolled.json()["consent_id"]
    assert client.post(f"/v1/faces/{consent_id}/approval", headers=staff).status_code == 403
    assert client.get("/v1/faces/pending", headers=staff).status_code == 403

    admin = login("admin")
    pending = client.get("/v1/faces/pending", headers=admin)
    assert pending.status_code == 200, pending.text
    [item] = pending.json()["items"]
    assert (item["consent_id"], item["customer_id"], item["photos"]) == (consent_id, "C1", 1)
    assert item["recorded_by"] == enrolled.json()["recorded_by"]

    approved = client.post(f"/v1/faces/{consent_id}/approval", headers=admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"].startswith("admin-")
    assert approved.json()["approved_at"] is not None
    assert client.get("/v1/faces/pending", headers=admin).json() == {"items": []}
    again = client.post(f"/v1/faces/{consent_id}/approval", headers=admin)
    assert again.status_code == 409 and "already approved" in again.text
    assert client.get("/v1/customers/C1/faces", headers=admin).json()["approved_at"] is not None
    with engine.connect() as conn:
        actions = conn.execute(
            select(audit_log.c.action, audit_log.c.resource_id).where(
                audit_log.c.action.in_(("faces.approve", "faces.pending.read"))
            )
        ).all()
    assert sorted(actions) == [  # the refused second approval wrote nothing
        ("faces.approve", "C1"),
        ("faces.pending.read", "pending"),
        ("faces.pending.read", "pending"),
    ]


def test_an_approval_names_one_enrollment_and_a_replaced_one_is_refused(
    client: TestClient,
    staff: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    hopper: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """A review: the approval used to name the customer, so one staff member's
    re-enrollment made between the admin's look at the pending list and the click was
    what got approved. The admin now approves the enrollment they saw, or nothing."""
    add_customer("C1")
    seen = _post(client, staff, [png(astronaut)]).json()["consent_id"]
    admin = login("admin")
    assert [
        i["consent_id"] for i in client.get("/v1/faces/pending", headers=admin).json()["items"]
    ] == [seen]
    other = _post(client, login("staff"), [png(hopper)]).json()["consent_id"]
    refused = client.post(f"/v1/faces/{seen}/approval", headers=admin)
    assert refused.status_code == 409, refused.text
    assert "withdrawn or replaced" in refused.text
    waiting = client.get("/v1/faces/pending", headers=admin).json()["items"]
    assert [(i["consent_id"], i["approved_at"]) for i in waiting] == [(other, None)]


def test_an_admins_enrollment_is_approved_and_a_missing_one_cannot_be(
    client: TestClient,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C1")
    admin = login("admin")
    r = _post(client, admin, [png(astronaut)])
    assert r.status_code == 201, r.text
    assert r.json()["approved_by"] == r.json()["recorded_by"]
    assert r.json()["approved_at"] == r.json()["granted_at"]
    assert client.get("/v1/faces/pending", headers=admin).json() == {"items": []}
    consent_id = r.json()["consent_id"]
    assert client.post(f"/v1/faces/{consent_id + 1}/approval", headers=admin).status_code == 404
    assert client.delete("/v1/customers/C1/faces", headers=admin).status_code == 200
    gone = client.post(f"/v1/faces/{consent_id}/approval", headers=admin)
    assert gone.status_code == 409
    for bad in ("0", "x", str(2**31), "1" * 20):  # past the column's integer: not a 500
        assert client.post(f"/v1/faces/{bad}/approval", headers=admin).status_code == 422
    for bad in ("0", "501", "many"):
        got = client.get(f"/v1/faces/pending?limit={bad}", headers=admin)
        assert got.status_code == 422
        assert "limit" in got.text
