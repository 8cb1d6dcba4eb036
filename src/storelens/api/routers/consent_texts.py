"""The consent texts members read before agreeing to recognition.

Admins publish and retire them; anyone signed in may read them, staff because the
staff app shows the text in force to the member before the consent box is ticked.
Enrollment names one by its version (:mod:`storelens.recognition.consent_texts`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from storelens.accounts import Role
from storelens.api.consent_text_schemas import (
    ConsentTextCreate,
    ConsentTextList,
    ConsentTextPublic,
)
from storelens.api.deps import AdminOnly, AnyPerson, EngineDep, Now
from storelens.api.errors import error_responses
from storelens.recognition.consent_texts import list_texts, publish, retire

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/faces/consent-texts",
    tags=["recognition"],
    responses=error_responses(400, 403, 413, 422),
)
Version = Annotated[str, Path(min_length=1, max_length=40)]


@router.get("")
def consent_texts(
    principal: AnyPerson,
    engine: EngineDep,
    include_retired: Annotated[bool, Query(description="list retired texts too")] = False,
) -> ConsentTextList:
    """The text in force and the published texts, newest first."""
    with engine.connect() as conn:
        texts = list_texts(conn, include_retired=include_retired)
    items = [ConsentTextPublic.model_validate(t) for t in texts]
    if principal.role != Role.admin:  # who published is not staff's business
        items = [t.model_copy(update={"published_by": None, "retired_by": None}) for t in items]
    current = next((t for t in items if t.in_force), None)
    return ConsentTextList(current=current, items=items)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        **error_responses(409),
        200: {"description": "already published with these words: nothing changed"},
    },
)
def publish_consent_text(
    body: ConsentTextCreate, principal: AdminOnly, engine: EngineDep, now: Now, response: Response
) -> ConsentTextPublic:
    """Publish a consent text and put it in force (admins; audited): the text in force
    before is retired (``replaced`` names it; consents given under it stay). Its words
    never change: the same version with other words is 409, as is a retired version;
    the same words again is 200 and changes nothing."""
    with engine.begin() as conn:
        done = publish(conn, body.version, body.body, actor=principal.actor, at=now)
    if not done.created:
        response.status_code = status.HTTP_200_OK
    public = ConsentTextPublic.model_validate(done.text)
    return public.model_copy(update={"replaced": list(done.replaced)})


@router.post("/{version}/retirement", responses=error_responses(404))
def retire_consent_text(
    version: Version, principal: AdminOnly, engine: EngineDep, now: Now
) -> ConsentTextPublic:
    """Retire a text (admins; audited): no new enrollment may name it, and the consents
    given under it stay in force (the members agreed to those words)."""
    with engine.begin() as conn:
        text = retire(conn, version, actor=principal.actor, at=now)
    return ConsentTextPublic.model_validate(text)
