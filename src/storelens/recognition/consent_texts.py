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
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from storelens.core.errors import Conflict, FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.storage.tables import face_consent_texts

__all__ = [
    "MAX_BODY_CHARS",
    "MIN_BODY_CHARS",
    "ConsentText",
    "Published",
    "current_text",
    "list_texts",
    "publish",
    "require_in_force",
    "retire",
    "text_of",
]

MAX_BODY_CHARS = 20_000
MIN_BODY_CHARS = 20  # shorter is a placeholder, not a text anyone could agree to
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
        problem = (
            f"got {len(version)} characters" if not 1 <= len(version) <= 40 else
            "it may hold only letters, digits, '.', '_' and '-', and start with a letter or "
            "digit"
        )  # fmt: skip
        raise _refuse(
            "version",
            f"a version is 1 to 40 letters, digits, '.', '_' or '-', such as 2026-12: {problem}",
            "consent_text_version",
        )
    # One text, one hash: line ends, a byte-order mark and composed or decomposed
    # accents are made one form, so the same visible words are the same version.
    body = unicodedata.normalize("NFC", body.lstrip("\ufeff"))
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if "\x00" in body:
        raise _refuse("body", "the text must not contain a NUL character", "string_nul")
    if not MIN_BODY_CHARS <= len(body) <= MAX_BODY_CHARS:
        raise _refuse(
            "body",
            f"the text must be {MIN_BODY_CHARS} to {MAX_BODY_CHARS:,} characters, "
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
    """The text in force: the one the staff app shows the member. One at most, except
    after two admins publish two versions in the same instant (neither sees the
    other's uncommitted row to retire it): then the later by time is shown, and either
    may be named until one is retired."""
    texts = list_texts(conn)
    return texts[0] if texts else None


@dataclass(frozen=True, slots=True)
class Published:
    text: ConsentText
    created: bool  # False: these words were published under this version already
    replaced: tuple[str, ...] = ()  # the text(s) this one retired


def _same_version(version: str, digest: str, existing: ConsentText) -> Published:
    if existing.sha256 != digest:
        raise Conflict(
            f"consent text {version!r} is already published with other words; a new "
            "wording needs a new version (consents name the words they were given under)"
        )
    if not existing.in_force:  # answering "already published" left nothing in force
        raise Conflict(
            f"consent text {version!r} was retired; to use these words again, publish them "
            "under a new version"
        )
    return Published(existing, False)


def publish(
    conn: Connection, version: str, body: str, *, actor: audit.Actor, at: datetime
) -> Published:
    """Publish a text and put it in force.

    One text is in force at a time, the one an admin published last: publishing
    retires the one before (consents given under it stay), so the staff app never shows
    a superseded text and no enrollment names one (a review: both stayed enrollable,
    and the newest by date was shown, whatever was published last). The
    same version with the same words again changes nothing (``created`` false: a
    re-run script); with other words it is a Conflict, since consents already recorded
    name that version's words, and so is a retired version (retired stays retired).
    Two publishers of one version at once: the loser gets the winner's row (or the
    Conflict), never a database error."""
    version, body = _checked(version, body)
    digest = hashlib.sha256(body.encode()).hexdigest()
    existing = text_of(conn, version)
    if existing is not None:
        return _same_version(version, digest, existing)
    try:
        with conn.begin_nested():
            conn.execute(
                face_consent_texts.insert().values(
                    version=version,
                    body=body,
                    sha256=digest,
                    published_at=at,
                    published_by=actor.name,
                )
            )
    except IntegrityError:  # published meanwhile by another request
        raced = text_of(conn, version)
        if raced is None:
            raise
        return _same_version(version, digest, raced)
    replaced = [t.version for t in list_texts(conn) if t.version != version and t.in_force]
    for old in replaced:
        _retire_row(conn, old, actor, at, {"replaced_by": version})
    audit.record(
        conn, actor, "faces.consent_text.publish", "consent_text", version,
        {"sha256": digest, "replaces": replaced},
    )  # fmt: skip
    text = text_of(conn, version)
    assert text is not None
    return Published(text, True, tuple(replaced))


def _retire_row(
    conn: Connection, version: str, actor: audit.Actor, at: datetime, detail: dict[str, str]
) -> bool:
    """Retire the text if it is in force; audited only by the one request that did."""
    done = conn.execute(
        update(face_consent_texts)
        .where(face_consent_texts.c.version == version, face_consent_texts.c.retired_at.is_(None))
        .values(retired_at=at, retired_by=actor.name)
    )
    if done.rowcount != 1:
        return False
    audit.record(conn, actor, "faces.consent_text.retire", "consent_text", version, detail)
    return True


def retire(conn: Connection, version: str, *, actor: audit.Actor, at: datetime) -> ConsentText:
    """No new enrollment may name this text, and none may be made until another is
    published; consents given under it stay in force (the member agreed to those
    words). Retiring a retired text changes nothing."""
    if text_of(conn, version) is None:
        raise NotFound(f"no consent text {version!r} is published")
    _retire_row(conn, version, actor, at, {})
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
