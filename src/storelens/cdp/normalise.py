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
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from storelens.core.errors import MissingExtra

__all__ = [
    "PLACEHOLDER_DOBS",
    "normalise_dob",
    "normalise_email",
    "normalise_name",
    "normalise_phone",
    "normalise_postcode",
    "normalise_record",
    "normalise_text",
    "phone_regions",
    "region_of_postcode",
]

_NON_WORD = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOB_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y")
_MIN_YEAR = 1900
PLACEHOLDER_DOBS = frozenset({"1900-01-01", "1901-01-01", "1899-12-31", "1111-11-11"})
"""Dates a form or a till fills in when nobody asked; never anyone's birthday to match on."""
_PLACEHOLDER_LOCAL = re.compile(
    r"^(no|none|noemail|nomail|keine|kein|test|dummy|x+|na|n/a|unknown)$"
)
_MOJIBAKE = ("Ã", "Â", "â€", "Å", "Ä\x9f", "Ä±")
_GB_POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}$")
_US_ZIP4 = re.compile(r"^\d{5}-\d{4}$")
_FIVE_DIGITS = re.compile(r"^\d{5}$")
_NANP = re.compile(r"^(\+?1[-. ]?)?\(?[2-9]\d{2}\)?[-. ]?[2-9]\d{2}[-. ]\d{4}$")
_GERMAN_CITIES = frozenset((
    "berlin", "hamburg", "munchen", "muenchen", "koln", "koeln", "frankfurt am main",
    "frankfurt", "stuttgart", "dusseldorf", "duesseldorf", "leipzig", "dortmund", "essen",
    "bremen", "dresden", "hannover", "nurnberg", "nuernberg", "duisburg", "bochum",
    "wuppertal", "bielefeld", "bonn", "mannheim", "karlsruhe", "wiesbaden", "augsburg", "potsdam",
))  # fmt: skip


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
    text = str(value)
    if any(marker in text for marker in _MOJIBAKE):  # UTF-8 read as Latin-1 somewhere upstream
        import ftfy

        text = ftfy.fix_text(text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("ß", "ss").lower()
    if not text.isascii():  # dotless i, ø, ł and the like have no combining form
        from unidecode import unidecode

        text = unidecode(text)
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
    if not _EMAIL.match(email) or _PLACEHOLDER_LOCAL.match(email.rsplit("@", 1)[0]):
        return None
    if canonical_gmail:
        local, domain = email.rsplit("@", 1)
        if domain in ("gmail.com", "googlemail.com"):
            local = local.split("+", 1)[0].replace(".", "")
            email = f"{local}@gmail.com"
    return email


def normalise_phone(value: Any, default_region: str | Sequence[str] | None = "DE") -> str | None:
    """E.164 form (``+4930123456``) or ``None`` when the number is not valid.

    ``default_region`` interprets national numbers (``030 123456``, or ``30 123456``
    without the trunk 0); numbers in international form (``+44 (0)29 …``, ``0044 …``)
    keep their own country. Given several regions, the first in which the number is
    valid wins: a record's own country, then the one its postcode implies, then the
    source's default (see :func:`phone_regions`).
    """
    try:
        import phonenumbers  # the ``cdp`` extra; imported late so the rest works without
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise MissingExtra("phone normalisation", "cdp") from exc
    if _blank(value):
        return None
    text = str(value)
    digits = re.sub(r"\D", "", text)
    if len(set(digits)) <= 1:  # 0000000000, 9999999: a placeholder, not a number
        return None
    regions = (
        [default_region]
        if default_region is None or isinstance(default_region, str)
        else list(default_region)
    )
    for region in regions or [None]:
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


def region_of_postcode(
    postcode: Any, city: Any = None, default_region: str | None = None
) -> str | None:
    """The country a postcode's shape implies: GB, US or DE, else ``None``.

    Deliberately simple: ``SW1A 1AA`` shapes are GB; ZIP+4 is US; five digits are DE
    when the city is a large German one or the source's default is DE, else US.
    Only a hint for parsing national phone numbers, never stored as the country.
    """
    if _blank(postcode):
        return None
    code = _SPACES.sub(" ", str(postcode).strip().upper())
    if _GB_POSTCODE.match(code):
        return "GB"
    if _US_ZIP4.match(code):
        return "US"
    if _FIVE_DIGITS.match(code):
        town = normalise_text(city) or ""
        if town in _GERMAN_CITIES or default_region == "DE":
            return "DE"
        return "US"
    return None


def phone_regions(record: Mapping[str, Any], default_region: str | None) -> list[str]:
    """Regions to read a record's phone in: its country, its postcode's, the default,
    and last the US when the number has the North American shape."""
    country = normalise_postcode(record.get("country"))
    found = [
        country if country and len(country) == 2 else None,
        region_of_postcode(record.get("postcode"), record.get("city"), default_region),
        default_region,
    ]
    if found[1] in ("US", "DE") and _FIVE_DIGITS.match(str(record.get("postcode")).strip()):
        found.insert(2, "DE" if found[1] == "US" else "US")  # five digits: either country
    if _NANP.match(str(record.get("phone") or "").strip()):
        found.append("US")  # (646) 201-5743, 1-312-…: North American shape, a last resort
    return list(dict.fromkeys(r for r in found if r))


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
    if parsed.year < _MIN_YEAR or parsed > date.today() or parsed.isoformat() in PLACEHOLDER_DOBS:
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
    The phone is read in the record's country, else its postcode's, else
    ``default_region`` (:func:`phone_regions`).
    """
    out = dict(record)
    country = normalise_postcode(record.get("country"))
    out["first_name"] = normalise_name(record.get("first_name"))
    out["last_name"] = normalise_name(record.get("last_name"))
    out["email"] = normalise_email(record.get("email"))
    out["phone"] = normalise_phone(record.get("phone"), phone_regions(record, default_region))
    out["address"] = normalise_text(record.get("address"))
    out["postcode"] = normalise_postcode(record.get("postcode"))
    out["city"] = normalise_text(record.get("city"))
    out["country"] = country
    out["dob"] = normalise_dob(record.get("dob"))
    out["loyalty_id"] = _plain(record.get("loyalty_id"))
    return out
