"""The consent texts members agree to: published once, never edited, named by every
enrollment, and shown back to the member in an access request.

Before these, an enrollment recorded whatever version string the form carried, so a
consent could name a text that never existed and nothing showed which words a member
had agreed to (a weakness listed in the session notes)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.errors import Conflict, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.recognition.consent_texts import current_text, publish, retire, text_of
from storelens.storage.tables import audit_log, face_consent_texts, face_consents, face_embeddings

RGB = npt.NDArray[np.uint8]
Login = Callable[[str], dict[str, str]]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WORDS = "I agree that the café keeps a template of my face so staff know when I come in."
runner = CliRunner()


def _publish(engine: Engine, version: str, body: str = WORDS, at: datetime = T0) -> Any:
    with engine.begin() as conn:
        return publish(conn, version, body, actor=audit.SYSTEM, at=at)


def _stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(face_consents)).scalar_one(),
            conn.execute(select(func.count()).select_from(face_embeddings)).scalar_one(),
        )


def _fields(exc: InvalidInput) -> dict[str, str]:
    return {str(e.path[-1]): e.msg for e in exc.errors}


@pytest.mark.parametrize(
    ("version", "body", "field", "says"),
    [
        ("", WORDS, "version", "1 to 40 letters"),
        ("v 1", WORDS, "version", "1 to 40 letters"),
        ("-v1", WORDS, "version", "starting with a letter or digit"),
        ("v" * 41, WORDS, "version", "got 41 characters"),
        ("v1", "I agree.", "body", "not 8"),
        ("v1", "x" * 20_001, "body", "not 20,001"),
        ("v1", WORDS + "\x00", "body", "NUL"),
    ],
)
def test_a_bad_text_is_refused_by_field_and_nothing_is_published(
    engine: Engine, version: str, body: str, field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        _publish(engine, version, body)
    assert says in _fields(caught.value)[field]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(face_consent_texts)).scalar() == 0


def test_a_published_text_never_changes(engine: Engine) -> None:
    first, created = _publish(engine, "2026-12", WORDS + "\r\n")
    assert created and first.body == WORDS  # line ends and edges normalised before hashing
    again, created = _publish(engine, "2026-12", WORDS, at=T0 + timedelta(days=1))
    assert not created and again == first  # a re-run script changes nothing
    with pytest.raises(Conflict, match="new wording needs a new version"):
        _publish(engine, "2026-12", WORDS.replace("face", "whole body"))
    with engine.connect() as conn:
        kept = text_of(conn, "2026-12")
        published = conn.execute(
            select(func.count()).where(audit_log.c.action == "faces.consent_text.publish")
        ).scalar()
    assert kept == first and published == 1


def test_the_text_in_force_is_the_newest_not_retired(engine: Engine) -> None:
    with engine.connect() as conn:
        assert current_text(conn) is None
    _publish(engine, "2026-06")
    _publish(engine, "2026-12", WORDS + " Version two.", at=T0 + timedelta(days=1))
    with engine.begin() as conn:
        assert current_text(conn).version == "2026-12"  # type: ignore[union-attr]
        retired = retire(conn, "2026-12", actor=audit.SYSTEM, at=T0 + timedelta(days=2))
        assert retired.retired_at is not None and not retired.in_force
        assert current_text(conn).version == "2026-06"  # type: ignore[union-attr]
        again = retire(conn, "2026-12", actor=audit.SYSTEM, at=T0 + timedelta(days=3))
        assert again.retired_at == retired.retired_at  # retiring twice changes nothing
        with pytest.raises(NotFound):
            retire(conn, "1999-01", actor=audit.SYSTEM, at=T0)


def _enroll(client: TestClient, headers: dict[str, str], photos: list[bytes], version: str) -> Any:
    data = {"consent": "true", "consent_text_version": version}
    files = [("photos", (f"p{i}.png", p, "image/png")) for i, p in enumerate(photos)]
    return client.post("/v1/customers/C1/faces", headers=headers, data=data, files=files)


def test_enrollment_names_a_published_text_in_force_before_any_photo_is_read(
    client: TestClient,
    engine: Engine,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    admin = login("admin")
    add_customer("C1")
    not_a_photo = b"\x89PNG this is not an image"
    r = _enroll(client, admin, [not_a_photo], "2026-12")  # nothing published yet
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "consent_text_version"]  # the text, not the photo
    assert "an admin publishes one first" in error["msg"]

    _publish(engine, "2026-12")
    r = _enroll(client, admin, [not_a_photo], "2025-01")
    assert r.status_code == 422
    assert "the text in force is '2026-12'" in r.json()["detail"][0]["msg"]
    assert _stored(engine) == (0, 0)

    r = _enroll(client, admin, [png(astronaut)], "2026-12")
    assert r.status_code == 201, r.text
    assert r.json()["text_version"] == "2026-12"
    with engine.begin() as conn:
        retire(conn, "2026-12", actor=audit.SYSTEM, at=T0)
    r = _enroll(client, admin, [png(astronaut)], "2026-12")
    assert r.status_code == 422
    assert "'2026-12' was retired" in r.json()["detail"][0]["msg"]
    assert _stored(engine) == (1, 1)  # the consent given under it stays in force


def test_a_text_retired_while_the_photos_are_embedded_stores_nothing(
    client: TestClient,
    engine: Engine,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storelens.recognition.faces import FacePipeline

    admin = login("admin")
    add_customer("C1")
    _publish(engine, "2026-12")
    real = FacePipeline.embed

    def embed(self: FacePipeline, face: Any) -> Any:
        with engine.begin() as conn:
            retire(conn, "2026-12", actor=audit.SYSTEM, at=T0)
        return real(self, face)

    monkeypatch.setattr(FacePipeline, "embed", embed)
    r = _enroll(client, admin, [png(astronaut)], "2026-12")
    assert r.status_code == 422, r.text
    assert _stored(engine) == (0, 0)


def test_the_api_publishes_for_admins_and_shows_the_text_in_force_to_staff(
    client: TestClient, engine: Engine, login: Login
) -> None:
    admin, staff = login("admin"), login("staff")
    empty = client.get("/v1/faces/consent-texts", headers=staff)
    assert empty.status_code == 200 and empty.json() == {"current": None, "items": []}
    body = {"version": "2026-12", "body": WORDS}
    assert client.post("/v1/faces/consent-texts", json=body, headers=staff).status_code == 403
    made = client.post("/v1/faces/consent-texts", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["in_force"] and len(made.json()["sha256"]) == 64
    assert client.post("/v1/faces/consent-texts", json=body, headers=admin).status_code == 200
    other = client.post(
        "/v1/faces/consent-texts", json={**body, "body": WORDS + " More."}, headers=admin
    )
    assert other.status_code == 409
    bad = client.post(
        "/v1/faces/consent-texts", json={"version": "two words", "body": WORDS}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "version"]
    shown = client.get("/v1/faces/consent-texts", headers=staff).json()
    assert shown["current"]["version"] == "2026-12" and shown["current"]["body"] == WORDS
    gone = client.post("/v1/faces/consent-texts/2026-12/retirement", headers=admin)
    assert gone.status_code == 200 and not gone.json()["in_force"]
    assert client.get("/v1/faces/consent-texts", headers=staff).json()["current"] is None
    listed = client.get("/v1/faces/consent-texts?include_retired=true", headers=staff).json()
    assert [t["version"] for t in listed["items"]] == ["2026-12"]
    missing = client.post("/v1/faces/consent-texts/nope/retirement", headers=admin)
    assert missing.status_code == 404


def test_an_access_request_shows_the_words_the_member_agreed_to(
    client: TestClient,
    engine: Engine,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    admin = login("admin")
    add_customer("C1")
    text, _ = _publish(engine, "2026-12")
    assert _enroll(client, admin, [png(astronaut)], "2026-12").status_code == 201
    exported = client.get("/v1/customers/C1/export", headers=admin)
    assert exported.status_code == 200, exported.text
    (consent,) = [i for i in exported.json()["stores"]["faces"] if "consent" in i]
    assert consent["consent"]["text_version"] == "2026-12"
    assert consent["consent_text"]["body"] == WORDS
    assert consent["consent_text"]["sha256"] == text.sha256


def test_the_cli_publishes_lists_and_retires(engine: Engine, db_url: str, tmp_path: Path) -> None:
    words = tmp_path / "consent.txt"
    words.write_text(WORDS + "\n", encoding="utf-8")
    db = ["--database-url", db_url]
    empty = runner.invoke(app, ["faces", "consent-text", "list", *db])
    assert empty.exit_code == 0 and "no consent text is published" in empty.output
    cmd = ["faces", "consent-text", "publish", "--version", "2026-12", "--file", str(words), *db]
    done = runner.invoke(app, cmd)
    assert done.exit_code == 0, done.output
    assert "published consent text 2026-12" in done.output
    assert "already published" in runner.invoke(app, cmd).output
    words.write_text(WORDS + " Changed.", encoding="utf-8")
    changed = runner.invoke(app, cmd)
    assert changed.exit_code == 2 and "new wording needs a new version" in changed.output
    words.write_bytes(b"\xff\xfe not utf-8 at all, twenty characters")
    assert "is not UTF-8 text" in runner.invoke(app, cmd).output
    missing = runner.invoke(app, [*cmd[:-3], str(tmp_path / "nope.txt"), *db])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    listed = runner.invoke(app, ["faces", "consent-text", "list", *db])
    assert "2026-12" in listed.output
    retired = runner.invoke(app, ["faces", "consent-text", "retire", "2026-12", *db])
    assert retired.exit_code == 0 and "retired consent text 2026-12" in retired.output
    assert "no consent text" in runner.invoke(app, ["faces", "consent-text", "list", *db]).output
    assert (
        "2026-12" in runner.invoke(app, ["faces", "consent-text", "list", "--retired", *db]).output
    )
    unknown = runner.invoke(app, ["faces", "consent-text", "retire", "1999", *db])
    assert unknown.exit_code == 2
    with engine.connect() as conn:
        detail = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "faces.consent_text.publish")
        ).scalar_one()
    assert WORDS not in json.dumps(detail)  # the audit names the hash, not the words
