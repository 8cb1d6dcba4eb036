"""How ``storelens --help`` reads: Typer's Rich help, with three of its habits undone.

Typer 0.29's Rich help (1) writes a value type after every option, flags included
(``--dry-run <bool>``, even ``--help <bool>``), as if each took a value; (2) keeps a
docstring's source line breaks in the command list and after a command's first
paragraph, so at 80 columns each source line broke into a long and a short one; and
(3) prints reStructuredText's literal quotes (double backticks) as they are. Click's
plain help does none of this. :func:`install` patches the three places once, before the
first help is printed; an older or newer Typer without them is left alone.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, cast

import typer.core
import typer.rich_utils

__all__ = ["install", "reflow"]

_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def _flowed(paragraph: str) -> str:
    """One paragraph as one line for the terminal to wrap; a list or a ``\\b`` block
    keeps its lines."""
    lines = paragraph.splitlines()
    if paragraph.startswith("\b") or any(_LIST_ITEM.match(line) for line in lines):
        return paragraph
    return " ".join(line.strip() for line in lines)


def reflow(paragraphs: list[str], markup_mode: str) -> str:
    """Typer's ``_fix_linebreaks``, joining each paragraph's lines as Click does."""
    if markup_mode == "markdown":
        return "\n\n".join(paragraphs)
    return "\n\n".join(_flowed(p) for p in paragraphs)


def _flags_take_no_value() -> None:
    shown = getattr(typer.core.TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_bare", False):  # older Typer, or done
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else cast("str | None", shown(self, ctx))

    display_type_rich.flags_bare = True  # type: ignore[attr-defined]
    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _command_list_flows() -> None:
    made = getattr(typer.rich_utils, "_make_command_help", None)
    if made is None or getattr(made, "flows", False):
        return

    def command_help(*, help_text: str, markup_mode: Any) -> Any:
        first, *rest = inspect.cleandoc(help_text).split("\n\n")
        return made(help_text="\n\n".join([_flowed(first), *rest]), markup_mode=markup_mode)

    command_help.flows = True  # type: ignore[attr-defined]
    typer.rich_utils._make_command_help = command_help


def _literals_unquoted() -> None:
    make = getattr(typer.rich_utils, "_make_rich_text", None)
    if make is None or getattr(make, "unquoted", False):
        return

    def rich_text(*, text: str, style: str = "", markup_mode: Any) -> Any:
        if markup_mode != "markdown":
            text = text.replace("``", "")
        return make(text=text, style=style, markup_mode=markup_mode)

    rich_text.unquoted = True  # type: ignore[attr-defined]
    typer.rich_utils._make_rich_text = rich_text


def install() -> None:
    """Undo the three habits (idempotent)."""
    _flags_take_no_value()
    if hasattr(typer.rich_utils, "_fix_linebreaks"):
        typer.rich_utils._fix_linebreaks = reflow
    _command_list_flows()
    _literals_unquoted()
