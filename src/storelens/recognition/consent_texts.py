"""The consent texts members read before agreeing to recognition.

Biometric consent is only as good as the proof of what the person agreed to. An
enrollment used to record any version string the form carried, so a consent could name
a text that never existed, or one whose words had since been edited. Here an admin
publishes each text once; a published text never changes (new words are a new
version, and publishing the same version with other words is refused); an enrollment
must name a published text that is not retired; and an access request shows the member
the words of the text they agreed to (:mod:`storelens.recognition.store`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from storelens.core.errors import Conflict, FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.storage.tables import face_consent_texts

__all__ = [
    "MAX_BODY_CHARS",
    "ConsentText",
    "current_text",
    "list_texts",
    "publish",
    "require_in_force",
    "retire",
    "text_of",
]

MAX_BODY_CHARS = 20_000
_MIN_BODY_CHARS = 20  # shorter is a placeholder, not a text anyone could agree to
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


@dataclass(frozen=True, slots=True)
class ConsentText:
    version: str
    body: str
    sha256: str
    published_at: datetime
    published_by: str
    retired_at: datetime | None
    retired_by: str | None

    @property
    def in_force(self) -> bool:
        return self.retired_at is None


def _refuse(field: str, message: str, kind: str, where: str = "body") -> InvalidInput:
    return InvalidInput(message, [FieldError.at((where, field), message, kind)])


def _checked(version: str, body: str) -> tuple[str, str]:
    version = version.strip()
    if not _VERSION.match(version):
        raise _refuse(
            "version",
            "a version is 1 to 40 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit, such as 2026-12; got {len(version)} characters",
            "consent_text_version",
        )
    body = body.replace("\r\n", "\n").strip()
    if "\x00" in body:
        raise _refuse("body", "the text must not contain a NUL character", "string_nul")
    if not _MIN_BODY_CHARS <= len(body) <= MAX_BODY_CHARS:
        raise _refuse(
            "body",
            f"the text must be {_MIN_BODY_CHARS} to {MAX_BODY_CHARS:,} characters, "
            f"not {len(body):,}",
            "consent_text_body",
        )
    return version, body


def _row(r: object) -> ConsentText:
    m = r._mapping  # type: ignore[attr-defined]
    return ConsentText(
        m["version"], m["body"], m["sha256"], m["published_at"], m["published_by"],
        m["retired_at"], m["retired_by"],
    )  # fmt: skip


def text_of(conn: Connection, version: str) -> ConsentText | None:
    row = conn.execute(
        select(face_consent_texts).where(face_consent_texts.c.version == version)
    ).first()
    return None if row is None else _row(row)


def list_texts(conn: Connection, *, include_retired: bool = False) -> list[ConsentText]:
    """Newest first."""
    query = select(face_consent_texts).order_by(
        face_consent_texts.c.published_at.desc(), face_consent_texts.c.id.desc()
    )
    if not include_retired:
        query = query.where(face_consent_texts.c.retired_at.is_(None))
    return [_row(r) for r in conn.execute(query)]


def current_text(conn: Connection) -> ConsentText | None:
    """The newest text in force: the one the staff app shows the member."""
    texts = list_texts(conn)
    return texts[0] if texts else None


def publish(
    conn: Connection, version: str, body: str, *, actor: audit.Actor, at: datetime
) -> tuple[ConsentText, bool]:
    """Publish a text; ``(text, True)`` when new. The same version with the same words
    again is ``(existing, False)``, so a re-run script changes nothing; with other words
    it is a Conflict, since consents already recorded name that version's words."""
    version, body = _checked(version, body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    existing = text_of(conn, version)
    if existing is not None:
        if existing.sha256 != digest:
            raise Conflict(
                f"consent text {version!r} is already published with other words; a new "
                "wording needs a new version (consents name the words they were given under)"
            )
        return existing, False
    conn.execute(
        face_consent_texts.insert().values(
            version=version, body=body, sha256=digest, published_at=at, published_by=actor.name
        )
    )
    audit.record(
        conn, actor, "faces.consent_text.publish", "consent_text", version, {"sha256": digest}
    )
    text = text_of(conn, version)
    assert text is not None
    return text, True


def retire(conn: Connection, version: str, *, actor: audit.Actor, at: datetime) -> ConsentText:
    """No new enrollment may name this text; consents given under it stay in force (the
    member agreed to those words). Retiring a retired text changes nothing."""
    text = text_of(conn, version)
    if text is None:
        raise NotFound(f"no consent text {version!r} is published")
    if text.retired_at is not None:
        return text
    conn.execute(
        update(face_consent_texts)
        .where(face_consent_texts.c.version == version)
        .values(retired_at=at, retired_by=actor.name)
    )
    audit.record(conn, actor, "faces.consent_text.retire", "consent_text", version, {})
    retired = text_of(conn, version)
    assert retired is not None
    return retired


def require_in_force(conn: Connection, version: str) -> ConsentText:
    """The published text ``version`` names, or an input error on the enrollment's
    ``consent_text_version`` saying which texts may be named."""
    text = text_of(conn, version.strip())
    if text is not None and text.in_force:
        return text
    current = current_text(conn)
    if text is not None:
        problem = f"consent text {text.version!r} was retired"
    else:
        problem = f"no consent text {version.strip()[:40]!r} is published"
    hint = (
        f"; the text in force is {current.version!r}"
        if current is not None
        else "; an admin publishes one first (storelens faces consent-text publish)"
    )
    raise _refuse("consent_text_version", problem + hint, "consent_text_version")
