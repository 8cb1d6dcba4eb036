"""How errors reach a client: input errors as 4xx with field-level ``loc`` lists, the
resource errors as their status, and everything else as a 500 with an error id.

There is no handler for ``ValueError``: pydantic's ``ValidationError`` and
``JSONDecodeError`` are ``ValueError``s too, so such a handler would tell a client
"your input was wrong" about a bug on our side. Only :class:`InvalidInput` says that.
The 500 body carries an ``error_id`` that is also in the log line, so a user's report
leads straight to the traceback without the response revealing anything about it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from storelens.api.access_log import redact
from storelens.core.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedInput,
    NotFound,
)
from storelens.core.tracebacks import traceback_without_messages
from storelens.ingest.batch import BatchTooLarge

__all__ = [
    "ERROR_RESPONSES",
    "error_responses",
    "install_error_handlers",
    "invalid_request_response",
]

log = logging.getLogger(__name__)

_INPUT_STATUS: dict[type[InvalidInput], int] = {MalformedInput: 400, BatchTooLarge: 413}
"""Input errors whose status is not 422; looked up along the exception's class chain."""


_MESSAGE = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
_VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}
_INTERNAL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "error_id": {"type": "string"}},
    "required": ["detail", "error_id"],
}
_DESCRIPTIONS = {
    400: ("Malformed body (not JSON, not UTF-8)", {"anyOf": [_VALIDATION, _MESSAGE]}),
    401: ("Missing, expired or forged credentials", _MESSAGE),
    403: ("The credential's role or scope does not allow this", _MESSAGE),
    404: ("No such resource (or a deleted store)", _MESSAGE),
    409: ("The resource already exists", _MESSAGE),
    413: ("Body over STORELENS_MAX_BODY_MB, or too many items", _MESSAGE),
    415: ("Unsupported Content-Type", _MESSAGE),
    422: ("Invalid input; `loc` lists point at the field", _VALIDATION),
    429: ("Too many attempts; retry later", _MESSAGE),
    500: ("Server fault; quote `error_id` when reporting it", _INTERNAL),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given statuses (401 and 500 go everywhere)."""
    wanted = sorted({401, 500, *statuses})
    return {
        status: {
            "description": _DESCRIPTIONS[status][0],
            "content": {"application/json": {"schema": _DESCRIPTIONS[status][1]}},
        }
        for status in wanted
    }


ERROR_RESPONSES = error_responses(400, 403, 413, 422)
"""What every authenticated route can return: used as the default on each router."""


def _input_status(exc: InvalidInput) -> int:
    for cls in type(exc).__mro__:
        if cls in _INPUT_STATUS:
            return _INPUT_STATUS[cls]
    return 422


def _message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"detail": text}, status_code=status)


_RESOURCE_STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,  # before AuthError, its base: the most specific class wins
    AuthError: 401,
}


async def _resource_error(_: Request, exc: Exception) -> JSONResponse:
    status = next(code for cls, code in _RESOURCE_STATUS.items() if isinstance(exc, cls))
    return _message(status, str(exc))


def invalid_request_response(exc: RequestValidationError) -> JSONResponse:
    """422 with each field's ``loc`` and message. No "input": it would echo personal
    values (a password, an e-mail) back and into any proxy log that keeps bodies."""
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    for error in _RESOURCE_STATUS:
        app.add_exception_handler(error, _resource_error)

    @app.exception_handler(InvalidInput)
    async def _invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
        detail = [e.as_detail() for e in exc.errors]
        return JSONResponse({"detail": detail}, status_code=_input_status(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request_response(exc)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        error_id = str(uuid.uuid4())
        # The path redacted as the access log redacts it: this line goes to the
        # server's log unfiltered, and a customer route's path names the customer.
        # For the same reason the exceptions' messages stay out of it unless asked for
        # (core/tracebacks.py): they can quote the value that failed.
        where = (error_id, request.method, redact(request.url.path))
        if request.app.state.settings.log_exception_messages:
            log.error("internal error %s on %s %s", *where, exc_info=exc)
        else:
            log.error("internal error %s on %s %s\n%s", *where, traceback_without_messages(exc))
        return JSONResponse({"detail": "internal error", "error_id": error_id}, status_code=500)
