"""Enrollment through the API: consent first, one usable face per photo, nothing stored
on any refusal; withdrawal deletes the embeddings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from storelens import stores
from storelens.config import Settings
from storelens.storage.tables import audit_log, face_consents, face_embeddings

RGB = npt.NDArray[np.uint8]
Login = Callable[[str], dict[str, str]]


@pytest.fixture(autouse=True)
def _published(consent_text: str) -> None:
    """Enrollment names a published consent text (conftest)."""


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
def admin(login: Login) -> dict[str, str]:
    return login("admin")


def test_an_admin_enrolls_a_member_with_consent(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    settings: Settings,
) -> None:
    add_customer("C1")
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
    for typo in ("cafe-1", "cafe-01,nowhere"):  # a consent that covers no store: refused
        r = _post(client, admin, [png(astronaut)], stores=typo)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "stores"]
        assert "no such store" in r.json()["detail"][0]["msg"]
    r = _post(client, admin, [png(astronaut), png(astronaut[:, ::-1].copy())], stores="cafe-01")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["customer_id"] == "C1"
    assert body["photos"] == 2
    assert body["stores"] == ["cafe-01"]
    assert body["text_version"] == "2026-12"
    assert body["purpose"] == "returning-customer recognition"
    assert body["recorded_by"].startswith("admin-")
    assert "embedding" not in r.text
    assert _counts(engine) == (1, 2, 1)
    assert settings.faces_key_path.is_file()
    got = client.get("/v1/customers/C1/faces", headers=admin)
    assert got.status_code == 200
    assert got.json()["photos"] == 2


def test_enrollment_without_consent_is_refused_and_stores_nothing(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    settings: Settings,
) -> None:
    add_customer("C1")
    r = _post(client, admin, [png(astronaut)], consent="false")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "consent"]
    missing = client.post(
        "/v1/customers/C1/faces",
        headers=admin,
        data={"consent_text_version": "2026-12"},
        files=[("photos", ("p.png", png(astronaut), "image/png"))],
    )
    assert missing.status_code == 422
    assert any(e["loc"] == ["body", "consent"] for e in missing.json()["detail"])
    no_version = _post(client, admin, [png(astronaut)], consent_text_version="  ")
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
    admin: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    which: str,
    type_: str,
) -> None:
    add_customer("C1")
    bad: RGB = request.getfixturevalue(which)
    r = _post(client, admin, [png(astronaut), png(bad)])  # the good first photo is not kept
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["body", "photos", 1]
    assert detail[0]["type"] == type_
    assert _counts(engine) == (0, 0, 0)


def test_bad_photos_are_refused_by_name(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C1")
    not_an_image = _post(client, admin, [b"GIF89a this is no picture"])
    assert not_an_image.status_code == 422
    assert not_an_image.json()["detail"][0]["loc"] == ["body", "photos", 0]
    assert _post(client, admin, [b""]).status_code == 422
    six = _post(client, admin, [png(astronaut)] * 6)
    assert six.status_code == 422
    assert six.json()["detail"][0]["loc"] == ["body", "photos"]
    tiny = astronaut[::4, ::4].copy()  # a 22 px face: below the size gate, or not found
    small = _post(client, admin, [png(tiny)])
    assert small.status_code == 422
    assert small.json()["detail"][0]["type"] in {"photo_quality", "photo_no_face"}
    blurred = _post(client, admin, [png(np.repeat(np.repeat(astronaut[::6, ::6], 6, 0), 6, 1))])
    assert blurred.status_code == 422
    bad_store = _post(client, admin, [png(astronaut)], stores="cafe 01;drop")
    assert bad_store.status_code == 422
    assert bad_store.json()["detail"][0]["loc"] == ["body", "stores"]
    assert _counts(engine) == (0, 0, 0)


def test_an_unknown_customer_is_404_before_any_photo_is_read(
    client: TestClient, engine: Engine, admin: dict[str, str], png: Callable[[RGB], bytes], cat: RGB
) -> None:
    r = _post(client, admin, [png(cat)], customer="C-nobody")
    assert r.status_code == 404
    assert _counts(engine) == (0, 0, 0)


def test_staff_act_on_no_customer_by_id(
    client: TestClient,
    engine: Engine,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """Reviews: by id, an enrollment's 404 for a stranger, a withdrawal's timing and a
    read's answer (who is enrolled, the customer id behind a card number) each told a
    staff login about ids it guessed, and a withdrawal by id ended any member's
    recognition. Staff now get one 403 for every id on every by-id face route, with
    nothing looked up, written or audited; they act through the notice they claimed
    (``test_notice_faces.py``)."""
    add_customer("C1")
    assert _post(client, login("admin"), [png(astronaut)]).status_code == 201  # C1 enrolled
    before = _counts(engine)
    staff = login("staff")
    answers = [
        call
        for who in ("C1", "C-nobody")
        for call in (
            _post(client, staff, [png(astronaut)], customer=who),
            _post(client, staff, [b"not an image"], customer=who),
            client.get(f"/v1/customers/{who}/faces", headers=staff),
            client.delete(f"/v1/customers/{who}/faces", headers=staff),
        )
    ]
    assert [a.status_code for a in answers] == [403] * 8
    assert len({a.text for a in answers}) == 1
    assert _counts(engine) == before
    with engine.connect() as conn:
        logged = conn.execute(
            select(audit_log.c.action).where(audit_log.c.actor.like("staff-%"))
        ).scalars()
        assert [a for a in logged if a.startswith("faces")] == []


def test_withdrawal_deletes_the_embeddings_at_once(
    client: TestClient,
    engine: Engine,
    admin: dict[str, str],
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    add_customer("C1")
    assert _post(client, admin, [png(astronaut)]).status_code == 201
    r = client.delete("/v1/customers/C1/faces", headers=admin)
    assert r.status_code == 200
    assert r.json()["embeddings_deleted"] == 1
    consents, embeddings, _ = _counts(engine)
    assert (consents, embeddings) == (1, 0)  # the consent's record stays, marked withdrawn
    with engine.connect() as conn:
        row = conn.execute(select(face_consents)).one()
    assert row.withdrawn_at is not None
    assert row.withdrawn_by.startswith("admin-")
    assert client.get("/v1/customers/C1/faces", headers=admin).status_code == 404
    again = client.delete("/v1/customers/C1/faces", headers=admin)
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
