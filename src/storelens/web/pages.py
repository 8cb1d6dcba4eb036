"""The dashboard's pages: server-rendered figures, plus the data their charts draw.

Every figure is in the HTML as text (readable without scripts, by tests and by screen
readers); the same view model goes into the page as JSON for plotly. A bad request is
the page with a message and the matching status (404 unknown store or empty period,
422 bad dates), never a 500 or an empty chart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy import Engine

from storelens import stores
from storelens.accounts import Role
from storelens.api.auth import Principal
from storelens.api.deps import MAX_ROW_ID, EngineDep, Now, SettingsDep
from storelens.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from storelens.web.customers import customers_view, members_view
from storelens.web.period import period_view
from storelens.web.recognition import Decision, decide_from_page, recognition_view
from storelens.web.rendering import render
from storelens.web.session import MANAGERS, PageManager, PagePerson, check_csrf, page_user
from storelens.web.today import today_view

__all__ = ["MENU", "MenuItem", "router"]

router = APIRouter(include_in_schema=False)
Day = Annotated[str | None, Query(max_length=40)]
PageAdmin = Annotated[Principal, page_user(Role.admin)]


@dataclass(frozen=True, slots=True)
class MenuItem:
    slug: str
    title: str
    roles: frozenset[Role]


MENU = (
    MenuItem("today", "Today", frozenset(Role) - {Role.device}),
    MenuItem("floor", "Floor", frozenset(Role) - {Role.device}),
    MenuItem("operations", "Operations", frozenset(Role) - {Role.device}),
    MenuItem("customers", "Customers", frozenset(MANAGERS)),
    MenuItem("campaigns", "Campaigns", frozenset(MANAGERS)),
    MenuItem("recognition", "Recognition", frozenset({Role.admin})),
)
"""The menu; each entry shows only to the roles its page admits."""


def _stores(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [{"id": s["id"], "name": s["name"]} for s in stores.list_stores(conn)]


def _page(
    request: Request,
    template: str,
    principal: Principal,
    engine: Engine,
    store_id: str,
    active: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    known = _stores(engine)
    store = next((s for s in known if s["id"] == store_id), None)
    menu = [m for m in MENU if principal.role in m.roles]
    return render(
        request,
        template,
        {
            "user": principal,
            "stores": known,
            "store": store,
            "store_id": store_id,
            "menu": menu,
            "active": active,
            **context,
        },
        status_code=status_code,
    )


def _with_view(
    request: Request,
    template: str,
    principal: Principal,
    engine: Engine,
    store_id: str,
    active: str,
    build: Callable[[], BaseModel],
) -> HTMLResponse:
    """The page with its view, or with the reason there is none (and its 4xx status)."""
    try:
        view = build()
    except InvalidInput as exc:
        return _page(
            request, template, principal, engine, store_id, active,
            view=None, error=str(exc), status_code=422,
        )  # fmt: skip
    except NotFound as exc:
        return _page(
            request, template, principal, engine, store_id, active,
            view=None, error=str(exc), status_code=404,
        )  # fmt: skip
    return _page(
        request, template, principal, engine, store_id, active,
        view=view, data=view.model_dump(mode="json"), error=None,
    )  # fmt: skip


@router.get("/", response_class=HTMLResponse)
def home(request: Request, principal: PagePerson, engine: EngineDep) -> HTMLResponse:
    """One store: its Today page. Several: a list to pick from. None: how to add one."""
    known = _stores(engine)
    if len(known) == 1:
        return RedirectResponse(f"/stores/{known[0]['id']}/today", status_code=303)  # type: ignore[return-value]
    menu = [m for m in MENU if principal.role in m.roles]
    return render(
        request,
        "home.html",
        {"user": principal, "stores": known, "store": None, "menu": menu, "active": None},
    )


@router.get("/stores/{store_id}/today", response_class=HTMLResponse)
def today_page(
    request: Request, store_id: str, principal: PagePerson, engine: EngineDep, now: Now
) -> HTMLResponse:
    return _with_view(
        request, "today.html", principal, engine, store_id, "today",
        lambda: today_view(engine, store_id, now),
    )  # fmt: skip


@router.get("/stores/{store_id}/floor", response_class=HTMLResponse)
def floor_page(
    request: Request,
    store_id: str,
    principal: PagePerson,
    engine: EngineDep,
    settings: SettingsDep,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
) -> HTMLResponse:
    build = lambda: period_view(request, "floor", store_id, since, until)  # noqa: E731
    return _with_view(request, "floor.html", principal, engine, store_id, "floor", build)


@router.get("/stores/{store_id}/operations", response_class=HTMLResponse)
def operations_page(
    request: Request,
    store_id: str,
    principal: PagePerson,
    engine: EngineDep,
    settings: SettingsDep,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
) -> HTMLResponse:
    build = lambda: period_view(request, "operations", store_id, since, until)  # noqa: E731
    return _with_view(request, "operations.html", principal, engine, store_id, "operations", build)


def _coming(
    request: Request, principal: Principal, engine: Engine, store_id: str, slug: str
) -> HTMLResponse:
    known = {s["id"] for s in _stores(engine)}
    status = 200 if store_id in known else 404
    error = None if status == 200 else f"no store {store_id!r}"
    return _page(
        request, f"{slug}.html", principal, engine, store_id, slug,
        error=error, status_code=status,
    )  # fmt: skip


@router.get("/stores/{store_id}/customers", response_class=HTMLResponse)
def customers_page(
    request: Request,
    store_id: str,
    principal: PageManager,
    engine: EngineDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Segments, the lifetime-value distribution and churn risk (aggregates, no ids)."""
    build = lambda: customers_view(  # noqa: E731
        engine,
        store_id,
        high_risk=settings.predict_high_churn_risk,
        clv_bins=settings.web_clv_bins,
        clv_months=settings.predict_clv_months,
    )
    return _with_view(request, "customers.html", principal, engine, store_id, "customers", build)


@router.get("/stores/{store_id}/customers/segments/{segment_id}", response_class=HTMLResponse)
def segment_members_page(
    request: Request,
    store_id: str,
    segment_id: Annotated[str, Path(min_length=1, max_length=64)],
    principal: PageManager,
    engine: EngineDep,
    settings: SettingsDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """A page of a segment's members with their scores; each read is audited."""
    build = lambda: members_view(  # noqa: E731
        engine,
        store_id,
        segment_id,
        principal.actor,
        page=page,
        limit=settings.web_members_page_size,
    )
    return _with_view(
        request, "customers_members.html", principal, engine, store_id, "customers", build
    )


@router.get("/stores/{store_id}/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, store_id: str, principal: PageManager, engine: EngineDep
) -> HTMLResponse:
    return _coming(request, principal, engine, store_id, "campaigns")


@router.get("/stores/{store_id}/recognition", response_class=HTMLResponse)
def recognition_page(
    request: Request,
    store_id: str,
    principal: PageAdmin,
    engine: EngineDep,
    approved: Annotated[int | None, Query(ge=1)] = None,
    refused: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> HTMLResponse:
    """Face enrollments waiting for an admin's approval (audited: it names customers)."""
    build = lambda: recognition_view(engine, store_id, principal.actor, approved, refused)  # noqa: E731
    return _with_view(
        request, "recognition.html", principal, engine, store_id, "recognition", build
    )


_REFUSED: dict[type[Exception], int] = {NotFound: 404, Conflict: 409, Forbidden: 403}


@router.post("/stores/{store_id}/recognition/{decision}", response_class=HTMLResponse)
def decide_enrollment(
    request: Request,
    store_id: str,
    decision: Decision,
    principal: PageAdmin,
    engine: EngineDep,
    now: Now,
    consent_id: Annotated[int, Form(ge=1, le=MAX_ROW_ID)],
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """Approve or refuse one enrollment (``approve``, ``refuse``: its photos are deleted),
    then back to the list (303) saying which; a refusal (withdrawn, replaced, already
    approved, your own, not this store's) is the list with the reason. Refusing used to
    send an admin to the API (a new user's review)."""
    check_csrf(request, csrf)
    try:
        decide_from_page(engine, store_id, consent_id, principal, now, decision)
    except (NotFound, Conflict, Forbidden) as exc:
        try:
            view = recognition_view(engine, store_id, principal.actor)
        except NotFound as unknown:  # no such store: the page says so, as its GET does
            return _page(
                request, "recognition.html", principal, engine, store_id, "recognition",
                view=None, error=str(unknown), status_code=404,
            )  # fmt: skip
        return _page(
            request, "recognition.html", principal, engine, store_id, "recognition",
            view=view, error=None, refusal=str(exc), status_code=_REFUSED[type(exc)],
        )  # fmt: skip
    done = "approved" if decision == "approve" else "refused"
    target = f"/stores/{store_id}/recognition?{done}={consent_id}"
    return RedirectResponse(target, status_code=303)  # type: ignore[return-value]
