"""Normalisation of customer record fields before identity resolution.

Matching compares strings, so every source must spell the same fact the same way:
``"Müller, Jörg"`` from the till and ``"muller jorg"`` from the web shop should
meet as equals. Everything here is pure and total: bad input becomes ``None``
(missing) rather than an exception, because one malformed record must not stop a
batch, and a missing value costs the matcher far less than a wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any

from storelens.core.errors import MissingExtra

__all__ = [
    "normalise_dob",
    "normalise_email",
    "normalise_name",
    "normalise_phone",
    "normalise_postcode",
    "normalise_record",
    "normalise_text",
]

_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOB_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")
_MIN_YEAR = 1900


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas
        return True
    return isinstance(value, str) and not value.strip()


def normalise_text(value: Any) -> str | None:
    """Lowercase, strip accents and punctuation, collapse whitespace.

    Accents are folded (``ü`` -> ``u``) because sources disagree on them far more
    often than two different people differ only by one.
    """
    if _blank(value):
        return None
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("ß", "ss").lower()
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    text = _SPACES.sub(" ", text).strip()
    return text or None


def normalise_name(value: Any) -> str | None:
    """A personal name as :func:`normalise_text`; hyphens become spaces."""
    return normalise_text(value)


def normalise_email(value: Any, *, canonical_gmail: bool = False) -> str | None:
    """Lowercased, trimmed e-mail address, or ``None`` when it is not one.

    Gmail-style dot and ``+tag`` removal is off by default: it is only true for
    some providers, and e-mail equality is a deterministic rule here, so a
    rewrite that is wrong for one provider would merge two real people. Opt in
    with ``canonical_gmail=True`` for gmail.com/googlemail.com only.
    """
    if _blank(value):
        return None
    email = str(value).strip().lower()
    if not _EMAIL.match(email):
        return None
    if canonical_gmail:
        local, domain = email.rsplit("@", 1)
        if domain in ("gmail.com", "googlemail.com"):
            local = local.split("+", 1)[0].replace(".", "")
            email = f"{local}@gmail.com"
    return email


def normalise_phone(value: Any, default_region: str | None = "DE") -> str | None:
    """E.164 form (``+4930123456``) or ``None`` when the number is not valid.

    ``default_region`` interprets national numbers (``030 123456``); numbers in
    international form keep their own country.
    """
    try:
        import phonenumbers  # the ``cdp`` extra; imported late so the rest works without
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise MissingExtra("phone normalisation", "cdp") from exc
    if _blank(value):
        return None
    try:
        parsed = phonenumbers.parse(str(value), default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_postcode(value: Any) -> str | None:
    """Uppercase with all whitespace removed (``sw1a 1aa`` -> ``SW1A1AA``)."""
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    code = _SPACES.sub("", str(value)).upper()
    return code or None


def normalise_dob(value: Any) -> str | None:
    """ISO ``YYYY-MM-DD`` or ``None``.

    Accepts dates, datetimes, FEBRL's ``19560420`` (string or int) and the common
    ``YYYY-MM-DD``, ``DD.MM.YYYY``, ``DD/MM/YYYY`` spellings. Day-first is assumed
    for slashes (European sources); impossible or future dates become ``None``.
    """
    if _blank(value):
        return None
    if isinstance(value, datetime):
        parsed: date = value.date()
    elif isinstance(value, date):
        parsed = value
    else:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if "T" in text:
            text = text.split("T", 1)[0]
        for fmt in _DOB_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt).date()
                break
            except ValueError:
                continue
        else:
            return None
    if parsed.year < _MIN_YEAR or parsed > date.today():
        return None
    return parsed.isoformat()


def _plain(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def normalise_record(record: dict[str, Any], default_region: str = "DE") -> dict[str, Any]:
    """Normalise a customer source record (see :data:`storelens.cdp.records.FIELDS`).

    Unknown keys (ids, ``source_system``) pass through unchanged so callers keep
    their bookkeeping; known fields missing from the input come back as ``None``.
    The country, when the record has one, is the region for parsing its phone.
    """
    out = dict(record)
    country = normalise_postcode(record.get("country"))
    region = country if country and len(country) == 2 else default_region
    out["first_name"] = normalise_name(record.get("first_name"))
    out["last_name"] = normalise_name(record.get("last_name"))
    out["email"] = normalise_email(record.get("email"))
    out["phone"] = normalise_phone(record.get("phone"), region)
    out["address"] = normalise_text(record.get("address"))
    out["postcode"] = normalise_postcode(record.get("postcode"))
    out["city"] = normalise_text(record.get("city"))
    out["country"] = country
    out["dob"] = normalise_dob(record.get("dob"))
    out["loyalty_id"] = _plain(record.get("loyalty_id"))
    return out
