"""The one ingest client: every HTTP outcome lands in one branch of the error tree."""

from __future__ import annotations

import httpx
import pytest

from storelens.core.errors import AuthError, StorelensError
from storelens.ingest.client import (
    IngestAuthError,
    IngestClient,
    IngestRefused,
    IngestRejection,
    IngestResponse,
    IngestUnavailable,
    is_loopback_host,
)


def _client(answer: httpx.Response | Exception) -> IngestClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "slk_x"
        assert request.url.path == "/v1/events"
        if isinstance(answer, Exception):
            raise answer
        return answer

    return IngestClient("https://hq.example", "slk_x", transport=httpx.MockTransport(handler))


def test_a_counted_batch_is_a_typed_response() -> None:
    body = {
        "accepted": 1,
        "duplicates": 1,
        "rejected": 1,
        "errors": [{"index": 2, "id": "c", "errors": [{"loc": "ts", "msg": "m", "type": "t"}]}],
    }
    answer = _client(httpx.Response(200, json=body)).post_events(b"[]")
    assert answer == IngestResponse(
        accepted=1,
        duplicates=1,
        rejected=1,
        errors=[IngestRejection(index=2, id="c", errors=[{"loc": "ts", "msg": "m", "type": "t"}])],
    )
    assert answer.matches(["a", "b", "c"])
    assert not answer.matches(["a", "b", "x"])  # the rejection names another event
    assert not answer.matches(["a", "b"])  # counts do not add up
    assert not answer.matches(["a", "b", "c", "d"])


@pytest.mark.parametrize(
    ("answer", "kind", "status", "retry_after"),
    [
        (httpx.ConnectError("refused"), IngestUnavailable, None, None),
        (httpx.ReadTimeout("slow"), IngestUnavailable, None, None),
        (httpx.Response(503, headers={"Retry-After": "9"}), IngestUnavailable, 503, 9.0),
        (httpx.Response(429, headers={"Retry-After": "x"}), IngestUnavailable, 429, None),
        (httpx.Response(408), IngestUnavailable, 408, None),
        (httpx.Response(200, text="<html>captive portal</html>"), IngestUnavailable, 200, None),
        (httpx.Response(401, json={"detail": "bad key"}), IngestAuthError, 401, None),
        (httpx.Response(403), IngestAuthError, 403, None),
        (httpx.Response(413), IngestRefused, 413, None),
        (httpx.Response(422), IngestRefused, 422, None),
        (httpx.Response(404), IngestRefused, 404, None),
    ],
)
def test_each_outcome_has_one_branch(
    answer: httpx.Response | Exception,
    kind: type[Exception],
    status: int | None,
    retry_after: float | None,
) -> None:
    with pytest.raises(kind) as info:
        _client(answer).post_events(b"[]")
    error = info.value
    assert type(error) is kind
    assert isinstance(error, StorelensError)
    assert getattr(error, "status", None) == status
    assert getattr(error, "retry_after", None) == retry_after
    assert isinstance(error, AuthError) == (kind is IngestAuthError)
    assert "slk_x" not in str(error)


def test_refuses_bad_urls_and_empty_keys() -> None:
    with pytest.raises(ValueError, match="http"):
        IngestClient("hq.example:8000", "k")
    with pytest.raises(ValueError, match="API key"):
        IngestClient("https://hq.example", "  ")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("hq.example", False),
        ("localhost.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
