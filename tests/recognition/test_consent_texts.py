"""The consent texts members agree to: published once, never edited, named by every
enrollment, and shown back to the member in an access request.

Before these, an enrollment recorded whatever version string the form carried, so a
consent could name a text that never existed and nothing showed which words a member
had agreed to (a weakness listed in the session notes)."""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from storelens.recognition.consent_texts import (
    current_text,
    publish,
    require_in_force,
    retire,
    text_of,
)
from storelens.storage.tables import audit_log, face_consent_texts, face_consents, face_embeddings

RGB = npt.NDArray[np.uint8]
Login = Callable[[str], dict[str, str]]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WORDS = "I agree that the café keeps a template of my face so staff know when I come in."
runner = CliRunner()


def _publish(engine: Engine, version: str, body: str = WORDS, at: datetime = T0) -> Any:
    with engine.begin() as conn:
        done = publish(conn, version, body, actor=audit.SYSTEM, at=at)
    return done.text, done.created


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
        ("-v1", WORDS, "version", "start with a letter or digit"),
        ("two words", WORDS, "version", "may hold only letters"),
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


def _audits(engine: Engine, action: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(audit_log.c.action == action)).scalar_one()
        )


def test_one_text_is_in_force_the_one_published_last(engine: Engine) -> None:
    """A review: publishing left the text before it enrollable, and the staff app showed
    the newest by date, so a text published later for an older version took over."""
    with engine.connect() as conn:
        assert current_text(conn) is None
    _publish(engine, "2026-12")
    _publish(engine, "2025-06", WORDS + " Backfilled.", at=T0 + timedelta(days=1))
    with engine.begin() as conn:
        assert current_text(conn).version == "2025-06"  # type: ignore[union-attr]
        assert not text_of(conn, "2026-12").in_force  # type: ignore[union-attr]
        with pytest.raises(InvalidInput, match="'2026-12' was retired"):
            require_in_force(conn, "2026-12")
        retired = retire(conn, "2025-06", actor=audit.SYSTEM, at=T0 + timedelta(days=2))
        assert retired.retired_at is not None and not retired.in_force
        assert current_text(conn) is None  # none until an admin publishes again
        again = retire(conn, "2025-06", actor=audit.SYSTEM, at=T0 + timedelta(days=3))
        assert again.retired_at == retired.retired_at  # retiring twice changes nothing
        with pytest.raises(NotFound):
            retire(conn, "1999-01", actor=audit.SYSTEM, at=T0)
    assert _audits(engine, "faces.consent_text.retire") == 2  # one each, none for the repeat


def test_the_same_words_hash_alike_whatever_their_line_ends_and_accents(engine: Engine) -> None:
    """A review: a file saved by Notepad (byte-order mark, CRLF) or with decomposed
    accents hashed differently from the same visible words."""
    words = "Je consens à ce que le café garde un modèle de mon visage.\nLigne deux."
    first, _ = _publish(engine, "fr-1", words)
    decomposed = unicodedata.normalize("NFD", words)
    for variant in ("\ufeff" + words, words.replace("\n", "\r\n"), words.replace("\n", "\r"),
                    decomposed):  # fmt: skip
        assert variant != words
        again, created = _publish(engine, "fr-1", variant)
        assert not created and again.sha256 == first.sha256


@pytest.mark.parametrize("words", [WORDS, WORDS + " Other words."])
def test_two_admins_publishing_one_version_at_once_get_answers_not_errors(
    engine: Engine, words: str
) -> None:
    """A review: on PostgreSQL the loser's insert hit the unique constraint, a 500."""
    _publish(engine, "base")
    barrier = threading.Barrier(6)

    def one(i: int) -> str:
        barrier.wait()
        body = words if i % 2 else WORDS
        try:
            with engine.begin() as conn:
                created = publish(conn, "race", body, actor=audit.SYSTEM, at=T0).created
        except Conflict:
            return "conflict"
        return "created" if created else "same"

    with ThreadPoolExecutor(6) as pool:
        got = sorted(pool.map(one, range(6)))
    assert got.count("created") == 1
    if words == WORDS:
        assert got == ["created", *["same"] * 5]
    else:  # the first in wins; the other wording is refused, never a database error
        assert got == ["conflict"] * 3 + ["created"] + ["same"] * 2
    assert _audits(engine, "faces.consent_text.publish") == 2


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


def test_a_text_published_later_under_an_old_consents_version_is_not_shown_as_theirs(
    client: TestClient, engine: Engine, login: Login, add_customer: Callable[[str], None]
) -> None:
    """A review: a consent recorded before texts were published named a free version;
    publishing a text under that version later made the export show its words as the
    ones the member had agreed to."""
    from storelens.recognition import store as face_store

    add_customer("C1")
    with engine.begin() as conn:  # as recorded before migration 0021: no words on file
        face_store.record_consent(
            conn, "C1", text_version="2026-12", store_ids=None, recorded_by="ana",
            at=T0 - timedelta(days=30), approved_by="boss",
        )  # fmt: skip
    _publish(engine, "2026-12", WORDS + " And we share it with partner stores.")
    exported = client.get("/v1/customers/C1/export", headers=login("admin")).json()
    (consent,) = [i for i in exported["stores"]["faces"] if "consent" in i]
    assert consent["consent"]["text_version"] == "2026-12"
    assert consent["consent_text"] is None


def test_only_admins_see_who_published_a_text(
    client: TestClient, engine: Engine, login: Login
) -> None:
    _publish(engine, "2026-12")
    staff = client.get("/v1/faces/consent-texts", headers=login("staff")).json()
    admin = client.get("/v1/faces/consent-texts", headers=login("admin")).json()
    assert staff["current"]["published_by"] is None
    assert admin["current"]["published_by"] == audit.SYSTEM.name


def test_the_cli_lists_a_login_name_as_plain_text_and_refuses_a_text_it_cannot_read_whole(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """A review: ``cli:<$USER>`` went through rich markup and reached the terminal with
    its escape sequences, and a file past the read limit was published cut short."""
    sneaky = audit.Actor(name="cli:[bold red]ADMIN[/]\x1b]0;pwned\x07", kind="cli", role="admin")
    with engine.begin() as conn:
        publish(conn, "2026-12", WORDS, actor=sneaky, at=T0)
    listed = runner.invoke(
        app, ["faces", "consent-text", "list", "--database-url", db_url], env={"COLUMNS": "250"}
    )
    assert "[/" in listed.output  # the markup shown as typed, not applied
    assert "\x1b" not in listed.output and "\x07" not in listed.output
    huge = tmp_path / "huge.txt"
    huge.write_text("Clause. " * 10_001, encoding="utf-8")  # 80,008 bytes
    cut = runner.invoke(
        app,
        ["faces", "consent-text", "publish", "--version", "big", "--file", str(huge),
         "--database-url", db_url],
    )  # fmt: skip
    assert cut.exit_code == 2 and "over 20,000 characters" in cut.output
    with engine.connect() as conn:
        assert text_of(conn, "big") is None


def test_what_a_new_user_found_unclear_is_said_plainly(
    client: TestClient, engine: Engine, db_url: str, tmp_path: Path, login: Login
) -> None:
    """A new user's review: publishing did not say what it retired; a retired version
    published again answered "already published" with nothing in force; the list said
    "nothing published" when all were retired; no command showed a text's words."""
    db = ["--database-url", db_url]
    words = tmp_path / "c.txt"
    words.write_text(WORDS, encoding="utf-8")
    first = runner.invoke(app, ["faces", "consent-text", "publish", "--version", "v1", "--file",
                                str(words), *db])  # fmt: skip
    assert first.exit_code == 0 and "it is the text in force" in " ".join(first.output.split())
    admin = login("admin")
    second = client.post(
        "/v1/faces/consent-texts", json={"version": "v2", "body": WORDS + " Two."}, headers=admin
    )
    assert second.status_code == 201 and second.json()["replaced"] == ["v1"]
    again = runner.invoke(app, ["faces", "consent-text", "publish", "--version", "v1", "--file",
                                str(words), *db])  # fmt: skip
    assert again.exit_code == 2 and "v1' was retired" in " ".join(again.output.split())
    back = client.post("/v1/faces/consent-texts", json={"version": "v1", "body": WORDS},
                       headers=admin)  # fmt: skip
    assert back.status_code == 409
    shown = runner.invoke(app, ["faces", "consent-text", "show", "v2", *db])
    assert shown.exit_code == 0 and WORDS + " Two." in " ".join(shown.output.split())
    with engine.connect() as conn:
        assert text_of(conn, "v2").sha256 in shown.output  # type: ignore[union-attr]
    assert runner.invoke(app, ["faces", "consent-text", "show", "v9", *db]).exit_code == 2
    gone = runner.invoke(app, ["faces", "consent-text", "retire", "v2", *db])
    assert "no consent text is in force now" in " ".join(gone.output.split())
    twice = runner.invoke(app, ["faces", "consent-text", "retire", "v2", *db])
    assert twice.exit_code == 0 and "was already retired" in twice.output
    listed = " ".join(runner.invoke(app, ["faces", "consent-text", "list", *db]).output.split())
    assert "no consent text is in force (2 retired: list them with --retired)" in listed


def test_a_replaced_enrollment_names_the_one_that_replaced_it(
    client: TestClient,
    engine: Engine,
    login: Login,
    add_customer: Callable[[str], None],
    astronaut: RGB,
    png: Callable[[RGB], bytes],
) -> None:
    """A new user's review: the export showed a re-enrolled member's first consent as
    withdrawn, as if they had withdrawn it."""
    admin = login("admin")
    add_customer("C1")
    _publish(engine, "2026-12")
    one = _enroll(client, admin, [png(astronaut)], "2026-12").json()["consent_id"]
    two = _enroll(client, admin, [png(astronaut)], "2026-12").json()["consent_id"]
    exported = client.get("/v1/customers/C1/export", headers=admin).json()
    consents = {
        i["consent"]["id"]: i["consent"] for i in exported["stores"]["faces"] if "consent" in i
    }
    assert consents[one]["replaced_by_consent"] == two and consents[one]["withdrawn_at"]
    assert consents[two]["replaced_by_consent"] is None and consents[two]["withdrawn_at"] is None
