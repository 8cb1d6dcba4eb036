"""The warm recommendation answer without FastAPI's per-request machinery.

``GET /v1/customers/{id}/recommendations`` is the one route a shop calls on every page
view (the spec's 1M requests a minute). On it FastAPI's dependency and parameter
solving cost more than the answer itself: in-process, the route with its token check
and role gate but a fixed answer took 0.14 ms against hello world's 0.04 ms
(``benchmarks/serving_inprocess.py``).

This lane is the innermost of the app's middlewares (inside the body limit, the NUL
guard, metrics and the access log, outside FastAPI's router and exception handlers),
and answers only the request it can answer exactly as the route would:

* one bearer token, checked by the route's own token code (the signed-in cache, or
  the user row), of a role the route admits;
* the query holds nothing but ``store``, ``k`` and ``context``, once each, with values
  the route would accept;
* an answer from what the process holds (:meth:`RecommendationEngine.answer_warm`).

Per request it keeps to the cheap parts: a token the signed-in cache holds yields only
the name and role (:func:`~storelens.api.auth.person_name_and_role`, no ``Principal``),
and a query string's reading is kept by its text.

Anything else (no token or an API key, a token not yet cached, a bad parameter, a
cold answer) goes to the route itself, which checks, answers and words its errors as
always. So the lane has no error path of its own to keep in step with the route: a
test sends the same requests through both and compares the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from types import SimpleNamespace
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from storelens.accounts import KEY_PREFIX, Role
from storelens.api.auth import person_name_and_role
from storelens.api.routers.recommendations import PATH
from storelens.core.errors import InvalidInput
from storelens.recommend.candidate_store import CandidatesUnavailable, RedisCandidates
from storelens.recommend.context import Context, parse_context
from storelens.recommend.engine import Answer, RecommendationEngine

__all__ = ["RecommendationsLane"]

_HEAD, _, _TAIL = PATH.partition("{customer_id}")
_PATH = re.compile(f"{re.escape(_HEAD)}([^/]+){re.escape(_TAIL)}")  # Starlette's ``str``
_ROUTE = SimpleNamespace(path=PATH)  # what the metrics label a request with
_QUERY_KEYS = frozenset({"store", "k", "context"})
_K = re.compile(r"[1-9][0-9]{0,2}")  # what the route's ``int`` surely reads the same
_HEADERS = [(b"content-type", b"application/json")]
_KEPT_QUERY = 2048  # longer query strings are read each time, never kept
Asked = tuple[str, int, Context]  # store, k, context


def _read_query(query: str, max_k: int) -> Asked | None:
    """What the query asks for, when the route would surely accept it; else None."""
    pairs = parse_qsl(query, keep_blank_values=True)
    values = dict(pairs)
    if len(values) != len(pairs) or not values.keys() <= _QUERY_KEYS:
        return None
    store = values.get("store")
    if store is None or not 1 <= len(store) <= 64:
        return None
    k_text = values.get("k", "10")
    if not _K.fullmatch(k_text) or int(k_text) > min(max_k, 500):
        return None
    text = values.get("context")
    if text is not None and len(text) > 500:
        return None
    try:
        ctx = parse_context(text)
    except InvalidInput:  # the route words the error
        return None
    return store, int(k_text), ctx


# By the query's text: a shop sends the same few (a store, a k, a handful of contexts)
# on every page view, and the answer is a pure function of the text (a Context is
# frozen, so one is shared).
_kept_query = lru_cache(maxsize=4096)(_read_query)


class RecommendationsLane:
    """ASGI middleware: the warm answer on the route's path, else the app (``app``)."""

    def __init__(
        self,
        app: ASGIApp,
        roles: frozenset[Role],
        body_of: Callable[[Answer], bytes],
    ) -> None:
        self._app, self._roles, self._body_of = app, roles, body_of
        self._key_prefix = f"{KEY_PREFIX}_"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = None
        if scope["type"] == "http" and scope.get("method") == "GET":
            found = _PATH.fullmatch(scope["path"])
            if found is not None and not scope.get("root_path"):
                body = await self._warm(scope, found.group(1))
        if body is None:
            await self._app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        headers = [(b"content-length", str(len(body)).encode()), *_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _warm(self, scope: Scope, customer_id: str) -> bytes | None:
        state = scope["app"].state
        actor = self._signed_in(scope)
        if actor is None:
            return None
        asked = self._parameters(scope, customer_id, state.settings.recommend_max_k)
        if asked is None:
            return None
        store, k, ctx = asked
        engine: RecommendationEngine = state.recommendations
        shared = engine.candidates
        entry = None
        if isinstance(shared, RedisCandidates):
            try:
                entry = await shared.aget(customer_id)
            except CandidatesUnavailable:
                return None
            if entry is None:
                return None
        try:
            answer = engine.answer_warm(customer_id, store, k, ctx, actor, entry)
        except Exception:  # an unknown store, a fault: the route words it
            return None
        return None if answer is None else self._body_of(answer)

    def _signed_in(self, scope: Scope) -> str | None:
        """The person's name for one bearer token of an admitted role, else None. The
        token is checked by the route's own code (cached where the users signal allows,
        the user row read otherwise): the lane only skips FastAPI's wiring around it."""
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if token is not None:
                    return None  # two: the route decides
                scheme, _, credential = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not credential:
                    return None
                token = credential
            elif name == b"x-api-key":
                return None
        if token is None or token.startswith(self._key_prefix):
            return None
        try:
            name, role = person_name_and_role(HTTPConnection(scope), token)
        except HTTPException:  # expired, revoked, disabled: the route says which
            return None
        return name if role in self._roles else None

    def _parameters(self, scope: Scope, customer_id: str, max_k: int) -> Asked | None:
        if len(customer_id) > 128:
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        if len(query) > _KEPT_QUERY:
            return _read_query(query, max_k)
        return _kept_query(query, max_k)
