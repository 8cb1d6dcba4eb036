"""Who on the staff did what, as a customer's access export shows it: their role, not
their login.

An export is handed to the customer. Its audit rows, notices, face-enrollment
consents, recommendation impressions and identity decisions each name the account
that acted (``ana``, ``key:3f9a…:pos-till-2``, ``cli:root``) and, for audit rows, the
IP address it acted from. Those are the staff member's personal data, not the
customer's: the customer is owed the categories of recipients (a member of staff with
the role ``staff``, an API key, an operator at the server), not the colleague's name
or where they sat (GDPR Art. 15(1)(c) and 15(4); the CJEU's *Pankki S*, C-579/21). A
review found staff logins and IPs in every customer's export. The operator keeps the
full trail: ``storelens audit`` and ``GET /v1/audit`` are unchanged.

One pass over the whole export, by field name, rather than one per store: a store
added later that records an actor under one of these names is covered without
remembering to be, and the test that exports after every kind of staff action fails
if a login shows up under a new name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select

from storelens.storage.tables import users

__all__ = ["ACTOR_FIELDS", "AN_API_KEY", "AN_OPERATOR", "STAFF", "without_staff_names"]

ACTOR_FIELDS = frozenset(
    {"actor", "sent_by", "raised_by", "claimed_by", "recorded_by", "approved_by", "withdrawn_by"}
)
"""Fields that name the account that acted, in any store's rows. A test walks every
registered store's tables for a column named ``actor`` or ``*_by`` missing here."""

_WHERE_FROM = "ip"
"""Dropped from a row that names its actor: the address the staff member acted from."""

_SYSTEM_NAMES = frozenset({"storelens", "recognition", "system", "server", "cli"})
"""Actors that are the product itself (a projection, a scheduled run), named as is."""

STAFF = "(a member of staff)"
AN_API_KEY = "(an API key)"
AN_OPERATOR = "(an operator at the server)"


def without_staff_names(conn: Connection, stores: Mapping[str, Any]) -> dict[str, Any]:
    """``stores`` (an export's per-store rows) with every acting account replaced by
    its kind and role, and audit rows' IP addresses left out."""
    accounts = conn.execute(select(users.c.username, users.c.role))
    roles = {str(r.username): str(r.role) for r in accounts}
    return {name: _redacted(rows, roles) for name, rows in stores.items()}


def _redacted(value: Any, roles: Mapping[str, str]) -> Any:
    if isinstance(value, list):
        return [_redacted(v, roles) for v in value]
    if not isinstance(value, dict):
        return value
    names_actor = any(k in ACTOR_FIELDS for k in value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if names_actor and key == _WHERE_FROM:
            continue
        if key in ACTOR_FIELDS and isinstance(item, str):
            out[key] = _category(item, value.get("role"), roles)
        else:
            out[key] = _redacted(item, roles)
    return out


def _category(actor: str, row_role: Any, roles: Mapping[str, str]) -> str:
    """What the customer may know of an actor: which kind of account, and a person's
    role. An account deleted since (not in ``users`` any more) is still a person."""
    if actor in roles:  # first: a login may be called "server" or "cli"
        return f"(a member of staff, role {roles[actor]})"
    if actor in _SYSTEM_NAMES or actor.startswith("mqtt:"):
        return actor  # the product or a device's topic: no one's name
    if actor.startswith("key:"):
        return AN_API_KEY
    if actor.startswith("cli:"):
        return AN_OPERATOR
    role = row_role if isinstance(row_role, str) else None
    return f"(a member of staff, role {role})" if role else STAFF
