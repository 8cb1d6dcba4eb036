"""The 500 log's traceback keeps where a fault is and drops what its messages quote."""

from __future__ import annotations

import traceback

import pytest

from storelens.core.tracebacks import HIDDEN, traceback_without_messages

SECRET = "ada@example.com"


def _lookup(table: dict[str, int], key: str) -> int:
    return table[key]


def _caught(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:  # the test inspects whatever it was
        return exc
    raise AssertionError("nothing raised")


def test_frames_and_types_stay_the_messages_go() -> None:
    exc = _caught(lambda: _lookup({}, SECRET))
    assert SECRET in "".join(traceback.format_exception(exc))  # Python's own prints it
    text = traceback_without_messages(exc)
    assert SECRET not in text
    assert "_lookup" in text and "return table[key]" in text  # the frame and its line
    assert text.endswith(f"KeyError: <{HIDDEN}; {len(str(exc))} characters>")


def test_the_whole_chain_is_shown_in_order_without_messages() -> None:
    def wrapped() -> None:
        try:
            int(SECRET)
        except ValueError as inner:
            raise RuntimeError(f"could not read {SECRET}") from inner

    def during() -> None:
        try:
            _lookup({}, SECRET)
        except KeyError:
            raise OSError(f"disk full while handling {SECRET}")  # noqa: B904 - the context

    text = traceback_without_messages(_caught(wrapped))
    assert SECRET not in text
    assert text.index("ValueError: <") < text.index("direct cause") < text.index("RuntimeError: <")
    text = traceback_without_messages(_caught(during))
    assert SECRET not in text
    assert text.index("KeyError: <") < text.index("During handling") < text.index("OSError: <")


def test_a_suppressed_context_is_left_out_as_python_does() -> None:
    def suppressed() -> None:
        try:
            _lookup({}, SECRET)
        except KeyError:
            raise ValueError("no such customer") from None

    text = traceback_without_messages(_caught(suppressed))
    assert "KeyError" not in text and text.count("Traceback") == 1


def test_an_unprintable_exception_and_a_cycle_still_give_a_traceback() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError(SECRET)

    exc = _caught(lambda: (_ for _ in ()).throw(Unprintable()))
    assert traceback_without_messages(exc).endswith(f"Unprintable: <{HIDDEN}; unreadable>")
    first, second = ValueError(SECRET), KeyError(SECRET)
    first.__context__, second.__context__ = second, first  # a loop: each shown once
    text = traceback_without_messages(first)
    assert text.count("Traceback") == 2 and SECRET not in text


@pytest.mark.parametrize("kind", [SystemExit, KeyboardInterrupt])
def test_base_exceptions_are_named_too(kind: type[BaseException]) -> None:
    text = traceback_without_messages(_caught(lambda: (_ for _ in ()).throw(kind(SECRET))))
    assert f"{kind.__qualname__}: <{HIDDEN}" in text and SECRET not in text


def test_an_exception_groups_members_are_shown_without_messages() -> None:
    def grouped() -> None:
        raise ExceptionGroup("two faults", [KeyError(SECRET), ValueError(SECRET)])

    text = traceback_without_messages(_caught(grouped))
    assert SECRET not in text
    assert "ExceptionGroup: <" in text and "member 1" in text and "member 2" in text
    assert "| KeyError: <" in text and "| ValueError: <" in text
